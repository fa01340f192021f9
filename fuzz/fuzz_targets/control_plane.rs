//! Any bytes as a LISP control message, an ARP/ND frame or a VICI packet: the control plane of
//! an enterprise PxTR with the embedded Map-Server never panics, and its outputs stay bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxtr::config::{
    Config, DynamicEid, EidPrefix, KeyId, MapServerPeer, PortRole, Role, Site, SitePrefix,
};
use pxtr::control::node::ControlPlane;
use pxtr::control::{Nonces, Outbox};
use pxtr::dataplane::{Functions, Plan, PortPlan};

fn plane() -> ControlPlane {
    let mut cfg = Config::default();
    cfg.appliance.role = Some(Role::Pxtr);
    let rloc = "198.51.100.1".parse().unwrap();
    cfg.lisp.rlocs = vec![rloc];
    cfg.lisp.map_resolvers = vec![rloc];
    cfg.lisp.map_servers = vec![MapServerPeer {
        address: Some(rloc),
        key_id: KeyId::HmacSha1_96,
        key: "fuzz-key".into(),
    }];
    cfg.lisp.database_mappings = vec![EidPrefix {
        iid: 0,
        prefix: "10.1.0.0/16".parse().unwrap(),
        priority: 1,
        weight: 100,
    }];
    cfg.lisp.dynamic_eids = vec![DynamicEid {
        name: "servers".into(),
        iid: 0,
        prefix: Some("10.1.1.0/24".parse().unwrap()),
        port: "eid0".into(),
        mode: Default::default(),
    }];
    cfg.map_server.enabled = true;
    cfg.map_server.sites = vec![Site {
        name: "s".into(),
        key_id: KeyId::HmacSha1_96,
        key: "fuzz-key".into(),
        eid_prefixes: vec![SitePrefix {
            iid: 0,
            prefix: "10.0.0.0/8".parse().unwrap(),
            accept_more_specifics: true,
        }],
    }];
    let port = |name: &str, role, addr: &str| PortPlan {
        name: name.into(),
        role,
        dpdk_port: 0,
        mac: [2, 0, 0, 0, 0, 1],
        addresses: vec![addr.parse().unwrap()],
        mtu: 1500,
        gateway: None,
        iid: 0,
        dynamic_eids: Vec::new(),
        extended: Vec::new(),
    };
    let plan = Plan {
        ports: vec![
            port("eid0", PortRole::Eid, "10.1.1.5/24"),
            port("rloc0", PortRole::Rloc, "198.51.100.1/24"),
        ],
        rlocs: vec![rloc],
        petrs: Vec::new(),
        functions: Functions {
            itr: true,
            etr: true,
            pitr: true,
            petr: true,
        },
        fragment: false,
        miss_policy: pxtr::config::MissPolicy::Drop,
        hold_capacity: 0,
        hold_timeout_ms: 0,
        miss_interval_ms: 1000,
        miss_reports_per_sec: 1000,
    };
    ControlPlane::new(&cfg, &plan, Nonces::seeded(1))
}

fuzz_target!(|data: &[u8]| {
    let mut cp = plane();
    let mut out = Outbox::default();
    let src = "203.0.113.9".parse().unwrap();
    let dst = "198.51.100.1".parse().unwrap();
    // The same bytes as each kind of input, then time passing.
    cp.on_udp(src, 4342, dst, data, 1, &mut out);
    cp.on_frame(0, data, 2, &mut out);
    cp.on_frame(1, data, 3, &mut out);
    cp.on_timer(10_000, &mut |_, _, _| true, &mut out);
    assert!(out.transmits.len() < 1000 && out.frames.len() < 1000);
    let _ = pxtr::ipsec::vici::Packet::decode(data);
});
