//! The worker lcore loop of this stage: receive bursts, count, free. The encap/decap pipeline
//! replaces the body (issue #5); the queue ownership, idle policy, counters and stop protocol
//! are the ones it keeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arrayvec::ArrayVec;

use crate::config::IdlePolicy;
use crate::dpdk::{Mbuf, RxQueue, StopFlag, TxQueue, MAX_BURST};

/// Counters one worker writes and the control core reads. Single writer: plain load + store,
/// no read-modify-write on the hot path.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    bursts: AtomicU64,
    idle_sleeps: AtomicU64,
}

/// A copy of a worker's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub bursts: u64,
    pub idle_sleeps: u64,
}

impl WorkerCounters {
    #[inline(always)]
    fn add(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            rx_packets: self.rx_packets.load(Ordering::Relaxed),
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
            bursts: self.bursts.load(Ordering::Relaxed),
            idle_sleeps: self.idle_sleeps.load(Ordering::Relaxed),
        }
    }
}

/// What a worker reports when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerReport {
    pub lcore: u32,
    pub counters: CounterSnapshot,
}

pub(super) struct Worker {
    pub lcore: u32,
    pub rx: RxQueue,
    /// TX queue of this worker on every port, in config order.
    pub txs: Vec<TxQueue>,
    pub counters: Arc<WorkerCounters>,
    pub stop: StopFlag,
    pub burst: usize,
    pub idle: IdlePolicy,
    pub idle_max_sleep: Duration,
}

/// Empty polls before the adaptive policy starts sleeping.
const SPIN_BEFORE_SLEEP: u32 = 256;

impl Worker {
    pub fn run(mut self) -> WorkerReport {
        let mut burst: ArrayVec<Mbuf, MAX_BURST> = ArrayVec::new();
        let burst_size = self.burst.clamp(1, MAX_BURST);
        let mut empty_polls = 0u32;
        let mut sleep = Duration::from_micros(1);
        while !self.stop.is_stopped() {
            let n = self.rx.rx_burst_upto(&mut burst, burst_size);
            if n == 0 {
                empty_polls = empty_polls.saturating_add(1);
                if self.idle == IdlePolicy::Adaptive && empty_polls > SPIN_BEFORE_SLEEP {
                    std::thread::sleep(sleep);
                    sleep = (sleep * 2).min(self.idle_max_sleep);
                    WorkerCounters::add(&self.counters.idle_sleeps, 1);
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            empty_polls = 0;
            sleep = Duration::from_micros(1);
            let bytes: u64 = burst.iter().map(|m| u64::from(m.pkt_len())).sum();
            WorkerCounters::add(&self.counters.rx_packets, n as u64);
            WorkerCounters::add(&self.counters.rx_bytes, bytes);
            WorkerCounters::add(&self.counters.bursts, 1);
            // No forwarding yet: the packets go back to the pool.
            burst.clear();
        }
        drop(self.txs);
        WorkerReport {
            lcore: self.lcore,
            counters: self.counters.snapshot(),
        }
    }
}
