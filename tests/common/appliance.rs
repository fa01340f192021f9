//! `pxtr run` as a child process of a test, with its own `pxtr ctl` socket and metrics port
//! (tests run in parallel), its output in files, killed on drop; and the taps its net_tap
//! ports make.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::rawsock::RawSocket;

pub struct Appliance {
    child: Option<Child>,
    /// Where its config, output and ctl socket are.
    pub dir: PathBuf,
    /// Its config file.
    pub cfg: PathBuf,
}

impl Appliance {
    /// Writes `config` to `dir`/pxtr.toml and starts `pxtr run` on it.
    pub fn start(dir: &Path, config: &str) -> Appliance {
        std::fs::create_dir_all(dir).unwrap();
        let cfg = dir.join("pxtr.toml");
        std::fs::write(&cfg, config).unwrap();
        Appliance::spawn(
            dir,
            &["run", "--config", cfg.to_str().unwrap()],
            cfg.clone(),
        )
    }

    /// Starts `pxtr ARGS` with its files in `dir` (`cfg`: the config file it runs, if any).
    pub fn spawn(dir: &Path, args: &[&str], cfg: PathBuf) -> Appliance {
        std::fs::create_dir_all(dir).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pxtr"))
            .env("RUST_LOG", "info")
            .env("PXTR_CONTROL__SOCKET", dir.join("ctl.sock"))
            .env("PXTR_CONTROL__METRICS_LISTEN", "127.0.0.1:0")
            .args(args)
            .stdout(std::fs::File::create(dir.join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("start pxtr");
        Appliance {
            child: Some(child),
            dir: dir.to_path_buf(),
            cfg,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("stdout:\n{}\nstderr:\n{}", read("stdout"), read("stderr"))
    }

    /// `pxtr ctl ARGS` against it: exit code, stdout, stderr.
    pub fn ctl(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_pxtr"))
            .arg("ctl")
            .arg("--socket")
            .arg(self.dir.join("ctl.sock"))
            .args(args)
            .output()
            .expect("pxtr ctl");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `pxtr ctl --json ARGS`, which must answer.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let (code, out, err) = self.ctl(&a);
        assert_eq!(code, Some(0), "{args:?}: {err}\n{}", self.log());
        serde_json::from_str(&out).expect("JSON")
    }

    /// SIGTERM, then its exit: clean, with every one of `mbufs` back. Returns its output.
    pub fn stop(mut self, mbufs: u32) -> String {
        let mut child = self.child.take().unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        let log = self.log();
        assert!(status.success(), "pxtr exit {status:?}\n{log}");
        assert!(
            log.contains(&format!("mbufs back in the pool: {mbufs}/{mbufs}")),
            "{log}"
        );
        log
    }

    /// Polls `f` until it holds, failing with `what` and the log after `secs`.
    pub fn until(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "{what}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the tap `ifname` (made by its net_tap port) and opens a raw socket on it, with
    /// IPv6 off so the kernel sends nothing of its own into it.
    pub fn tap(&self, ifname: &str) -> RawSocket {
        self.until(&format!("no tap {ifname}"), 30, || {
            Path::new(&format!("/sys/class/net/{ifname}")).exists()
        });
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
            "1",
        );
        // DPDK brings the tap up when the port starts; until then (or if it did not), up it is.
        let flags = format!("/sys/class/net/{ifname}/flags");
        self.until(&format!("tap {ifname} never up"), 30, || {
            let f = std::fs::read_to_string(&flags).unwrap_or_default();
            let up =
                u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).unwrap_or(0) & 1 == 1;
            if !up {
                let _ = Command::new("ip")
                    .args(["link", "set", "dev", ifname, "up"])
                    .status();
            }
            up
        });
        RawSocket::bind(ifname).expect("raw socket on the tap")
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
