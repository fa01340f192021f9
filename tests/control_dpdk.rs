//! The seed's first walk at packet level through `pxtr run` (role pxtr, embedded
//! Map-Server/Map-Resolver) on DPDK `net_tap` ports. The test plays VM-A on the server subnet
//! (raw socket on the EID tap) and the underlay gateway and cloud xTR-1 (raw socket on the RLOC
//! tap): xTR-1 registers VM-B; VM-A's ARP for VM-B makes PxTR-1 ask the mapping system (the
//! Map-Request is forwarded to xTR-1, which answers); the ARP is then answered with PxTR-1's
//! MAC; VM-A's packet leaves LISP-encapsulated toward xTR-1; a packet to another EID triggers
//! its own Map-Request. tshark decodes what left the RLOC port.

mod common;

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::appliance::Appliance;
use common::rawsock::RawSocket;
use pxtr::control::{eid_address, ip_address, udp};
use pxtr::wire::auth::{self, Algorithm};
use pxtr::wire::control::{
    Action, Locator, MapRegister, MapReply, MappingRecord, Message, Registration, XtrId,
};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Ipv4Address,
};

const EID_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const RLOC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0xfe];
const VM_A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x0a];
const PXTR_RLOC: &str = "198.51.100.1";
const GATEWAY: &str = "198.51.100.254";
const XTR_RLOC: &str = "203.0.113.1";
const VM_A: &str = "10.1.1.10";
const VM_B: &str = "10.1.1.20";
const VM_C: &str = "10.1.1.30";
const KEY: &str = "hybrid-cloud-key";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// PxTR-1 as `pxtr run` on two net_tap ports (EID side `eif`, RLOC side `rif`), with the
/// embedded Map-Server/Map-Resolver.
fn start(eif: &str, rif: &str) -> Appliance {
    let dir = std::env::temp_dir().join(format!("pxtr-control-dpdk-{}", std::process::id()));
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
device = "net_tap0,iface={eif},mac=02:00:00:00:01:01"
role = "eid"
addresses = ["10.1.1.5/24"]
rx_descriptors = 256
tx_descriptors = 256
[[ports]]
name = "rloc0"
device = "net_tap1,iface={rif},mac=02:00:00:00:01:02"
role = "rloc"
addresses = ["198.51.100.1/24"]
gateway = "{GATEWAY}"
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
rlocs = ["{PXTR_RLOC}"]
map_resolvers = ["{PXTR_RLOC}"]
map_servers = [{{ address = "{PXTR_RLOC}", key_id = 2, key = "{KEY}" }}]
dynamic_eids = [{{ name = "servers", iid = 0, prefix = "10.1.1.0/24", port = "eid0" }}]
[map_server]
enabled = true
sites = [{{ name = "hybrid", key_id = 2, key = "{KEY}", eid_prefixes = [{{ prefix = "10.1.0.0/16", accept_more_specifics = true }}] }}]
[control]
stats_interval_s = 0
"#
    );
    Appliance::start(&dir, &config)
}

fn arp(
    op: ArpOperation,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    sender: &str,
    target: &str,
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: EthernetAddress(src_mac),
        source_protocol_addr: sender.parse::<Ipv4Address>().unwrap(),
        target_hardware_addr: EthernetAddress(if op == ArpOperation::Request {
            [0; 6]
        } else {
            dst_mac
        }),
        target_protocol_addr: target.parse::<Ipv4Address>().unwrap(),
    };
    let mut buf = vec![0u8; 14 + repr.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut f);
    repr.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
    buf
}

/// The ARP in a frame: (operation, sender MAC, sender IP, target IP).
fn arp_of(f: &[u8]) -> Option<(ArpOperation, [u8; 6], IpAddr, IpAddr)> {
    let eth = EthernetFrame::new_checked(f).ok()?;
    if eth.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    match ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()? {
        ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } => Some((
            operation,
            source_hardware_addr.0,
            IpAddr::V4(source_protocol_addr),
            IpAddr::V4(target_protocol_addr),
        )),
        _ => None,
    }
}

/// On the RLOC side the test is the gateway: it answers PxTR-1's ARP for it. Returns whether
/// `f` was such a request.
fn gateway_answers(rloc: &RawSocket, f: &[u8]) -> bool {
    match arp_of(f) {
        Some((ArpOperation::Request, mac, sender, target)) if target == ip(GATEWAY) => {
            let reply = arp(
                ArpOperation::Reply,
                GW_MAC,
                mac,
                GATEWAY,
                &sender.to_string(),
            );
            rloc.send(&reply).unwrap();
            true
        }
        _ => false,
    }
}

/// A LISP control message from xTR-1 through the gateway to PxTR-1's RLOC.
fn from_xtr(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    udp::frame(
        GW_MAC,
        RLOC_MAC,
        ip(XTR_RLOC),
        ip(PXTR_RLOC),
        4342,
        dst_port,
        64,
        payload,
    )
    .unwrap()
}

/// A UDP datagram to xTR-1 in a frame from PxTR-1: (destination port, payload).
fn to_xtr(f: &[u8]) -> Option<(u16, Vec<u8>)> {
    let d = udp::parse(f).ok()?;
    (d.dst == ip(XTR_RLOC) && f[..6] == GW_MAC).then(|| (d.dst_port, f[d.payload].to_vec()))
}

fn record(eid: &str, ttl: u32) -> MappingRecord {
    MappingRecord {
        ttl,
        action: Action::NoAction,
        authoritative: true,
        map_version: 0,
        eid: eid_address(0, ip(eid)),
        mask_len: 32,
        locators: vec![Locator::new(ip_address(ip(XTR_RLOC)), 1, 100)],
    }
}

/// VM-A's UDP packet to `dst`, sent to PxTR-1's MAC.
fn vm_a_packet(dst: &str, sport: u16) -> Vec<u8> {
    let IpAddr::V4(d) = ip(dst) else {
        unreachable!()
    };
    let ip = common::packet::ipv4_udp(VM_A.parse().unwrap(), d, sport, 7, 64, 0, false, 16);
    common::packet::eth(EID_MAC, VM_A_MAC, 0x0800, &ip)
}

/// Whether `f` is LISP data from PxTR-1 to xTR-1 carrying a packet to `inner_dst`.
fn encapsulated_to(f: &[u8], inner_dst: &str) -> bool {
    match to_xtr(f) {
        Some((4341, p)) => {
            p.len() >= 8 + 20
                && p[8 + 16..8 + 20]
                    == match ip(inner_dst) {
                        IpAddr::V4(a) => a.octets(),
                        IpAddr::V6(_) => return false,
                    }
        }
        _ => false,
    }
}

/// One line per frame, for failure messages.
fn summary(frames: &[Vec<u8>]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match (arp_of(f), udp::parse(f)) {
            (Some(a), _) => format!("arp {a:?}"),
            (_, Ok(d)) => format!("udp {}:{} -> {}:{}", d.src, d.src_port, d.dst, d.dst_port),
            _ => format!("{:02x?}", &f[..f.len().min(34)]),
        })
        .collect()
}

#[test]
fn seed_first_walk_through_pxtr_run_on_tap_ports() {
    let pid = std::process::id();
    let (eif, rif) = (format!("pxe{pid}"), format!("pxr{pid}"));
    let app = start(&eif, &rif);
    let eid = app.tap(&eif);
    let rloc = app.tap(&rif);
    let mut seen = Vec::new(); // every frame from the RLOC port, for tshark
    let secs = |n| Instant::now() + Duration::from_secs(n);

    // xTR-1 registers VM-B and VM-C with PxTR-1's Map-Server and asks for a Map-Notify.
    let reg = Message::MapRegister(MapRegister {
        proxy_reply: false,
        security: false,
        rtr: false,
        want_map_notify: true,
        registration: Registration {
            nonce: 0x5eed,
            key_id: 0,
            algorithm_id: 2,
            auth_data: vec![0; 32],
            records: vec![record(VM_B, 1440), record(VM_C, 1440)],
            xtr_id: Some(XtrId {
                xtr_id: [9; 16],
                site_id: 1,
            }),
        },
    });
    let reg = auth::emit_signed(&reg, Algorithm::HmacSha256_128, KEY.as_bytes()).unwrap();
    // Until PxTR-1's worker polls the tap, a frame may be lost: send until the notify comes.
    let mut notify = None;
    for _ in 0..20 {
        // The tap can refuse frames (ENXIO) until DPDK has started its port.
        let _ = rloc.send(&from_xtr(4342, &reg));
        notify = rloc.wait_for(
            Instant::now() + Duration::from_millis(500),
            |f| !gateway_answers(&rloc, f) && to_xtr(f).is_some_and(|(_, p)| p[0] >> 4 == 4),
            &mut seen,
        );
        if notify.is_some() {
            break;
        }
    }
    let notify =
        notify.unwrap_or_else(|| panic!("no Map-Notify; seen {:?}\n{}", summary(&seen), app.log()));
    let (_, payload) = to_xtr(&notify).unwrap();
    auth::verify(&payload, KEY.as_bytes()).expect("the Map-Notify is signed with the site key");
    match Message::parse(&payload).unwrap() {
        Message::MapNotify(n) => assert_eq!(n.registration.nonce, 0x5eed),
        m => panic!("{m:?}"),
    }

    // VM-A ARPs for VM-B: no answer yet; PxTR-1 asks its Map-Resolver, whose Map-Server
    // forwards the Map-Request to xTR-1 (us).
    eid.send(&arp(ArpOperation::Request, VM_A_MAC, [0xff; 6], VM_A, VM_B))
        .unwrap();
    let ecm = rloc
        .wait_for(
            secs(10),
            |f| !gateway_answers(&rloc, f) && to_xtr(f).is_some_and(|(_, p)| p[0] >> 4 == 8),
            &mut seen,
        )
        .unwrap_or_else(|| panic!("no Map-Request for VM-B\n{}", app.log()));
    let answer = |ecm: &[u8], eid: &str| {
        let (_, p) = to_xtr(ecm).unwrap();
        let Message::Ecm(e) = Message::parse(&p).unwrap() else {
            panic!("not an ECM")
        };
        assert!(e.to_etr, "forwarded by the Map-Server to the ETR");
        let Message::MapRequest(req) = e.message().unwrap() else {
            panic!("not a Map-Request")
        };
        assert_eq!(req.records[0].eid, eid_address(0, ip(eid)));
        assert_eq!(req.itr_rlocs, vec![ip_address(ip(PXTR_RLOC))]);
        let reply = Message::MapReply(MapReply {
            probe: false,
            echo_nonce_capable: false,
            security: false,
            nonce: req.nonce,
            records: vec![record(eid, 10)],
        });
        rloc.send(&from_xtr(e.inner.src_port, &reply.to_vec().unwrap()))
            .unwrap();
    };
    answer(&ecm, VM_B);

    // VM-A's ARP again (as a host retries): answered with PxTR-1's MAC.
    let mut replied = None;
    let deadline = secs(10);
    while replied.is_none() && Instant::now() < deadline {
        eid.send(&arp(ArpOperation::Request, VM_A_MAC, [0xff; 6], VM_A, VM_B))
            .unwrap();
        replied = eid.wait_for(
            Instant::now() + Duration::from_millis(200),
            |f| matches!(arp_of(f), Some((ArpOperation::Reply, _, s, _)) if s == ip(VM_B)),
            &mut Vec::new(),
        );
    }
    let replied = replied.unwrap_or_else(|| panic!("VM-B's ARP not answered\n{}", app.log()));
    let (_, mac, _, target) = arp_of(&replied).unwrap();
    assert_eq!(
        (mac, target),
        (EID_MAC, ip(VM_A)),
        "proxy-ARP with PxTR-1's MAC"
    );
    assert_eq!(replied[..6], VM_A_MAC);

    // VM-A's packet to VM-B leaves encapsulated toward xTR-1.
    eid.send(&vm_a_packet(VM_B, 1000)).unwrap();
    rloc.wait_for(
        secs(10),
        |f| !gateway_answers(&rloc, f) && encapsulated_to(f, VM_B),
        &mut seen,
    )
    .unwrap_or_else(|| panic!("VM-A's packet not encapsulated\n{}", app.log()));

    // A packet to VM-C, not in the map-cache: the data plane's miss makes PxTR-1 ask; once
    // answered, VM-A's next packets leave encapsulated.
    eid.send(&vm_a_packet(VM_C, 2000)).unwrap();
    let ecm = rloc
        .wait_for(
            secs(10),
            |f| !gateway_answers(&rloc, f) && to_xtr(f).is_some_and(|(_, p)| p[0] >> 4 == 8),
            &mut seen,
        )
        .unwrap_or_else(|| panic!("no Map-Request for VM-C\n{}", app.log()));
    answer(&ecm, VM_C);
    let mut got = None;
    let deadline = secs(10);
    let mut sport = 2001;
    while got.is_none() && Instant::now() < deadline {
        eid.send(&vm_a_packet(VM_C, sport)).unwrap();
        sport += 1;
        got = rloc.wait_for(
            Instant::now() + Duration::from_millis(200),
            |f| !gateway_answers(&rloc, f) && encapsulated_to(f, VM_C),
            &mut seen,
        );
    }
    assert!(
        got.is_some(),
        "VM-C's packets not encapsulated\n{}",
        app.log()
    );

    // pxtr ctl: what the appliance learnt, as tables and as JSON; clearing an entry.
    let ctl = |args: &[&str]| app.ctl(args);
    let cached = || -> Vec<(String, String)> {
        let (code, out, err) = ctl(&["--json", "show", "map-cache"]);
        assert_eq!(code, Some(0), "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        v["map_cache"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["prefix"].as_str().unwrap().to_string(),
                    e["locators"][0]["address"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect()
    };
    let before = cached();
    for vm in [VM_B, VM_C] {
        assert!(
            before.contains(&(format!("{vm}/32"), XTR_RLOC.to_string())),
            "{vm} at {XTR_RLOC} in {before:?}"
        );
    }
    let (code, table, _) = ctl(&["show", "map-cache", "10.1.1.0/24"]);
    assert_eq!(code, Some(0));
    let row = table
        .lines()
        .find(|l| l.contains("10.1.1.20/32"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(&format!("{XTR_RLOC} up")), "{table}");
    let (_, stats, _) = ctl(&["show", "stats"]);
    let encap = stats
        .lines()
        .find(|l| l.starts_with("encap "))
        .unwrap_or_else(|| panic!("{stats}"));
    assert!(
        encap
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 2,
        "{stats}"
    );
    let (_, neighbors, _) = ctl(&["show", "neighbors"]);
    assert!(
        neighbors
            .lines()
            .any(|l| l.starts_with(GATEWAY) && l.contains("fe:fe")),
        "{neighbors}"
    );
    let (code, cleared, err) = ctl(&["clear", "map-cache", VM_B]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        cleared.starts_with("1 map-cache entries cleared"),
        "{cleared}"
    );
    let after = cached();
    assert!(!after.iter().any(|(p, _)| p == "10.1.1.20/32"), "{after:?}");
    assert!(after.iter().any(|(p, _)| p == "10.1.1.30/32"), "{after:?}");
    // The metrics endpoint: Prometheus' own checker accepts the exposition, and it carries what
    // happened (packets encapsulated, the map-cache's entries).
    let log = app.log();
    let addr = log
        .split("metrics at http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no metrics address in the log\n{log}"))
        .to_string();
    let mut conn = std::net::TcpStream::connect(&addr).expect("metrics endpoint");
    std::io::Write::write_all(&mut conn, b"GET /metrics HTTP/1.1\r\nHost: pxtr\r\n\r\n").unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut conn, &mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (ci/setup.sh provides it)");
    std::io::Write::write_all(promtool.stdin.as_mut().unwrap(), body.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // Each family in one group: its samples right after its TYPE line, a TYPE line once
    // (promtool lets a split family through).
    let mut family = String::new();
    let mut families = std::collections::HashSet::new();
    for l in body.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            family = rest.split(' ').next().unwrap().to_string();
            assert!(families.insert(family.clone()), "{family} twice\n{body}");
        } else if !l.starts_with('#') {
            let name = l.split(['{', ' ']).next().unwrap();
            let base = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            assert!(
                name == family || base == family,
                "{name} outside its family's group (in {family})\n{body}"
            );
        }
    }
    let value = |prefix: &str| -> f64 {
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert!(
        value("pxtr_worker_packets_total{lcore=\"1\",port=\"eid0\",queue=\"0\",reason=\"encap\"}")
            >= 2.0,
        "{body}"
    );
    assert!(value("pxtr_map_cache_entries ") >= 1.0, "{body}");

    // A command it does not know is a usage error, before asking anything.
    let (code, _, err) = ctl(&["show", "everything"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown command"), "{err}");

    let log = app.stop(8191);

    // tshark decodes what left the RLOC port: the Map-Notify, the forwarded Map-Requests
    // (ECM) and LISP data carrying VM-A's packets.
    let file = std::env::temp_dir().join(format!("pxtr-control-dpdk-{pid}/rloc.pcap"));
    std::fs::write(&file, common::pcap::write(&seen)).unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .args([
            "-Y",
            "lisp || lisp-data",
            "-T",
            "fields",
            "-E",
            "separator=;",
        ])
        .args(["-e", "lisp.type", "-e", "ip.dst"])
        .output()
        .expect("tshark runs");
    let rows = String::from_utf8_lossy(&out.stdout);
    // lisp.type of each message: an ECM row also lists its inner Map-Request's ("8,1").
    let types: Vec<&str> = rows
        .lines()
        .map(|l| l.split(';').next().unwrap_or(""))
        .collect();
    assert!(
        types.contains(&"4"),
        "tshark saw no Map-Notify:\n{rows}\n{log}"
    );
    assert!(
        types.iter().filter(|t| **t == "8,1").count() >= 2,
        "tshark saw no ECM carrying a Map-Request for each EID:\n{rows}"
    );
    let data = rows
        .lines()
        .filter(|l| l.contains("10.1.1.20") || l.contains("10.1.1.30"))
        .count();
    assert!(
        data >= 2,
        "tshark saw no LISP data to VM-B and VM-C:\n{rows}"
    );
}
