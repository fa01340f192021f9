//! `pxtr run` end to end: real DPDK in a child process on the embedded lab (virtual devices).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn pxtr() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pxtr"));
    c.env("RUST_LOG", "info");
    c
}

#[test]
fn run_for_a_duration_receives_and_returns_every_mbuf() {
    let out = pxtr()
        .args(["run", "--duration", "1"])
        .output()
        .expect("run pxtr");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stderr}",
        out.status.code()
    );
    assert!(
        stdout.contains("mbufs back in the pool: 4095/4095"),
        "{stdout}"
    );
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("mbufs back in the pool: 4095/4095"));
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
