//! docs/systemd/pxtr.service: `systemd-analyze verify` accepts it without a word about it, and
//! it agrees with the binary (its command lines, the `pxtr ctl` socket's directory).
//!
//! Skipped, with the reason printed, where systemd-analyze is not installed (Debian: package
//! `systemd`).

use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT: &str = "docs/systemd/pxtr.service";
const INSTALLED_AT: &str = "/usr/local/bin/pxtr";

fn unit_text() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(UNIT);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn systemd_analyze() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join("systemd-analyze"))
        .find(|p| p.is_file())
}

/// Runs `systemd-analyze verify` on `text` as pxtr.service, with the binary under test where
/// the unit expects the installed one (verify checks that ExecStart's program exists).
/// Returns (success, the lines that mention the unit).
fn verify(tool: &Path, text: &str) -> (bool, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("pxtr-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("pxtr.service");
    std::fs::write(
        &path,
        text.replace(INSTALLED_AT, env!("CARGO_BIN_EXE_pxtr")),
    )
    .expect("write");
    let out = Command::new(tool)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let _ = std::fs::remove_dir_all(&dir);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let about_us = all
        .lines()
        .filter(|l| l.contains("pxtr.service"))
        .map(str::to_owned)
        .collect();
    (out.status.success(), about_us)
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let tool = systemd_analyze()
        .expect("systemd-analyze is not installed (ci/setup.sh installs it: Debian's systemd)");
    let (ok, said) = verify(&tool, &unit_text());
    assert!(
        ok && said.is_empty(),
        "systemd-analyze verify {UNIT}: {}",
        said.join("\n")
    );
    // The check is not vacuous: a key systemd does not know is reported.
    let (_, said) = verify(&tool, &format!("{}\n[Service]\nNoSuchKey=1\n", unit_text()));
    assert!(
        said.iter().any(|l| l.contains("NoSuchKey")),
        "systemd-analyze did not report an unknown key: {said:?}"
    );
}

fn values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_unit_matches_the_binary() {
    let u = unit_text();
    assert_eq!(
        values(&u, "ExecStart"),
        [format!("{INSTALLED_AT} run --config /etc/pxtr/pxtr.toml")]
    );
    assert_eq!(
        values(&u, "ExecStartPre"),
        [format!("{INSTALLED_AT} check-config /etc/pxtr/pxtr.toml")]
    );
    assert_eq!(values(&u, "ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    assert_eq!(values(&u, "Restart"), ["on-failure"]);
    assert_eq!(values(&u, "LimitMEMLOCK"), ["infinity"]);
    // control.socket's default lives in the runtime directory systemd makes.
    let socket = pxtr::config::Config::default().control.socket;
    let dir = values(&u, "RuntimeDirectory");
    assert_eq!(dir, ["pxtr"]);
    assert_eq!(
        Path::new(&socket).parent(),
        Some(Path::new("/run").join(&dir[0]).as_path())
    );
    // The subcommands the unit runs exist.
    for args in [["run", "--help"], ["check-config", "--help"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_pxtr"))
            .args(args)
            .output()
            .expect("run pxtr");
        assert!(out.status.success(), "pxtr {args:?}: {out:?}");
    }
}
