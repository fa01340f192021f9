//! dataplane-bench --pcap FILE --mode encap|decap [--seconds S] [--burst N]
//!
//! One pxtr worker (the appliance's own worker loop, `pxtr::app::worker::Worker`) on lcore 1,
//! receiving from `net_pcap` replaying FILE from memory (`infinite_rx=1`) and transmitting to
//! `net_null`: the same vdevs `dpdk-testpmd` io forwarding uses as the reference in
//! perf/dataplane.sh. Prints one line `RESULT mpps=.. tx=.. rx=.. p50_ns=.. p99_ns=..
//! p999_ns=.. drops=..` (and the non-zero counters) for the script to collect.
//!
//! The map-cache and neighbour table are filled for the traffic perf/src/dataplane_pcap.rs
//! generates: encap, a mapping per destination /32 (10.64.0.0/10 hosts, spread over 300 RLOCs)
//! plus 10.2.0.0/16 for the single-destination file; decap, a neighbour per inner destination.
//! The port MAC pxtr assumes is the destination MAC of the file's first frame.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use ipnet::IpNet;
use pxtr::app::worker::Worker;
use pxtr::config::{IdlePolicy, MissPolicy, PortRole};
use pxtr::dataplane::{Functions, Pipeline, Plan, PortPlan, Reason, WorkerCounters};
use pxtr::dpdk::{launch, mbuf_ring, Eal, Mempool, MempoolConfig, Port, PortConfig, StopFlag};
use pxtr::mapcache::{map_cache, neighbor_table, Locator, MapCacheConfig, Mapping, Neighbor};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Frames of a classic pcap file (either byte order, any timestamp precision).
fn read_pcap(bytes: &[u8]) -> Vec<Vec<u8>> {
    let le = match bytes.get(0..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1]) | Some([0x4d, 0x3c, 0xb2, 0xa1]) => true,
        Some([0xa1, 0xb2, 0xc3, 0xd4]) | Some([0xa1, 0xb2, 0x3c, 0x4d]) => false,
        _ => panic!("not a pcap file"),
    };
    let u32_at = |o: usize| {
        let a: [u8; 4] = bytes[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= bytes.len() {
        let caplen = u32_at(off + 8) as usize;
        off += 16;
        out.push(bytes[off..off + caplen].to_vec());
        off += caplen;
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pcap = arg(&args, "--pcap").expect("--pcap FILE");
    let mode = arg(&args, "--mode").expect("--mode encap|decap");
    let seconds: f64 = arg(&args, "--seconds").map_or(5.0, |s| s.parse().expect("--seconds"));
    let burst: usize = arg(&args, "--burst").map_or(32, |s| s.parse().expect("--burst"));
    let decap = match mode.as_str() {
        "encap" => false,
        "decap" => true,
        m => panic!("--mode {m}: expected encap or decap"),
    };
    let frames = read_pcap(&std::fs::read(&pcap).expect("read the pcap"));
    assert!(!frames.is_empty(), "empty pcap");
    let mut in_mac = [0u8; 6];
    in_mac.copy_from_slice(&frames[0][0..6]);
    // Inner destinations: encap frames carry them at 14+16, decap frames behind the
    // outer IPv4 + UDP + LISP headers (14+20+8+8) at +16.
    let at = if decap { 14 + 36 + 16 } else { 14 + 16 };
    let mut dests: Vec<u32> = frames
        .iter()
        .filter(|f| f.len() >= at + 4)
        .map(|f| u32::from_be_bytes(f[at..at + 4].try_into().unwrap()))
        .collect();
    dests.sort_unstable();
    dests.dedup();

    let huge = std::env::var("PXTR_HUGEPAGES").is_ok_and(|v| !v.is_empty() && v != "0");
    let prefix = format!("pxtr-dpbench-{}", std::process::id());
    let rx_dev = format!("net_pcap0,rx_pcap={pcap},infinite_rx=1");
    let mut eal_args: Vec<String> = [
        "--no-pci",
        "--file-prefix",
        &prefix,
        "-l",
        "0,1",
        "--log-level",
        "lib.eal:error",
        "--vdev",
        &rx_dev,
        "--vdev",
        "net_null0,no-rx=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if huge {
        // --in-memory: no hugepage files are left behind (without it each run's files keep
        // their pages reserved after it exits).
        eal_args.extend(["-m".into(), "1400".into(), "--in-memory".into()]);
    } else {
        eal_args.extend(["--no-huge".into(), "-m".into(), "1400".into()]);
    }
    let eal = Eal::init(&eal_args).expect("EAL init");
    let pool = Mempool::new(
        &eal,
        "bench_pool",
        MempoolConfig {
            // net_pcap's infinite_rx copies the whole file into mbufs when the port starts.
            mbufs: (frames.len() as u32 + 16384).next_power_of_two() - 1,
            cache: 256,
            ..MempoolConfig::default()
        },
    )
    .expect("mempool");
    let pc = PortConfig {
        rx_descriptors: 1024,
        tx_descriptors: 1024,
        promiscuous: false,
        rss: false,
        ..PortConfig::default()
    };
    let mut rx_port = Port::open(&eal, "net_pcap0", &pc, &pool).expect("net_pcap0");
    let mut tx_port = Port::open(&eal, "net_null0", &pc, &pool).expect("net_null0");
    let out_mac = tx_port.info().mac;
    let our_rloc: Ipv4Addr = "192.0.2.1".parse().unwrap();
    let eid_plan = |dpdk_port, mac| PortPlan {
        name: "eid0".into(),
        role: PortRole::Eid,
        dpdk_port,
        mac,
        addresses: vec!["10.1.1.5/24".parse::<IpNet>().unwrap()],
        mtu: 1500,
        gateway: None,
        iid: 0,
        dynamic_eids: Vec::new(),
        extended: Vec::new(),
    };
    let rloc_plan = |dpdk_port, mac| PortPlan {
        name: "rloc0".into(),
        role: PortRole::Rloc,
        dpdk_port,
        mac,
        addresses: vec!["192.0.2.1/24".parse::<IpNet>().unwrap()],
        // A jumbo underlay, so IMIX's 1500-byte packets are encapsulated, not answered with
        // ICMP Fragmentation Needed.
        mtu: 9000,
        gateway: Some("192.0.2.254".parse().unwrap()),
        iid: 0,
        dynamic_eids: Vec::new(),
        extended: Vec::new(),
    };
    // Plan order: the receiving port first.
    let (ports, in_role) = if decap {
        (
            vec![
                rloc_plan(rx_port.id(), in_mac),
                eid_plan(tx_port.id(), out_mac),
            ],
            "rloc",
        )
    } else {
        (
            vec![
                eid_plan(rx_port.id(), in_mac),
                rloc_plan(tx_port.id(), out_mac),
            ],
            "eid",
        )
    };
    let plan = Plan {
        ports,
        rlocs: vec![IpAddr::V4(our_rloc)],
        petrs: vec![],
        functions: Functions {
            itr: true,
            etr: true,
            pitr: false,
            petr: false,
        },
        fragment: true,
        miss_policy: MissPolicy::Drop,
        hold_capacity: 256,
        hold_timeout_ms: 1000,
        miss_interval_ms: 1000,
        miss_reports_per_sec: 100,
    };
    let mut cache = map_cache(MapCacheConfig {
        capacity: dests.len() as u32 + 1024,
        max_readers: 2,
        ..MapCacheConfig::default()
    })
    .expect("map-cache");
    let mut neighbors = neighbor_table(dests.len() as u32 + 1024, 2).expect("neighbours");
    let gw_mac = [0x02, 0, 0, 0, 0xfe, 0xfe];
    neighbors
        .insert(
            "192.0.2.254".parse().unwrap(),
            Neighbor {
                mac: gw_mac,
                port: tx_port.id(),
            },
        )
        .unwrap();
    let rloc = |i: usize| {
        let mut m = Mapping::default();
        m.locators.push(Locator {
            address: IpAddr::V4(Ipv4Addr::from(0xC633_6400 | (i % 300) as u32)),
            priority: 1,
            weight: 100,
            reachable: true,
        });
        m.ttl = Some(Duration::from_secs(86_400));
        m
    };
    if decap {
        for d in &dests {
            neighbors
                .insert(
                    IpAddr::V4(Ipv4Addr::from(*d)),
                    Neighbor {
                        mac: [0x02, 0, 0, 0, 0xbb, 0xbb],
                        port: tx_port.id(),
                    },
                )
                .expect("neighbour");
        }
    } else {
        cache
            .insert(0, "10.2.0.0/16".parse().unwrap(), rloc(0), 0)
            .unwrap();
        if dests.len() > 1 {
            for (i, d) in dests.iter().enumerate() {
                let p = IpNet::new(IpAddr::V4(Ipv4Addr::from(*d)), 32).unwrap();
                cache.insert(0, p, rloc(i), 0).expect("mapping");
            }
        }
    }
    let stop = StopFlag::new();
    let (producer, _consumer) = mbuf_ring(&eal, "bench_punts", 1024).expect("ring");
    let counters = Arc::new(WorkerCounters::default());
    let (tx_in, tx_out) = (
        rx_port.take_tx_queue(0).expect("tx"),
        tx_port.take_tx_queue(0).expect("tx"),
    );
    let worker = Worker {
        lcore: 1,
        in_port: 0,
        rxs: vec![rx_port.take_rx_queue(0).expect("rx")],
        txs: vec![tx_in, tx_out],
        pipeline: Pipeline::new(
            Arc::new(plan),
            cache.reader().unwrap(),
            neighbors.reader().unwrap(),
        ),
        punts: producer,
        events: Arc::new(ArrayQueue::new(4096)),
        counters: counters.clone(),
        stop: stop.clone(),
        burst,
        idle: IdlePolicy::Poll,
        idle_max_sleep: Duration::from_micros(100),
        plans: None,
    };
    let join = launch(&eal, 1, move || worker.run()).expect("launch the worker");
    // Warm up 0.5 s, then measure.
    std::thread::sleep(Duration::from_millis(500));
    let s0 = counters.snapshot();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let s1 = counters.snapshot();
    let dt = t0.elapsed().as_secs_f64();
    stop.stop();
    let report = join.join().expect("worker");
    let lat = counters.latency();
    let d = |r: Reason| s1.counts.get(r) - s0.counts.get(r);
    let tx = d(Reason::Tx);
    let done = if decap {
        d(Reason::Decap)
    } else {
        d(Reason::Encap)
    };
    println!(
        "RESULT mode={mode} in={in_role} mpps={:.3} tx={tx} {}={done} rx={} drops={} p50_ns={} p99_ns={} p999_ns={} burst={burst} dests={}",
        tx as f64 / dt / 1e6,
        mode,
        d(Reason::Rx),
        s1.counts.drops() - s0.counts.drops(),
        lat.value_at_quantile(0.5),
        lat.value_at_quantile(0.99),
        lat.value_at_quantile(0.999),
        dests.len(),
    );
    let nz: Vec<String> = report
        .counters
        .counts
        .nonzero()
        .map(|(r, n)| format!("{}={n}", r.name()))
        .collect();
    println!("COUNTERS {}", nz.join(" "));
    // The ports and queues go before EAL does (their handles hold it).
    drop(rx_port);
    drop(tx_port);
}
