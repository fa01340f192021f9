//! An IPsec SA between two strongSwan charons, each in a network namespace of the test's own
//! (joined by a veth pair) with userspace ESP (kernel-libipsec: this kernel has no ESP): pxtr's
//! IPsec manager loads the connection into one side, the test loads the mirror image into the
//! other, and the manager reports the SA up — what makes a peer's RLOCs reachable.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pxtr::config::{Ipsec, IpsecAuth, IpsecMode, IpsecPeer};
use pxtr::dpdk::StopFlag;
use pxtr::ipsec::vici::Client;
use pxtr::ipsec::{load_conn, load_shared, manage, SaChange};

const CHARON: &str = "/usr/lib/ipsec/charon";

fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().expect("ip");
    assert!(ok.success(), "ip {}", args.join(" "));
}

/// A namespace with charon in it (its own /run, so two can run), removed on drop.
struct Side {
    ns: String,
    socket: PathBuf,
    charon: Child,
}

impl Side {
    fn start(ns: &str, dir: &std::path::Path) -> Side {
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("charon.vici");
        let _ = std::fs::remove_file(&socket);
        let conf = dir.join("strongswan.conf");
        std::fs::write(
            &conf,
            format!(
                "charon {{\n  load_modular = no\n  load = random nonce pem pkcs1 x509 pubkey \
                 socket-default kernel-libipsec kernel-netlink vici kdf hmac sha1 sha2 aes gmp\n  plugins {{\n    vici {{\n      socket = unix://{}\n    }}\n  }}\n  \
                 filelog {{\n    f {{\n      path = {}\n      default = 1\n    }}\n  }}\n}}\n",
                socket.display(),
                dir.join("charon.log").display()
            ),
        )
        .unwrap();
        let charon = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "unshare",
                "--mount",
                "--propagation",
                "private",
            ])
            .args([
                "sh",
                "-c",
                &format!("mount -t tmpfs tmpfs /run && exec {CHARON}"),
            ])
            .env("STRONGSWAN_CONF", &conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start charon");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "charon in {ns} made no VICI socket"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Side {
            ns: ns.into(),
            socket,
            charon,
        }
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        let _ = self.charon.kill();
        let _ = self.charon.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
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
    assert!(
        std::path::Path::new(CHARON).exists(),
        "{CHARON} is missing: ci/setup.sh installs strongswan-charon"
    );
    let pid = std::process::id();
    let (na, nb) = (format!("pxsa-a-{pid}"), format!("pxsa-b-{pid}"));
    let (va, vb) = (format!("pxsa{pid}a"), format!("pxsa{pid}b"));
    ip(&["netns", "add", &na]);
    ip(&["netns", "add", &nb]);
    let dir = std::env::temp_dir().join(format!("pxtr-ipsec-sa-{pid}"));
    // Sides are dropped (charons killed, namespaces removed) whatever happens below.
    let enterprise = Side::start(&na, &dir.join("a"));
    let cloud = Side::start(&nb, &dir.join("b"));
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
    let log =
        |side: &str| std::fs::read_to_string(dir.join(side).join("charon.log")).unwrap_or_default();
    assert_eq!(
        got,
        Ok(SaChange::Up(0)),
        "enterprise charon:\n{}\ncloud charon:\n{}",
        log("a"),
        log("b")
    );
    drop(enterprise);
    drop(cloud);
}
