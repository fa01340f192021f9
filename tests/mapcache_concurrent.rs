//! Readers resolve flat out while the writer inserts, replaces and removes: every answer must
//! come from a mapping that covers the address (a reused entry, set or group seen too early
//! would answer for another prefix). Bounded by the writer's operation count, not by time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use ipnet::IpNet;
use pxtr::mapcache::{map_cache, Locator, MapCacheConfig, MapCacheError, Mapping, Resolution};

const UNIVERSE: u32 = 600;
const WRITER_OPS: u32 = 60_000;
const READERS: usize = 2;

/// Prefix `k`: nested IPv4 and IPv6 prefixes of many lengths in a few /8s (/32s for IPv6).
fn prefix(k: u32) -> IpNet {
    let x = k.wrapping_mul(0x9E37_79B9);
    if k % 2 == 0 {
        let len = [8, 12, 16, 20, 23, 24, 25, 28, 32][(x % 9) as usize];
        let a = 0x0A00_0000 | ((x >> 4) & 0x0003_FFFF) << 6;
        IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), len)
            .unwrap()
            .trunc()
    } else {
        let len = [16, 32, 40, 48, 56, 64, 96, 128][(x % 8) as usize];
        let a = (0x2001_0db8u128 << 96) | u128::from(x >> 8) << 56 | u128::from(k);
        IpNet::new(IpAddr::V6(Ipv6Addr::from(a)), len)
            .unwrap()
            .trunc()
    }
}

/// Mapping version `v` of prefix `k`: its RLOCs name k, so a reader can check coverage.
fn mapping(k: u32, v: u32) -> Mapping {
    let mut m = Mapping::default();
    for i in 0..(1 + v % 3) {
        m.locators.push(Locator {
            address: IpAddr::V4(Ipv4Addr::from(k << 8 | i)),
            priority: 1,
            weight: 10 + (v % 7) as u8,
            reachable: true,
        });
    }
    m
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

#[test]
fn readers_never_see_a_foreign_or_reused_mapping() {
    let mut w = map_cache(MapCacheConfig {
        capacity: 256,
        max_readers: READERS,
        max_iids: 2,
        v4_root_bits: 16,
        v6_root_bits: 16,
        v4_groups: 4096,
        v6_groups: 16384,
    })
    .unwrap();
    let mut unique = Vec::new();
    for k in 0.. {
        let p = prefix(k);
        if !unique.contains(&p) {
            unique.push(p);
        }
        if unique.len() == UNIVERSE as usize {
            break;
        }
    }
    let prefixes: Arc<Vec<IpNet>> = Arc::new(unique);
    let done = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(READERS + 1));
    let mut threads = Vec::new();
    for t in 0..READERS {
        let mut r = w.reader().unwrap();
        let (prefixes, done, checked, start) = (
            prefixes.clone(),
            done.clone(),
            checked.clone(),
            start.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(0x1234_5678 + t as u64);
            let mut out = [Resolution::Miss; 32];
            let mut hashes = [0u32; 32];
            let mut v4 = [Ipv4Addr::UNSPECIFIED; 32];
            let mut v6 = [Ipv6Addr::UNSPECIFIED; 32];
            let mut n = 0u64;
            start.wait();
            let check = |a: IpAddr, res: Resolution| -> Result<(), String> {
                match res {
                    Resolution::Encapsulate(IpAddr::V4(rloc)) => {
                        let k = u32::from(rloc) >> 8;
                        match prefixes.get(k as usize) {
                            Some(p) if p.contains(&a) => Ok(()),
                            _ => Err(format!("{a} resolved to {rloc} (prefix {k})")),
                        }
                    }
                    Resolution::Miss => Ok(()),
                    other => Err(format!("{a} resolved to {other:?}")),
                }
            };
            while !done.load(Ordering::Acquire) {
                // One burst: addresses inside random prefixes of the universe.
                for i in 0..32 {
                    let p = prefixes[(rng.next() % UNIVERSE) as usize];
                    hashes[i] = rng.next();
                    match p {
                        IpNet::V4(p) => {
                            let host = rng.next()
                                & !u32::MAX
                                    .checked_shl(32 - u32::from(p.prefix_len()))
                                    .unwrap_or(0);
                            v4[i] = Ipv4Addr::from(u32::from(p.network()) | host);
                        }
                        IpNet::V6(p) => v6[i] = p.network(),
                    }
                }
                let s = r.snapshot();
                s.resolve_v4(0, &v4, &hashes, &mut out);
                for (a, res) in v4.iter().zip(out) {
                    check(IpAddr::V4(*a), res)?;
                }
                s.resolve_v6(0, &v6, &hashes, &mut out);
                for (a, res) in v6.iter().zip(out) {
                    check(IpAddr::V6(*a), res)?;
                }
                for (a, h) in v4.iter().zip(hashes).take(4) {
                    check(IpAddr::V4(*a), s.resolve(0, IpAddr::V4(*a), h))?;
                }
                n += 1;
            }
            checked.fetch_add(n, Ordering::Relaxed);
            Ok::<u64, String>(n)
        }));
    }
    start.wait();
    let mut rng = Rng(42);
    let mut present = vec![false; UNIVERSE as usize];
    let mut busy = 0u64;
    for op in 0..WRITER_OPS {
        let k = rng.next() % UNIVERSE;
        if present[k as usize] && rng.next() % 3 == 0 {
            assert!(w.remove(0, prefixes[k as usize]).is_some());
            present[k as usize] = false;
        } else {
            // Busy: every free id waits for a reader's next burst; readers keep running.
            let out = loop {
                match w.insert(0, prefixes[k as usize], mapping(k, op), u64::from(op)) {
                    Err(MapCacheError::Busy) => {
                        busy += 1;
                        w.reclaim();
                        std::thread::yield_now();
                    }
                    other => break other.unwrap(),
                }
            };
            present[k as usize] = true;
            if let Some((_, gone)) = out.evicted {
                let g = prefixes.iter().position(|p| *p == gone).unwrap();
                present[g] = false;
            }
        }
        if op % 64 == 0 {
            w.collect_usage(u64::from(op));
        }
    }
    done.store(true, Ordering::Release);
    for t in threads {
        let bursts = t.join().unwrap().unwrap();
        assert!(bursts > 0);
    }
    assert!(checked.load(Ordering::Relaxed) > 0);
    eprintln!("writer retried {busy} times on Busy");
    // Readers are gone: everything waiting comes back.
    w.reclaim();
    assert_eq!(w.memory().waiting, 0);
    assert_eq!(w.len(), present.iter().filter(|p| **p).count());
}

#[test]
fn neighbor_readers_see_whole_entries_during_updates() {
    let mut w = pxtr::mapcache::neighbor_table(64, 1).unwrap();
    let mut r = w.reader().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(2));
    let (d2, s2) = (done.clone(), start.clone());
    let reader = std::thread::spawn(move || {
        s2.wait();
        let mut seen = 0u64;
        while !d2.load(Ordering::Acquire) {
            let s = r.snapshot();
            for i in 0..32u8 {
                if let Some(n) = s.lookup(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))) {
                    // MAC and port are written together: the port is always the MAC's last byte.
                    assert_eq!(n.mac[..5], [2, 0, 0, 0, i]);
                    assert_eq!(n.port, u16::from(n.mac[5]));
                    seen += 1;
                }
            }
        }
        seen
    });
    start.wait();
    let mut rng = Rng(7);
    for _ in 0..50_000 {
        let i = (rng.next() % 32) as u8;
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
        if rng.next() % 4 == 0 {
            w.remove(ip);
        } else {
            let v = (rng.next() % 256) as u8;
            let n = pxtr::mapcache::Neighbor {
                mac: [2, 0, 0, 0, i, v],
                port: v.into(),
            };
            while let Err(e) = w.insert(ip, n) {
                assert_eq!(e, MapCacheError::Busy);
                w.reclaim();
                std::thread::yield_now();
            }
        }
        w.reclaim();
    }
    done.store(true, Ordering::Release);
    reader.join().unwrap();
}
