//! Map-cache and neighbour table: agreement with a naive LPM, reclamation, capacity and
//! eviction, TTL, RLOC selection. Concurrency stress tests are in tests/mapcache_concurrent.rs.

// `drop(snapshot)` marks where a worker's burst ends, for the reader of these tests.
#![allow(clippy::drop_non_drop)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;
use proptest::prelude::*;
use pxtr::mapcache::{
    map_cache, neighbor_table, Locator, MapCacheConfig, MapCacheError, Mapping, NegativeAction,
    Neighbor, Resolution,
};

fn small_config(root4: u8, root6: u8) -> MapCacheConfig {
    MapCacheConfig {
        capacity: 10_000,
        max_readers: 4,
        max_iids: 4,
        v4_root_bits: root4,
        v6_root_bits: root6,
        v4_groups: 4096,
        v6_groups: 16384,
    }
}

fn loc(a: IpAddr, priority: u8, weight: u8, reachable: bool) -> Locator {
    Locator {
        address: a,
        priority,
        weight,
        reachable,
    }
}

/// A mapping whose single RLOC names `tag`, so a lookup tells which entry answered.
fn tagged(tag: u32) -> Mapping {
    let mut m = Mapping::default();
    m.locators
        .push(loc(IpAddr::V4(Ipv4Addr::from(tag)), 1, 100, true));
    m
}

// ---- agreement with a naive reference ------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Insert(u32, IpNet, u32),
    Remove(u32, IpNet),
    Lookup(u32, IpAddr),
}

/// Addresses from a few bases, so prefixes nest and collide often.
fn addr4() -> impl Strategy<Value = Ipv4Addr> {
    (0usize..4, any::<u32>(), 0u32..33).prop_map(|(b, r, keep)| {
        let base = [0x0A00_0000u32, 0xC0A8_0100, 0x0A0B_0000, 0xFFFF_FF00][b];
        let mask = if keep == 0 {
            0
        } else {
            u32::MAX >> (32 - keep)
        };
        Ipv4Addr::from(base ^ (r & mask))
    })
}

fn addr6() -> impl Strategy<Value = Ipv6Addr> {
    (0usize..3, any::<u128>(), 0u32..129).prop_map(|(b, r, keep)| {
        let base = [
            0x2001_0db8_0000_0000_0000_0000_0000_0000u128,
            0x2001_0db8_00ff_0000_0000_0000_0000_0000,
            0xfd00_0000_0000_0000_0000_0000_0000_0001,
        ][b];
        let mask = if keep == 0 {
            0
        } else {
            u128::MAX >> (128 - keep)
        };
        Ipv6Addr::from(base ^ (r & mask))
    })
}

fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (addr4(), 0u8..=32).prop_map(|(a, l)| IpNet::new(a.into(), l).unwrap().trunc()),
        (addr6(), 0u8..=128).prop_map(|(a, l)| IpNet::new(a.into(), l).unwrap().trunc()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..3, prefix(), any::<u32>()).prop_map(|(i, p, t)| Op::Insert(i, p, t)),
        2 => (0u32..3, prefix()).prop_map(|(i, p)| Op::Remove(i, p)),
        4 => (0u32..3, prop_oneof![addr4().prop_map(IpAddr::V4), addr6().prop_map(IpAddr::V6)])
            .prop_map(|(i, a)| Op::Lookup(i, a)),
    ]
}

/// The naive LPM: scan every rule.
fn reference(rules: &[(u32, IpNet, u32)], iid: u32, a: IpAddr) -> Resolution {
    rules
        .iter()
        .filter(|(i, p, _)| *i == iid && p.contains(&a))
        .max_by_key(|(_, p, _)| p.prefix_len())
        .map_or(Resolution::Miss, |(_, _, t)| {
            Resolution::Encapsulate(IpAddr::V4(Ipv4Addr::from(*t)))
        })
}

fn check_agreement(ops: Vec<Op>, root4: u8, root6: u8) -> Result<(), TestCaseError> {
    let mut w = map_cache(small_config(root4, root6)).unwrap();
    let mut r = w.reader().unwrap();
    let mut rules: Vec<(u32, IpNet, u32)> = Vec::new();
    // IIDs used by the ops, mapped to IID values far apart.
    let iid = |i: u32| i * 1000 + 7;
    for op in ops {
        match op {
            Op::Insert(i, p, t) => {
                w.insert(iid(i), p, tagged(t), 0).unwrap();
                rules.retain(|(ri, rp, _)| !(*ri == i && *rp == p));
                rules.push((i, p, t));
            }
            Op::Remove(i, p) => {
                let had = rules.iter().any(|(ri, rp, _)| *ri == i && *rp == p);
                prop_assert_eq!(w.remove(iid(i), p).is_some(), had);
                rules.retain(|(ri, rp, _)| !(*ri == i && *rp == p));
            }
            Op::Lookup(i, a) => {
                let s = r.snapshot();
                let want = reference(&rules, i, a);
                prop_assert_eq!(s.resolve(iid(i), a, 0), want, "lookup {} in {}", a, i);
                // The batch path agrees with the single one.
                let mut out = [Resolution::Drop; 3];
                match a {
                    IpAddr::V4(v4) => s.resolve_v4(iid(i), &[v4; 3], &[0; 3], &mut out),
                    IpAddr::V6(v6) => s.resolve_v6(iid(i), &[v6; 3], &[0; 3], &mut out),
                }
                prop_assert_eq!(out, [want; 3]);
            }
        }
        // Every rule still answers for its own first address.
        prop_assert_eq!(w.len(), rules.len());
    }
    let s = r.snapshot();
    for (i, p, _) in &rules {
        prop_assert_eq!(
            s.resolve(iid(*i), p.addr(), 0),
            reference(&rules, *i, p.addr())
        );
        // The batch paths (root-first for a 24-bit IPv4 root, level by level otherwise) on
        // the first and last address of every rule, mixed in one burst.
        let (first, last) = (p.network(), p.broadcast());
        let want = [
            reference(&rules, *i, first),
            reference(&rules, *i, last),
            reference(&rules, *i, first),
        ];
        let mut out = [Resolution::Drop; 3];
        match (first, last) {
            (IpAddr::V4(f), IpAddr::V4(l)) => s.resolve_v4(iid(*i), &[f, l, f], &[0; 3], &mut out),
            (IpAddr::V6(f), IpAddr::V6(l)) => s.resolve_v6(iid(*i), &[f, l, f], &[0; 3], &mut out),
            _ => {}
        }
        prop_assert_eq!(out, want, "batch lookups in {} of {}", p, i);
    }
    drop(s);
    // Removing everything leaves no group and no locator set in use.
    for (i, p, _) in rules.clone() {
        prop_assert!(w.remove(iid(i), p).is_some());
    }
    let m = w.memory();
    prop_assert_eq!(m.groups_in_use, (0, 0));
    prop_assert_eq!(m.sets_in_use, 0);
    prop_assert!(w.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn lpm_agrees_with_naive_reference_root16(ops in proptest::collection::vec(op(), 1..300)) {
        check_agreement(ops, 16, 16)?;
    }
}

proptest! {
    // A 24-bit root is 64 MiB per instance-ID: fewer cases, longer sequences.
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn lpm_agrees_with_naive_reference_root24_root8(ops in proptest::collection::vec(op(), 1..800)) {
        check_agreement(ops, 24, 8)?;
    }
}

// ---- negative entries, misses, IIDs -------------------------------------------------------

#[test]
fn negative_entries_and_misses() {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    let p = |s: &str| s.parse::<IpNet>().unwrap();
    w.insert(
        1,
        p("10.0.0.0/8"),
        Mapping::negative(NegativeAction::NativelyForward, None),
        0,
    )
    .unwrap();
    w.insert(
        1,
        p("10.1.0.0/16"),
        Mapping::negative(NegativeAction::Drop, None),
        0,
    )
    .unwrap();
    w.insert(
        1,
        p("10.1.2.0/24"),
        Mapping::negative(NegativeAction::SendMapRequest, None),
        0,
    )
    .unwrap();
    let mut unusable = Mapping::default();
    unusable
        .locators
        .push(loc("192.0.2.1".parse().unwrap(), 255, 1, true));
    unusable
        .locators
        .push(loc("192.0.2.2".parse().unwrap(), 1, 1, false));
    w.insert(1, p("10.1.2.128/25"), unusable, 0).unwrap();
    let s = r.snapshot();
    let a = |x: &str| x.parse::<IpAddr>().unwrap();
    assert_eq!(s.resolve(1, a("10.9.9.9"), 1), Resolution::NativelyForward);
    assert_eq!(s.resolve(1, a("10.1.9.9"), 1), Resolution::Drop);
    assert_eq!(s.resolve(1, a("10.1.2.3"), 1), Resolution::SendMapRequest);
    assert_eq!(s.resolve(1, a("10.1.2.200"), 1), Resolution::NoUsableRloc);
    assert_eq!(s.resolve(1, a("11.0.0.1"), 1), Resolution::Miss);
    // Another instance-ID does not see IID 1's entries.
    assert_eq!(s.resolve(2, a("10.9.9.9"), 1), Resolution::Miss);
    assert_eq!(s.resolve(1, a("2001:db8::1"), 1), Resolution::Miss);
}

#[test]
fn too_many_iids_and_readers_are_refused() {
    let mut cfg = small_config(16, 16);
    cfg.max_iids = 2;
    cfg.max_readers = 1;
    let mut w = map_cache(cfg).unwrap();
    let p: IpNet = "10.0.0.0/8".parse().unwrap();
    w.insert(1, p, tagged(1), 0).unwrap();
    w.insert(2, p, tagged(2), 0).unwrap();
    assert_eq!(
        w.insert(3, p, tagged(3), 0),
        Err(MapCacheError::TooManyIids { max: 2 })
    );
    let r = w.reader().unwrap();
    assert!(matches!(
        w.reader(),
        Err(MapCacheError::TooManyReaders { max: 1 })
    ));
    drop(r);
    assert!(w.reader().is_ok(), "a dropped reader gives its slot back");
}

#[test]
fn bad_configs_are_refused() {
    for cfg in [
        MapCacheConfig {
            capacity: 0,
            ..small_config(16, 16)
        },
        MapCacheConfig {
            v4_root_bits: 20,
            ..small_config(16, 16)
        },
        MapCacheConfig {
            max_readers: 0,
            ..small_config(16, 16)
        },
    ] {
        assert!(matches!(
            map_cache(cfg),
            Err(MapCacheError::InvalidConfig(_))
        ));
    }
}

#[test]
fn full_group_pool_is_an_error_not_a_partial_insert() {
    let mut cfg = small_config(16, 16);
    cfg.v4_groups = 2;
    let mut w = map_cache(cfg).unwrap();
    let mut r = w.reader().unwrap();
    w.insert(0, "10.0.0.0/24".parse().unwrap(), tagged(1), 0)
        .unwrap(); // 1 group
    w.insert(0, "10.0.0.1/32".parse().unwrap(), tagged(2), 0)
        .unwrap(); // 2 groups
    assert_eq!(
        w.insert(0, "10.9.0.0/24".parse().unwrap(), tagged(3), 0),
        Err(MapCacheError::TableFull { family: "IPv4" })
    );
    let s = r.snapshot();
    assert_eq!(
        s.resolve(0, "10.9.0.1".parse().unwrap(), 0),
        Resolution::Miss
    );
    assert_eq!(w.len(), 2);
}

// ---- reclamation --------------------------------------------------------------------------

#[test]
fn nothing_is_reused_while_a_reader_may_see_it() {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    let p: IpNet = "10.1.2.0/24".parse().unwrap();
    w.insert(0, p, tagged(1), 0).unwrap();
    let s = r.snapshot();
    assert!(s.entry_id_v4(0, 0x0A01_0203).is_some());
    w.remove(0, p).unwrap();
    // The reader is still in its burst: the entry id, its locator set and the group wait.
    assert_eq!(w.reclaim(), 0);
    assert_eq!(w.memory().waiting, 3);
    drop(s);
    // Not even after many more updates.
    for i in 0..10u32 {
        let q: IpNet = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0B00_0000 + (i << 8))), 24).unwrap();
        w.insert(0, q, tagged(100 + i), 0).unwrap();
        w.remove(0, q).unwrap();
    }
    assert_eq!(w.reclaim(), 0);
    assert_eq!(w.memory().waiting, 33);
    // Its next burst releases everything.
    let _s = r.snapshot();
    assert_eq!(w.reclaim(), 33);
    assert_eq!(w.memory().waiting, 0);
}

#[test]
fn an_offline_reader_does_not_hold_reclamation() {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    let p: IpNet = "2001:db8::/48".parse().unwrap();
    w.insert(0, p, tagged(1), 0).unwrap();
    drop(r.snapshot());
    r.offline();
    w.remove(0, p).unwrap();
    assert!(w.reclaim() > 0);
    assert_eq!(w.memory().waiting, 0);
}

#[test]
fn memory_comes_back_after_deletes() {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    let prefixes: Vec<IpNet> = (0..3000u32)
        .map(|i| {
            if i % 2 == 0 {
                IpNet::new(
                    IpAddr::V4(Ipv4Addr::from(0x0A00_0000 | (i << 9))),
                    23 + (i % 10) as u8,
                )
            } else {
                IpNet::new(
                    IpAddr::V6(Ipv6Addr::from(0x2001_0db8u128 << 96 | u128::from(i) << 64)),
                    64,
                )
            }
            .unwrap()
        })
        .collect();
    let fill = |w: &mut pxtr::mapcache::MapCacheWriter| {
        for (i, p) in prefixes.iter().enumerate() {
            w.insert(0, *p, tagged(i as u32 % 50), 0).unwrap();
        }
    };
    fill(&mut w);
    let full = w.memory();
    assert!(full.groups_in_use.0 > 0 && full.groups_in_use.1 > 0);
    for p in &prefixes {
        w.remove(0, *p).unwrap();
    }
    // The control loop's reclaim publishes a new epoch; the worker's next burst reports it;
    // the next reclaim reuses everything.
    w.reclaim();
    drop(r.snapshot());
    w.reclaim();
    let empty = w.memory();
    assert_eq!(
        (empty.groups_in_use, empty.sets_in_use, empty.waiting),
        ((0, 0), 0, 0)
    );
    // Refilling reuses what the deletes gave back: nothing more is allocated.
    fill(&mut w);
    assert_eq!(w.memory().reader_bytes, full.reader_bytes);
    assert_eq!(w.memory().groups_in_use, full.groups_in_use);
}

// ---- capacity, LRU eviction, TTL, usage ---------------------------------------------------

#[test]
fn full_cache_evicts_the_least_recently_used_entry() {
    let mut cfg = small_config(16, 16);
    cfg.capacity = 4;
    let mut w = map_cache(cfg).unwrap();
    let mut r = w.reader().unwrap();
    let p = |i: u32| IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + (i << 16))), 16).unwrap();
    for i in 0..4 {
        w.insert(0, p(i), tagged(i), i.into()).unwrap();
    }
    // Entry 0 is the oldest by insertion, but it is used; entry 1 is not.
    {
        let s = r.snapshot();
        for _ in 0..5 {
            assert_ne!(s.resolve(0, p(0).addr(), 0), Resolution::Miss);
        }
        assert_ne!(s.resolve(0, p(2).addr(), 0), Resolution::Miss);
        assert_ne!(s.resolve(0, p(3).addr(), 0), Resolution::Miss);
    }
    w.collect_usage(10);
    assert_eq!(w.usage(0, p(0)).unwrap().hits, 5);
    assert_eq!(w.usage(0, p(0)).unwrap().last_used_ms, 10);
    assert_eq!(w.usage(0, p(1)).unwrap().last_used_ms, 1);
    let out = w.insert(0, p(4), tagged(4), 11).unwrap();
    assert_eq!(out.evicted, Some((0, p(1))));
    assert_eq!(w.len(), 4);
    let s = r.snapshot();
    assert_eq!(s.resolve(0, p(1).addr(), 0), Resolution::Miss);
    assert_ne!(s.resolve(0, p(4).addr(), 0), Resolution::Miss);
    // Replacing an existing prefix never evicts.
    assert_eq!(w.insert(0, p(4), tagged(5), 12).unwrap().evicted, None);
}

#[test]
fn ttl_expiry_is_driven_by_the_control_core() {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    let short: IpNet = "10.0.0.0/8".parse().unwrap();
    let long: IpNet = "2001:db8::/32".parse().unwrap();
    let mut m = tagged(1);
    m.ttl = Some(Duration::from_secs(60));
    w.insert(0, short, m.clone(), 1_000).unwrap();
    m.ttl = Some(Duration::from_secs(3600));
    w.insert(0, long, m.clone(), 1_000).unwrap();
    w.insert(0, "10.1.0.0/16".parse().unwrap(), tagged(2), 1_000)
        .unwrap(); // no TTL
    let mut gone = Vec::new();
    w.expire(60_999, &mut gone);
    assert!(gone.is_empty());
    w.expire(61_000, &mut gone);
    assert_eq!(gone, vec![(0, short)]);
    // A refresh (new Map-Reply) restarts the TTL.
    m.ttl = Some(Duration::from_secs(10));
    w.insert(0, long, m, 2_000_000).unwrap();
    w.expire(2_009_999, &mut gone);
    assert_eq!(gone.len(), 1);
    w.expire(2_010_000, &mut gone);
    assert_eq!(gone, vec![(0, short), (0, long)]);
    let s = r.snapshot();
    assert_eq!(
        s.resolve(0, "10.2.0.1".parse().unwrap(), 0),
        Resolution::Miss
    );
    assert_ne!(
        s.resolve(0, "10.1.0.1".parse().unwrap(), 0),
        Resolution::Miss
    );
    assert_eq!(w.len(), 1);
}

#[test]
fn usage_sums_every_worker() {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r1 = w.reader().unwrap();
    let mut r2 = w.reader().unwrap();
    let p: IpNet = "10.0.0.0/8".parse().unwrap();
    w.insert(0, p, tagged(1), 0).unwrap();
    let a = [Ipv4Addr::new(10, 1, 1, 1); 32];
    let mut out = [Resolution::Miss; 32];
    r1.snapshot().resolve_v4(0, &a, &[7; 32], &mut out);
    r2.snapshot().resolve_v4(0, &a[..10], &[7; 10], &mut out);
    w.collect_usage(5);
    assert_eq!(w.usage(0, p).unwrap().hits, 42);
    w.collect_usage(6);
    assert_eq!(
        w.usage(0, p).unwrap(),
        pxtr::mapcache::Usage {
            hits: 42,
            last_used_ms: 5
        }
    );
}

// ---- RLOC selection (RFC 9300) ------------------------------------------------------------

fn spread(m: Mapping, flows: u32) -> std::collections::HashMap<IpAddr, u32> {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    w.insert(0, "10.0.0.0/8".parse().unwrap(), m, 0).unwrap();
    let s = r.snapshot();
    let mut count = std::collections::HashMap::new();
    for f in 0..flows {
        // A well-mixed flow hash, as the pipeline computes from the 5-tuple.
        let h = f.wrapping_mul(0x9E37_79B9).rotate_left(13) ^ f;
        match s.resolve(0, "10.1.2.3".parse().unwrap(), h) {
            Resolution::Encapsulate(a) => *count.entry(a).or_insert(0) += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    count
}

fn a4(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, i))
}

#[test]
fn rlocs_share_flows_in_proportion_to_weight() {
    let mut m = Mapping::default();
    for (i, w) in [(1, 30), (2, 20), (3, 20), (4, 30)] {
        m.locators.push(loc(a4(i), 1, w, true));
    }
    let c = spread(m, 100_000);
    for (i, w) in [(1, 30u32), (2, 20), (3, 20), (4, 30)] {
        let got = c[&a4(i)];
        assert!(
            got.abs_diff(w * 1000) < 1000,
            "RLOC {i}: {got} flows for weight {w}"
        );
    }
}

#[test]
fn only_reachable_rlocs_of_the_best_priority_are_used_never_255() {
    let mut m = Mapping::default();
    m.locators.push(loc(a4(1), 0, 50, false)); // best priority but unreachable
    m.locators.push(loc(a4(2), 5, 10, true));
    m.locators
        .push(loc(IpAddr::V6("2001:db8::2".parse().unwrap()), 5, 30, true));
    m.locators.push(loc(a4(4), 7, 100, true)); // worse priority
    m.locators.push(loc(a4(5), 255, 100, true)); // never for unicast
    let c = spread(m, 40_000);
    assert_eq!(c.len(), 2, "{c:?}");
    let v6 = c[&IpAddr::V6("2001:db8::2".parse().unwrap())];
    assert!(v6.abs_diff(30_000) < 600, "{c:?}");
    let mut only255 = Mapping::default();
    only255.locators.push(loc(a4(5), 255, 100, true));
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    w.insert(0, "10.0.0.0/8".parse().unwrap(), only255, 0)
        .unwrap();
    assert_eq!(r.snapshot().resolve(0, a4(0), 1), Resolution::Miss);
    assert_eq!(
        r.snapshot().resolve(0, "10.0.0.1".parse().unwrap(), 1),
        Resolution::NoUsableRloc
    );
}

#[test]
fn zero_weights_share_equally() {
    let mut m = Mapping::default();
    for i in 1..=4 {
        m.locators.push(loc(a4(i), 1, 0, true));
    }
    let c = spread(m, 40_000);
    assert_eq!(c.len(), 4);
    assert!(c.values().all(|n| n.abs_diff(10_000) < 500), "{c:?}");
}

#[test]
fn a_flow_sticks_to_its_rloc() {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    let mut m = Mapping::default();
    for i in 1..=8 {
        m.locators.push(loc(a4(i), 1, 10 * i, true));
    }
    let p: IpNet = "10.0.0.0/8".parse().unwrap();
    w.insert(0, p, m.clone(), 0).unwrap();
    let eid: IpAddr = "10.1.2.3".parse().unwrap();
    let first: Vec<_> = (0..1000u32)
        .map(|h| r.snapshot().resolve(0, eid, h.wrapping_mul(2_654_435_761)))
        .collect();
    // Same flow, later bursts, another worker, a refreshed identical mapping: same RLOC.
    w.insert(0, p, m, 5).unwrap();
    let mut r2 = w.reader().unwrap();
    for (h, want) in (0..1000u32).zip(&first) {
        let h = h.wrapping_mul(2_654_435_761);
        assert_eq!(r.snapshot().resolve(0, eid, h), *want);
        assert_eq!(r2.snapshot().resolve(0, eid, h), *want);
    }
    // More than one RLOC is in use (the hash really spreads).
    let distinct: std::collections::HashSet<_> = first.iter().collect();
    assert_eq!(distinct.len(), 8);
}

// ---- neighbour table ----------------------------------------------------------------------

#[test]
fn neighbor_table_insert_update_remove() {
    let mut w = neighbor_table(4, 2).unwrap();
    let mut r = w.reader().unwrap();
    let n1 = Neighbor {
        mac: [2, 0, 0, 0, 0, 1],
        port: 1,
    };
    let n2 = Neighbor {
        mac: [0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54],
        port: 0xffff,
    };
    let v4: IpAddr = "192.0.2.10".parse().unwrap();
    let v6: IpAddr = "fe80::1".parse().unwrap();
    w.insert(v4, n1).unwrap();
    w.insert(v6, n2).unwrap();
    {
        let s = r.snapshot();
        assert_eq!(s.lookup(v4), Some(n1));
        assert_eq!(s.lookup(v6), Some(n2));
        assert_eq!(s.lookup("192.0.2.11".parse().unwrap()), None);
        assert_eq!(s.lookup("fe80::2".parse().unwrap()), None);
    }
    w.insert(v4, n2).unwrap();
    assert_eq!(r.snapshot().lookup(v4), Some(n2));
    assert_eq!(w.remove(v4), Some(n1).map(|_| n2));
    assert_eq!(r.snapshot().lookup(v4), None);
    assert_eq!(w.len(), 1);
    for i in 0..3u8 {
        w.insert(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), n1)
            .unwrap();
    }
    assert_eq!(
        w.insert("10.0.0.9".parse().unwrap(), n1),
        Err(MapCacheError::NeighborTableFull { capacity: 4 })
    );
}

/// The flat tables behind the map-cache: zeroed, a power-of-two length, and an index that
/// wraps instead of going out of range (so no lookup can panic on a corrupt slot).
#[test]
fn atomic_table_is_zeroed_and_masks_indices() {
    use pxtr::dpdk::AtomicTable;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    let t = AtomicTable::<AtomicU32>::zeroed(1000, false).expect("map");
    assert_eq!(t.len(), 1024);
    assert!(t.iter().all(|a| a.load(Ordering::Relaxed) == 0));
    t.at(5).store(7, Ordering::Relaxed);
    assert_eq!(t.at(5 + 1024).load(Ordering::Relaxed), 7);
    assert_eq!(t.at(usize::MAX).load(Ordering::Relaxed), 0);
    t.at(usize::MAX).store(9, Ordering::Relaxed);
    assert_eq!(t[1023].load(Ordering::Relaxed), 9);
    // Large, with hugepage advice: reserved, not committed; still zero everywhere we look.
    let big = AtomicTable::<AtomicU64>::zeroed((64 << 20) / 8, true).expect("map");
    assert_eq!(big.reserved_bytes(), 64 << 20);
    assert_eq!(big.at(big.len() - 1).load(Ordering::Relaxed), 0);
    assert_eq!(
        AtomicTable::<AtomicU32>::zeroed(0, false)
            .expect("map")
            .len(),
        1
    );
}

/// Replacing a mapping in place: an identical refresh (new TTL/version) keeps the reader's
/// answer and the locator set; a changed RLOC set is seen by the next burst; a change to a
/// negative entry and back works; no set leaks.
#[test]
fn replace_in_place_identical_and_changed() {
    let mut w = map_cache(small_config(16, 16)).unwrap();
    let mut r = w.reader().unwrap();
    let p: IpNet = "10.0.0.0/8".parse().unwrap();
    let eid: IpAddr = "10.9.9.9".parse().unwrap();
    let mut m = tagged(1);
    m.ttl = Some(Duration::from_secs(10));
    assert!(!w.insert(0, p, m.clone(), 0).unwrap().replaced);
    let before = r.snapshot().resolve(0, eid, 3);
    assert!(matches!(before, Resolution::Encapsulate(_)));
    // Identical locators, new TTL and version: same answer, TTL restarted, one set.
    m.ttl = Some(Duration::from_secs(100));
    m.version = 7;
    assert!(w.insert(0, p, m.clone(), 5_000).unwrap().replaced);
    assert_eq!(r.snapshot().resolve(0, eid, 3), before);
    assert_eq!(w.get(0, p).unwrap().version, 7);
    let mut gone = Vec::new();
    w.expire(10_000, &mut gone);
    assert!(gone.is_empty(), "the refresh restarted the TTL");
    assert_eq!(w.memory().sets_in_use, 1);
    // Other locators: the next burst sees them.
    assert!(w.insert(0, p, tagged(2), 5_000).unwrap().replaced);
    let after = r.snapshot().resolve(0, eid, 3);
    assert!(matches!(after, Resolution::Encapsulate(_)));
    assert_ne!(after, before);
    // To a negative entry and back.
    w.insert(0, p, Mapping::negative(NegativeAction::Drop, None), 6_000)
        .unwrap();
    assert_eq!(r.snapshot().resolve(0, eid, 3), Resolution::Drop);
    w.insert(0, p, tagged(1), 7_000).unwrap();
    assert_eq!(r.snapshot().resolve(0, eid, 3), before);
    drop(r);
    w.reclaim();
    assert_eq!(w.memory().sets_in_use, 1);
    assert_eq!(w.len(), 1);
}

// ---- packed results (the data plane's IPv4 path) ------------------------------------------

fn arb_mapping() -> impl Strategy<Value = Mapping> {
    let locator = (any::<bool>(), any::<u32>(), 1u8..4, 0u8..4, any::<bool>()).prop_map(
        |(v6, a, priority, weight, reachable)| {
            let address = if v6 {
                IpAddr::V6(Ipv6Addr::from(u128::from(a) | 0x2001_0db8 << 96))
            } else {
                IpAddr::V4(Ipv4Addr::from(a))
            };
            loc(address, priority, weight, reachable)
        },
    );
    (proptest::collection::vec(locator, 0..5), 0u8..3).prop_map(|(locs, act)| {
        let mut m = Mapping::default();
        m.locators.extend(locs);
        m.action = [
            NegativeAction::NativelyForward,
            NegativeAction::Drop,
            NegativeAction::SendMapRequest,
        ][usize::from(act)];
        m
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `resolve_v4_packed`, unpacked, gives what `resolve_v4` gives for every packet of a burst
    /// (runs of one destination included), and counts the same hits.
    #[test]
    fn packed_results_agree_with_resolutions(
        maps in proptest::collection::vec((0u32..8, arb_mapping()), 1..6),
        burst in proptest::collection::vec((0u32..10, any::<u32>(), 1usize..4), 1..24),
    ) {
        let mut w = map_cache(small_config(24, 16)).unwrap();
        let mut r1 = w.reader().unwrap();
        let mut r2 = w.reader().unwrap();
        let mut prefixes = Vec::new();
        for (i, (n, m)) in maps.into_iter().enumerate() {
            // Nested prefixes of 10.0.0.0/8: /8 + 2 * n bits, each the i-th of its length.
            let len = 8 + 2 * n as u8 + 1;
            let net = (10u32 << 24) | ((i as u32) << (32 - len));
            let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(net)), len).unwrap().trunc();
            if w.insert(0, p, m, 0).is_ok() {
                prefixes.push(p);
            }
        }
        // Runs of the same destination and hash, as bursts of one flow have them.
        let mut eids = Vec::new();
        let mut hashes = Vec::new();
        for (d, h, run) in burst {
            let a = (10u32 << 24) | d.wrapping_mul(0x0135_7913) >> 8;
            for k in 0..run {
                eids.push(a);
                hashes.push(h ^ (k as u32 & 1));
            }
        }
        let n = eids.len().min(64);
        let v4: Vec<Ipv4Addr> = eids[..n].iter().map(|a| Ipv4Addr::from(*a)).collect();
        let mut full = vec![Resolution::Miss; n];
        let mut packed = vec![pxtr::mapcache::Packed::MISS; n];
        r1.snapshot().resolve_v4(0, &v4, &hashes[..n], &mut full);
        w.collect_usage(1);
        let first: Vec<u64> = prefixes.iter().map(|p| w.usage(0, *p).map_or(0, |u| u.hits)).collect();
        // Hits per prefix by a naive longest match over the packets.
        for (p, h1) in prefixes.iter().zip(&first) {
            let want = v4
                .iter()
                .filter(|a| {
                    prefixes
                        .iter()
                        .filter(|q| q.contains(&IpAddr::V4(**a)))
                        .max_by_key(|q| q.prefix_len())
                        == Some(p)
                })
                .count() as u64;
            prop_assert_eq!(*h1, want, "hits of {}", p);
        }
        let s = r2.snapshot();
        s.resolve_v4_packed(0, &eids[..n], &hashes[..n], &mut packed);
        for i in 0..n {
            prop_assert_eq!(s.unpack(packed[i]), full[i], "packet {}", i);
            prop_assert_eq!(
                packed[i].rloc_v4(),
                match full[i] { Resolution::Encapsulate(IpAddr::V4(a)) => Some(u32::from(a)), _ => None }
            );
        }
        drop(s);
        // The packed path counted the same hits per entry as the full one.
        w.collect_usage(2);
        for (p, h1) in prefixes.iter().zip(first) {
            let total = w.usage(0, *p).map_or(0, |u| u.hits);
            prop_assert_eq!(total, 2 * h1, "hits of {}", p);
        }
    }
}

#[test]
fn neighbour_batches_agree_with_single_lookups() {
    let mut w = neighbor_table(64, 2).unwrap();
    let mut r = w.reader().unwrap();
    let mut v6 = Vec::new();
    let mut v4 = Vec::new();
    for i in 0..40u16 {
        let a6: Ipv6Addr = format!("2001:db8::{:x}", i * 7).parse().unwrap();
        let a4 = Ipv4Addr::new(10, 2, (i >> 8) as u8, i as u8);
        // Every third address has no entry.
        if i % 3 != 0 {
            let n = Neighbor {
                mac: [2, 0, 0, 0, 0, i as u8],
                port: i % 4,
            };
            w.insert(IpAddr::V6(a6), n).unwrap();
            w.insert(IpAddr::V4(a4), n).unwrap();
        }
        v6.push(u128::from(a6));
        v4.push(u32::from(a4));
    }
    let s = r.snapshot();
    let mut out = vec![None; v6.len()];
    s.lookup_v6_batch(&v6, &mut out);
    for (a, o) in v6.iter().zip(&out) {
        assert_eq!(*o, s.lookup(IpAddr::V6(Ipv6Addr::from(*a))), "{:x}", a);
    }
    assert_eq!(out.iter().filter(|o| o.is_some()).count(), 26);
    let mut out = vec![None; v4.len()];
    s.lookup_v4_batch(&v4, &mut out);
    for (a, o) in v4.iter().zip(&out) {
        assert_eq!(*o, s.lookup(IpAddr::V4(Ipv4Addr::from(*a))));
    }
}
