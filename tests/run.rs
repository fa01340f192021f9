//! `pxtr run` end to end: real DPDK in a child process on the embedded lab (virtual devices).

mod common;

use common::packet::{eth, ipv4_udp};

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

fn pxtr() -> Command {
    // Each run its own `pxtr ctl` socket: tests run in parallel.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut c = Command::new(env!("CARGO_BIN_EXE_pxtr"));
    c.env("RUST_LOG", "info")
        .env(
            "PXTR_CONTROL__SOCKET",
            std::env::temp_dir().join(format!("pxtr-run-test-{}-{n}.sock", std::process::id())),
        )
        .env("PXTR_CONTROL__METRICS_LISTEN", "127.0.0.1:0");
    c
}

/// Runs `cmd` to its end: it must exit 0 having every mbuf back in the pool. Returns its
/// stdout and stderr.
fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().expect("run pxtr");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status.code()
    );
    assert!(
        stdout.contains("mbufs back in the pool: 8191/8191"),
        "{stdout}"
    );
    (stdout, stderr)
}

#[test]
fn run_for_a_duration_receives_and_returns_every_mbuf() {
    let (stdout, stderr) = run_ok(pxtr().args(["run", "--duration", "1"]));
    // net_null hands the eid0 worker (lcore 1) frames: it must have received some.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("worker lcore 1:"))
        .expect("worker 1 line");
    let n: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse().ok())
        .expect("packet count");
    assert!(n > 0, "{line}");
    // The pipeline accounts for every one: net_null's all-zero frames are not for us.
    assert!(
        stdout.contains(&format!("drop_not_for_us={n}")),
        "every frame counted as not for us: {stdout}"
    );
    assert!(stderr.contains("port started"), "{stderr}");
    assert!(stderr.contains("all mbufs back in the pool"), "{stderr}");
}

#[test]
fn sigterm_stops_workers_and_ports_cleanly() {
    let mut child = pxtr()
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pxtr");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    // Wait for the control loop to be up (it logs after every worker started).
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("read stderr");
        let ready = line.contains("running; Ctrl-C or SIGTERM stops");
        seen.push(line);
        if ready {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("running;")),
        "pxtr did not come up:\n{}",
        seen.join("\n")
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "exit {:?}\n{}",
        out.status.code(),
        rest.join("\n")
    );
    let log = rest.join("\n");
    assert!(log.contains("worker stopped lcore=1"), "{log}");
    assert!(log.contains("port closed port=eid0"), "{log}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("mbufs back in the pool: 8191/8191"));
}

#[test]
fn a_device_that_cannot_be_probed_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("pxtr-run-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad-device.toml");
    let text = pxtr::config::EMBEDDED_LAB.replacen(
        "device = \"net_ring0\"",
        "device = \"net_pcap0,rx_pcap=/nonexistent/in.pcap,tx_pcap=/nonexistent/out.pcap\"",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let out = pxtr()
        .args(["run", "--config", cfg.to_str().unwrap(), "--duration", "1"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr
        .lines()
        .find(|l| l.starts_with("pxtr: "))
        .unwrap_or_default();
    assert!(last.starts_with("pxtr: port rloc0 (net_pcap0"), "{stderr}");
    assert!(last.contains("no driver could attach device"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// IPv4/UDP from 10.1.1.10 to `dst` with TTL 64, in an Ethernet frame to `dst_mac`.
fn host_frame(dst_mac: [u8; 6], dst: [u8; 4], sport: u16) -> Vec<u8> {
    let ip = ipv4_udp(
        Ipv4Addr::new(10, 1, 1, 10),
        Ipv4Addr::from(dst),
        sport,
        80,
        64,
        0,
        true,
        20,
    );
    eth(dst_mac, [0x02, 0, 0, 0, 0x10, 0x10], 0x0800, &ip)
}

/// `pxtr run` forwards for real with static mappings and neighbours: host frames replayed by
/// a net_pcap EID port come out of the net_pcap RLOC port LISP-encapsulated (tshark decodes
/// them), frames to an unmapped EID are reported as misses, and every mbuf comes back.
#[test]
fn run_encapsulates_with_static_mappings_and_neighbours() {
    let dir = std::env::temp_dir().join(format!("pxtr-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // DPDK's net_pcap gives its devices 02:70:63:61:70:<n> in probe order: eid0 is the first.
    let eid_mac = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
    let mut frames: Vec<Vec<u8>> = (0..20)
        .map(|i| host_frame(eid_mac, [10, 2, 0, 5], 1000 + i))
        .collect();
    frames.extend((0..5).map(|i| host_frame(eid_mac, [10, 9, 9, 9], 2000 + i)));
    let write_pcap = |path: &std::path::Path, frames: &[Vec<u8>]| {
        let mut out = Vec::new();
        for v in [0xa1b2c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for f in frames {
            for v in [0u32, 0, f.len() as u32, f.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(f);
        }
        std::fs::write(path, out).unwrap();
    };
    let (eid_in, rloc_in) = (dir.join("eid-in.pcap"), dir.join("rloc-in.pcap"));
    // net_pcap has one TX queue per tx_pcap file; pxtr asks for one per worker plus the control
    // core's: worker 0 (eid0's) transmits on queue 0 of every port.
    let (eid_out, rloc_out) = (dir.join("eid-out.pcap."), dir.join("rloc-out.pcap."));
    write_pcap(&eid_in, &frames);
    write_pcap(&rloc_in, &[]);
    let config = format!(
        r#"
[appliance]
role = "pxtr"
[eal]
hugepages = false
memory_mb = 256
in_memory = true
[mempool]
mbufs = 8191
cache = 128
[[ports]]
name = "eid0"
device = "net_pcap0,rx_pcap={},tx_pcap={}0,tx_pcap={}1,tx_pcap={}2"
role = "eid"
addresses = ["10.1.1.5/24"]
rx_descriptors = 256
tx_descriptors = 256
[[ports]]
name = "rloc0"
device = "net_pcap1,rx_pcap={},tx_pcap={}0,tx_pcap={}1,tx_pcap={}2"
role = "rloc"
addresses = ["192.0.2.1/24"]
gateway = "192.0.2.254"
neighbors = [{{ ip = "192.0.2.254", mac = "02:00:00:00:fe:fe" }}]
rx_descriptors = 256
tx_descriptors = 256
[lcores]
control = 0
workers = [
  {{ lcore = 1, cpu = 1, port = "eid0", queue = 0 }},
  {{ lcore = 2, cpu = 1, port = "rloc0", queue = 0 }},
]
[dataplane]
idle = "adaptive"
[lisp]
rlocs = ["192.0.2.1"]
map_resolvers = ["192.0.2.10"]
static_mappings = [
  {{ prefix = "10.2.0.0/16", rlocs = [{{ address = "198.51.100.1" }}] }},
]
[control]
stats_interval_s = 0
"#,
        eid_in.display(),
        eid_out.display(),
        eid_out.display(),
        eid_out.display(),
        rloc_in.display(),
        rloc_out.display(),
        rloc_out.display(),
        rloc_out.display()
    );
    let cfg_path = dir.join("pxtr.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let (stdout, stderr) = run_ok(
        pxtr()
            .args(["run", "--duration", "1", "--config"])
            .arg(&cfg_path),
    );
    assert!(stdout.contains("20 encapsulated"), "{stdout}\n{stderr}");
    assert!(stdout.contains("drop_miss=5"), "unmapped EID: {stdout}");
    assert!(stderr.contains("static mapping"), "{stderr}");
    let t = Command::new("tshark")
        .arg("-r")
        .arg(dir.join("rloc-out.pcap.0"))
        .args([
            "-T",
            "fields",
            "-E",
            "separator=;",
            "-e",
            "eth.dst",
            "-e",
            "ip.dst",
            "-e",
            "lisp-data.iid",
        ])
        .output()
        .expect("tshark runs");
    let rows = String::from_utf8_lossy(&t.stdout);
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 20, "{rows}");
    assert!(
        lines
            .iter()
            .all(|l| *l == "02:00:00:00:fe:fe;198.51.100.1,10.2.0.5;0"),
        "{rows}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Role ms-mr has no DPDK port: `pxtr run` takes LISP control messages on a kernel UDP
/// socket. A signed Map-Register is confirmed by a Map-Notify, and a Map-Request in an ECM
/// for the registered EID gets the Map-Server's proxy reply.
#[test]
fn ms_mr_without_ports_serves_on_a_kernel_udp_socket() {
    use pxtr::control::{eid_address, ip_address, map_request};
    use pxtr::wire::auth::{self, Algorithm};
    use pxtr::wire::control::{
        Action, Ecm, EcmInner, Locator, MapRegister, MappingRecord, Message, Registration,
    };
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};

    let free = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let dir = std::env::temp_dir().join(format!("pxtr-msmr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("ms-mr.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[appliance]
role = "ms-mr"
[eal]
hugepages = false
memory_mb = 128
in_memory = true
[lcores]
control = 0
[map_server]
enabled = true
listen = ["127.0.0.1"]
listen_port = {port}
sites = [{{ name = "cloud", key_id = 1, key = "cloud-site-key", eid_prefixes = [{{ prefix = "10.1.0.0/16", accept_more_specifics = true }}] }}]
[control]
stats_interval_s = 0
"#
        ),
    )
    .unwrap();
    let child = pxtr()
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ms = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let record = MappingRecord {
        ttl: 1440,
        action: Action::NoAction,
        authoritative: true,
        map_version: 0,
        eid: eid_address(0, "10.1.1.20".parse().unwrap()),
        mask_len: 32,
        locators: vec![Locator::new(
            ip_address("203.0.113.1".parse().unwrap()),
            1,
            100,
        )],
    };
    let reg = Message::MapRegister(MapRegister {
        proxy_reply: true,
        security: false,
        rtr: false,
        want_map_notify: true,
        registration: Registration {
            nonce: 0xabcd,
            key_id: 0,
            algorithm_id: 1,
            auth_data: vec![0; 20],
            records: vec![record.clone()],
            xtr_id: None,
        },
    });
    let reg = auth::emit_signed(&reg, Algorithm::HmacSha1_96, b"cloud-site-key").unwrap();
    // Ask until answered: pxtr takes a moment to start listening.
    let ask = |msg: &[u8], want: u8| -> Option<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            client.send_to(msg, ms).unwrap();
            if let Ok((n, _)) = client.recv_from(&mut buf) {
                if buf[0] >> 4 == want {
                    return Some(buf[..n].to_vec());
                }
            }
        }
        None
    };
    let notify = ask(&reg, 4);
    let req = map_request(
        0x77,
        pxtr::wire::Address::None,
        &["127.0.0.1".parse().unwrap()],
        0,
        "10.1.1.20/32".parse().unwrap(),
    );
    let ecm = Message::Ecm(Ecm {
        security: false,
        ddt: false,
        to_etr: false,
        to_ms: false,
        inner: EcmInner {
            src: "127.0.0.1".parse().unwrap(),
            dst: "10.1.1.20".parse().unwrap(),
            src_port: client.local_addr().unwrap().port(),
            dst_port: 4342,
            ttl: 64,
            ipv4_id: 0,
            dont_fragment: false,
            udp_checksum: true,
        },
        message: Message::MapRequest(req).to_vec().unwrap(),
    })
    .to_vec()
    .unwrap();
    let reply = ask(&ecm, 2);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    let notify = notify.unwrap_or_else(|| panic!("no Map-Notify\n{log}"));
    assert_eq!(
        auth::verify(&notify, b"cloud-site-key"),
        Ok(Algorithm::HmacSha1_96)
    );
    let reply = reply.unwrap_or_else(|| panic!("no Map-Reply\n{log}"));
    match Message::parse(&reply).unwrap() {
        Message::MapReply(r) => {
            assert_eq!(r.nonce, 0x77);
            assert_eq!(r.records[0].locators[0].address, record.locators[0].address);
        }
        m => panic!("{m:?}"),
    }
    assert!(log.contains("listening (kernel UDP)"), "{log}");
}
