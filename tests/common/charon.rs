//! strongSwan's charon for tests, in a network namespace the test made, with its own /run
//! (charon's pid file is fixed at /var/run/charon.pid) and the plugins Debian's
//! strongswan-charon and libcharon-extra-plugins provide: userspace ESP (kernel-libipsec, which
//! must come before kernel-netlink), AES, SHA-2, MODP groups.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHARON: &str = "/usr/lib/ipsec/charon";

/// A running charon; killed on drop.
pub struct Charon {
    child: Child,
    /// Its VICI socket.
    pub socket: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

impl Charon {
    /// Starts charon in namespace `ns` with its files in `dir`; waits for its VICI socket.
    pub fn start(ns: &str, dir: &Path) -> Charon {
        assert!(
            Path::new(CHARON).exists(),
            "{CHARON} is missing: ci/setup.sh installs strongswan-charon"
        );
        std::fs::create_dir_all(dir).unwrap();
        let socket = dir.join("charon.vici");
        let log = dir.join("charon.log");
        let _ = std::fs::remove_file(&socket);
        let conf = dir.join("strongswan.conf");
        std::fs::write(
            &conf,
            format!(
                "charon {{\n  load_modular = no\n  load = random nonce pem pkcs1 pkcs8 x509 pubkey \
                 socket-default kernel-libipsec kernel-netlink vici kdf hmac sha1 sha2 aes gmp\n  \
                 plugins {{\n    vici {{\n      socket = unix://{}\n    }}\n  }}\n  \
                 filelog {{\n    f {{\n      path = {}\n      default = 1\n      flush_line = yes\n    }}\n  }}\n}}\n",
                socket.display(),
                log.display()
            ),
        )
        .unwrap();
        let child = Command::new("ip")
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
        let c = Charon { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "charon in {ns} made no VICI socket"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        c
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A network namespace, removed on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(name: &str) -> Netns {
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name}");
        Netns(name.into())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
