//! The data-plane pipeline on the in-memory backend: every classification path on crafted
//! frames, output bytes checked field by field (and by smoltcp's parsers), decapsulation of what
//! encapsulation produced, misses, holding, rate limits and accounting of every packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;
use ipnet::IpNet;
use proptest::prelude::*;
use pxtr::config::{MissPolicy, PortRole};
use pxtr::dataplane::{
    Event, Functions, HeapBuf, Outputs, Pipeline, Plan, PortPlan, PreparedPlan, Reason,
};
use pxtr::dpdk::MAX_BURST;
use pxtr::mapcache::{
    map_cache, neighbor_table, Locator, MapCacheConfig, MapCacheWriter, Mapping, NegativeAction,
    Neighbor, NeighborWriter,
};
use smoltcp::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, UdpPacket};

mod common;
use common::packet::{csum, eth, ipv4_udp, ipv6_udp};

const EID_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xe1, 0x01];
const RLOC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xe2, 0x02];
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 0x10];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0xfe];
const OUR_RLOC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER_RLOC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const GW: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const IID: u32 = 7;
const EID: usize = 0;
const RLOC: usize = 1;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn plan(rloc: Ipv4Addr, eid_net: &str, miss: MissPolicy) -> Plan {
    Plan {
        ports: vec![
            PortPlan {
                name: "eid0".into(),
                role: PortRole::Eid,
                dpdk_port: 0,
                mac: EID_MAC,
                addresses: vec![net(eid_net), net("fd00:1::5/64")],
                mtu: 1500,
                gateway: None,
                iid: IID,
                dynamic_eids: Vec::new(),
                extended: Vec::new(),
            },
            PortPlan {
                name: "rloc0".into(),
                role: PortRole::Rloc,
                dpdk_port: 1,
                mac: RLOC_MAC,
                addresses: vec![
                    IpNet::new(IpAddr::V4(rloc), 24).unwrap(),
                    net("2001:db8:f::1/64"),
                ],
                mtu: 1500,
                gateway: Some(IpAddr::V4(GW)),
                iid: 0,
                dynamic_eids: Vec::new(),
                extended: Vec::new(),
            },
        ],
        rlocs: vec![IpAddr::V4(rloc), "2001:db8:f::1".parse().unwrap()],
        petrs: vec![],
        functions: Functions {
            itr: true,
            etr: true,
            pitr: false,
            petr: false,
        },
        fragment: true,
        miss_policy: miss,
        hold_capacity: 4,
        hold_timeout_ms: 500,
        miss_interval_ms: 1000,
        miss_reports_per_sec: 100,
    }
}

struct Rig {
    cache: MapCacheWriter,
    neigh: NeighborWriter,
    p: Pipeline<HeapBuf>,
    out: Outputs<HeapBuf>,
}

fn rig(plan: Plan) -> Rig {
    rig_prepared(PreparedPlan::new(Arc::new(plan)))
}

/// A rig whose pipeline runs `plan` as `pxtr run` builds a worker's: over a plan prepared
/// once and shared with its publisher.
fn rig_prepared(plan: PreparedPlan) -> Rig {
    let cache = map_cache(MapCacheConfig {
        capacity: 1000,
        max_readers: 2,
        max_iids: 4,
        v4_root_bits: 16,
        v6_root_bits: 16,
        v4_groups: 1024,
        v6_groups: 4096,
    })
    .unwrap();
    let mut neigh = neighbor_table(64, 2).unwrap();
    neigh
        .insert(
            IpAddr::V4(GW),
            Neighbor {
                mac: GW_MAC,
                port: 1,
            },
        )
        .unwrap();
    let n = plan.plan().ports.len();
    let p = Pipeline::with_prepared(plan, cache.reader().unwrap(), neigh.reader().unwrap());
    Rig {
        cache,
        neigh,
        p,
        out: Outputs::new(n),
    }
}

fn mapping(rlocs: &[IpAddr]) -> Mapping {
    let mut m = Mapping::default();
    for r in rlocs {
        m.locators.push(Locator {
            address: *r,
            priority: 1,
            weight: 100,
            reachable: true,
        });
    }
    m.ttl = Some(Duration::from_secs(600));
    m
}

impl Rig {
    fn map(&mut self, prefix: &str, rlocs: &[IpAddr]) {
        self.cache
            .insert(IID, net(prefix), mapping(rlocs), 0)
            .unwrap();
    }

    fn run(&mut self, port: usize, frames: &[Vec<u8>], now_ms: u64) {
        let mut burst: ArrayVec<HeapBuf, MAX_BURST> =
            frames.iter().map(|f| HeapBuf::new(f)).collect();
        self.p.process(port, &mut burst, now_ms, &mut self.out);
        assert!(burst.is_empty());
    }

    fn tx(&mut self, port: usize) -> Vec<Vec<u8>> {
        self.out.tx[port].drain(..).map(|b| b.to_vec()).collect()
    }
}

fn host_frame(dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    eth(
        EID_MAC,
        HOST_MAC,
        0x0800,
        &ipv4_udp(
            Ipv4Addr::new(10, 1, 1, 10),
            dst,
            sport,
            80,
            64,
            0xb9,
            true,
            26,
        ),
    )
}

fn peer(ip: Ipv4Addr) -> IpAddr {
    IpAddr::V4(ip)
}

/// What an ITR (10.2.0.0/16 mapped to PEER_RLOC) sends for the IP packet `inner` from a host,
/// as the peer ETR's RLOC port receives it.
fn encapsulated(inner: &[u8]) -> Vec<u8> {
    let mut itr = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    itr.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    itr.run(EID, &[eth(EID_MAC, HOST_MAC, 0x0800, inner)], 0);
    let mut f = itr.tx(RLOC).remove(0);
    f[0..6].copy_from_slice(&RLOC_MAC);
    f
}

/// The peer ETR (RLOC PEER_RLOC, EIDs 10.2.0.0/16 on its EID port, the plan changed by
/// `edit`) with host 10.2.0.5 at `mac`.
fn peer_etr(mac: [u8; 6], edit: impl FnOnce(&mut Plan)) -> Rig {
    let mut p = plan(PEER_RLOC, "10.2.0.1/16", MissPolicy::Drop);
    edit(&mut p);
    let mut etr = rig(p);
    etr.neigh
        .insert("10.2.0.5".parse().unwrap(), Neighbor { mac, port: 0 })
        .unwrap();
    etr
}

/// Sets the outer IPv4 header's TTL or ECN (`f(header)`) of a frame and fixes its checksum.
fn edit_outer(frame: &mut [u8], f: impl FnOnce(&mut [u8])) {
    f(&mut frame[14..34]);
    frame[24] = 0;
    frame[25] = 0;
    let c = csum(&frame[14..34]);
    frame[24..26].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn encapsulates_ipv4_with_the_right_outer_and_inner_fields() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    let inner = ipv4_udp(
        Ipv4Addr::new(10, 1, 1, 10),
        Ipv4Addr::new(10, 2, 0, 5),
        5555,
        80,
        64,
        0xb9,
        true,
        26,
    );
    r.run(EID, &[eth(EID_MAC, HOST_MAC, 0x0800, &inner)], 0);
    assert_eq!(
        r.p.counts().get(Reason::Encap),
        1,
        "{:?}",
        r.p.counts().nonzero().collect::<Vec<_>>()
    );
    let out = r.tx(RLOC);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(f.len(), 14 + 20 + 8 + 8 + inner.len());
    let e = EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!(e.dst_addr().as_bytes(), &GW_MAC);
    assert_eq!(e.src_addr().as_bytes(), &RLOC_MAC);
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(ip.src_addr(), OUR_RLOC);
    assert_eq!(ip.dst_addr(), PEER_RLOC);
    assert!(ip.dont_frag());
    assert_eq!(
        ip.hop_limit(),
        63,
        "outer TTL copies the decremented inner TTL"
    );
    assert_eq!(ip.dscp(), 0xb9 >> 2);
    assert_eq!(ip.ecn(), 0xb9 & 3);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(udp.dst_port(), 4341);
    assert!(udp.src_port() >= 0xc000);
    assert_eq!(usize::from(udp.len()), 8 + 8 + inner.len());
    let lisp = &udp.payload()[..8];
    assert_eq!(lisp[0] & 0x08, 0x08, "I bit");
    assert_eq!(u32::from_be_bytes([0, lisp[4], lisp[5], lisp[6]]), IID);
    let got_inner = Ipv4Packet::new_checked(&udp.payload()[8..]).unwrap();
    assert!(got_inner.verify_checksum());
    assert_eq!(got_inner.hop_limit(), 63);
    assert_eq!(got_inner.payload(), &inner[20..], "inner payload untouched");
}

#[test]
fn source_port_is_stable_per_flow_and_spreads_flows() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    let sport_of = |f: &Vec<u8>| u16::from_be_bytes([f[34], f[35]]);
    let frames: Vec<Vec<u8>> = (0..64)
        .map(|i| host_frame(Ipv4Addr::new(10, 2, 0, 5), 1000 + i))
        .collect();
    r.run(EID, &frames, 0);
    let first: Vec<u16> = r.tx(RLOC).iter().map(sport_of).collect();
    r.run(EID, &frames, 1);
    let second: Vec<u16> = r.tx(RLOC).iter().map(sport_of).collect();
    assert_eq!(first.len(), 64);
    assert_eq!(first, second, "same flow, same source port");
    let distinct: std::collections::HashSet<_> = first.iter().collect();
    assert!(
        distinct.len() > 48,
        "64 flows got only {} source ports",
        distinct.len()
    );
    // The NIC's RSS hash, when present, is what picks the port.
    let mut burst: ArrayVec<HeapBuf, MAX_BURST> = ArrayVec::new();
    burst.push(HeapBuf::new(&frames[0]).with_rss(0x1234_5678));
    burst.push(HeapBuf::new(&frames[1]).with_rss(0x1234_5678));
    r.p.process(EID, &mut burst, 2, &mut r.out);
    let rss: Vec<u16> = r.tx(RLOC).iter().map(sport_of).collect();
    assert_eq!(rss[0], rss[1]);
    assert_eq!(rss[0], pxtr::wire::encap::source_port(0x1234_5678));
}

#[test]
fn decapsulates_what_encapsulation_produced() {
    let inner = ipv4_udp(
        Ipv4Addr::new(10, 1, 1, 10),
        Ipv4Addr::new(10, 2, 0, 5),
        5555,
        80,
        64,
        0x02,
        true,
        100,
    );
    // The peer, whose RLOC the packet is addressed to, with the host on its subnet.
    let vm_mac = [0x02, 0, 0, 0, 0xbb, 0xbb];
    let mut etr = peer_etr(vm_mac, |_| {});
    etr.run(RLOC, &[encapsulated(&inner)], 0);
    assert_eq!(
        etr.p.counts().get(Reason::Decap),
        1,
        "{:?}",
        etr.p.counts().nonzero().collect::<Vec<_>>()
    );
    let out = etr.tx(EID);
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(&f[0..6], &vm_mac);
    assert_eq!(&f[6..12], &EID_MAC);
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    let mut want = inner.clone();
    want[8] = 63;
    let c = csum(&{
        let mut h = want[..20].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    want[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(
        &f[14..],
        &want[..],
        "inner packet with TTL 63 and its checksum updated"
    );
}

#[test]
fn ipv6_inner_over_ipv4_and_ipv6_outer_with_udp_checksum() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    let v6_rloc: IpAddr = "2001:db8:f::99".parse().unwrap();
    r.neigh
        .insert(
            v6_rloc,
            Neighbor {
                mac: [2, 0, 0, 0, 0x66, 0x66],
                port: 1,
            },
        )
        .unwrap();
    r.map("fd00:2::/48", &[v6_rloc]);
    r.map("fd00:3::/48", &[peer(PEER_RLOC)]);
    let src: Ipv6Addr = "fd00:1::10".parse().unwrap();
    let f6 = |dst: &str| {
        eth(
            EID_MAC,
            HOST_MAC,
            0x86dd,
            &ipv6_udp(src, dst.parse().unwrap(), 7, 9, 10, 30),
        )
    };
    r.run(EID, &[f6("fd00:2::1"), f6("fd00:3::1")], 0);
    assert_eq!(
        r.p.counts().get(Reason::Encap),
        2,
        "{:?}",
        r.p.counts().nonzero().collect::<Vec<_>>()
    );
    let out = r.tx(RLOC);
    // IPv6 outer to an on-link RLOC: its own MAC, UDP checksum over the pseudo-header.
    let e = EthernetFrame::new_checked(&out[0][..]).unwrap();
    assert_eq!(e.dst_addr().as_bytes(), &[2, 0, 0, 0, 0x66, 0x66]);
    let ip6 = Ipv6Packet::new_checked(e.payload()).unwrap();
    let udp = UdpPacket::new_checked(ip6.payload()).unwrap();
    assert_ne!(udp.checksum(), 0);
    assert!(udp.verify_checksum(
        &smoltcp::wire::IpAddress::Ipv6(ip6.src_addr()),
        &smoltcp::wire::IpAddress::Ipv6(ip6.dst_addr())
    ));
    assert_eq!(ip6.hop_limit(), 9);
    // IPv6 inner in IPv4 outer via the gateway.
    let e = EthernetFrame::new_checked(&out[1][..]).unwrap();
    assert_eq!(e.dst_addr().as_bytes(), &GW_MAC);
    let ip = Ipv4Packet::new_checked(e.payload()).unwrap();
    assert!(ip.verify_checksum());
    let inner = Ipv6Packet::new_checked(&ip.payload()[16..]).unwrap();
    assert_eq!(inner.hop_limit(), 9);
}

#[test]
fn decap_combines_ecn_and_drops_ce_on_not_ect() {
    let mut etr = peer_etr(HOST_MAC, |_| {});
    for (inner_ecn, want) in [(2u8, Some(3u8)), (0, None)] {
        let inner = ipv4_udp(
            Ipv4Addr::new(10, 1, 1, 10),
            Ipv4Addr::new(10, 2, 0, 5),
            1,
            2,
            64,
            inner_ecn,
            true,
            10,
        );
        let mut f = encapsulated(&inner);
        // Congestion on the path: the outer header marked CE.
        edit_outer(&mut f, |h| h[1] |= 3);
        etr.run(RLOC, &[f], 0);
        let out = etr.tx(EID);
        match want {
            Some(ecn) => {
                let ip = Ipv4Packet::new_checked(&out[0][14..]).unwrap();
                assert_eq!(ip.ecn(), ecn);
                assert!(ip.verify_checksum());
            }
            None => {
                assert!(out.is_empty());
                assert_eq!(etr.p.counts().get(Reason::DropDecapInvalid), 1);
            }
        }
    }
}

#[test]
fn misses_are_reported_rate_limited_and_dropped() {
    let mut p = plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop);
    p.miss_reports_per_sec = 3;
    let mut r = rig(p);
    let d = |i| host_frame(Ipv4Addr::new(10, 9, 0, i), 1);
    r.run(EID, &[d(1), d(1)], 0);
    assert_eq!(
        r.out.events.as_slice(),
        &[Event::Miss {
            iid: IID,
            eid: "10.9.0.1".parse().unwrap()
        }]
    );
    assert_eq!(r.p.counts().get(Reason::MissReported), 1);
    assert_eq!(r.p.counts().get(Reason::MissRateLimited), 1);
    assert_eq!(r.p.counts().get(Reason::DropMiss), 2);
    r.out.events.clear();
    // Same destination within a second: still limited; four new ones: the worker cap (3/s)
    // lets two more through in this window.
    r.run(EID, &[d(1), d(2), d(3), d(4), d(5)], 500);
    assert_eq!(r.out.events.len(), 2);
    assert_eq!(r.p.counts().get(Reason::MissRateLimited), 4);
    r.out.events.clear();
    // A second later the first destination is reported again.
    r.run(EID, &[d(1)], 1500);
    assert_eq!(
        r.out.events.as_slice(),
        &[Event::Miss {
            iid: IID,
            eid: "10.9.0.1".parse().unwrap()
        }]
    );
}

#[test]
fn held_packets_go_out_when_the_mapping_arrives_and_expire_otherwise() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Queue));
    let frames: Vec<Vec<u8>> = (0..6)
        .map(|i| host_frame(Ipv4Addr::new(10, 2, 0, 5), i))
        .collect();
    r.run(EID, &frames, 0);
    assert_eq!(r.p.held(), 4, "hold capacity");
    assert_eq!(r.p.counts().get(Reason::Held), 4);
    assert_eq!(r.p.counts().get(Reason::DropMiss), 2);
    assert!(r.tx(RLOC).is_empty());
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    r.run(EID, &[], 10);
    assert_eq!(r.p.counts().get(Reason::HeldReleased), 4);
    assert_eq!(r.tx(RLOC).len(), 4);
    assert_eq!(r.p.held(), 0);
    // Unresolved ones expire.
    r.run(EID, &[host_frame(Ipv4Addr::new(10, 3, 0, 1), 1)], 100);
    assert_eq!(r.p.held(), 1);
    r.run(EID, &[], 599);
    assert_eq!(r.p.held(), 1);
    r.run(EID, &[], 601);
    assert_eq!(r.p.held(), 0);
    assert_eq!(r.p.counts().get(Reason::DropHoldExpired), 1);
}

#[test]
fn punts_go_to_the_control_core_with_their_reason() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    let me = Ipv4Addr::new(10, 1, 1, 5);
    let src = Ipv4Addr::new(10, 1, 1, 10);
    let mut icmp = ipv4_udp(src, me, 0, 0, 64, 0, false, 10);
    icmp[9] = 1;
    let arp = eth([0xff; 6], HOST_MAC, 0x0806, &[0u8; 28]);
    let mut ns = ipv6_udp(
        "fe80::1".parse().unwrap(),
        "ff02::1:ff00:5".parse().unwrap(),
        0,
        0,
        255,
        24,
    );
    ns[6] = 58;
    ns[40] = 135;
    let frames = vec![
        arp,
        eth(EID_MAC, HOST_MAC, 0x0800, &icmp),
        eth(
            EID_MAC,
            HOST_MAC,
            0x0800,
            &ipv4_udp(src, me, 4342, 4342, 64, 0, false, 20),
        ),
        eth([0x33, 0x33, 0xff, 0, 0, 5], HOST_MAC, 0x86dd, &ns),
        eth(
            EID_MAC,
            HOST_MAC,
            0x0800,
            &ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 5), 1, 2, 1, 0, false, 20),
        ),
        eth(
            EID_MAC,
            HOST_MAC,
            0x0800,
            &ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 5), 1, 2, 64, 0, true, 1460),
        ),
        eth(
            EID_MAC,
            HOST_MAC,
            0x0800,
            &ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 5), 1, 2, 64, 0, false, 1460),
        ),
        eth(
            EID_MAC,
            HOST_MAC,
            0x0800,
            &ipv4_udp(src, me, 1, 22, 64, 0, false, 20),
        ),
    ];
    r.run(EID, &frames, 0);
    let reasons: Vec<Reason> = r.out.punts.iter().map(|(p, _)| p.reason).collect();
    assert_eq!(
        reasons,
        [
            Reason::PuntArp,
            Reason::PuntIcmp,
            Reason::PuntLispControl,
            Reason::PuntNd,
            Reason::PuntTtlExpired,
            Reason::PuntLocal,
            // After the burst's lookups (the MTU depends on the RLOC chosen).
            Reason::PuntTooBig,
        ]
    );
    assert_eq!(
        r.p.counts().get(Reason::Fragmented),
        1,
        "DF clear, too big: fragmented"
    );
    // Punted frames are untouched.
    assert_eq!(r.out.punts[1].1.to_vec(), frames[1]);
}

#[test]
fn drops_are_counted_by_reason() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    r.cache
        .insert(
            IID,
            net("10.66.0.0/16"),
            Mapping::negative(NegativeAction::Drop, Some(Duration::from_secs(60))),
            0,
        )
        .unwrap();
    let mut unreachable = mapping(&[peer(PEER_RLOC)]);
    unreachable.locators[0].reachable = false;
    r.cache
        .insert(IID, net("10.67.0.0/16"), unreachable, 0)
        .unwrap();
    r.map("10.68.0.0/16", &["203.0.113.9".parse().unwrap()]);
    let src = Ipv4Addr::new(10, 1, 1, 10);
    let mut bad_ihl = ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 5), 1, 2, 64, 0, false, 20);
    bad_ihl[0] = 0x44;
    let mut long = ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 5), 1, 2, 64, 0, false, 20);
    long[2..4].copy_from_slice(&1000u16.to_be_bytes());
    let frames = vec![
        vec![1, 2, 3],
        eth(EID_MAC, HOST_MAC, 0x0800, &bad_ihl),
        eth(EID_MAC, HOST_MAC, 0x0800, &long),
        eth(
            [2, 9, 9, 9, 9, 9],
            HOST_MAC,
            0x0800,
            &ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 5), 1, 2, 64, 0, false, 20),
        ),
        eth(
            [0xff; 6],
            HOST_MAC,
            0x0800,
            &ipv4_udp(src, Ipv4Addr::new(10, 1, 1, 255), 1, 2, 64, 0, false, 20),
        ),
        eth(EID_MAC, HOST_MAC, 0x8100, &[0; 46]),
        host_frame(Ipv4Addr::new(10, 66, 1, 1), 1),
        host_frame(Ipv4Addr::new(10, 67, 1, 1), 1),
    ];
    r.run(EID, &frames, 0);
    let c = r.p.counts();
    assert_eq!(c.get(Reason::DropMalformed), 3);
    assert_eq!(c.get(Reason::DropNotForUs), 1);
    assert_eq!(c.get(Reason::DropMulticast), 1);
    assert_eq!(c.get(Reason::DropEthertype), 1);
    assert_eq!(c.get(Reason::DropNegative), 1);
    assert_eq!(c.get(Reason::DropNoUsableRloc), 1);
    assert_eq!(c.drops(), 8);
    // An RLOC reached through the gateway whose MAC is unknown: drop and ask for it.
    r.neigh.remove(IpAddr::V4(GW));
    r.run(EID, &[host_frame(Ipv4Addr::new(10, 68, 0, 1), 1)], 1);
    assert_eq!(r.p.counts().get(Reason::DropNoNeighbor), 1);
    assert_eq!(
        r.out.events.as_slice(),
        &[Event::NeighborMiss {
            port: RLOC,
            ip: IpAddr::V4(GW)
        }]
    );
}

/// A negative entry for 0.0.0.0/0 with Natively-Forward (what a Map-Resolver answers for
/// non-LISP destinations).
fn natively_forward_the_rest(r: &mut Rig) {
    r.cache
        .insert(
            IID,
            net("0.0.0.0/0"),
            Mapping::negative(
                NegativeAction::NativelyForward,
                Some(Duration::from_secs(60)),
            ),
            0,
        )
        .unwrap();
}

#[test]
fn native_forward_entries_use_the_petr_or_the_gateway() {
    let mut p = plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop);
    let mut r = rig(p.clone());
    natively_forward_the_rest(&mut r);
    r.run(EID, &[host_frame(Ipv4Addr::new(8, 8, 8, 8), 1)], 0);
    assert_eq!(r.p.counts().get(Reason::NativeForward), 1);
    let f = r.tx(RLOC).remove(0);
    assert_eq!(&f[0..6], &GW_MAC);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(ip.hop_limit(), 63);
    assert!(ip.verify_checksum());
    assert_eq!(ip.dst_addr(), Ipv4Addr::new(8, 8, 8, 8));
    // With a PETR configured: encapsulated to it.
    p.petrs = vec!["203.0.113.50".parse().unwrap()];
    let mut r = rig(p);
    natively_forward_the_rest(&mut r);
    r.run(EID, &[host_frame(Ipv4Addr::new(8, 8, 8, 8), 1)], 0);
    assert_eq!(r.p.counts().get(Reason::Encap), 1);
    let f = r.tx(RLOC).remove(0);
    assert_eq!(&f[30..34], &[203, 0, 113, 50]);
}

/// A live reload as the workers see it: the control core publishes a new plan into each
/// worker's queue ([`PreparedPlan::publish`]) and the worker takes it before its next burst
/// ([`Pipeline::take_plan`], what `pxtr run`'s worker loop calls): that very burst runs it.
#[test]
fn the_burst_after_a_published_plan_runs_the_new_plan() {
    let queue = Arc::new(ArrayQueue::new(2));
    let queues = [Arc::clone(&queue)];
    let published = |edit: &dyn Fn(&mut Plan), base: &Plan| {
        let mut p = base.clone();
        edit(&mut p);
        let prepared = PreparedPlan::new(Arc::new(p));
        prepared.publish(&queues);
        prepared
    };

    // ITR side: natively forwarded traffic goes to the PETR of the plan running.
    let mut base = plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop);
    base.petrs = vec!["203.0.113.50".parse().unwrap()];
    let first = PreparedPlan::new(Arc::new(base.clone()));
    let mut r = rig_prepared(first.clone());
    natively_forward_the_rest(&mut r);
    let burst = |r: &mut Rig, q: &ArrayQueue<PreparedPlan>, now_ms: u64| {
        r.p.take_plan(q);
        r.run(EID, &[host_frame(Ipv4Addr::new(8, 8, 8, 8), 1)], now_ms);
        let f = r.tx(RLOC).remove(0);
        Ipv4Addr::new(f[30], f[31], f[32], f[33])
    };
    assert_eq!(burst(&mut r, &queue, 0), Ipv4Addr::new(203, 0, 113, 50));
    assert_eq!(burst(&mut r, &queue, 1), Ipv4Addr::new(203, 0, 113, 50));
    // A reload changes the PETR: the very next burst goes to the new one.
    let second = published(&|p| p.petrs = vec!["203.0.113.60".parse().unwrap()], &base);
    assert!(!first.is_unshared(), "the worker still runs the first plan");
    assert_eq!(burst(&mut r, &queue, 2), Ipv4Addr::new(203, 0, 113, 60));
    // The worker let go of the plan it ran: its publisher can free it.
    assert!(first.is_unshared());
    // Two reloads between two bursts: the newer plan runs.
    let _third = published(&|p| p.petrs = vec!["203.0.113.70".parse().unwrap()], &base);
    let fourth = published(&|p| p.petrs = vec!["203.0.113.80".parse().unwrap()], &base);
    assert_eq!(burst(&mut r, &queue, 3), Ipv4Addr::new(203, 0, 113, 80));
    assert!(queue.is_empty());
    assert!(second.is_unshared());
    assert!(!fourth.is_unshared());
    assert_eq!(r.p.counts().get(Reason::Encap), 4);

    // ETR side: decapsulated traffic to 10.3.0.5, off the EID port's subnet and with no
    // gateway there, has no route until a reload adds 10.3.0.0/24 as a dynamic-EID range on
    // that port: then it is on-link, and the worker asks for the host's MAC on the EID port.
    let etr_plan = plan(PEER_RLOC, "10.2.0.1/16", MissPolicy::Drop);
    let mut etr = rig_prepared(PreparedPlan::new(Arc::new(etr_plan.clone())));
    let mut itr = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    itr.map("0.0.0.0/0", &[peer(PEER_RLOC)]);
    itr.run(EID, &[host_frame(Ipv4Addr::new(10, 3, 0, 5), 1)], 0);
    let mut wire = itr.tx(RLOC).remove(0);
    wire[0..6].copy_from_slice(&RLOC_MAC);
    let decap = |etr: &mut Rig, q: &ArrayQueue<PreparedPlan>| {
        etr.p.take_plan(q);
        etr.run(RLOC, &[wire.clone()], 0);
        assert!(etr.tx(EID).is_empty());
        (std::mem::take(&mut etr.out.events), etr.p.take_counts())
    };
    let (events, counts) = decap(&mut etr, &queue);
    assert_eq!(counts.get(Reason::DropNoRoute), 1);
    assert!(events.is_empty(), "{events:?}");
    let _dynamic = published(
        &|p| p.ports[EID].dynamic_eids = vec![net("10.3.0.0/24")],
        &etr_plan,
    );
    let (events, counts) = decap(&mut etr, &queue);
    assert_eq!(counts.get(Reason::DropNoRoute), 0);
    assert_eq!(counts.get(Reason::DropNoNeighbor), 1);
    assert_eq!(
        events.as_slice(),
        &[Event::NeighborMiss {
            port: EID,
            ip: "10.3.0.5".parse().unwrap()
        }]
    );
}

#[test]
fn decap_routes_off_subnet_destinations_and_refuses_unknown_instances() {
    let mut p = plan(PEER_RLOC, "10.2.0.1/16", MissPolicy::Drop);
    p.ports[EID].gateway = Some("10.2.0.254".parse().unwrap());
    let mut etr = rig(p);
    etr.neigh
        .insert(
            "10.2.0.254".parse().unwrap(),
            Neighbor {
                mac: [2, 0, 0, 0, 0x25, 0x40],
                port: 0,
            },
        )
        .unwrap();
    let mut itr = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    itr.map("0.0.0.0/0", &[peer(PEER_RLOC)]);
    // Off-subnet (a branch site behind the enterprise gateway), and on-subnet unknown host.
    itr.run(
        EID,
        &[
            host_frame(Ipv4Addr::new(172, 16, 0, 9), 1),
            host_frame(Ipv4Addr::new(10, 2, 0, 77), 1),
        ],
        0,
    );
    let mut wire = itr.tx(RLOC);
    for f in &mut wire {
        f[0..6].copy_from_slice(&RLOC_MAC);
    }
    // The same packet with another instance-ID (and the UDP checksum zero: IPv4 LISP).
    let mut other = wire[0].clone();
    other[14 + 20 + 8 + 6] ^= 0x01;
    etr.run(RLOC, &[wire[0].clone(), wire[1].clone(), other], 0);
    let out = etr.tx(EID);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][0..6], &[2, 0, 0, 0, 0x25, 0x40]);
    assert_eq!(etr.p.counts().get(Reason::DropNoNeighbor), 1);
    assert_eq!(
        etr.out.events.as_slice(),
        &[Event::NeighborMiss {
            port: EID,
            ip: "10.2.0.77".parse().unwrap()
        }]
    );
    assert_eq!(etr.p.counts().get(Reason::DropUnknownIid), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Arbitrary frames on either port never panic, and every frame is accounted for: sent,
    /// punted, held or dropped with a reason.
    #[test]
    fn every_frame_is_accounted_for(
        frames in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 1..40),
        templates in proptest::collection::vec(0usize..4, 1..40),
    ) {
        let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Queue));
        r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
        let mut sent = 0usize;
        for ((on_eid, bytes), t) in frames.iter().zip(templates.iter().cycle()) {
            // Half random bytes, half random bytes behind a plausible header.
            let mut f = match t {
                0 => bytes.clone(),
                1 => host_frame(Ipv4Addr::new(10, 2, 0, 5), 1),
                2 => eth(RLOC_MAC, GW_MAC, 0x0800, &ipv4_udp(Ipv4Addr::new(198, 51, 100, 1), OUR_RLOC, 1, 4341, 64, 0, false, 40)),
                _ => eth(EID_MAC, HOST_MAC, 0x86dd, &ipv6_udp("fd00:1::1".parse().unwrap(), "fd00:9::1".parse().unwrap(), 1, 2, 64, 10)),
            };
            if *t != 0 {
                for (i, b) in bytes.iter().enumerate() {
                    let at = 14 + (i * 7) % f.len().saturating_sub(14).max(1);
                    if at < f.len() { f[at] ^= b; }
                }
            }
            r.run(if *on_eid { EID } else { RLOC }, &[f], 0);
            sent += 1;
        }
        let c = r.p.counts().clone();
        let tx: usize = r.out.tx.iter().map(|t| t.len()).sum();
        let punted = r.out.punts.len();
        prop_assert_eq!(c.get(Reason::Rx) as usize, sent);
        let drops = c.drops() as usize;
        prop_assert_eq!(tx + punted + r.p.held() + drops, sent, "{:?}", c.nonzero().collect::<Vec<_>>());
    }
}

#[test]
fn reasons_have_unique_names() {
    let names: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), Reason::ALL.len());
}

#[test]
fn icmp_errors_written_over_punted_packets() {
    use pxtr::dataplane::icmp::{icmp_error_in_place, IcmpKind, IcmpSkip};
    use pxtr::dataplane::PacketBuf;
    use smoltcp::wire::{Icmpv4Packet, Icmpv6Packet};
    let me = Ipv4Addr::new(10, 1, 1, 5);
    let me6: Ipv6Addr = "fd00:1::5".parse().unwrap();
    let src = Ipv4Addr::new(10, 1, 1, 10);
    let orig = ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 5), 1, 2, 64, 0, true, 1460);
    let mut b = HeapBuf::new(&eth(EID_MAC, HOST_MAC, 0x0800, &orig));
    icmp_error_in_place(
        &mut b,
        IcmpKind::TooBig { mtu: 1464 },
        EID_MAC,
        Some(me),
        Some(me6),
    )
    .unwrap();
    let f = b.data();
    assert_eq!(&f[0..6], &HOST_MAC);
    assert_eq!(&f[6..12], &EID_MAC);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(usize::from(ip.total_len()), 576);
    assert_eq!(ip.src_addr(), me);
    assert_eq!(ip.dst_addr(), src);
    let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!((u8::from(icmp.msg_type()), icmp.msg_code()), (3, 4));
    assert_eq!(u16::from_be_bytes([ip.payload()[6], ip.payload()[7]]), 1464);
    assert_eq!(
        &ip.payload()[8..],
        &orig[..548],
        "quotes the original from its IP header"
    );
    // An ICMP error is not answered with another.
    let mut again = HeapBuf::new(&b.to_vec());
    again.data_mut()[0..6].copy_from_slice(&EID_MAC);
    assert_eq!(
        icmp_error_in_place(&mut again, IcmpKind::TimeExceeded, EID_MAC, Some(me), None),
        Err(IcmpSkip::AboutError)
    );
    // IPv6: Packet Too Big with the pseudo-header checksum; a short packet grows the frame.
    let s6: Ipv6Addr = "fd00:1::10".parse().unwrap();
    let orig6 = ipv6_udp(s6, "fd00:2::1".parse().unwrap(), 1, 2, 1, 10);
    let mut b = HeapBuf::new(&eth(EID_MAC, HOST_MAC, 0x86dd, &orig6));
    icmp_error_in_place(&mut b, IcmpKind::TimeExceeded, EID_MAC, None, Some(me6)).unwrap();
    let ip6 = Ipv6Packet::new_checked(&b.data()[14..]).unwrap();
    let icmp6 = Icmpv6Packet::new_checked(ip6.payload()).unwrap();
    assert!(icmp6.verify_checksum(&ip6.src_addr(), &ip6.dst_addr()));
    assert_eq!((u8::from(icmp6.msg_type()), icmp6.msg_code()), (3, 0));
    assert_eq!(&ip6.payload()[8..], &orig6[..]);
    // No IPv4 address of ours: nothing sent.
    let mut b = HeapBuf::new(&eth(EID_MAC, HOST_MAC, 0x0800, &orig));
    assert_eq!(
        icmp_error_in_place(&mut b, IcmpKind::TimeExceeded, EID_MAC, None, Some(me6)),
        Err(IcmpSkip::NoSourceAddress)
    );
}

#[test]
fn df_clear_packets_too_big_are_fragmented_then_encapsulated() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    let src = Ipv4Addr::new(10, 1, 1, 10);
    // 20 + 8 + 1472 = 1500 bytes: 36 bytes of outer headers do not fit a 1500-byte MTU.
    let orig = ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 5), 7, 9, 64, 0, false, 1472);
    r.run(EID, &[eth(EID_MAC, HOST_MAC, 0x0800, &orig)], 0);
    assert_eq!(r.p.counts().get(Reason::Fragmented), 1);
    assert_eq!(r.p.counts().get(Reason::Encap), 2);
    let out = r.tx(RLOC);
    assert_eq!(out.len(), 2);
    let mut payload = Vec::new();
    let mut expect_off = 0usize;
    for (k, f) in out.iter().enumerate() {
        assert!(f.len() - 14 <= 1500, "outer packet fits the MTU");
        let outer = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(outer.verify_checksum());
        let inner = Ipv4Packet::new_checked(&outer.payload()[16..]).unwrap();
        assert!(inner.verify_checksum());
        assert_eq!(inner.hop_limit(), 63);
        assert_eq!(usize::from(inner.frag_offset()), expect_off);
        assert_eq!(inner.more_frags(), k == 0);
        assert!(!inner.dont_frag());
        if k == 0 {
            assert_eq!(inner.payload().len() % 8, 0);
        }
        expect_off += inner.payload().len();
        payload.extend_from_slice(inner.payload());
    }
    assert_eq!(
        payload,
        &orig[20..],
        "the fragments carry the whole original payload"
    );
    // Fragmentation off: dropped and counted.
    let mut p = plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop);
    p.fragment = false;
    let mut r = rig(p);
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    r.run(EID, &[eth(EID_MAC, HOST_MAC, 0x0800, &orig)], 0);
    assert_eq!(r.p.counts().get(Reason::DropTooBig), 1);
    assert!(r.tx(RLOC).is_empty());
}

#[test]
fn decap_never_delivers_to_a_neighbour_on_the_rloc_side_or_another_instance() {
    let mut itr = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    itr.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    let mut etr = rig(plan(PEER_RLOC, "10.2.0.1/16", MissPolicy::Drop));
    // The inner destination is known, but on the RLOC port (an xTR is no PETR).
    etr.neigh
        .insert(
            "10.2.0.5".parse().unwrap(),
            Neighbor {
                mac: [2, 0, 0, 0, 0x66, 0x66],
                port: 1,
            },
        )
        .unwrap();
    itr.run(EID, &[host_frame(Ipv4Addr::new(10, 2, 0, 5), 1)], 0);
    let mut f = itr.tx(RLOC).remove(0);
    f[0..6].copy_from_slice(&RLOC_MAC);
    etr.run(RLOC, &[f], 0);
    assert!(
        etr.tx(RLOC).is_empty(),
        "nothing decapsulated goes back to the underlay"
    );
    assert!(etr.tx(EID).is_empty());
    assert_eq!(etr.p.counts().get(Reason::DropNoNeighbor), 1);
    assert_eq!(
        etr.out.events.as_slice(),
        &[Event::NeighborMiss {
            port: EID,
            ip: "10.2.0.5".parse().unwrap()
        }]
    );
}

#[test]
fn miss_reports_do_not_use_up_neighbour_requests() {
    let mut p = plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop);
    p.miss_reports_per_sec = 1;
    let mut r = rig(p);
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    r.neigh.remove(IpAddr::V4(GW));
    // Two unmapped destinations use up the misses' budget for this second (one reported,
    // one limited); then, in the same second, a mapped destination whose gateway has no MAC:
    // its neighbour request has a budget of its own.
    r.run(
        EID,
        &[
            host_frame(Ipv4Addr::new(10, 9, 0, 1), 1),
            host_frame(Ipv4Addr::new(10, 9, 0, 2), 1),
        ],
        0,
    );
    r.run(EID, &[host_frame(Ipv4Addr::new(10, 2, 0, 5), 1)], 1);
    assert_eq!(r.p.counts().get(Reason::MissReported), 1);
    assert_eq!(r.p.counts().get(Reason::MissRateLimited), 1);
    assert!(
        r.out.events.contains(&Event::NeighborMiss {
            port: RLOC,
            ip: IpAddr::V4(GW)
        }),
        "{:?}",
        r.out.events
    );
}

#[test]
fn decap_drops_packets_whose_outer_ttl_ran_out() {
    let mut etr = peer_etr(HOST_MAC, |_| {});
    let mut f = encapsulated(&host_frame(Ipv4Addr::new(10, 2, 0, 5), 1)[14..]);
    edit_outer(&mut f, |h| h[8] = 0);
    etr.run(RLOC, &[f], 0);
    assert!(etr.tx(EID).is_empty());
    assert_eq!(etr.p.counts().get(Reason::DropDecapInvalid), 1);
}

#[test]
fn the_petr_is_chosen_by_the_underlay_family_not_the_inner_one() {
    let mut p = plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop);
    p.rlocs = vec![IpAddr::V4(OUR_RLOC)];
    p.petrs = vec![
        "2001:db8:99::1".parse().unwrap(),
        "203.0.113.50".parse().unwrap(),
    ];
    let mut r = rig(p);
    r.cache
        .insert(
            IID,
            net("::/0"),
            Mapping::negative(
                NegativeAction::NativelyForward,
                Some(Duration::from_secs(60)),
            ),
            0,
        )
        .unwrap();
    let src: Ipv6Addr = "fd00:1::10".parse().unwrap();
    let frame = eth(
        EID_MAC,
        HOST_MAC,
        0x86dd,
        &ipv6_udp(src, "2001:db8:77::1".parse().unwrap(), 7, 9, 10, 30),
    );
    r.run(EID, &[frame], 0);
    assert_eq!(
        r.p.counts().get(Reason::Encap),
        1,
        "{:?}",
        r.p.counts().nonzero().collect::<Vec<_>>()
    );
    let f = r.tx(RLOC).remove(0);
    assert_eq!(
        &f[30..34],
        &[203, 0, 113, 50],
        "IPv6 inside IPv4 to the IPv4 PETR"
    );
}

#[test]
fn ipv4_packets_with_a_wrong_header_checksum_are_not_forwarded() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    let mut f = host_frame(Ipv4Addr::new(10, 2, 0, 5), 1);
    f[14 + 10] ^= 0x01;
    r.run(EID, &[f, host_frame(Ipv4Addr::new(10, 2, 0, 5), 2)], 0);
    assert_eq!(r.p.counts().get(Reason::DropBadChecksum), 1);
    assert_eq!(r.tx(RLOC).len(), 1, "the good one goes");
}

#[test]
fn held_packets_leave_in_order_and_before_newer_ones() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Queue));
    let sport = |f: &Vec<u8>| u16::from_be_bytes([f[50 + 20], f[50 + 21]]);
    let held: Vec<Vec<u8>> = (0..4)
        .map(|i| host_frame(Ipv4Addr::new(10, 2, 0, 5), 100 + i))
        .collect();
    r.run(EID, &held, 0);
    assert_eq!(r.p.held(), 4);
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    r.run(EID, &[host_frame(Ipv4Addr::new(10, 2, 0, 5), 200)], 5);
    let out: Vec<u16> = r.tx(RLOC).iter().map(sport).collect();
    assert_eq!(
        out,
        [100, 101, 102, 103, 200],
        "inner UDP source ports in arrival order"
    );
}

#[test]
fn decap_to_an_eid_port_with_a_smaller_mtu_fragments_or_drops() {
    let inner_of = |df: bool| {
        ipv4_udp(
            Ipv4Addr::new(10, 1, 1, 10),
            Ipv4Addr::new(10, 2, 0, 5),
            5555,
            80,
            64,
            0,
            df,
            1372,
        )
    };
    let etr_rig = || peer_etr([0x02, 0, 0, 0, 0xbb, 0xbb], |p| p.ports[0].mtu = 1000);
    // DF clear: fragments that fit the EID port, carrying the whole payload.
    let inner = inner_of(false);
    let mut etr = etr_rig();
    etr.run(RLOC, &[encapsulated(&inner)], 0);
    assert_eq!(etr.p.counts().get(Reason::Fragmented), 1);
    let out = etr.tx(EID);
    assert_eq!(out.len(), 2);
    assert_eq!(etr.p.counts().get(Reason::Decap), 2);
    let mut payload = Vec::new();
    for f in &out {
        assert!(f.len() - 14 <= 1000, "fragment fits the EID port's MTU");
        assert_eq!(&f[0..6], &[0x02, 0, 0, 0, 0xbb, 0xbb]);
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.hop_limit(), 63);
        payload.extend_from_slice(ip.payload());
    }
    assert_eq!(payload, &inner[20..]);
    // DF set: dropped and counted, nothing sent.
    let mut etr = etr_rig();
    etr.run(RLOC, &[encapsulated(&inner_of(true))], 0);
    assert_eq!(etr.p.counts().get(Reason::DropTooBig), 1);
    assert_eq!(etr.p.counts().get(Reason::Decap), 0);
    assert!(etr.tx(EID).is_empty());
}

/// Decapsulated packets to one host find its next hop once and keep it across bursts while
/// the neighbour table stays as it is: a packet too big for the EID port is still
/// fragmented (in its place among the others), a MAC changed between bursts is used from the
/// next burst on, and a neighbour removed is not used again.
#[test]
fn next_hops_of_decapsulated_packets_follow_the_neighbour_table() {
    let host = Ipv4Addr::new(10, 2, 0, 5);
    let to_host = |payload: usize| {
        encapsulated(&ipv4_udp(
            Ipv4Addr::new(10, 1, 1, 10),
            host,
            5555,
            80,
            64,
            0,
            false,
            payload,
        ))
    };
    let (small, big) = (to_host(100), to_host(1372));
    let (mac_a, mac_b) = ([0x02, 0, 0, 0, 0xbb, 0xbb], [0x02, 0, 0, 0, 0xbb, 0xcc]);
    let mut etr = peer_etr(mac_a, |p| p.ports[0].mtu = 1000);
    let burst = vec![small.clone(); 8];
    let sent_to = |out: &[Vec<u8>], mac: [u8; 6]| {
        out.iter()
            .all(|f| f[0..6] == mac && f[6..12] == EID_MAC && f.len() == 14 + 128)
    };
    for now in 0..3 {
        etr.run(RLOC, &burst, now);
        let out = etr.tx(EID);
        assert_eq!(out.len(), 8);
        assert!(sent_to(&out, mac_a), "burst {now}");
    }
    etr.run(RLOC, &[small.clone(), big, small.clone()], 3);
    let out = etr.tx(EID);
    assert_eq!(out.len(), 4, "small, two fragments, small");
    assert!(sent_to(&[out[0].clone(), out[3].clone()], mac_a));
    for f in &out[1..3] {
        assert_eq!(&f[0..6], &mac_a);
        assert!(f.len() - 14 <= 1000, "fragment fits the EID port's MTU");
        assert_ne!(f[14 + 6] & 0x3f | f[14 + 7], 0, "a fragment");
    }
    assert_eq!(etr.p.counts().get(Reason::Fragmented), 1);
    etr.neigh
        .insert(
            IpAddr::V4(host),
            Neighbor {
                mac: mac_b,
                port: 0,
            },
        )
        .unwrap();
    etr.run(RLOC, &burst, 4);
    let out = etr.tx(EID);
    assert_eq!(out.len(), 8);
    assert!(sent_to(&out, mac_b), "the new MAC");
    etr.neigh.remove(IpAddr::V4(host)).unwrap();
    etr.run(RLOC, &burst, 5);
    assert!(etr.tx(EID).is_empty());
    assert_eq!(etr.p.counts().get(Reason::DropNoNeighbor), 8);
    assert_eq!(etr.p.counts().get(Reason::Decap), 3 * 8 + 4 + 8);
}

/// Hosts whose next hops share a slot of the decapsulation memo, in one burst: each packet
/// still reaches its own host. 10.2.0.5 and 10.2.2.103 share a slot in instance 7 (checked
/// below against a copy of the memo's hash); 56 other hosts, each with its own MAC, add more
/// pairs by chance.
#[test]
fn hosts_sharing_a_memo_slot_each_get_their_own_next_hop() {
    let host_slot = |dst: Ipv4Addr, iid: u32| {
        (u32::from(dst)
            .wrapping_add(iid.wrapping_mul(0x0100_0193))
            .wrapping_mul(0x9E37_79B1)
            >> 22) as usize
    };
    let (a, b) = (Ipv4Addr::new(10, 2, 0, 5), Ipv4Addr::new(10, 2, 2, 103));
    assert_eq!(
        host_slot(a, IID),
        host_slot(b, IID),
        "a copy of HostV4::slot"
    );
    let mut hosts = vec![a, b];
    hosts.extend((0..56u8).map(|i| Ipv4Addr::new(10, 2, 1, 10 + i)));
    let mac_of = |h: Ipv4Addr| {
        let o = h.octets();
        [0x02, 0, 0, o[1], o[2], o[3]]
    };
    let mut etr = peer_etr(mac_of(a), |_| {});
    for h in &hosts {
        etr.neigh
            .insert(
                IpAddr::V4(*h),
                Neighbor {
                    mac: mac_of(*h),
                    port: 0,
                },
            )
            .unwrap();
    }
    let frame = |h: Ipv4Addr| {
        encapsulated(&ipv4_udp(
            Ipv4Addr::new(10, 1, 1, 10),
            h,
            5555,
            80,
            64,
            0,
            false,
            100,
        ))
    };
    let check = |out: &[Vec<u8>], want: &[Ipv4Addr], round: usize| {
        assert_eq!(out.len(), want.len(), "round {round}");
        for (f, h) in out.iter().zip(want) {
            assert_eq!(&f[14 + 16..14 + 20], &h.octets(), "round {round}: order");
            assert_eq!(&f[0..6], &mac_of(*h), "round {round}: next hop of {h}");
        }
    };
    // b alone, then a before b: a misses while b's packet was found in the memo.
    etr.run(RLOC, &[frame(b)], 0);
    check(&etr.tx(EID), &[b], 0);
    for round in 1..4 {
        etr.run(RLOC, &[frame(a), frame(b)], round as u64);
        check(&etr.tx(EID), &[a, b], round);
    }
    let burst: Vec<Vec<u8>> = hosts.iter().map(|h| frame(*h)).collect();
    for round in 4..8 {
        etr.run(RLOC, &burst, round as u64);
        check(&etr.tx(EID), &hosts, round);
    }
}

/// A burst to many RLOCs (more than share a memo slot without collisions), half on the RLOC
/// subnet with their own MACs, half behind the gateway: every packet leaves with its own RLOC
/// and the right next-hop MAC; a MAC changed between bursts is used from the next burst on.
#[test]
fn outer_headers_per_rloc_survive_collisions_and_neighbour_changes() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    // Four pairs of these share a slot of the 1024-slot memo (checked below against a copy of
    // its hash).
    let rloc_of = |i: u8| {
        let host = 15u8.wrapping_add(i.wrapping_mul(7));
        if i % 2 == 0 {
            Ipv4Addr::new(192, 0, 2, host) // on-link
        } else {
            Ipv4Addr::new(198, 51, 100, host) // via the gateway
        }
    };
    let mut slots: Vec<u32> = (0..64u8)
        .map(|i| u32::from(rloc_of(i)).wrapping_mul(0x9E37_79B1) >> 22)
        .collect();
    slots.sort_unstable();
    slots.dedup();
    assert!(
        slots.len() < 64,
        "RLOCs sharing memo slots (a copy of RlocMemo::slot)"
    );
    let mac_of = |i: u8| [0x02, 0, 0, 0, 0xaa, i];
    for i in 0..64u8 {
        r.map(&format!("10.2.{i}.0/24"), &[peer(rloc_of(i))]);
        if i % 2 == 0 {
            r.neigh
                .insert(
                    IpAddr::V4(rloc_of(i)),
                    Neighbor {
                        mac: mac_of(i),
                        port: 1,
                    },
                )
                .unwrap();
        }
    }
    let frames: Vec<Vec<u8>> = (0..64u8)
        .map(|i| host_frame(Ipv4Addr::new(10, 2, i, 5), 1000 + u16::from(i)))
        .collect();
    let check = |out: &[Vec<u8>], gw_mac: [u8; 6]| {
        assert_eq!(out.len(), 64);
        for f in out {
            let outer = Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert!(outer.verify_checksum());
            let inner = Ipv4Packet::new_checked(&outer.payload()[16..]).unwrap();
            let i = inner.dst_addr().octets()[2];
            assert_eq!(outer.dst_addr(), rloc_of(i), "packet to 10.2.{i}.5");
            let want = if i % 2 == 0 { mac_of(i) } else { gw_mac };
            assert_eq!(&f[0..6], &want, "next hop of packet to 10.2.{i}.5");
            assert_eq!(&f[6..12], &RLOC_MAC);
        }
    };
    r.run(EID, &frames, 0);
    check(&r.tx(RLOC), GW_MAC);
    // The gateway's MAC changes: the next burst uses the new one.
    let new_gw = [0x02, 0, 0, 0, 0xfe, 0x77];
    r.neigh
        .insert(
            IpAddr::V4(GW),
            Neighbor {
                mac: new_gw,
                port: 1,
            },
        )
        .unwrap();
    r.run(EID, &frames, 1);
    check(&r.tx(RLOC), new_gw);
    assert_eq!(r.p.counts().get(Reason::Encap), 128);
    // Outer headers outlive a burst while the neighbour table stays as it is; a neighbour
    // removed is not used in the next burst.
    r.run(EID, &frames, 2);
    check(&r.tx(RLOC), new_gw);
    r.neigh.remove(IpAddr::V4(rloc_of(0))).unwrap();
    r.run(EID, &frames, 3);
    let out = r.tx(RLOC);
    assert_eq!(out.len(), 63);
    assert!(out.iter().all(|f| f[30..34] != rloc_of(0).octets()));
    assert_eq!(r.p.counts().get(Reason::DropNoNeighbor), 1);
    assert_eq!(r.p.counts().get(Reason::Encap), 128 + 64 + 63);
}

#[test]
fn a_flood_of_map_requests_or_arp_cannot_crowd_out_registrations() {
    let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
    let me = Ipv4Addr::new(10, 1, 1, 5);
    let src = Ipv4Addr::new(10, 1, 1, 10);
    let control = |first: u8| {
        let mut f = eth(
            EID_MAC,
            HOST_MAC,
            0x0800,
            &ipv4_udp(src, me, 4342, 4342, 64, 0, false, 20),
        );
        f[14 + 20 + 8] = first;
        f
    };
    let arp = eth([0xff; 6], HOST_MAC, 0x0806, &[0u8; 28]);
    let punted = |r: &mut Rig, frames: &[Vec<u8>], now: u64| {
        r.run(EID, frames, now);
        let n = r.out.punts.len();
        r.out.punts.clear();
        n
    };
    // Map-Requests (type 1) and ECMs (type 8): 10 000 a second, then dropped and counted.
    let requests: Vec<Vec<u8>> = (0..32)
        .map(|i| control(if i % 2 == 0 { 0x10 } else { 0x80 }))
        .collect();
    let mut sent = 0;
    for _ in 0..400 {
        sent += punted(&mut r, &requests, 5);
    }
    assert_eq!(sent, pxtr::dataplane::MAP_REQUEST_PUNTS_PER_SEC as usize);
    assert_eq!(
        r.p.counts().get(Reason::DropPuntRateLimited),
        400 * 32 - sent as u64
    );
    // Registrations, notifies and replies still go up, and so does ARP (its own budget).
    let others: Vec<Vec<u8>> = [0x30, 0x40, 0x50, 0x20]
        .iter()
        .map(|t| control(*t))
        .collect();
    assert_eq!(punted(&mut r, &others, 6), 4);
    assert_eq!(punted(&mut r, std::slice::from_ref(&arp), 6), 1);
    // The next second, requests go up again.
    assert_eq!(punted(&mut r, &requests[..2], 1005), 2);
    // ARP has the same kind of budget.
    let arps = vec![arp; 32];
    let mut sent = 0;
    for _ in 0..400 {
        sent += punted(&mut r, &arps, 2000);
    }
    assert_eq!(sent, pxtr::dataplane::ARP_ND_PUNTS_PER_SEC as usize);
}

#[test]
fn sources_in_extended_subnet_ranges_are_reported_every_ten_seconds() {
    let mut p = plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop);
    p.ports[EID].extended = vec![net("10.1.1.0/25")];
    let mut r = rig(p);
    r.map("10.2.0.0/16", &[peer(PEER_RLOC)]);
    let seen = |r: &mut Rig| -> Vec<Event> {
        r.out
            .events
            .drain(..)
            .filter(|e| matches!(e, Event::SourceSeen { .. }))
            .collect()
    };
    let want = vec![Event::SourceSeen {
        port: EID,
        ip: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 10)),
        mac: HOST_MAC,
    }];
    r.run(
        EID,
        &[
            host_frame(Ipv4Addr::new(10, 2, 0, 5), 1),
            host_frame(Ipv4Addr::new(10, 2, 0, 6), 2),
        ],
        0,
    );
    assert_eq!(seen(&mut r), want, "once per source");
    assert_eq!(r.tx(RLOC).len(), 2, "and forwarded as usual");
    r.run(EID, &[host_frame(Ipv4Addr::new(10, 2, 0, 5), 3)], 9_999);
    assert!(seen(&mut r).is_empty());
    r.run(EID, &[host_frame(Ipv4Addr::new(10, 2, 0, 5), 4)], 10_000);
    assert_eq!(seen(&mut r), want);
    assert_eq!(r.p.counts().get(Reason::SourceReported), 2);
    // A source outside the extended range is not reported.
    let mut other = host_frame(Ipv4Addr::new(10, 2, 0, 5), 5);
    other[14 + 15] = 200; // 10.1.1.200
    let sum = common::packet::csum(&{
        let mut h = other[14..34].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    other[24..26].copy_from_slice(&sum.to_be_bytes());
    r.run(EID, &[other], 20_000);
    assert!(seen(&mut r).is_empty());
    assert_eq!(r.tx(RLOC).len(), 3, "forwarded");
}

#[test]
fn locator_status_bits_are_reported_when_they_change() {
    let inner = ipv4_udp(
        Ipv4Addr::new(10, 1, 1, 10),
        Ipv4Addr::new(10, 2, 0, 5),
        5555,
        80,
        64,
        0,
        true,
        20,
    );
    // The ITR's packet with the L bit and status bits `lsb` (8 of them, next to the IID).
    let with_lsb = |lsb: u8| {
        let mut f = encapsulated(&inner);
        f[14 + 28] |= 0x40;
        f[14 + 28 + 7] = lsb;
        f
    };
    let mut etr = peer_etr([0x02, 0, 0, 0, 0xbb, 0xbb], |_| {});
    let reported = |etr: &mut Rig| -> Vec<Event> {
        etr.out
            .events
            .drain(..)
            .filter(|e| matches!(e, Event::LocatorStatus { .. }))
            .collect()
    };
    let want = |lsb: u32| {
        vec![Event::LocatorStatus {
            iid: IID,
            eid: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 10)),
            lsb,
            width: 8,
        }]
    };
    etr.run(RLOC, &[with_lsb(0b11), with_lsb(0b11)], 0);
    assert_eq!(reported(&mut etr), want(0b11), "once");
    assert_eq!(etr.tx(EID).len(), 2, "and delivered");
    etr.run(RLOC, &[with_lsb(0b11)], 5_000);
    assert!(reported(&mut etr).is_empty());
    etr.run(RLOC, &[with_lsb(0b01)], 5_001);
    assert_eq!(reported(&mut etr), want(0b01), "a change");
    etr.run(RLOC, &[with_lsb(0b01)], 15_001);
    assert_eq!(reported(&mut etr), want(0b01), "again after 10 s");
    // Without the L bit: nothing.
    etr.run(RLOC, &[encapsulated(&inner)], 30_000);
    assert!(reported(&mut etr).is_empty());
    assert_eq!(etr.p.counts().get(Reason::LocatorStatusReported), 3);
}

/// One frame of the lean-path comparison, built from a few random numbers: IPv4 to every kind
/// of destination (mapped, negative, unmapped, an RLOC without a neighbour, one of ours,
/// multicast), with every TTL case, DF set or not, fragments, TCP, options, wrong checksums,
/// Ethernet padding, other MACs and IPv6; some with a NIC receive hash.
fn lean_case(kind: u8, v: u8, sport: u16, big: bool, rss: bool) -> HeapBuf {
    let dst = match v % 6 {
        0 | 1 => Ipv4Addr::new(10, 2, 0, v),
        2 => Ipv4Addr::new(10, 3, 0, v),
        3 => Ipv4Addr::new(10, 4, 0, v),
        4 => Ipv4Addr::new(10, 5, 0, v),
        _ => Ipv4Addr::new(10, 6, 0, v),
    };
    let ttl = [64, 2, 1, 0][usize::from(v >> 6)];
    let payload = if big { 1440 + usize::from(v % 40) } else { 18 };
    let mut ip = ipv4_udp(
        Ipv4Addr::new(10, 1, 1, 10),
        dst,
        sport,
        80,
        ttl,
        v,
        sport & 1 == 0,
        payload,
    );
    let fix = |ip: &mut Vec<u8>| {
        let hl = usize::from(ip[0] & 0x0f) * 4;
        ip[10] = 0;
        ip[11] = 0;
        let c = csum(&ip[..hl]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    };
    let mut mac = EID_MAC;
    match kind {
        0..=4 => {}
        5 => {
            ip[9] = 6;
            fix(&mut ip);
        }
        // A first fragment, a later one.
        6 => {
            ip[6] |= 0x20;
            fix(&mut ip);
        }
        7 => {
            ip[6] = (ip[6] & 0x40) | 0x01;
            ip[7] = 0x10;
            fix(&mut ip);
        }
        8 => ip[11] ^= 0x55,
        9 => {
            ip[16..20].copy_from_slice(&[10, 1, 1, 5]);
            fix(&mut ip);
        }
        10 => {
            ip[16..20].copy_from_slice(&[224 + v % 32, 0, 0, 1]);
            fix(&mut ip);
        }
        11 => mac = HOST_MAC,
        // Options: 4 bytes of NOPs.
        12 => {
            ip.splice(20..20, [1u8, 1, 1, 1]);
            ip[0] = 0x46;
            let total = ip.len() as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            fix(&mut ip);
        }
        _ => {
            let v6 = ipv6_udp(
                "fd00:1::10".parse().unwrap(),
                format!("2001:db8:2::{v:x}").parse().unwrap(),
                sport,
                80,
                64,
                payload,
            );
            let f = eth(EID_MAC, HOST_MAC, 0x86dd, &v6);
            return HeapBuf::new(&f);
        }
    }
    let mut f = eth(mac, HOST_MAC, 0x0800, &ip);
    if v & 0x10 != 0 {
        // Ethernet padding after the IP packet.
        f.extend_from_slice(&[0xee; 6]);
    }
    let b = HeapBuf::new(&f);
    if rss {
        b.with_rss(u32::from(sport).wrapping_mul(0x9E37_79B1))
    } else {
        b
    }
}

/// A frame as compared across the two paths: the outer IPv4 ID (taken in the order packets
/// are sent, which the paths may differ in across flows) and the checksum covering it are
/// zeroed once the checksum is checked.
fn without_outer_id(mut f: Vec<u8>) -> Vec<u8> {
    let outer_v4_lisp =
        f.len() >= 50 && f[12..14] == [8, 0] && f[23] == 17 && f[36..38] == [0x10, 0xf5];
    if outer_v4_lisp {
        assert_eq!(csum(&f[14..34]), 0, "outer IPv4 checksum of {f:02x?}");
        f[18..20].fill(0);
        f[24..26].fill(0);
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// The lean path (IPv4 packets that need only a lookup and an IPv4 encapsulation) does
    /// exactly what the general path does: the same frames out of each port, the same punts,
    /// events and counters, for bursts that mix every case the lean path must hand over.
    #[test]
    fn the_lean_path_matches_the_general_path(
        cases in proptest::collection::vec(
            (0u8..16, any::<u8>(), any::<u16>(), any::<bool>(), any::<bool>()), 1..=MAX_BURST),
    ) {
        let rigs: Vec<Rig> = [true, false]
            .into_iter()
            .map(|lean| {
                let mut r = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
                r.p.set_lean_path(lean);
                r.map("10.2.0.0/16", &[peer(PEER_RLOC), peer(Ipv4Addr::new(198, 51, 100, 2))]);
                r.cache
                    .insert(
                        IID,
                        net("10.3.0.0/16"),
                        Mapping::negative(NegativeAction::Drop, Some(Duration::from_secs(60))),
                        0,
                    )
                    .unwrap();
                // An RLOC on the RLOC port's own subnet, with no neighbour entry.
                r.map("10.5.0.0/16", &[peer(Ipv4Addr::new(192, 0, 2, 77))]);
                r.map("2001:db8:2::/48", &[peer(PEER_RLOC)]);
                r
            })
            .collect();
        let mut results = Vec::new();
        for mut r in rigs {
            let burst = cases
                .iter()
                .map(|&(k, v, s, big, rss)| lean_case(k, v, s, big, rss))
                .collect();
            results.push(outcome(&mut r, EID, burst));
        }
        same(&results[0], &results[1])?;
    }
}

/// What a burst did, in a form two runs can be compared in: frames per port (sorted, outer
/// IPv4 IDs zeroed), punts and events (sorted), non-zero counters.
struct Outcome {
    tx: Vec<Vec<Vec<u8>>>,
    punts: Vec<String>,
    events: Vec<String>,
    counts: Vec<(&'static str, u64)>,
}

/// The lean path's outcome (`lean`) is the general path's.
fn same(lean: &Outcome, general: &Outcome) -> Result<(), TestCaseError> {
    prop_assert_eq!(&lean.counts, &general.counts, "counters");
    prop_assert_eq!(&lean.punts, &general.punts, "punts");
    prop_assert_eq!(&lean.events, &general.events, "events");
    prop_assert_eq!(&lean.tx, &general.tx, "frames sent");
    Ok(())
}

fn outcome(r: &mut Rig, port: usize, mut burst: ArrayVec<HeapBuf, MAX_BURST>) -> Outcome {
    r.p.process(port, &mut burst, 0, &mut r.out);
    let mut tx: Vec<Vec<Vec<u8>>> = (0..2)
        .map(|port| r.tx(port).into_iter().map(without_outer_id).collect())
        .collect();
    tx.iter_mut().for_each(|t| t.sort());
    let mut punts: Vec<String> = r
        .out
        .punts
        .drain(..)
        .map(|(p, b)| format!("{p:?} {:02x?}", b.to_vec()))
        .collect();
    punts.sort();
    let mut events: Vec<String> = r.out.events.drain(..).map(|e| format!("{e:?}")).collect();
    events.sort();
    let counts = r.p.counts().nonzero().map(|(r, n)| (r.name(), n)).collect();
    Outcome {
        tx,
        punts,
        events,
        counts,
    }
}

/// One LISP data frame of the lean-decapsulation comparison: `frame` (what an ITR sent)
/// changed by `kind` into every case the lean path must hand over — locator-status-bits, an
/// outer TTL that ran out, CE over Not-ECT, an unknown instance, a fragment, another
/// destination or MAC, a UDP checksum, a wrong outer checksum, N with V, a bad inner header, a
/// cut frame — or left as it is; with Ethernet padding when `v` says so.
fn lean_decap_case(mut f: Vec<u8>, kind: u8, v: u8) -> HeapBuf {
    match kind {
        4 => {
            f[42] |= 0x40;
            f[49] = v;
        }
        5 => edit_outer(&mut f, |h| h[8] = v % 2),
        6 => edit_outer(&mut f, |h| h[1] |= 3),
        7 => f[46] ^= 0x55,
        8 => edit_outer(&mut f, |h| h[6] |= 0x20),
        9 => edit_outer(&mut f, |h| h[19] ^= 1),
        10 => f[40] = 0x12,
        11 => f[24] ^= 0x11,
        12 => f[42] |= 0x90,
        13 => f[0..6].copy_from_slice(&HOST_MAC),
        14 => f[50] = 0x55,
        15 => f.truncate(f.len() - 10),
        _ => {}
    }
    if v & 0x10 != 0 {
        f.extend_from_slice(&[0xee; 6]);
    }
    HeapBuf::new(&f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]
    /// The lean decapsulation (IPv4 in IPv4 without locator-status-bits) does exactly what the
    /// general path does, for bursts mixing it with every case it must hand over.
    #[test]
    fn the_lean_decapsulation_matches_the_general_path(
        cases in proptest::collection::vec((0u8..20, any::<u8>(), 0u8..3), 1..=MAX_BURST),
    ) {
        // What an ITR sends for hosts behind the peer: with and without a neighbour entry,
        // and off the EID subnet; DSCP and ECN from `v`.
        let mut itr = rig(plan(OUR_RLOC, "10.1.1.5/24", MissPolicy::Drop));
        itr.map("10.0.0.0/8", &[peer(PEER_RLOC)]);
        let inner: Vec<Vec<u8>> = cases
            .iter()
            .map(|&(_, v, d)| {
                let dst = [Ipv4Addr::new(10, 2, 0, 5), Ipv4Addr::new(10, 2, 0, 6), Ipv4Addr::new(10, 9, 0, 1)];
                eth(EID_MAC, HOST_MAC, 0x0800, &ipv4_udp(Ipv4Addr::new(10, 1, 1, 10), dst[usize::from(d)], u16::from(v), 80, 64, v, v & 1 == 0, 30))
            })
            .collect();
        itr.run(EID, &inner, 0);
        let sent: Vec<Vec<u8>> = itr
            .tx(RLOC)
            .into_iter()
            .map(|mut f| {
                f[0..6].copy_from_slice(&RLOC_MAC);
                f
            })
            .collect();
        prop_assert_eq!(sent.len(), cases.len());
        // Three rounds of the same burst: the first fills the lean path's memo of next hops
        // per host, the later ones are sent from it.
        let mut results = Vec::new();
        for lean in [true, false] {
            let mut etr = peer_etr([0x02, 0, 0, 0, 0xbb, 0xbb], |_| {});
            etr.p.set_lean_path(lean);
            let rounds: Vec<Outcome> = (0..3)
                .map(|_| {
                    let burst = sent
                        .iter()
                        .zip(&cases)
                        .map(|(f, &(k, v, _))| lean_decap_case(f.clone(), k, v))
                        .collect();
                    outcome(&mut etr, RLOC, burst)
                })
                .collect();
            results.push(rounds);
        }
        for (l, g) in results[0].iter().zip(&results[1]) {
            same(l, g)?;
        }
    }
}
