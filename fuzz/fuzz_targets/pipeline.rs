//! Any frame on either port of an appliance with a mapping, a neighbour and a hold queue: the
//! data-plane pipeline never panics, and every frame is sent, punted, held or counted as a drop.
#![no_main]

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;

use arrayvec::ArrayVec;
use libfuzzer_sys::fuzz_target;
use pxtr::config::{MissPolicy, PortRole};
use pxtr::dataplane::{Functions, HeapBuf, Outputs, Pipeline, Plan, PortPlan, Reason};
use pxtr::dpdk::MAX_BURST;
use pxtr::mapcache::{
    map_cache, neighbor_table, Locator, MapCacheConfig, MapCacheWriter, Mapping, Neighbor,
    NeighborWriter,
};

struct Rig {
    _cache: MapCacheWriter,
    _neighbors: NeighborWriter,
    p: Pipeline<HeapBuf>,
    now: u64,
}

fn rig() -> Rig {
    let port = |name: &str, role, id, mac, addr: &str, gw: Option<&str>| PortPlan {
        name: name.into(),
        role,
        dpdk_port: id,
        mac,
        addresses: vec![addr.parse().unwrap()],
        mtu: 1500,
        gateway: gw.map(|g| g.parse().unwrap()),
        iid: 0,
        dynamic_eids: Vec::new(),
        extended: vec!["10.1.1.0/25".parse().unwrap()],
    };
    let plan = Plan {
        ports: vec![
            port(
                "eid0",
                PortRole::Eid,
                0,
                [2, 0, 0, 0, 0, 1],
                "10.1.1.5/24",
                Some("10.1.1.1"),
            ),
            port(
                "rloc0",
                PortRole::Rloc,
                1,
                [2, 0, 0, 0, 0, 2],
                "192.0.2.1/24",
                Some("192.0.2.254"),
            ),
        ],
        rlocs: vec!["192.0.2.1".parse().unwrap()],
        petrs: vec!["203.0.113.5".parse().unwrap()],
        functions: Functions {
            itr: true,
            etr: true,
            pitr: true,
            petr: true,
        },
        fragment: true,
        miss_policy: MissPolicy::Queue,
        hold_capacity: 8,
        hold_timeout_ms: 50,
        miss_interval_ms: 1000,
        miss_reports_per_sec: 100,
    };
    let mut cache = map_cache(MapCacheConfig {
        capacity: 100,
        max_readers: 1,
        max_iids: 2,
        v4_root_bits: 16,
        v6_root_bits: 16,
        v4_groups: 256,
        v6_groups: 1024,
    })
    .unwrap();
    let mut m = Mapping::default();
    m.locators.push(Locator {
        address: "198.51.100.1".parse().unwrap(),
        priority: 1,
        weight: 100,
        reachable: true,
    });
    cache
        .insert(0, "10.2.0.0/16".parse().unwrap(), m, 0)
        .unwrap();
    let mut neighbors = neighbor_table(16, 1).unwrap();
    for (ip, port) in [("192.0.2.254", 1), ("10.1.1.1", 0), ("10.1.1.10", 0)] {
        neighbors
            .insert(
                ip.parse::<IpAddr>().unwrap(),
                Neighbor {
                    mac: [2, 0, 0, 0, 9, 9],
                    port,
                },
            )
            .unwrap();
    }
    let p = Pipeline::new(
        Arc::new(plan),
        cache.reader().unwrap(),
        neighbors.reader().unwrap(),
    );
    Rig {
        _cache: cache,
        _neighbors: neighbors,
        p,
        now: 0,
    }
}

thread_local! {
    static RIG: RefCell<Rig> = RefCell::new(rig());
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    RIG.with(|r| {
        let r = &mut *r.borrow_mut();
        r.now += u64::from(sel >> 1);
        let mut burst: ArrayVec<HeapBuf, MAX_BURST> = ArrayVec::new();
        burst.push(HeapBuf::new(frame));
        let mut out = Outputs::new(2);
        r.p.process(usize::from(sel & 1), &mut burst, r.now, &mut out);
        let c = r.p.take_counts();
        let tx: usize = out.tx.iter().map(|t| t.len()).sum();
        let released = c.get(Reason::HeldReleased) as usize;
        let expired = c.get(Reason::DropHoldExpired) as usize;
        let newly_held = c.get(Reason::Held) as usize;
        // In: the frame and the held packets released or expired. Out: each exactly one way
        // (a fragmented packet leaves as several frames, so those calls are not counted).
        if c.get(Reason::Fragmented) == 0 {
            assert_eq!(
                tx + out.punts.len() + newly_held + c.drops() as usize,
                1 + released + expired,
                "{:?}",
                c.nonzero().collect::<Vec<_>>()
            );
        }
    });
});
