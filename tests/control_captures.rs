//! The embedded Map-Server against real packets: Open Overlay Router 1.3.0's Map-Registers
//! (tests/data/oor-1.3.0-ms-xtr.pcap, key-id 1, key `interop-key`; see its README in
//! ../shared/captures) are accepted, answered like OOR's own Map-Server answered them, and
//! refused with any other key.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use pxtr::config::{KeyId, MapServer as MapServerConfig, Site, SitePrefix};
use pxtr::control::map_server::MapServer;
use pxtr::control::{Nonces, Outbox};
use pxtr::wire::auth::{self, Algorithm};
use pxtr::wire::control::MapNotify;

/// (source, UDP payload) of every LISP control message to port 4342 in the capture.
fn control_messages() -> Vec<(IpAddr, Vec<u8>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/oor-1.3.0-ms-xtr.pcap"
    );
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    common::pcap::read(&bytes)
        .iter()
        .filter_map(|f| {
            // The capture's checksums are not all right (it was rewritten from a Linux cooked
            // capture, with offloaded checksums): read the headers without checking them.
            let ip = common::pcap::ip_of(f)?;
            let (_, dport, payload) = common::pcap::udp_of(ip)?;
            let src = IpAddr::from(<[u8; 4]>::try_from(&ip[12..16]).ok()?);
            (dport == 4342).then(|| (src, payload.to_vec()))
        })
        .collect()
}

fn server(key: &str) -> MapServer {
    let site = |name: &str, prefix: &str| Site {
        name: name.into(),
        key_id: KeyId::HmacSha1_96,
        key: key.into(),
        eid_prefixes: vec![SitePrefix {
            iid: 0,
            prefix: prefix.parse().unwrap(),
            accept_more_specifics: false,
        }],
    };
    let cfg = MapServerConfig {
        enabled: true,
        registration_timeout_s: 180,
        sites: vec![site("xtr1", "10.10.1.0/24"), site("xtr2", "10.10.2.0/24")],
        ..MapServerConfig::default()
    };
    MapServer::new(&cfg, Nonces::seeded(3))
}

#[test]
fn open_overlay_router_map_registers_are_accepted() {
    let messages = control_messages();
    let registers: Vec<&(IpAddr, Vec<u8>)> =
        messages.iter().filter(|(_, p)| p[0] >> 4 == 3).collect();
    assert_eq!(registers.len(), 6);
    // OOR's Map-Server's own Map-Notifies, by nonce.
    let oor_notifies: BTreeMap<u64, MapNotify> = messages
        .iter()
        .filter(|(_, p)| p[0] >> 4 == 4)
        .map(|(_, p)| {
            let n = MapNotify::parse(p).unwrap();
            (n.registration.nonce, n)
        })
        .collect();
    assert_eq!(oor_notifies.len(), 6);

    let mut ms = server("interop-key");
    for (i, (src, msg)) in registers.iter().enumerate() {
        let mut out = Outbox::default();
        ms.on_map_register(*src, 4342, msg, i as u64 * 1000, &mut out);
        assert_eq!(
            out.transmits.len(),
            1,
            "Map-Register {i}: OOR asks for a Map-Notify"
        );
        let ours = &out.transmits[0];
        assert_eq!(ours.dst, *src);
        assert_eq!(
            auth::verify(&ours.payload, b"interop-key"),
            Ok(Algorithm::HmacSha1_96)
        );
        // What OOR's Map-Server answered, record for record.
        let n = MapNotify::parse(&ours.payload).unwrap();
        let theirs = &oor_notifies[&n.registration.nonce];
        assert_eq!(n.registration.records, theirs.registration.records);
        assert_eq!(n.registration.key_id, theirs.registration.key_id);
        assert_eq!(
            n.registration.algorithm_id,
            theirs.registration.algorithm_id
        );
    }
    assert_eq!(ms.stats.registers_accepted, 6);
    let regs: Vec<(String, IpNet, IpAddr)> = ms
        .registrations()
        .map(|v| (v.site.to_string(), v.prefix, v.registrant))
        .collect();
    let want: Vec<(String, IpNet, IpAddr)> = vec![
        (
            "xtr1".into(),
            "10.10.1.0/24".parse().unwrap(),
            "10.255.11.2".parse().unwrap(),
        ),
        (
            "xtr2".into(),
            "10.10.2.0/24".parse().unwrap(),
            "10.255.12.2".parse().unwrap(),
        ),
    ];
    assert_eq!(regs, want);

    let mut ms = server("interop-kez");
    for (src, msg) in &registers {
        ms.on_map_register(*src, 4342, msg, 0, &mut Outbox::default());
    }
    assert_eq!(ms.stats.registers_bad_auth, 6);
    assert_eq!(ms.registration_count(), 0);
}
