//! The seed's walks at control-plane level: two appliances' control planes (sans-IO), the
//! enterprise PxTR with the embedded Map-Server/Map-Resolver and the cloud xTR, exchanging
//! their messages through a simulated underlay, with ARP frames from the hosts.

use std::net::IpAddr;

use ipnet::IpNet;
use pxtr::config::{
    Config, DynamicEid, EidPrefix, KeyId, MapServerPeer, PortRole, PortSection, Role, Site,
    SitePrefix,
};
use pxtr::control::node::ControlPlane;
use pxtr::control::{Nonces, Outbox, Transmit, Update};
use pxtr::dataplane::{Functions, Plan, PortPlan};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Ipv4Address,
};

const PXTR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const XTR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
const VM_A_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const VM_B_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
/// PxTR-1's RLOC differs from its RLOC port's address (a loopback-style RLOC): its
/// Map-Server must answer from the address the ETRs register to.
const PXTR_RLOC: &str = "198.51.100.9";
const PXTR_PORT_ADDR: &str = "198.51.100.1";
const XTR_RLOC: &str = "203.0.113.1";
const KEY: &str = "hybrid-cloud-key";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn port(name: &str, role: PortRole, mac: [u8; 6], addr: &str, gateway: Option<&str>) -> PortPlan {
    PortPlan {
        name: name.into(),
        role,
        dpdk_port: if role == PortRole::Eid { 0 } else { 1 },
        mac,
        addresses: vec![net(addr)],
        mtu: 1500,
        gateway: gateway.map(ip),
        iid: 0,
        dynamic_eids: Vec::new(),
        extended: Vec::new(),
    }
}

fn plan(ports: Vec<PortPlan>, rloc: &str) -> Plan {
    Plan {
        ports,
        rlocs: vec![ip(rloc)],
        petrs: Vec::new(),
        functions: Functions {
            itr: true,
            etr: true,
            pitr: false,
            petr: false,
        },
        fragment: false,
        miss_policy: pxtr::config::MissPolicy::Drop,
        hold_capacity: 0,
        hold_timeout_ms: 0,
        miss_interval_ms: 1000,
        miss_reports_per_sec: 1000,
    }
}

fn servers() -> DynamicEid {
    DynamicEid {
        name: "servers".into(),
        iid: 0,
        prefix: Some(net("10.1.1.0/24")),
        port: "eid0".into(),
        mode: Default::default(),
    }
}

/// The enterprise PxTR-1: on the server subnet, embedded MS/MR, registering with itself.
fn pxtr() -> ControlPlane {
    let mut cfg = Config::default();
    cfg.appliance.role = Some(Role::Pxtr);
    cfg.lisp.rlocs = vec![ip(PXTR_RLOC)];
    cfg.lisp.map_resolvers = vec![ip(PXTR_RLOC)];
    cfg.lisp.map_servers = vec![MapServerPeer {
        address: Some(ip(PXTR_RLOC)),
        key_id: KeyId::HmacSha256_128,
        key: KEY.into(),
    }];
    cfg.lisp.database_mappings = vec![EidPrefix {
        iid: 0,
        prefix: net("10.1.0.0/16"),
        priority: 1,
        weight: 100,
    }];
    cfg.lisp.dynamic_eids = vec![servers()];
    cfg.map_server.enabled = true;
    cfg.map_server.sites = vec![Site {
        name: "hybrid".into(),
        key_id: KeyId::HmacSha256_128,
        key: KEY.into(),
        eid_prefixes: vec![SitePrefix {
            iid: 0,
            prefix: net("10.1.0.0/16"),
            accept_more_specifics: true,
        }],
    }];
    let p = plan(
        vec![
            port("eid0", PortRole::Eid, PXTR_MAC, "10.1.1.5/24", None),
            port(
                "rloc0",
                PortRole::Rloc,
                PXTR_MAC,
                "198.51.100.1/24",
                Some("198.51.100.254"),
            ),
        ],
        PXTR_RLOC,
    );
    ControlPlane::new(&cfg, &p, Nonces::seeded(1))
}

/// The cloud xTR-1: the cloud subnet's gateway, registering with PxTR-1's Map-Server.
fn xtr() -> ControlPlane {
    let mut cfg = Config::default();
    cfg.appliance.role = Some(Role::Xtr);
    cfg.lisp.rlocs = vec![ip(XTR_RLOC)];
    cfg.lisp.map_resolvers = vec![ip(PXTR_RLOC)];
    cfg.lisp.map_servers = vec![MapServerPeer {
        address: Some(ip(PXTR_RLOC)),
        key_id: KeyId::HmacSha256_128,
        key: KEY.into(),
    }];
    cfg.lisp.dynamic_eids = vec![servers()];
    // Moved hosts keep sending to the enterprise gateway's address: xTR-1 answers for it.
    cfg.ports = vec![PortSection {
        name: "eid0".into(),
        answer_arp_for: vec![ip("10.1.1.1")],
        ..PortSection::default()
    }];
    let p = plan(
        vec![
            port("eid0", PortRole::Eid, XTR_MAC, "172.16.0.1/24", None),
            port(
                "rloc0",
                PortRole::Rloc,
                XTR_MAC,
                "203.0.113.1/24",
                Some("203.0.113.254"),
            ),
        ],
        XTR_RLOC,
    );
    ControlPlane::new(&cfg, &p, Nonces::seeded(2))
}

/// An ARP request from `mac`/`sender` for `target`, broadcast.
fn arp_request(mac: [u8; 6], sender: &str, target: &str) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(mac),
        source_protocol_addr: sender.parse::<Ipv4Address>().unwrap(),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target.parse::<Ipv4Address>().unwrap(),
    };
    let mut buf = vec![0u8; 14 + repr.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(mac),
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut f);
    repr.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
    buf
}

/// The ARP replies in `out`: (sender MAC, sender IP, target IP).
fn arp_replies(out: &Outbox) -> Vec<([u8; 6], IpAddr, IpAddr)> {
    out.frames
        .iter()
        .filter_map(|f| {
            let eth = EthernetFrame::new_checked(&f.bytes[..]).ok()?;
            let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()?;
            match arp {
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Reply,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                } => Some((
                    source_hardware_addr.0,
                    IpAddr::V4(source_protocol_addr),
                    IpAddr::V4(target_protocol_addr),
                )),
                _ => None,
            }
        })
        .collect()
}

/// Carries the control messages in both outboxes across the underlay until both are quiet;
/// returns what each appliance did meanwhile (updates and frames).
fn exchange(
    a: &mut ControlPlane,
    b: &mut ControlPlane,
    mut oa: Outbox,
    mut ob: Outbox,
    now: u64,
) -> (Outbox, Outbox) {
    let (mut done_a, mut done_b) = (Outbox::default(), Outbox::default());
    for _ in 0..20 {
        done_a.updates.append(&mut oa.updates);
        done_a.frames.append(&mut oa.frames);
        done_b.updates.append(&mut ob.updates);
        done_b.frames.append(&mut ob.frames);
        if oa.transmits.is_empty() && ob.transmits.is_empty() {
            return (done_a, done_b);
        }
        let (pa, pb) = (port_address(a), port_address(b));
        for t in std::mem::take(&mut oa.transmits) {
            deliver(b, pa, &t, now, &mut ob);
        }
        for t in std::mem::take(&mut ob.transmits) {
            deliver(a, pb, &t, now, &mut oa);
        }
    }
    panic!("the appliances kept talking");
}

/// The address of an appliance's RLOC port: the source the runtime gives a message that
/// does not name one.
fn port_address(cp: &ControlPlane) -> IpAddr {
    if cp.rlocs()[0] == ip(PXTR_RLOC) {
        ip(PXTR_PORT_ADDR)
    } else {
        cp.rlocs()[0]
    }
}

/// Delivers `t`, sent by an appliance whose RLOC port has address `port_addr`.
fn deliver(to: &mut ControlPlane, port_addr: IpAddr, t: &Transmit, now: u64, out: &mut Outbox) {
    assert!(to.is_ours(t.dst), "a message to {} left for nobody", t.dst);
    let src = t.src.unwrap_or(port_addr);
    to.on_udp(src, t.src_port, t.dst, &t.payload, now, out);
}

fn maps(out: &Outbox) -> Vec<(IpNet, Vec<IpAddr>)> {
    out.updates
        .iter()
        .filter_map(|u| match u {
            Update::Map {
                prefix, mapping, ..
            } => Some((
                *prefix,
                mapping.locators.iter().map(|l| l.address).collect(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn enterprise_to_cloud_walk_proxy_arp_map_request_map_reply_then_a_move_back() {
    let (mut p1, mut x1) = (pxtr(), xtr());
    let never = &mut |_: u32, _: IpNet, _: u64| false;

    // Both register at start: PxTR-1 with itself (local delivery), xTR-1 has nothing yet.
    let (mut op, mut ox) = (Outbox::default(), Outbox::default());
    p1.on_timer(0, never, &mut op);
    x1.on_timer(0, never, &mut ox);
    assert!(
        op.transmits.is_empty(),
        "PxTR-1 registers with its own Map-Server"
    );
    let ms = p1.map_server.as_ref().unwrap();
    assert!(ms.registration(0, net("10.1.0.0/16")).is_some());

    // VM-B boots in the cloud: xTR-1 learns it from its ARP and registers it with PxTR-1.
    let mut ox = Outbox::default();
    x1.on_frame(
        0,
        &arp_request(VM_B_MAC, "10.1.1.20", "10.1.1.1"),
        10,
        &mut ox,
    );
    let gw_replies = arp_replies(&ox);
    assert_eq!(
        gw_replies,
        vec![(XTR_MAC, ip("10.1.1.1"), ip("10.1.1.20"))],
        "xTR-1 answers for VM-B's gateway"
    );
    let (_, _) = exchange(&mut x1, &mut p1, ox, Outbox::default(), 10);
    let reg = p1
        .map_server
        .as_ref()
        .unwrap()
        .registration(0, net("10.1.1.20/32"))
        .expect("VM-B registered");
    assert_eq!(reg.registrant, ip(XTR_RLOC));
    assert!(
        x1.etr
            .as_ref()
            .unwrap()
            .map_servers()
            .all(|(_, s)| s.last_notify_ms == Some(10)),
        "Map-Notify confirmed it"
    );

    // Walk 1: VM-A ARPs for VM-B. PxTR-1 does not know it yet: it asks the mapping system
    // (its own Map-Resolver, which forwards to xTR-1), and gives no answer yet; it remembers
    // that VM-A asked.
    let mut op = Outbox::default();
    p1.on_frame(
        0,
        &arp_request(VM_A_MAC, "10.1.1.10", "10.1.1.20"),
        100,
        &mut op,
    );
    assert!(arp_replies(&op).is_empty());
    assert_eq!(
        op.transmits.len(),
        1,
        "the Map-Request, forwarded by our Map-Server to xTR-1"
    );
    assert_eq!(op.transmits[0].dst, ip(XTR_RLOC));
    let (dp, _) = exchange(&mut p1, &mut x1, op, Outbox::default(), 100);
    // The Map-Reply installed VM-B's mapping toward xTR-1 ...
    assert_eq!(maps(&dp), vec![(net("10.1.1.20/32"), vec![ip(XTR_RLOC)])]);
    // ... and VM-A's request is answered at once with PxTR-1's MAC (proxy-ARP), to VM-A's
    // MAC: no second ARP request (Linux sends it 1 s later) is needed.
    assert_eq!(
        arp_replies(&dp),
        vec![(PXTR_MAC, ip("10.1.1.20"), ip("10.1.1.10"))]
    );
    let late = dp
        .frames
        .iter()
        .find(|f| f.bytes[20..22] == [0, 2])
        .unwrap();
    assert_eq!(late.port, 0, "on the EID port");
    assert_eq!(late.bytes[..6], VM_A_MAC, "unicast to VM-A");
    // A retry crossing the answer: answered the same way.
    let mut op = Outbox::default();
    p1.on_frame(
        0,
        &arp_request(VM_A_MAC, "10.1.1.10", "10.1.1.20"),
        1_200,
        &mut op,
    );
    assert_eq!(
        arp_replies(&op),
        vec![(PXTR_MAC, ip("10.1.1.20"), ip("10.1.1.10"))]
    );
    // A local host is never answered for.
    let mut op = Outbox::default();
    p1.on_frame(
        0,
        &arp_request(VM_A_MAC, "10.1.1.10", "10.1.1.10"),
        1_300,
        &mut op,
    );
    p1.on_frame(
        0,
        &arp_request([2, 0, 0, 0, 0, 0xc], "10.1.1.11", "10.1.1.10"),
        1_300,
        &mut op,
    );
    assert!(arp_replies(&op).is_empty());

    // An EID of the enterprise no one registered a host route for: our own ETR answers for
    // the site prefix (through our Map-Server), and that is not cached as a mapping.
    let mut op = Outbox::default();
    p1.on_frame(
        0,
        &arp_request(VM_A_MAC, "10.1.1.10", "10.1.1.30"),
        1_400,
        &mut op,
    );
    assert!(
        op.transmits.is_empty(),
        "resolved inside PxTR-1: {:?}",
        op.transmits
    );
    assert!(
        maps(&op).is_empty(),
        "a mapping to ourselves: {:?}",
        maps(&op)
    );
    assert!(arp_replies(&op).is_empty());

    // Walk (c): VM-A moves to the cloud. xTR-1 sees it; the Map-Server tells PxTR-1 (the old
    // registrant of VM-A's host route), which withdraws it and announces it with its own MAC.
    let a = p1.etr.as_ref().unwrap();
    assert!(
        a.is_local_host(0, ip("10.1.1.10")),
        "PxTR-1 registered VM-A as a local host"
    );
    let mut ox = Outbox::default();
    x1.on_frame(
        0,
        &arp_request(VM_A_MAC, "10.1.1.10", "10.1.1.1"),
        5_000,
        &mut ox,
    );
    let (_, dp) = exchange(&mut x1, &mut p1, ox, Outbox::default(), 5_000);
    let reg = p1
        .map_server
        .as_ref()
        .unwrap()
        .registration(0, net("10.1.1.10/32"))
        .unwrap();
    assert_eq!(reg.registrant, ip(XTR_RLOC));
    assert!(
        !p1.etr.as_ref().unwrap().is_local_host(0, ip("10.1.1.10")),
        "withdrawn at PxTR-1"
    );
    assert!(dp.updates.contains(&Update::NeighborGone {
        ip: ip("10.1.1.10")
    }));
    // The gratuitous ARP: VM-A is at PxTR-1's MAC now, for the hosts left on the subnet.
    let garps: Vec<_> = dp
        .frames
        .iter()
        .filter_map(|f| {
            let eth = EthernetFrame::new_checked(&f.bytes[..]).ok()?;
            match ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()? {
                ArpRepr::EthernetIpv4 {
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                } if source_protocol_addr == target_protocol_addr => {
                    Some((source_hardware_addr.0, IpAddr::V4(source_protocol_addr)))
                }
                _ => None,
            }
        })
        .collect();
    assert_eq!(garps, vec![(PXTR_MAC, ip("10.1.1.10"))]);

    // PxTR-1 never cached a mapping to itself (its own ETR answered for the unregistered
    // 10.1.1.30 above): traffic to VM-A now misses, and is resolved to xTR-1.
    let mut op = Outbox::default();
    p1.on_miss(0, ip("10.1.1.10"), 6_000, &mut op);
    let (dp, _) = exchange(&mut p1, &mut x1, op, Outbox::default(), 6_000);
    assert_eq!(maps(&dp), vec![(net("10.1.1.10/32"), vec![ip(XTR_RLOC)])]);
    // VM-A's neighbours on the subnet ARP for it: PxTR-1 answers with its MAC.
    let mut op = Outbox::default();
    p1.on_frame(
        0,
        &arp_request([2, 0, 0, 0, 0, 0xc], "10.1.1.11", "10.1.1.10"),
        6_100,
        &mut op,
    );
    assert_eq!(
        arp_replies(&op),
        vec![(PXTR_MAC, ip("10.1.1.10"), ip("10.1.1.11"))]
    );

    // VM-A moves back: PxTR-1 sees it again, drops its host route to xTR-1 and registers it;
    // the Map-Server tells xTR-1, which withdraws it.
    let mut op = Outbox::default();
    p1.on_frame(
        0,
        &arp_request(VM_A_MAC, "10.1.1.10", "10.1.1.1"),
        7_000,
        &mut op,
    );
    let (dp, _) = exchange(&mut p1, &mut x1, op, Outbox::default(), 7_000);
    assert!(
        dp.updates.contains(&Update::Unmap {
            iid: 0,
            prefix: net("10.1.1.10/32")
        }),
        "{:?}",
        dp.updates
    );
    let reg = p1
        .map_server
        .as_ref()
        .unwrap()
        .registration(0, net("10.1.1.10/32"))
        .unwrap();
    assert_eq!(reg.registrant, ip(PXTR_RLOC));
    assert!(
        !x1.etr.as_ref().unwrap().is_local_host(0, ip("10.1.1.10")),
        "withdrawn at xTR-1"
    );
    assert!(p1.etr.as_ref().unwrap().is_local_host(0, ip("10.1.1.10")));

    let c = p1.counters();
    let get = |n: &str| c.iter().find(|(k, _)| *k == n).map_or(0, |(_, v)| *v);
    assert_eq!(get("proxy_replies_late"), 1);
    for cp in [&p1, &x1] {
        let c = cp.counters();
        let names: std::collections::HashSet<_> = c.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), c.len(), "counter names are unique");
        let get = |n: &str| c.iter().find(|(k, _)| *k == n).map_or(0, |(_, v)| *v);
        assert_eq!(get("control_local_loops"), 0);
        assert_eq!(
            get("map_notifies_unknown_source"),
            0,
            "Map-Notifies from the registered-to address"
        );
    }
}
