//! Live reload through `pxtr run` on DPDK (issue #8 part 3): while a host on the EID tap sends a
//! steady flow to a statically mapped EID (encapsulated toward the RLOC side, a `net_null`
//! port), the config file is changed and re-read with `pxtr ctl reload` and with SIGHUP. The
//! changes are live (`show map-cache`, `show site`), a bad file and a port change are refused
//! and change nothing, and every packet of the flow was encapsulated: the reloads (one of them
//! publishes a new plan to the workers) lost none.

mod common;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::appliance::Appliance;
use common::packet::{eth, ipv4_udp};

const EID_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x0a];
const KEY_A: &str = "site-a-key-1234";

fn config(eif: &str, extra_lisp: &str, sites: &str, rloc_mtu: u16) -> String {
    format!(
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
device = "net_tap0,iface={eif},mac=02:00:00:00:02:01"
role = "eid"
addresses = ["10.1.1.5/24"]
rx_descriptors = 256
tx_descriptors = 256
[[ports]]
name = "rloc0"
device = "net_null0,no-rx=1"
role = "rloc"
addresses = ["192.0.2.1/24"]
gateway = "192.0.2.254"
neighbors = [{{ ip = "192.0.2.254", mac = "02:00:00:00:fe:fe" }}]
mtu = {rloc_mtu}
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
map_resolvers = ["192.0.2.1"]
{extra_lisp}
[[lisp.static_mappings]]
prefix = "10.2.0.0/16"
rlocs = [{{ address = "198.51.100.1" }}]
[map_server]
enabled = true
{sites}
[control]
stats_interval_s = 0
"#
    )
}

const SITE_A: &str = r#"
[[map_server.sites]]
name = "a"
key = "site-a-key-1234"
eid_prefixes = [{ prefix = "10.1.0.0/16", accept_more_specifics = true }]
"#;

/// What the test asks the appliance, through `pxtr ctl --json`.
trait Ask {
    fn prefixes(&self) -> Vec<String>;
    fn sites(&self) -> Vec<(String, Vec<String>)>;
    fn count(&self, reason: &str) -> u64;
    fn control_stat(&self, key: &str) -> u64;
}

impl Ask for Appliance {
    fn prefixes(&self) -> Vec<String> {
        self.json(&["show", "map-cache"])["map_cache"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["prefix"].as_str().unwrap().to_string())
            .collect()
    }

    fn sites(&self) -> Vec<(String, Vec<String>)> {
        self.json(&["show", "site"])["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["eid_prefixes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p["prefix"].as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect()
    }

    /// The EID worker's (lcore 1) count of `reason`.
    fn count(&self, reason: &str) -> u64 {
        let v = self.json(&["show", "stats"]);
        v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["lcore"] == 1)
            .and_then(|w| w["counters"][reason]["count"].as_u64())
            .unwrap_or(0)
    }

    fn control_stat(&self, key: &str) -> u64 {
        self.json(&["show", "stats"])["control"][key]
            .as_u64()
            .unwrap_or_else(|| panic!("no control.{key}"))
    }
}

#[test]
fn reload_applies_live_changes_refuses_the_rest_and_loses_no_packet() {
    let id = std::process::id();
    let eif = format!("pxrl{}", id % 100_000);
    let dir = std::env::temp_dir().join(format!("pxtr-reload-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let app = Appliance::start(&dir, &config(&eif, "", SITE_A, 1500));
    let cfg = app.cfg.clone();
    let sock = app.tap(&eif);
    app.until("ctl socket", 30, || app.dir.join("ctl.sock").exists());

    // The unaffected flow: host 10.1.1.10 to 10.2.0.5 (static mapping), one frame a
    // millisecond or so, until told to stop; `sent` counts what the kernel took.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut n = 0u16;
            while !stop.load(Ordering::Relaxed) {
                let ip = ipv4_udp(
                    Ipv4Addr::new(10, 1, 1, 10),
                    Ipv4Addr::new(10, 2, 0, 5),
                    1000 + (n % 64),
                    80,
                    64,
                    0,
                    true,
                    64,
                );
                if sock.send(&eth(EID_MAC, HOST_MAC, 0x0800, &ip)).is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                n = n.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    app.until("the flow is not encapsulated", 30, || {
        app.count("encap") > 50
    });
    assert_eq!(app.prefixes(), vec!["10.2.0.0/16"]);

    // 1. pxtr ctl reload: a static mapping added, site a's key changed and a prefix added to
    //    it, a site b added, a PETR added (a new plan for the workers, mid-flow).
    let sites = format!(
        "{}\n[[map_server.sites]]\nname = \"b\"\nkey = \"site-b-key-1234\"\neid_prefixes = [{{ prefix = \"10.5.0.0/16\" }}]\n",
        SITE_A
            .replace(KEY_A, "site-a-key-5678")
            .replace(
                "accept_more_specifics = true }]",
                "accept_more_specifics = true }, { prefix = \"10.4.0.0/16\" }]"
            )
    );
    let lisp = "petrs = [\"198.51.100.7\"]\n[[lisp.static_mappings]]\nprefix = \"10.3.0.0/16\"\nrlocs = [{ address = \"198.51.100.3\" }]";
    std::fs::write(&cfg, config(&eif, lisp, &sites, 1500)).unwrap();
    let (code, out, err) = app.ctl(&["reload"]);
    assert_eq!(code, Some(0), "{out}\n{err}\n{}", app.log());
    for key in ["lisp.static_mappings", "lisp.petrs", "map_server.sites"] {
        assert!(out.contains(key), "{key} not listed:\n{out}");
    }
    let mut p = app.prefixes();
    p.sort();
    assert_eq!(p, vec!["10.2.0.0/16", "10.3.0.0/16"]);
    assert_eq!(
        app.sites(),
        vec![
            (
                "a".to_string(),
                vec!["10.1.0.0/16".to_string(), "10.4.0.0/16".to_string()]
            ),
            ("b".to_string(), vec!["10.5.0.0/16".to_string()]),
        ]
    );

    // 2. SIGHUP: the added static mapping and site b go again.
    std::fs::write(
        &cfg,
        config(&eif, "petrs = [\"198.51.100.7\"]", SITE_A, 1500),
    )
    .unwrap();
    let pid = app.pid() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    app.until("SIGHUP did not reload", 10, || {
        app.control_stat("reloads_ok") == 2
    });
    assert_eq!(app.prefixes(), vec!["10.2.0.0/16"]);
    assert_eq!(
        app.sites(),
        vec![("a".to_string(), vec!["10.1.0.0/16".to_string()])]
    );
    assert!(app.log().contains("reload: applied"), "{}", app.log());

    // 3. A bad file: refused with check-config's message; nothing changes.
    let bad = config(&eif, "", SITE_A, 1500).replace(KEY_A, "short");
    std::fs::write(&cfg, bad).unwrap();
    let (code, _, err) = app.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("map_server.sites[0].key") && err.contains("line "),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");

    // 4. A port change needs a restart: refused, naming the key, nothing applied (the PETR
    //    removal beside it included).
    std::fs::write(&cfg, config(&eif, "", SITE_A, 1400)).unwrap();
    let (code, _, err) = app.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("ports[1].mtu") && err.contains("restart"),
        "{err}"
    );
    assert_eq!(app.prefixes(), vec!["10.2.0.0/16"]);
    assert_eq!(app.control_stat("reloads_ok"), 2);
    assert_eq!(app.control_stat("reloads_invalid"), 1);
    assert_eq!(app.control_stat("reloads_refused"), 1);

    // 5. The first IPsec peers of a pxtr started without any: no IPsec manager runs, so they
    //    need a restart (peers of a pxtr that has some apply live: tests/ipsec_sa.rs).
    let ipsec = "\n[ipsec]\n[[ipsec.peers]]\nname = \"cloud\"\nlocal_address = \"10.99.0.1\"\n\
                 remote_address = \"10.99.0.2\"\nremote_rlocs = [\"203.0.113.0/24\"]\n\
                 psk = \"0123456789abcdef-key\"\n";
    std::fs::write(&cfg, config(&eif, "", SITE_A, 1500) + ipsec).unwrap();
    let (code, _, err) = app.ctl(&["reload"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("ipsec.peers") && err.contains("need a restart"),
        "{err}"
    );
    assert_eq!(app.control_stat("reloads_refused"), 2);

    // The flow: every frame sent was received and encapsulated, none dropped.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let sent = sent.load(Ordering::Relaxed);
    app.until(
        &format!("not every frame was encapsulated ({sent} sent)"),
        10,
        || app.count("encap") >= sent,
    );
    let stats = app.json(&["show", "stats"]);
    let eid = stats["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["lcore"] == 1)
        .unwrap()
        .clone();
    assert_eq!(app.count("encap"), sent, "{eid}");
    assert_eq!(eid["drops"], 0, "{eid}");

    // A clean stop, every mbuf back.
    app.stop(8191);
    std::fs::remove_dir_all(&dir).ok();
}

/// The embedded lab has no file: a reload says so, changes nothing and is counted refused.
#[test]
fn the_embedded_lab_has_no_file_to_reload() {
    let dir = std::env::temp_dir().join(format!("pxtr-reload-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let app = Appliance::spawn(&dir, &["run", "--duration", "30"], PathBuf::new());
    let mut answer = (None, String::new(), String::new());
    app.until("pxtr ctl never answered", 30, || {
        answer = app.ctl(&["reload"]);
        !answer.2.contains("cannot reach")
    });
    let (code, _, err) = answer;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no configuration file to re-read"), "{err}");
    assert_eq!(app.control_stat("reloads_refused"), 1);
    drop(app);
    std::fs::remove_dir_all(&dir).ok();
}
