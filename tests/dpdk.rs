//! Real DPDK (22.11) on virtual devices, no NIC and no hugepages: EAL can be initialised once per
//! process, so this test binary initialises it once and runs each test under a lock.

use std::sync::{Mutex, MutexGuard, OnceLock};

use arrayvec::ArrayVec;
use pxtr::dpdk::{self, Eal, Mbuf, Mempool, MempoolConfig, Port, PortConfig, StopFlag};

struct Env {
    eal: Eal,
}

fn env() -> MutexGuard<'static, Env> {
    static ENV: OnceLock<Mutex<Env>> = OnceLock::new();
    let m = ENV.get_or_init(|| {
        let prefix = format!("pxtr-test-{}", std::process::id());
        let eal = Eal::init([
            "--no-huge",
            "--no-pci",
            "--no-shconf",
            "--file-prefix",
            prefix.as_str(),
            "-m",
            "256",
            "-l",
            "0-1",
            "--log-level",
            "lib.eal:error",
            "--vdev",
            "net_ring0",
            "--vdev",
            "net_null0,size=96",
            "--vdev",
            "net_ring1",
            "--vdev",
            "net_ring2",
        ])
        .expect("EAL init with --no-huge on virtual devices");
        Mutex::new(Env { eal })
    });
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn pool(env: &Env, name: &str) -> Mempool {
    Mempool::new(
        &env.eal,
        name,
        MempoolConfig {
            mbufs: 1023,
            cache: 32,
            ..MempoolConfig::default()
        },
    )
    .expect("mempool")
}

fn frame(i: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (j as u8).wrapping_mul(7).wrapping_add(i))
        .collect()
}

#[test]
fn eal_second_init_is_refused() {
    let env = env();
    assert!(!env.eal.info().version.is_empty());
    assert_eq!(env.eal.info().worker_lcores, vec![1]);
    match Eal::init(["--no-huge"]) {
        Err(dpdk::DpdkError::EalAlreadyInitialised) => {}
        other => panic!("expected EalAlreadyInitialised, got {:?}", other.err()),
    }
}

#[test]
fn ring_port_returns_the_bytes_sent() {
    let env = env();
    let pool = pool(&env, "t_ring");
    let before = pool.in_use();
    {
        let mut port = Port::open(
            &env.eal,
            "net_ring0",
            &PortConfig {
                promiscuous: false,
                ..PortConfig::default()
            },
            &pool,
        )
        .expect("open net_ring0");
        assert_eq!(port.info().driver, "net_ring");
        let mut rx = port.take_rx_queue(0).expect("rx queue 0");
        let mut tx = port.take_tx_queue(0).expect("tx queue 0");
        assert!(
            port.take_rx_queue(0).is_none(),
            "a queue is handed out once"
        );

        let sent_frames: Vec<Vec<u8>> = (0..20u8)
            .map(|i| frame(i, 60 + usize::from(i) * 37))
            .collect();
        let mut burst: ArrayVec<Mbuf, 32> = ArrayVec::new();
        for f in &sent_frames {
            burst.push(pool.alloc_from(f).expect("alloc"));
        }
        let out = tx.tx_burst_or_free(&mut burst);
        assert_eq!(out.sent, 20);
        assert_eq!(out.dropped, 0);

        let mut got: ArrayVec<Mbuf, 32> = ArrayVec::new();
        let n = rx.rx_burst(&mut got);
        assert_eq!(n, 20);
        for (m, f) in got.iter().zip(&sent_frames) {
            assert_eq!(m.data(), &f[..]);
            assert_eq!(m.pkt_len() as usize, f.len());
        }
        drop(got);
        let stats = port.stats().expect("stats");
        assert_eq!(stats.tx_packets, 20);
        assert_eq!(stats.rx_packets, 20);
    }
    assert_eq!(pool.in_use(), before, "every mbuf went back to the pool");
}

#[test]
fn null_port_rx_and_tx() {
    let env = env();
    let pool = pool(&env, "t_null");
    let before = pool.in_use();
    {
        let mut port = Port::open(&env.eal, "net_null0", &PortConfig::default(), &pool)
            .expect("open net_null0");
        let mut rx = port.take_rx_queue(0).unwrap();
        let mut tx = port.take_tx_queue(0).unwrap();
        let mut got: ArrayVec<Mbuf, 32> = ArrayVec::new();
        assert_eq!(rx.rx_burst(&mut got), 32);
        assert!(got.iter().all(|m| m.pkt_len() == 96), "net_null size=96");
        assert_eq!(pool.in_use(), before + 32);
        let out = tx.tx_burst_or_free(&mut got);
        assert_eq!(out.sent, 32);
        assert!(got.is_empty());
        assert!(port.link().expect("link").up);
    }
    assert_eq!(pool.in_use(), before);
}

#[test]
fn mbuf_prepend_adj_trim() {
    let env = env();
    let pool = pool(&env, "t_mbuf");
    let before = pool.in_use();
    {
        let mut m = pool.alloc_from(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let head = m.headroom();
        m.prepend(4).unwrap().copy_from_slice(&[9, 9, 9, 9]);
        assert_eq!(m.data(), &[9, 9, 9, 9, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(m.headroom(), head - 4);
        assert!(
            m.prepend(head).is_none(),
            "more than the headroom is refused"
        );
        assert_eq!(m.pkt_len(), 12, "a refused prepend changes nothing");
        assert!(m.adj(6));
        assert!(m.trim(2));
        assert_eq!(m.data(), &[3, 4, 5, 6]);
        assert!(!m.adj(5), "cannot remove more than there is");
        m.data_mut()[0] = 42;
        assert_eq!(m.data()[0], 42);
        assert_eq!(m.rss_hash(), None);
    }
    assert_eq!(pool.in_use(), before);
}

#[test]
fn mempool_exhaustion_and_bulk() {
    let env = env();
    let pool = Mempool::new(
        &env.eal,
        "t_small",
        MempoolConfig {
            mbufs: 63,
            cache: 0,
            ..MempoolConfig::default()
        },
    )
    .unwrap();
    let mut a: ArrayVec<Mbuf, 64> = ArrayVec::new();
    assert!(pool.alloc_bulk(&mut a, 63));
    assert_eq!(pool.in_use(), 63);
    assert!(pool.alloc().is_none(), "an empty pool gives nothing");
    let mut b: ArrayVec<Mbuf, 64> = ArrayVec::new();
    assert!(!pool.alloc_bulk(&mut b, 1));
    assert!(b.is_empty());
    drop(a);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn lcore_launch_join_and_stop() {
    let env = env();
    let pool = pool(&env, "t_lcore");
    let stop = StopFlag::new();
    let s2 = stop.clone();
    let p2 = pool.clone();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress2 = progress.clone();
    let job = dpdk::launch(&env.eal, 1, move || {
        let mut loops = 0u64;
        while !s2.is_stopped() {
            // Allocate and free on the worker lcore (uses that lcore's mempool cache).
            drop(p2.alloc());
            loops += 1;
            progress2.store(loops, std::sync::atomic::Ordering::Relaxed);
            std::hint::spin_loop();
        }
        loops
    })
    .expect("launch on lcore 1");
    // Stop only once the job has run (the lcore may start late on a busy machine).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while progress.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(std::time::Instant::now() < deadline, "the job never ran");
        std::thread::yield_now();
    }
    assert_eq!(job.lcore(), 1);
    assert!(
        dpdk::launch(&env.eal, 1, || ()).is_err(),
        "a busy lcore is refused"
    );
    assert!(
        dpdk::launch(&env.eal, 0, || ()).is_err(),
        "the main lcore is refused"
    );
    stop.stop();
    let loops = job.join().expect("join");
    assert!(loops > 0);

    let job = dpdk::launch(&env.eal, 1, || -> u32 {
        panic!("deliberate worker panic (this test checks it is reported)")
    })
    .unwrap();
    match job.join() {
        Err(dpdk::DpdkError::LcorePanicked { lcore: 1, message }) => {
            assert_eq!(
                message,
                "deliberate worker panic (this test checks it is reported)"
            )
        }
        other => panic!("expected a reported panic, got {other:?}"),
    }
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn mbuf_ring_moves_ownership() {
    let env = env();
    let pool = pool(&env, "t_rng");
    {
        let (mut tx, mut rx) = dpdk::mbuf_ring(&env.eal, "t_punt", 8).unwrap();
        let mut burst: ArrayVec<Mbuf, 16> = ArrayVec::new();
        for i in 0..10u8 {
            burst.push(pool.alloc_from(&[i; 20]).unwrap());
        }
        assert_eq!(tx.enqueue_burst(&mut burst), 7, "a ring of 8 holds 7");
        assert_eq!(burst.len(), 3, "the rest stays with the caller");
        assert_eq!(burst[0].data()[0], 7);
        let mut out: ArrayVec<Mbuf, 16> = ArrayVec::new();
        assert_eq!(rx.dequeue_burst(&mut out), 7);
        assert_eq!(
            out.iter().map(|m| m.data()[0]).collect::<Vec<_>>(),
            (0..7).collect::<Vec<_>>()
        );
        // Leave some queued: dropping the ring frees them.
        assert_eq!(tx.enqueue_burst(&mut burst), 3);
    }
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn unknown_device_names_the_ports_present() {
    let env = env();
    let pool = pool(&env, "t_nodev");
    let err = Port::open(&env.eal, "net_doesnotexist0", &PortConfig::default(), &pool)
        .err()
        .expect("must fail");
    let text = err.to_string();
    assert!(text.contains("net_doesnotexist0"), "{text}");
    let err = Port::open(
        &env.eal,
        "net_ring1",
        &PortConfig {
            rx_queues: 99,
            ..PortConfig::default()
        },
        &pool,
    )
    .err()
    .expect("too many queues must fail");
    assert!(err.to_string().contains("at most"), "{err}");
}

#[test]
fn tx_gives_back_what_a_full_queue_did_not_take() {
    let env = env();
    let pool = Mempool::new(
        &env.eal,
        "t_full",
        MempoolConfig {
            mbufs: 8191,
            cache: 0,
            ..MempoolConfig::default()
        },
    )
    .unwrap();
    {
        let mut port = Port::open(
            &env.eal,
            "net_ring2",
            &PortConfig {
                promiscuous: false,
                ..PortConfig::default()
            },
            &pool,
        )
        .expect("open net_ring2");
        let mut tx = port.take_tx_queue(0).unwrap();
        let mut rx = port.take_rx_queue(0).unwrap();
        // Nobody receives: the ring behind the port fills up and tx_burst starts refusing.
        let mut total_sent = 0usize;
        let mut leftover = None;
        for round in 0..1000u32 {
            let mut burst: ArrayVec<Mbuf, 32> = ArrayVec::new();
            for i in 0..32u32 {
                let tag = (round * 32 + i).to_be_bytes();
                burst.push(pool.alloc_from(&tag).expect("alloc"));
            }
            let sent = tx.tx_burst(&mut burst);
            total_sent += sent;
            if sent < 32 {
                leftover = Some((round, sent, burst));
                break;
            }
        }
        let (round, sent, mut burst) = leftover.expect("the ring never filled");
        assert_eq!(burst.len(), 32 - sent, "unsent mbufs stay with the caller");
        // They are the tail of the burst, in order.
        for (k, m) in burst.iter().enumerate() {
            let tag = round * 32 + (sent + k) as u32;
            assert_eq!(m.data(), &tag.to_be_bytes());
        }
        let outcome = tx.tx_burst_or_free(&mut burst);
        assert_eq!(outcome.sent, 0, "still full");
        assert_eq!(outcome.dropped, 32 - sent);
        assert!(burst.is_empty());
        assert_eq!(
            pool.in_use() as usize,
            total_sent,
            "dropped mbufs went back to the pool"
        );
        // Drain: what went in comes out, first to last.
        let mut got: ArrayVec<Mbuf, 64> = ArrayVec::new();
        let mut next = 0u32;
        while rx.rx_burst(&mut got) > 0 {
            for m in got.drain(..) {
                assert_eq!(m.data(), &next.to_be_bytes());
                next += 1;
            }
        }
        assert_eq!(next as usize, total_sent);
        assert!(tx.tx_one(pool.alloc_from(&[1]).unwrap()).is_ok());
    }
    assert_eq!(pool.in_use(), 0);
}
