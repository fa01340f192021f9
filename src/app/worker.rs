//! The worker lcore loop: receive a burst, run it through the pipeline, transmit per port,
//! hand punts and events to the control core, publish counters. Queue ownership: one RX queue,
//! this worker's TX queue on every port, its own punt ring and event queue.

use std::sync::Arc;
use std::time::Duration;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;

use crate::config::IdlePolicy;
use crate::dataplane::counters::new_histogram;
use crate::dataplane::{
    Event, Outputs, Pipeline, PreparedPlan, Punt, Reason, WorkerCounters, WorkerSnapshot, MAX_OUT,
};
use crate::dpdk::{tsc, tsc_hz, Mbuf, RingProducer, RxQueue, StopFlag, TxQueue, MAX_BURST};

/// What a worker reports when it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    pub lcore: u32,
    pub counters: WorkerSnapshot,
}

/// A punt's reason and MTU packed into the mbuf's user tag.
pub(crate) fn punt_tag(p: Punt) -> u32 {
    p.reason as u32 | u32::from(p.mtu) << 16
}

/// The inverse of [`punt_tag`].
pub(crate) fn punt_from_tag(tag: u32) -> Option<Punt> {
    let reason = *Reason::ALL.get((tag & 0xffff) as usize)?;
    Some(Punt {
        reason,
        mtu: (tag >> 16) as u16,
    })
}

/// One worker lcore's job (public for the data-plane benchmark, which runs it on real ports).
pub struct Worker {
    pub lcore: u32,
    /// Plan index of the port this worker receives from.
    pub in_port: usize,
    /// Its RX queue first, then any surplus queue of the port it polls too (drivers such as
    /// net_tap have as many RX queues as TX queues).
    pub rxs: Vec<RxQueue>,
    /// This worker's TX queue on every port, in plan order.
    pub txs: Vec<TxQueue>,
    pub pipeline: Pipeline<Mbuf>,
    pub punts: RingProducer,
    pub events: Arc<ArrayQueue<Event>>,
    pub counters: Arc<WorkerCounters>,
    pub stop: StopFlag,
    pub burst: usize,
    pub idle: IdlePolicy,
    pub idle_max_sleep: Duration,
    /// New plans the control core publishes (live reload), taken between two bursts; None
    /// when the plan never changes (benchmarks).
    pub plans: Option<Arc<ArrayQueue<PreparedPlan>>>,
}

/// Empty polls before the adaptive policy starts sleeping.
const SPIN_BEFORE_SLEEP: u32 = 256;

impl Worker {
    pub fn run(mut self) -> WorkerReport {
        let mut burst: ArrayVec<Mbuf, MAX_BURST> = ArrayVec::new();
        let mut punted: ArrayVec<Mbuf, MAX_BURST> = ArrayVec::new();
        let mut out: Outputs<Mbuf> = Outputs::new(self.txs.len());
        let burst_size = self.burst.clamp(1, MAX_BURST);
        let hz = tsc_hz().max(1);
        let ticks_per_ms = (hz / 1000).max(1);
        let start = tsc();
        let mut latency = new_histogram();
        let mut next_merge = start + hz;
        let mut empty_polls = 0u32;
        let mut sleep = Duration::from_micros(1);
        let mut next_rx = 0;
        while !self.stop.is_stopped() {
            // Two loads of lines written only on a reload (see `take_plan`); the old plan is
            // freed by the control core, which keeps it until every worker has let go.
            if let Some(q) = &self.plans {
                self.pipeline.take_plan(q);
            }
            let q = next_rx;
            next_rx = (next_rx + 1) % self.rxs.len().max(1);
            let n = match self.rxs.get_mut(q) {
                Some(rx) => rx.rx_burst_upto(&mut burst, burst_size),
                None => 0,
            };
            let t0 = tsc();
            let now_ms = (t0 - start) / ticks_per_ms;
            if n == 0 {
                if self.pipeline.held() > 0 {
                    // Held packets are released or expired even while nothing arrives.
                    self.pipeline
                        .process(self.in_port, &mut burst, now_ms, &mut out);
                    if !out.is_empty() || self.pipeline.counts().0.iter().any(|n| *n != 0) {
                        self.flush(&mut out, &mut punted);
                    }
                    continue;
                }
                empty_polls = empty_polls.saturating_add(1);
                if self.idle == IdlePolicy::Adaptive && empty_polls > SPIN_BEFORE_SLEEP {
                    // Asleep, this worker must not hold up reclamation in the tables.
                    self.pipeline.offline();
                    std::thread::sleep(sleep);
                    sleep = (sleep * 2).min(self.idle_max_sleep);
                    self.counters.add_idle_sleep();
                } else {
                    std::hint::spin_loop();
                }
                if t0 >= next_merge {
                    next_merge = t0 + hz;
                    self.counters.merge_latency(&mut latency);
                }
                continue;
            }
            empty_polls = 0;
            sleep = Duration::from_micros(1);
            self.pipeline
                .process(self.in_port, &mut burst, now_ms, &mut out);
            self.flush(&mut out, &mut punted);
            let t1 = tsc();
            let ns = (t1 - t0).saturating_mul(1_000_000_000) / hz;
            // Out of range (a preempted lcore): clamp to the histogram's top.
            let _ = latency.record(ns.clamp(1, 1_000_000_000));
            if t1 >= next_merge {
                next_merge = t1 + hz;
                self.counters.merge_latency(&mut latency);
            }
        }
        self.counters.merge_latency(&mut latency);
        self.pipeline.offline();
        drop(self.txs);
        WorkerReport {
            lcore: self.lcore,
            counters: self.counters.snapshot(),
        }
    }

    /// Sends what the pipeline produced, hands punts and events over, publishes the counts.
    fn flush(&mut self, out: &mut Outputs<Mbuf>, punted: &mut ArrayVec<Mbuf, MAX_BURST>) {
        let mut c = self.pipeline.take_counts();
        for (tx, q) in out.tx.iter_mut().zip(self.txs.iter_mut()) {
            if tx.is_empty() {
                continue;
            }
            // Bytes of the frames the device takes: it takes a prefix of the array.
            let mut lens = [0u16; MAX_OUT];
            for (l, m) in lens.iter_mut().zip(tx.iter()) {
                *l = m.data_len();
            }
            let r = q.tx_burst_or_free(tx);
            c.add(Reason::Tx, r.sent as u64);
            c.add(Reason::DropTxFull, r.dropped as u64);
            c.add(
                Reason::TxBytes,
                lens[..r.sent].iter().map(|l| u64::from(*l)).sum::<u64>(),
            );
        }
        if !out.punts.is_empty() {
            for (p, mut m) in out.punts.drain(..) {
                m.set_user_tag(punt_tag(p));
                punted.push(m);
            }
            self.punts.enqueue_burst(punted);
            // A full ring: the rest is dropped and counted as such instead of as punted; the
            // worker never waits.
            for m in punted.drain(..) {
                if let Some(p) = punt_from_tag(m.user_tag()) {
                    c.0[p.reason as usize] = c.0[p.reason as usize].saturating_sub(1);
                }
                c.inc(Reason::DropPuntRingFull);
            }
        }
        for e in out.events.drain(..) {
            if self.events.push(e).is_err() {
                c.inc(Reason::EventsLost);
            }
        }
        self.counters.publish(&c);
        self.counters.add_bursts(1);
    }
}
