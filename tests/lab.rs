//! The hybrid-cloud lab (ci/hybrid-lab.sh, issue #7 in progress) end to end: two `pxtr run`
//! appliances in network namespaces with strongSwan between them. Walk (a): VM-A reaches VM-B
//! (proxy-ARP, Map-Request through the embedded Map-Resolver to xTR-1, LISP inside ESP). Walk
//! (b): a non-LISP branch host reaches VM-B through the enterprise gateway (proxy-ARP to the
//! gateway; VM-B's replies through PxTR-1 as PETR). Walk (c): VM-A moves to the cloud and back
//! while the branch keeps reaching it (registration, Map-Notify to the old site, withdrawal,
//! gratuitous ARP). Failure: the IPsec SAs go down and come back, and with them the traffic.
//! Only ESP — no cleartext LISP — crosses the WAN.

use std::process::Command;

#[test]
fn the_seeds_walks_and_a_cold_move_through_the_ipsec_tunnel() {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/hybrid-lab.sh"))
        .env("PXTR", env!("CARGO_BIN_EXE_pxtr"))
        .output()
        .expect("run ci/hybrid-lab.sh");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lab failed:\n{err}");
    assert!(err.contains("walk (a) VM-A -> VM-B: pass"), "{err}");
    assert!(
        err.contains("walk (a) then: 5 received of 5 pings"),
        "{err}"
    );
    assert!(err.contains("no cleartext LISP: pass"), "{err}");
}
