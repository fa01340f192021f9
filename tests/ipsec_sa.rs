//! An IPsec SA between two strongSwan charons, each in a network namespace of the test's own
//! (joined by a veth pair) with userspace ESP (kernel-libipsec: this kernel has no ESP): pxtr's
//! IPsec manager loads the connection into one side, the test loads the mirror image into the
//! other, and the manager reports the SA up — what makes a peer's RLOCs reachable.

use std::process::Command;
use std::time::Duration;

use pxtr::config::{Ipsec, IpsecAuth, IpsecMode, IpsecPeer};
use pxtr::dpdk::StopFlag;
use pxtr::ipsec::vici::Client;
use pxtr::ipsec::{load_conn, load_shared, manage, SaChange};

mod common;

use common::charon::{Charon, Netns};

fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().expect("ip");
    assert!(ok.success(), "ip {}", args.join(" "));
}

fn peer(name: &str, local: &str, remote: &str, remote_rloc: &str) -> IpsecPeer {
    IpsecPeer {
        name: name.into(),
        local_address: Some(local.parse().unwrap()),
        remote_address: Some(remote.parse().unwrap()),
        remote_rlocs: vec![remote_rloc.parse().unwrap()],
        auth: IpsecAuth::Psk,
        psk: "a-test-key-for-the-sa-test".into(),
        ike_proposals: vec!["aes256-sha256-modp2048".into()],
        // What Debian's strongswan-charon and libcharon-extra-plugins provide: AES, SHA-2,
        // MODP groups (gmp); no AES-GCM without the openssl plugin.
        esp_proposals: vec!["aes256-sha256".into()],
        ..IpsecPeer::default()
    }
}

#[test]
fn the_manager_reports_the_sa_to_the_cloud_xtr_up() {
    let pid = std::process::id();
    let (na, nb) = (format!("pxsa-a-{pid}"), format!("pxsa-b-{pid}"));
    let (va, vb) = (format!("pxsa{pid}a"), format!("pxsa{pid}b"));
    // Namespaces first, so they go after the charons in them (drop order).
    let (ns_a, ns_b) = (Netns::new(&na), Netns::new(&nb));
    let dir = std::env::temp_dir().join(format!("pxtr-ipsec-sa-{pid}"));
    let enterprise = Charon::start(&ns_a.0, &dir.join("a"));
    let cloud = Charon::start(&ns_b.0, &dir.join("b"));
    ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
    ip(&["link", "set", &va, "netns", &na]);
    ip(&["link", "set", &vb, "netns", &nb]);
    for (ns, dev, addr) in [(&na, &va, "10.99.0.1/24"), (&nb, &vb, "10.99.0.2/24")] {
        ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    // Each side's RLOC is an address of its host (charon routes the peer's RLOCs into the
    // tunnel from it).
    ip(&["-n", &na, "addr", "add", "192.0.2.1/32", "dev", "lo"]);
    ip(&["-n", &nb, "addr", "add", "203.0.113.1/32", "dev", "lo"]);

    // The cloud side: the test loads the mirror image of what pxtr loads.
    // RLOCs apart from the IKE addresses (the RLOC space is what the tunnel carries; routing
    // the IKE peer's own address into the tunnel would swallow IKE itself).
    let to_pxtr = peer("to-pxtr", "10.99.0.2", "10.99.0.1", "192.0.2.1/32");
    let mut c = Client::connect(&cloud.socket, Duration::from_secs(10)).expect("VICI (cloud)");
    c.call("load-shared", load_shared(&to_pxtr))
        .expect("key (cloud)");
    let mut conn = load_conn(
        &to_pxtr,
        0,
        "203.0.113.1/32".parse().unwrap(),
        IpsecMode::Libipsec,
    );
    // Only the enterprise side initiates.
    if let Some((_, pxtr::ipsec::vici::Value::Section(s))) = conn.entries.first_mut() {
        for (k, v) in &mut s.entries {
            if k == "children" {
                if let pxtr::ipsec::vici::Value::Section(ch) = v {
                    for (_, child) in &mut ch.entries {
                        if let pxtr::ipsec::vici::Value::Section(child) = child {
                            for (ck, cv) in &mut child.entries {
                                if ck == "start_action" {
                                    *cv = pxtr::ipsec::vici::Value::Str(b"trap".to_vec());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    c.call("load-conn", conn).expect("connection (cloud)");

    // The enterprise side: pxtr's manager, as `pxtr run` starts it.
    let ipsec = Ipsec {
        mode: IpsecMode::Libipsec,
        vici_socket: enterprise.socket.display().to_string(),
        peers: vec![peer(
            "cloud-xtr",
            "10.99.0.1",
            "10.99.0.2",
            "203.0.113.0/24",
        )],
    };
    let stop = StopFlag::new();
    let (tx, rx) = crossbeam::channel::unbounded();
    let st = stop.clone();
    let manager =
        std::thread::spawn(move || manage(ipsec, Some("192.0.2.1/32".parse().unwrap()), st, tx));
    let got = rx.recv_timeout(Duration::from_secs(30));
    stop.stop();
    manager.join().unwrap();
    assert_eq!(
        got,
        Ok(SaChange::Up(0)),
        "enterprise charon:\n{}\ncloud charon:\n{}",
        enterprise.log(),
        cloud.log()
    );
}
