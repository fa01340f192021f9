//! The control core's side of the data plane: it owns the map-cache and neighbour-table
//! writers, drains the workers' punt rings and event queues, answers what needs an ICMP error
//! through its own TX queue on each port, and reclaims retired table memory.
//!
//! The LISP signalling, ARP/ND and EID-detection state machines (issue #6) plug in here; until
//! then other punts and events are counted by reason and released.

use std::net::IpAddr;
use std::sync::Arc;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;

use crate::dataplane::icmp::{icmp_error_in_place, IcmpKind};
use crate::dataplane::{Counts, Event, Plan, Reason};
use crate::dpdk::{Mbuf, RingConsumer, TxQueue, MAX_BURST};
use crate::mapcache::{MapCacheWriter, NeighborWriter};

use super::worker::punt_from_tag;

/// Bursts taken from each punt ring per pass of the control loop.
const PUNT_BURSTS_PER_POLL: usize = 16;
/// Events taken from each worker's queue per pass.
const EVENTS_PER_POLL: usize = 1024;

/// Most ICMP errors the control core sends per second (RFC 1812 4.3.2.8: rate-limit them).
const ICMP_PER_SEC: u32 = 1000;

/// What the control core has seen, for logs and `pxtr ctl`.
#[derive(Debug, Clone, Default)]
pub struct ControlStats {
    /// Punted frames received, by the reason the worker gave.
    pub punts: Counts,
    pub icmp_sent: u64,
    /// ICMP errors not sent (rate limit, no address of ours, about an error, full queue).
    pub icmp_skipped: u64,
    pub misses: u64,
    pub neighbor_misses: u64,
    /// Punted frames whose handler comes with the control plane (issue #6): released.
    pub unhandled: u64,
}

pub(super) struct Control {
    pub plan: Arc<Plan>,
    pub cache: MapCacheWriter,
    pub neighbors: NeighborWriter,
    pub punts: Vec<RingConsumer>,
    pub events: Vec<Arc<ArrayQueue<Event>>>,
    /// The control core's TX queue on every port, plan order.
    pub txs: Vec<TxQueue>,
    pub stats: ControlStats,
    icmp_window_ms: u64,
    icmp_in_window: u32,
}

impl Control {
    pub fn new(
        plan: Arc<Plan>,
        cache: MapCacheWriter,
        neighbors: NeighborWriter,
        punts: Vec<RingConsumer>,
        events: Vec<Arc<ArrayQueue<Event>>>,
        txs: Vec<TxQueue>,
    ) -> Self {
        Control {
            plan,
            cache,
            neighbors,
            punts,
            events,
            txs,
            stats: ControlStats::default(),
            icmp_window_ms: 0,
            icmp_in_window: 0,
        }
    }

    /// One pass: punts, events, reclamation. Returns whether there was anything to do.
    pub fn poll(&mut self, now_ms: u64) -> bool {
        let mut busy = false;
        let mut got: ArrayVec<Mbuf, MAX_BURST> = ArrayVec::new();
        // Bounded work per ring and queue per pass, so a worker flooding its ring (ARP storm,
        // TTL-1 scan) cannot starve the other rings, the events, reclamation and the stop check.
        for i in 0..self.punts.len() {
            for _ in 0..PUNT_BURSTS_PER_POLL {
                if self.punts[i].dequeue_burst(&mut got) == 0 {
                    break;
                }
                busy = true;
                for m in got.drain(..) {
                    self.punted(m, now_ms);
                }
            }
        }
        for q in &self.events {
            for _ in 0..EVENTS_PER_POLL {
                let Some(e) = q.pop() else {
                    break;
                };
                busy = true;
                match e {
                    Event::Miss { iid, eid } => {
                        self.stats.misses += 1;
                        tracing::debug!(iid, %eid, "map-cache miss");
                    }
                    Event::NeighborMiss { port, ip } => {
                        self.stats.neighbor_misses += 1;
                        tracing::debug!(port = %self.plan.ports.get(port).map_or("?", |p| p.name.as_str()), %ip, "next hop without a MAC");
                    }
                }
            }
        }
        self.cache.reclaim();
        self.neighbors.reclaim();
        busy
    }

    fn punted(&mut self, mut m: Mbuf, now_ms: u64) {
        let Some(p) = punt_from_tag(m.user_tag()) else {
            self.stats.unhandled += 1;
            return;
        };
        self.stats.punts.inc(p.reason);
        let kind = match p.reason {
            Reason::PuntTtlExpired => IcmpKind::TimeExceeded,
            Reason::PuntTooBig => IcmpKind::TooBig { mtu: p.mtu },
            _ => {
                self.stats.unhandled += 1;
                return;
            }
        };
        if now_ms.saturating_sub(self.icmp_window_ms) >= 1000 {
            self.icmp_window_ms = now_ms;
            self.icmp_in_window = 0;
        }
        let Some(port) = self
            .plan
            .ports
            .iter()
            .position(|pp| pp.dpdk_port == m.port())
        else {
            self.stats.icmp_skipped += 1;
            return;
        };
        if self.icmp_in_window >= ICMP_PER_SEC {
            self.stats.icmp_skipped += 1;
            return;
        }
        let pp = &self.plan.ports[port];
        let v4 = pp.addresses.iter().find_map(|n| match n.addr() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        });
        let v6 = pp.addresses.iter().find_map(|n| match n.addr() {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        });
        match icmp_error_in_place(&mut m, kind, pp.mac, v4, v6) {
            Ok(()) => {
                self.icmp_in_window += 1;
                match self.txs[port].tx_one(m) {
                    Ok(()) => self.stats.icmp_sent += 1,
                    Err(_) => self.stats.icmp_skipped += 1,
                }
            }
            Err(why) => {
                self.stats.icmp_skipped += 1;
                tracing::trace!(%why, "no ICMP error");
            }
        }
    }
}
