//! Map-cache lookup and update benchmark against DPDK's rte_lpm / rte_lpm6 in the same run
//! (perf/mapcache.sh runs it; perf/README.md explains the figures).
//!
//! mapcache-bench [--smoke] [--out FILE] [--only v4|v6|updates] [--v4 N[,N...]]
//!
//! `--only` and `--v4` are for quick iterations while tuning (`--only updates` builds the
//! largest IPv4 table and runs the update phase alone); the recorded run uses neither.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use pxtr::dpdk::{Eal, Lpm4, Lpm6};
use pxtr::mapcache::{map_cache, Locator, MapCacheConfig, MapCacheWriter, Mapping, Resolution};

const BURST: usize = 32;
/// Alone / with-writer phase pairs per update row.
const PAIRS: usize = 7;
const IID: u32 = 0;

/// xorshift64*: deterministic inputs, same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick(&mut self, weights: &[(u8, u32)]) -> u8 {
        let total: u32 = weights.iter().map(|w| w.1).sum();
        let mut x = self.below(total.into()) as u32;
        for (len, w) in weights {
            if x < *w {
                return *len;
            }
            x -= w;
        }
        weights[0].0
    }
}

/// IPv4 prefix lengths of a full BGP table (per mille, rounded; CIDR reports 2023).
const V4_MIX: &[(u8, u32)] = &[
    (8, 1),
    (12, 1),
    (13, 1),
    (14, 2),
    (15, 3),
    (16, 13),
    (17, 8),
    (18, 14),
    (19, 26),
    (20, 44),
    (21, 48),
    (22, 110),
    (23, 100),
    (24, 620),
    (25, 2),
    (26, 2),
    (27, 2),
    (28, 1),
    (29, 1),
    (30, 1),
    (32, 1),
];
/// IPv6 prefix lengths of a full BGP table (per mille).
const V6_MIX: &[(u8, u32)] = &[
    (16, 1),
    (19, 1),
    (20, 2),
    (24, 3),
    (28, 8),
    (29, 60),
    (30, 6),
    (32, 150),
    (33, 10),
    (34, 10),
    (35, 8),
    (36, 30),
    (40, 60),
    (44, 90),
    (45, 10),
    (46, 30),
    (47, 20),
    (48, 470),
    (52, 5),
    (56, 15),
    (64, 10),
    (128, 1),
];

fn v4_prefixes(n: usize, rng: &mut Rng) -> Vec<(u32, u8)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let len = rng.pick(V4_MIX);
        // Unicast space 1.0.0.0 - 223.255.255.255.
        let a = (rng.next() as u32) % (223 << 24) + (1 << 24);
        let net = a & (u32::MAX << (32 - u32::from(len)));
        if seen.insert((net, len)) {
            out.push((net, len));
        }
    }
    out
}

fn v6_prefixes(n: usize, rng: &mut Rng) -> Vec<(u128, u8)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    // Allocations cluster under a few thousand /12-/20 registry blocks in 2000::/3.
    let blocks: Vec<u128> = (0..4096)
        .map(|_| (0x2u128 << 124) | (u128::from(rng.next() as u32 & 0x1FFF_FFFF) << 99))
        .collect();
    while out.len() < n {
        let len = rng.pick(V6_MIX);
        let block = blocks[rng.below(blocks.len() as u64) as usize];
        let a = block | ((u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 20);
        let net = a & (u128::MAX << (128 - u32::from(len)));
        if seen.insert((net, len)) {
            out.push((net, len));
        }
    }
    out
}

/// Lookup addresses: `uniform` picks a prefix of the table at random, then random host bits;
/// `skewed` sends 90% of lookups to 1,000 hot prefixes.
fn addresses<P: Copy, A>(
    prefixes: &[P],
    n: usize,
    skewed: bool,
    rng: &mut Rng,
    host: impl Fn(P, &mut Rng) -> A,
) -> Vec<A> {
    let hot = prefixes.len().min(1000) as u64;
    (0..n)
        .map(|_| {
            let i = if skewed && rng.below(10) != 0 {
                rng.below(hot)
            } else {
                rng.below(prefixes.len() as u64)
            };
            host(prefixes[i as usize], rng)
        })
        .collect()
}

fn mapping(i: usize) -> Mapping {
    // A few hundred distinct RLOC sets, as a PITR has toward a few hundred xTRs.
    let mut m = Mapping::default();
    let site = (i % 300) as u32;
    for k in 0..2u32 {
        m.locators.push(Locator {
            address: IpAddr::V4(Ipv4Addr::from(0xC633_0000 | site << 4 | k)),
            priority: 1,
            weight: 50,
            reachable: true,
        });
    }
    m
}

/// Transparent hugepages mapped by this process now, kB.
fn thp_kb() -> String {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Interleaved measurement: `reps` rounds, each running every closure of `fs` once in turn,
/// so a change of CPU speed or share during the run (this VM is shared) hits every variant
/// alike instead of whichever ran in that phase. Best round of each over `n` lookups:
/// lookups per second, in the order of `fs`.
fn rates(n: usize, reps: usize, fs: &mut [&mut dyn FnMut() -> u64]) -> Vec<f64> {
    let mut best = vec![f64::MAX; fs.len()];
    for _ in 0..reps {
        for (f, b) in fs.iter_mut().zip(best.iter_mut()) {
            let t = Instant::now();
            black_box(f());
            *b = b.min(t.elapsed().as_secs_f64());
        }
    }
    best.into_iter().map(|b| n as f64 / b).collect()
}

struct Report {
    md: String,
}
impl Report {
    fn line(&mut self, s: &str) {
        println!("{s}");
        self.md.push_str(s);
        self.md.push('\n');
    }
}

fn cache_config(capacity: usize, v4_root: u8, v6_root: u8) -> MapCacheConfig {
    MapCacheConfig {
        // Room for the /32 EIDs of the update phase, so it never evicts table prefixes.
        capacity: capacity as u32 + 65_536,
        max_readers: 4,
        max_iids: 1,
        v4_root_bits: v4_root,
        v6_root_bits: v6_root,
        v4_groups: 1 << 20,
        v6_groups: 1 << 21,
    }
}

fn build_v4(prefixes: &[(u32, u8)], root: u8) -> (MapCacheWriter, usize, f64) {
    let rss = rss_bytes();
    let t = Instant::now();
    let mut w = map_cache(cache_config(prefixes.len(), root, 16)).expect("map-cache");
    for (i, (net, len)) in prefixes.iter().enumerate() {
        let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(*net)), *len).expect("prefix");
        w.insert(IID, p, mapping(i), 0).expect("insert");
    }
    let secs = t.elapsed().as_secs_f64();
    (
        w,
        rss_bytes().saturating_sub(rss),
        prefixes.len() as f64 / secs,
    )
}

fn build_v6(prefixes: &[(u128, u8)], root: u8) -> (MapCacheWriter, usize, f64) {
    let rss = rss_bytes();
    let t = Instant::now();
    let mut w = map_cache(cache_config(prefixes.len(), 16, root)).expect("map-cache");
    for (i, (net, len)) in prefixes.iter().enumerate() {
        let p = IpNet::new(IpAddr::V6(Ipv6Addr::from(*net)), *len).expect("prefix");
        w.insert(IID, p, mapping(i), 0).expect("insert");
    }
    let secs = t.elapsed().as_secs_f64();
    (
        w,
        rss_bytes().saturating_sub(rss),
        prefixes.len() as f64 / secs,
    )
}

struct Sizes {
    v4: Vec<usize>,
    v6: usize,
    lookups: usize,
    reps: usize,
    phase: Duration,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let out = arg("--out");
    let only = arg("--only");
    let run_v4 = only.as_deref().map_or(true, |o| o == "v4");
    let run_v6 = only.as_deref().map_or(true, |o| o == "v6");
    let run_updates = only.as_deref().map_or(true, |o| o == "updates");
    let mut sizes = if smoke {
        Sizes {
            v4: vec![2_000, 10_000],
            v6: 2_000,
            lookups: 1 << 14,
            reps: 2,
            phase: Duration::from_millis(150),
        }
    } else {
        Sizes {
            v4: vec![10_000, 100_000, 1_000_000],
            v6: 100_000,
            lookups: 1 << 22,
            reps: 7,
            phase: Duration::from_secs(1),
        }
    };
    if let Some(v) = arg("--v4") {
        sizes.v4 = v.split(',').filter_map(|x| x.parse().ok()).collect();
    }
    if !run_v4 && run_updates {
        sizes.v4 = sizes.v4.last().copied().into_iter().collect();
    }
    let huge = std::env::var("PXTR_HUGEPAGES").is_ok_and(|v| !v.is_empty() && v != "0");
    let prefix = format!("pxtr-bench-{}", std::process::id());
    let mut eal_args: Vec<String> = [
        "--no-pci",
        "--no-shconf",
        "--file-prefix",
        &prefix,
        "--lcores",
        "0@(0-1)",
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if huge {
        eal_args.extend(["-m".into(), "900".into()]);
    } else {
        eal_args.extend([
            "--no-huge".into(),
            "-m".into(),
            if smoke { "512" } else { "3072" }.into(),
        ]);
    }
    let eal = Eal::init(&eal_args).expect("EAL init");
    let mut rep = Report { md: String::new() };
    rep.line(&format!(
        "EAL memory: {}; burst {BURST}; best of {} runs over {} lookups; mode {}",
        if huge {
            "2 MB hugepages"
        } else {
            "--no-huge (4 KB pages)"
        },
        sizes.reps,
        sizes.lookups,
        if smoke { "smoke" } else { "full" }
    ));
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut ok = true;

    // ---- IPv4 lookups ----
    rep.line("\n## IPv4 lookups (Mlookups/s, one core)\n");
    rep.line("| prefixes | addresses | rte_lpm single | rte_lpm bulk | ours root24 single | ours root24 batch | ours root16 batch | ours root24 resolve batch | ratio root24 batch / rte bulk | ratio single / single |");
    rep.line("|---|---|---|---|---|---|---|---|---|---|");
    let mut mem_lines = Vec::new();
    let mut thp_lines: Vec<String> = Vec::new();
    let mut v4_1m: Option<(MapCacheWriter, Vec<(u32, u8)>)> = None;
    for (si, &n) in sizes.v4.iter().enumerate() {
        if !run_v4 && !run_updates {
            break;
        }
        let prefixes = v4_prefixes(n, &mut rng);
        if !run_v4 {
            let (w24, _, _) = build_v4(&prefixes, 24);
            v4_1m = Some((w24, prefixes));
            continue;
        }
        let mut rte =
            Lpm4::new(&eal, &format!("b4_{si}"), n as u32 + 16, 1 << 16).expect("rte_lpm");
        let t = Instant::now();
        for (i, (net, len)) in prefixes.iter().enumerate() {
            rte.add(*net, *len, i as u32).expect("rte_lpm_add");
        }
        let rte_build = n as f64 / t.elapsed().as_secs_f64();
        let (w24, rss24, build24) = build_v4(&prefixes, 24);
        let (w16, rss16, _) = build_v4(&prefixes, 16);
        let mut r24 = w24.reader().expect("reader");
        let mut r16 = w16.reader().expect("reader");
        thp_lines.push(format!(
            "IPv4 {n}: THP advice accepted: {}; process AnonHugePages after building: {} kB",
            if w24.memory().hugepages { "yes" } else { "no" },
            thp_kb()
        ));
        mem_lines.push(format!(
            "| IPv4 {n} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
            rss24 as f64 / n as f64,
            w24.memory().reader_bytes as f64 / n as f64,
            rss16 as f64 / n as f64,
            w16.memory().reader_bytes as f64 / n as f64,
            build24 / 1e6,
            rte_build / 1e6,
        ));
        for skewed in [false, true] {
            let addrs = addresses(
                &prefixes,
                sizes.lookups,
                skewed,
                &mut rng,
                |(net, len): (u32, u8), r: &mut Rng| {
                    net | (r.next() as u32
                        & !(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)))
                },
            );
            // Same answers as rte_lpm (entry ids are assigned in insertion order).
            {
                let s = r24.snapshot();
                let s16 = r16.snapshot();
                for a in addrs.iter().take(20_000) {
                    let want = rte.lookup(*a);
                    if s.entry_id_v4(IID, *a) != want || s16.entry_id_v4(IID, *a) != want {
                        ok = false;
                        eprintln!("MISMATCH at {}: rte {want:?}", Ipv4Addr::from(*a));
                        break;
                    }
                }
            }
            let hashes: Vec<u32> = (0..BURST as u32)
                .map(|i| i.wrapping_mul(0x9E37_79B9))
                .collect();
            let eids: Vec<Ipv4Addr> = addrs.iter().map(|a| Ipv4Addr::from(*a)).collect();
            let mut rte_single = || -> u64 {
                addrs
                    .iter()
                    .map(|a| u64::from(rte.lookup(*a).unwrap_or(0)))
                    .sum()
            };
            let mut rte_out = vec![None; BURST];
            let mut rte_bulk = || -> u64 {
                let mut s = 0u64;
                for c in addrs.chunks(BURST) {
                    rte.lookup_bulk(c, &mut rte_out);
                    s += rte_out.iter().flatten().map(|x| u64::from(*x)).sum::<u64>();
                }
                s
            };
            let mut rs = w24.reader().expect("reader");
            let mut ours_single = || -> u64 {
                let s = rs.snapshot();
                addrs
                    .iter()
                    .map(|a| u64::from(s.entry_id_v4(IID, *a).unwrap_or(0)))
                    .sum()
            };
            let batch = |r: &mut pxtr::mapcache::MapCacheReader, out: &mut [Option<u32>]| {
                let mut sum = 0u64;
                for c in addrs.chunks(BURST) {
                    let s = r.snapshot();
                    s.entry_ids_v4(IID, c, out);
                    sum += out.iter().flatten().map(|x| u64::from(*x)).sum::<u64>();
                }
                sum
            };
            let (mut out24, mut out16) = (vec![None; BURST], vec![None; BURST]);
            let mut ours24 = || batch(&mut r24, &mut out24);
            let mut ours16 = || batch(&mut r16, &mut out16);
            let mut rr = w24.reader().expect("reader");
            let mut res = vec![Resolution::Miss; BURST];
            let mut resolve = || -> u64 {
                let mut hits = 0u64;
                for c in eids.chunks(BURST) {
                    let s = rr.snapshot();
                    s.resolve_v4(IID, c, &hashes, &mut res);
                    hits += res
                        .iter()
                        .filter(|r| matches!(r, Resolution::Encapsulate(_)))
                        .count() as u64;
                }
                hits
            };
            let r = rates(
                addrs.len(),
                sizes.reps,
                &mut [
                    &mut rte_single,
                    &mut rte_bulk,
                    &mut ours_single,
                    &mut ours24,
                    &mut ours16,
                    &mut resolve,
                ],
            );
            let (rte_single, rte_bulk, ours_single, ours24, ours16, resolve) =
                (r[0], r[1], r[2], r[3], r[4], r[5]);
            rep.line(&format!(
                "| {n} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | **{:.2}** | {:.2} |",
                if skewed { "skewed" } else { "uniform" },
                rte_single / 1e6,
                rte_bulk / 1e6,
                ours_single / 1e6,
                ours24 / 1e6,
                ours16 / 1e6,
                resolve / 1e6,
                ours24 / rte_bulk,
                ours_single / rte_single
            ));
        }
        drop(r16);
        drop(r24);
        if si + 1 == sizes.v4.len() {
            v4_1m = Some((w24, prefixes));
        }
    }

    // ---- IPv6 lookups ----
    rep.line("\n## IPv6 lookups (Mlookups/s, one core)\n");
    rep.line("| prefixes | addresses | rte_lpm6 single | rte_lpm6 bulk | ours root16 single | ours root16 batch | ours root24 batch | ours root16 resolve batch | ratio root16 batch / rte bulk | ratio single / single |");
    rep.line("|---|---|---|---|---|---|---|---|---|---|");
    if run_v6 {
        let n = sizes.v6;
        let prefixes = v6_prefixes(n, &mut rng);
        let mut rte = Lpm6::new(&eal, "b6", n as u32 + 16, n as u32 * 4 + 1024).expect("rte_lpm6");
        let t = Instant::now();
        for (i, (net, len)) in prefixes.iter().enumerate() {
            rte.add(net.to_be_bytes(), *len, i as u32)
                .expect("rte_lpm6_add");
        }
        let rte_build = n as f64 / t.elapsed().as_secs_f64();
        let (w16, rss16, build16) = build_v6(&prefixes, 16);
        let (w24, rss24, _) = build_v6(&prefixes, 24);
        let mut r16 = w16.reader().expect("reader");
        let mut r24 = w24.reader().expect("reader");
        mem_lines.push(format!(
            "| IPv6 {n} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
            rss24 as f64 / n as f64,
            w24.memory().reader_bytes as f64 / n as f64,
            rss16 as f64 / n as f64,
            w16.memory().reader_bytes as f64 / n as f64,
            build16 / 1e6,
            rte_build / 1e6,
        ));
        for skewed in [false, true] {
            let addrs = addresses(
                &prefixes,
                sizes.lookups,
                skewed,
                &mut rng,
                |(net, len): (u128, u8), r: &mut Rng| {
                    let host = u128::from(r.next()) << 64 | u128::from(r.next());
                    net | (host & !(u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)))
                },
            );
            let bytes: Vec<[u8; 16]> = addrs.iter().map(|a| a.to_be_bytes()).collect();
            {
                let s = r16.snapshot();
                let s24 = r24.snapshot();
                for (a, b) in addrs.iter().zip(&bytes).take(20_000) {
                    let want = rte.lookup(b);
                    if s.entry_id_v6(IID, *a) != want || s24.entry_id_v6(IID, *a) != want {
                        ok = false;
                        eprintln!("MISMATCH at {}: rte {want:?}", Ipv6Addr::from(*a));
                        break;
                    }
                }
            }
            let hashes: Vec<u32> = (0..BURST as u32)
                .map(|i| i.wrapping_mul(0x9E37_79B9))
                .collect();
            let eids: Vec<Ipv6Addr> = addrs.iter().map(|a| Ipv6Addr::from(*a)).collect();
            let mut rte_single = || -> u64 {
                bytes
                    .iter()
                    .map(|a| u64::from(rte.lookup(a).unwrap_or(0)))
                    .sum()
            };
            let mut rte_out = vec![None; BURST];
            let mut rte_bulk = || -> u64 {
                let mut s = 0u64;
                for c in bytes.chunks(BURST) {
                    rte.lookup_bulk(c, &mut rte_out);
                    s += rte_out.iter().flatten().map(|x| u64::from(*x)).sum::<u64>();
                }
                s
            };
            let mut rs = w16.reader().expect("reader");
            let mut ours_single = || -> u64 {
                let s = rs.snapshot();
                addrs
                    .iter()
                    .map(|a| u64::from(s.entry_id_v6(IID, *a).unwrap_or(0)))
                    .sum()
            };
            let batch = |r: &mut pxtr::mapcache::MapCacheReader, out: &mut [Option<u32>]| {
                let mut sum = 0u64;
                for c in addrs.chunks(BURST) {
                    let s = r.snapshot();
                    s.entry_ids_v6(IID, c, out);
                    sum += out.iter().flatten().map(|x| u64::from(*x)).sum::<u64>();
                }
                sum
            };
            let (mut out16, mut out24) = (vec![None; BURST], vec![None; BURST]);
            let mut ours16 = || batch(&mut r16, &mut out16);
            let mut ours24 = || batch(&mut r24, &mut out24);
            let mut rr = w16.reader().expect("reader");
            let mut res = vec![Resolution::Miss; BURST];
            let mut resolve = || -> u64 {
                let mut hits = 0u64;
                for c in eids.chunks(BURST) {
                    let s = rr.snapshot();
                    s.resolve_v6(IID, c, &hashes, &mut res);
                    hits += res
                        .iter()
                        .filter(|r| matches!(r, Resolution::Encapsulate(_)))
                        .count() as u64;
                }
                hits
            };
            let r = rates(
                addrs.len(),
                sizes.reps,
                &mut [
                    &mut rte_single,
                    &mut rte_bulk,
                    &mut ours_single,
                    &mut ours16,
                    &mut ours24,
                    &mut resolve,
                ],
            );
            let (rte_single, rte_bulk, ours_single, ours16, ours24, resolve) =
                (r[0], r[1], r[2], r[3], r[4], r[5]);
            rep.line(&format!(
                "| {n} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | **{:.2}** | {:.2} |",
                if skewed { "skewed" } else { "uniform" },
                rte_single / 1e6,
                rte_bulk / 1e6,
                ours_single / 1e6,
                ours16 / 1e6,
                ours24 / 1e6,
                resolve / 1e6,
                ours16 / rte_bulk,
                ours_single / rte_single
            ));
        }
    }

    // ---- memory ----
    rep.line("\n## Memory per prefix (bytes) and build rate (M inserts/s, one core)\n");
    rep.line("| table | RSS root24 | reader tables root24 | RSS root16 | reader tables root16 | ours inserts/s | rte inserts/s |");
    rep.line("|---|---|---|---|---|---|---|");
    for l in &mem_lines {
        rep.line(l);
    }
    rep.line("");
    for l in &thp_lines {
        rep.line(&format!("- {l}"));
    }

    // ---- updates under load ----
    if let Some((mut w, prefixes)) = v4_1m.filter(|_| run_updates) {
        rep.line(&format!(
            "\n## Updates while a reader resolves flat out on the other core ({} IPv4 prefixes, root24)\n",
            prefixes.len()
        ));
        rep.line(&format!(
            "THP for the LPM tables: {} (process AnonHugePages {} kB). The reader resolves bursts of {BURST} (LPM + hit count + RLOC pick) over 65,536 addresses spread uniformly over the table. Phases of {} ms alternate reader-alone / reader-with-writer, {} pairs per row; the slowdown is the median over pairs of 1 - with/alone, so a change of CPU share between pairs does not count as slowdown.",
            if w.memory().hugepages { "yes" } else { "no" },
            thp_kb(),
            sizes.phase.as_millis(),
            PAIRS
        ));
        rep.line("");
        rep.line("Writer mixes (per 100 operations):");
        rep.line("- control plane: 85 refreshes of an existing table prefix with a new RLOC set (a Map-Reply for a cached EID-prefix: replaced in place), 15 inserts of a new /32 EID with a 60 ms TTL on a virtual clock of 1 ms per 1,000 operations, and the TTL expiries that follow (`expire(now)` every 256 operations; each removal counts as an operation; steady state ~9,000 live /32s), so ~74% refreshes, ~13% /32 inserts, ~13% /32 removals;");
        rep.line("- BGP churn: alternately withdraw a random prefix of the table (any length of the BGP mix, /8 included) and re-announce a withdrawn one (what the first version measured).");
        rep.line("");
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let mut reader = w.reader().expect("reader");
        let eids: Vec<Ipv4Addr> = addresses(
            &prefixes,
            1 << 16,
            false,
            &mut rng,
            |(net, len): (u32, u8), r: &mut Rng| {
                net | (r.next() as u32 & !(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)))
            },
        )
        .into_iter()
        .map(Ipv4Addr::from)
        .collect();
        let (stop2, count2) = (stop.clone(), count.clone());
        let t = std::thread::spawn(move || {
            let mut out = [Resolution::Miss; BURST];
            let hashes: Vec<u32> = (0..BURST as u32)
                .map(|i| i.wrapping_mul(0x9E37_79B9))
                .collect();
            let mut n = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                for c in eids.chunks(BURST) {
                    let s = reader.snapshot();
                    s.resolve_v4(IID, c, &hashes, &mut out);
                    black_box(&out);
                }
                n += eids.len() as u64;
                count2.store(n, Ordering::Relaxed);
            }
        });
        let measure_reader = |secs: Duration| {
            let c0 = count.load(Ordering::Relaxed);
            let t0 = Instant::now();
            std::thread::sleep(secs);
            (count.load(Ordering::Relaxed) - c0) as f64 / t0.elapsed().as_secs_f64()
        };
        std::thread::sleep(Duration::from_millis(100));
        // Control-plane mix.
        let mut k = 0u64;
        let ttl = Duration::from_millis(60);
        let cp_op = |w: &mut MapCacheWriter, rng: &mut Rng, k: &mut u64| {
            let now = *k / 1000; // virtual clock: 1 ms per 1000 operations
            match *k % 20 {
                0..=16 => {
                    let i = rng.below(prefixes.len() as u64) as usize;
                    let (net, len) = prefixes[i];
                    let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(net)), len).expect("prefix");
                    let _ = w.insert(IID, p, mapping(i + *k as usize), now);
                }
                _ => {
                    let i = rng.below(prefixes.len() as u64) as usize;
                    let (net, len) = prefixes[i];
                    let host = net
                        | (rng.next() as u32
                            & !(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)));
                    let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(host)), 32).expect("prefix");
                    let mut m = mapping(i);
                    m.ttl = Some(ttl);
                    let _ = w.insert(IID, p, m, now);
                }
            }
            *k += 1;
        };
        let mut expired = Vec::new();
        let mut cp_batch = |w: &mut MapCacheWriter, rng: &mut Rng| {
            for _ in 0..256 {
                cp_op(w, rng, &mut k);
            }
            expired.clear();
            w.expire(k / 1000, &mut expired);
            256 + expired.len() as u64
        };
        // BGP churn mix.
        let mut kb = 0usize;
        let mut withdrawn: Vec<usize> = Vec::new();
        let mut bgp_batch = |w: &mut MapCacheWriter, rng: &mut Rng| {
            for _ in 0..256 {
                if withdrawn.len() < 1000 && (kb % 2 == 0 || withdrawn.is_empty()) {
                    let i = rng.below(prefixes.len() as u64) as usize;
                    let (net, len) = prefixes[i];
                    let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(net)), len).expect("prefix");
                    if w.remove(IID, p).is_some() {
                        withdrawn.push(i);
                    }
                } else if let Some(i) = withdrawn.pop() {
                    let (net, len) = prefixes[i];
                    let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(net)), len).expect("prefix");
                    let _ = w.insert(IID, p, mapping(i + kb), 0);
                }
                kb += 1;
            }
            256
        };
        let run = |w: &mut MapCacheWriter,
                   rng: &mut Rng,
                   batch: &mut dyn FnMut(&mut MapCacheWriter, &mut Rng) -> u64,
                   per_sec: Option<f64>| {
            let c0 = count.load(Ordering::Relaxed);
            let t0 = Instant::now();
            let mut ops = 0u64;
            while t0.elapsed() < sizes.phase {
                ops += batch(w, rng);
                w.reclaim();
                if let Some(target) = per_sec {
                    while (ops as f64) > target * t0.elapsed().as_secs_f64() {
                        std::hint::spin_loop();
                    }
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            (
                ops as f64 / secs,
                (count.load(Ordering::Relaxed) - c0) as f64 / secs,
            )
        };
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        rep.line("| writer | updates/s (median) | reader Mlookups/s with writer (median) | reader alone Mlookups/s (median) | reader slowdown (median of pairs) | slowdowns per pair |");
        rep.line("|---|---|---|---|---|---|");
        let mut row = |name: &str,
                       w: &mut MapCacheWriter,
                       rng: &mut Rng,
                       batch: &mut dyn FnMut(&mut MapCacheWriter, &mut Rng) -> u64,
                       per_sec: Option<f64>| {
            let (mut ups, mut with, mut alone, mut slow) = (vec![], vec![], vec![], vec![]);
            for _ in 0..PAIRS {
                let a = measure_reader(sizes.phase);
                let (u, r) = run(w, rng, batch, per_sec);
                ups.push(u);
                with.push(r);
                alone.push(a);
                slow.push(100.0 * (1.0 - r / a));
            }
            let per_pair = slow
                .iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(", ");
            rep.line(&format!(
                "| {name} | {:.2} M | {:.1} | {:.1} | {:.1}% | {per_pair} |",
                median(&mut ups) / 1e6,
                median(&mut with) / 1e6,
                median(&mut alone) / 1e6,
                median(&mut slow),
            ));
        };
        row(
            "control plane, flat out",
            &mut w,
            &mut rng,
            &mut cp_batch,
            None,
        );
        row(
            "control plane, paced at 1 M/s",
            &mut w,
            &mut rng,
            &mut cp_batch,
            Some(1e6),
        );
        row(
            "BGP churn, flat out",
            &mut w,
            &mut rng,
            &mut bgp_batch,
            None,
        );
        stop.store(true, Ordering::Relaxed);
        let _ = t.join();
    }
    let mut tail = String::new();
    let _ = write!(
        tail,
        "\nrte_lpm agreement on sampled lookups: {}",
        if ok { "yes" } else { "NO" }
    );
    rep.line(&tail);
    if let Some(path) = out {
        if let Err(e) = std::fs::write(&path, &rep.md) {
            eprintln!("cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
    if !ok {
        std::process::exit(1);
    }
}
