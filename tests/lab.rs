//! The hybrid-cloud lab (ci/hybrid-lab.sh, the README's main command) end to end: two
//! `pxtr run` appliances in network namespaces with strongSwan between them.
//!
//! - Walk (a): VM-A reaches VM-B (proxy-ARP, Map-Request through the embedded Map-Resolver to
//!   xTR-1, LISP inside ESP).
//! - Walk (b): a non-LISP branch host reaches VM-B through the enterprise gateway (proxy-ARP to
//!   the gateway; VM-B's replies through PxTR-1 as PETR).
//! - Walk (c): VM-A moves to the cloud and back while the branch keeps reaching it
//!   (registration, Map-Notify to the old site, withdrawal, gratuitous ARP).
//! - Failures: PxTR-1's control core stalls for 5 s while the cached flow keeps forwarding;
//!   the IPsec SA goes down (packets to the cloud counted as dropped) and comes back, and with
//!   it the traffic.
//! - Operations: PxTR-1 answers `pxtr ctl` and its metrics endpoint.
//! - Only ESP, no cleartext LISP, crosses the WAN.
//!
//! The script prints a table with one row per walk; every row must say pass.

use std::process::Command;

const ROWS: [&str; 9] = [
    "walk (a) VM-A -> VM-B",
    "walk (b) branch -> VM-B",
    "walk (c) branch -> VM-A at the enterprise",
    "walk (c) VM-A moved to the cloud",
    "walk (c) VM-A moved back",
    "failure: control core stalled",
    "failure: IPsec SA down and back",
    "ops: pxtr ctl and metrics",
    "WAN carries only ESP",
];

#[test]
fn the_seeds_walks_a_cold_move_and_failures_through_the_ipsec_tunnel() {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/hybrid-lab.sh"))
        .env("PXTR", env!("CARGO_BIN_EXE_pxtr"))
        .output()
        .expect("run ci/hybrid-lab.sh");
    let err = String::from_utf8_lossy(&out.stderr);
    let table: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("WALK "))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    for row in ROWS {
        let line = table
            .iter()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row:?} in the summary:\n{err}"));
        let result = line[row.len()..].split_whitespace().next();
        assert_eq!(result, Some("pass"), "{line}\n{err}");
    }
    assert_eq!(table.len(), ROWS.len(), "{err}");
    assert!(out.status.success(), "lab failed:\n{err}");
    // What the rows measure is there: the stall lasted, and packets were counted while the SA
    // was down.
    assert!(err.contains("20 of 20 pings during the 5"), "{err}");
    assert!(err.contains("counted dropped while down"), "{err}");
}
