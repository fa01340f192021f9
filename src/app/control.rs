//! The control core's side of the data plane: it owns the map-cache and neighbour-table
//! writers, drains the workers' punt rings and event queues, answers what needs an ICMP error
//! through its own TX queue on each port, and reclaims retired table memory.
//!
//! The LISP signalling, ARP/ND and EID-detection state machines (`crate::control`, sans-IO)
//! run here: punted ARP/ND frames and LISP control datagrams, the workers' misses and the
//! clock go in; what they send leaves on this core's TX queues, and their table updates are
//! written to the map-cache and the neighbour table.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;

use crate::config::PortRole;
use crate::control::node::ControlPlane;
use crate::control::{udp, Outbox, Transmit, Update};
use crate::dataplane::icmp::{icmp_error_in_place, IcmpKind};
use crate::dataplane::{Counts, Event, Plan, Reason};
use crate::dpdk::{Mbuf, Mempool, RingConsumer, TxQueue, MAX_BURST};
use crate::ipsec::SaChange;
use crate::mapcache::{MapCacheWriter, Neighbor, NeighborWriter};
use crate::wire::LISP_CONTROL_PORT;

use super::worker::punt_from_tag;

/// Bursts taken from each punt ring per pass of the control loop.
const PUNT_BURSTS_PER_POLL: usize = 16;
/// Events taken from each worker's queue per pass.
const EVENTS_PER_POLL: usize = 1024;

/// Most ICMP errors the control core sends per second (RFC 1812 4.3.2.8: rate-limit them).
const ICMP_PER_SEC: u32 = 1000;
/// Control messages waiting for their next hop's MAC, at most, and for how long.
const WAITING_MAX: usize = 256;
const WAITING_MS: u64 = 3_000;
/// Datagrams taken from each kernel control socket per pass.
const UDP_PER_POLL: usize = 256;
/// How often the workers' map-cache hit counters are folded into entry usage.
const USAGE_EVERY_MS: u64 = 1_000;
/// Longest pause between two runs of the machines' timers.
const TIMER_EVERY_MS: u64 = 100;
/// A pause of the control loop this long is a stall: logged and counted.
pub const STALL_MS: u64 = 1_000;

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
    /// Punted frames no machine handles (e.g. other traffic to our addresses): released.
    pub unhandled: u64,
    /// Punted LISP control frames that are not a usable UDP datagram (malformed, fragment,
    /// bad checksum).
    pub control_not_udp: u64,
    /// Control messages and ARP/ND frames sent on this core's TX queues.
    pub control_sent: u64,
    /// Not sent: no buffer, full TX queue, or the families of source and destination differ.
    pub control_send_failed: u64,
    /// Control messages to a destination no port reaches.
    pub control_no_route: u64,
    /// Control messages dropped while waiting for a next hop's MAC (timeout or too many).
    pub control_no_neighbor: u64,
    /// Map-cache and neighbour-table updates refused (full, busy).
    pub update_failed: u64,
    /// Times the control loop did not run for [`STALL_MS`] or longer (descheduled, stopped
    /// by a debugger, host overloaded); the workers forwarded from the map-cache meanwhile.
    pub stalls: u64,
    /// The longest such pause, in milliseconds.
    pub longest_stall_ms: u64,
    /// Live reloads (SIGHUP, `pxtr ctl reload`): applied (a file without changes included),
    /// refused (keys that need a restart, or no file to re-read), invalid (the file did not
    /// load: nothing was changed).
    pub reloads_ok: u64,
    pub reloads_refused: u64,
    pub reloads_invalid: u64,
}

impl ControlStats {
    /// Every counter with its name: what the log, `pxtr ctl show stats` and the metrics show.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("punts", self.punts.0.iter().sum::<u64>()),
            ("misses", self.misses),
            ("neighbor_misses", self.neighbor_misses),
            ("icmp_sent", self.icmp_sent),
            ("icmp_skipped", self.icmp_skipped),
            ("unhandled", self.unhandled),
            ("control_not_udp", self.control_not_udp),
            ("control_sent", self.control_sent),
            ("control_send_failed", self.control_send_failed),
            ("control_no_route", self.control_no_route),
            ("control_no_neighbor", self.control_no_neighbor),
            ("update_failed", self.update_failed),
            ("stalls", self.stalls),
            ("reloads_ok", self.reloads_ok),
            ("reloads_refused", self.reloads_refused),
            ("reloads_invalid", self.reloads_invalid),
        ]
    }
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
    pub plane: ControlPlane,
    pool: Mempool,
    outbox: Outbox,
    /// (deadline, plan port, next hop, message): waiting for the next hop's MAC.
    waiting: VecDeque<(u64, usize, IpAddr, Transmit)>,
    next_timer_ms: u64,
    next_usage_ms: u64,
    /// Neighbours from the config (`ports[].neighbors`): what the control plane learns or
    /// ages out does not replace them.
    pub static_neighbors: Vec<IpAddr>,
    /// Kernel UDP sockets of a Map-Server/Map-Resolver without DPDK ports (role ms-mr), with
    /// the address each is bound to.
    udp: Vec<(UdpSocket, IpAddr)>,
    /// SA changes from the IPsec manager.
    ipsec: Option<crossbeam::channel::Receiver<SaChange>>,
    /// The IPsec peers, config order.
    ipsec_peers: Vec<TrackedPeer>,
}

/// An IPsec peer the control core follows: its RLOC ranges are unreachable while it is down.
#[derive(Debug, Clone)]
struct TrackedPeer {
    name: String,
    ranges: Vec<ipnet::IpNet>,
    state: PeerState,
}

/// An IPsec peer as the control core knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerState {
    /// A child SA is up (and the peer's RLOC ranges are reachable).
    pub up: bool,
    /// Since when (control-core milliseconds).
    pub since_ms: u64,
    /// Up/down changes so far.
    pub changes: u64,
}

/// The RLOC ranges of the peers that are down (an SA not up), as the ITR keys them.
fn down_ranges(peers: &[TrackedPeer]) -> std::collections::BTreeSet<ipnet::IpNet> {
    peers
        .iter()
        .filter(|p| !p.state.up)
        .flat_map(|p| p.ranges.iter().map(|r| r.trunc()))
        .collect()
}

impl Control {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: Arc<Plan>,
        plane: ControlPlane,
        pool: Mempool,
        cache: MapCacheWriter,
        neighbors: NeighborWriter,
        punts: Vec<RingConsumer>,
        events: Vec<Arc<ArrayQueue<Event>>>,
        txs: Vec<TxQueue>,
    ) -> Self {
        Control {
            plane,
            pool,
            outbox: Outbox::default(),
            waiting: VecDeque::new(),
            next_timer_ms: 0,
            next_usage_ms: 0,
            static_neighbors: Vec::new(),
            udp: Vec::new(),
            ipsec: None,
            ipsec_peers: Vec::new(),
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
                        self.plane.on_miss(iid, eid, now_ms, &mut self.outbox);
                    }
                    Event::LocatorStatus {
                        iid,
                        eid,
                        lsb,
                        width,
                    } => {
                        self.plane.on_locator_status(
                            iid,
                            eid,
                            lsb,
                            width,
                            now_ms,
                            &mut self.outbox,
                        );
                    }
                    Event::SourceSeen { port, ip, mac } => {
                        self.plane
                            .on_source_seen(port, ip, mac, now_ms, &mut self.outbox);
                    }
                    Event::NeighborMiss { port, ip } => {
                        self.stats.neighbor_misses += 1;
                        tracing::debug!(port = %self.plan.ports.get(port).map_or("?", |p| p.name.as_str()), %ip, "next hop without a MAC");
                        self.plane
                            .on_neighbor_miss(port, ip, now_ms, &mut self.outbox);
                    }
                }
            }
        }
        busy |= self.poll_udp(now_ms);
        busy |= self.poll_ipsec(now_ms);
        if now_ms >= self.next_usage_ms {
            self.next_usage_ms = now_ms + USAGE_EVERY_MS;
            self.cache.collect_usage(now_ms);
        }
        if now_ms >= self.next_timer_ms {
            let cache = &self.cache;
            let mut in_use = |iid: u32, prefix, since: u64| {
                cache
                    .usage(iid, prefix)
                    .is_some_and(|u| u.last_used_ms > since)
            };
            self.plane.on_timer(now_ms, &mut in_use, &mut self.outbox);
            self.next_timer_ms = self
                .plane
                .next_timer()
                .unwrap_or(u64::MAX)
                .clamp(now_ms + 1, now_ms + TIMER_EVERY_MS);
        }
        if !self.outbox.is_empty() || !self.waiting.is_empty() {
            busy |= self.perform(now_ms);
        }
        self.cache.reclaim();
        self.neighbors.reclaim();
        busy
    }

    /// Follows the IPsec manager's SA changes: the RLOC ranges of each peer in `peers` (name,
    /// ranges) are unreachable until its SA is up.
    pub fn follow_ipsec(
        &mut self,
        rx: crossbeam::channel::Receiver<SaChange>,
        peers: Vec<(String, Vec<ipnet::IpNet>)>,
        now_ms: u64,
    ) {
        let ranges: Vec<_> = peers
            .iter()
            .flat_map(|(_, r)| r.iter().map(|r| (*r, false)))
            .collect();
        self.plane
            .set_ranges_reachable(&ranges, now_ms, &mut self.outbox);
        self.ipsec_peers = peers
            .into_iter()
            .map(|(name, ranges)| TrackedPeer {
                name,
                ranges,
                state: PeerState {
                    up: false,
                    since_ms: now_ms,
                    changes: 0,
                },
            })
            .collect();
        self.ipsec = Some(rx);
    }

    /// A reloaded list of IPsec peers (name, RLOC ranges; `diff` against the running list):
    /// unchanged peers keep their state; added and changed ones are down until the manager
    /// reports their (new) SA up, so their ranges are unreachable now; the ranges of removed
    /// peers are no longer behind a tunnel, so IPsec no longer decides their reachability
    /// (unreachable ones become reachable, as before pxtr had IPsec). A range stays
    /// unreachable while any peer covering it is down.
    pub fn reconfigure_ipsec(
        &mut self,
        peers: Vec<(String, Vec<ipnet::IpNet>)>,
        diff: &crate::ipsec::PeerDiff,
        now_ms: u64,
    ) {
        let before = down_ranges(&self.ipsec_peers);
        let next: Vec<TrackedPeer> = peers
            .into_iter()
            .map(|(name, ranges)| {
                let old = self.ipsec_peers.iter().find(|p| p.name == name);
                let state = match old {
                    Some(o) if !diff.anew(&name) => o.state,
                    Some(o) if o.state.up => PeerState {
                        up: false,
                        since_ms: now_ms,
                        changes: o.state.changes + 1,
                    },
                    Some(o) => o.state,
                    None => PeerState {
                        up: false,
                        since_ms: now_ms,
                        changes: 0,
                    },
                };
                TrackedPeer {
                    name,
                    ranges,
                    state,
                }
            })
            .collect();
        self.ipsec_peers = next;
        self.apply_down_ranges(&before, now_ms);
        self.perform(now_ms);
    }

    /// Applies a reloaded configuration to the control-plane machines (see
    /// [`ControlPlane::reconfigure`]) over the current plan, and sends what that asks for.
    pub fn reconfigure(
        &mut self,
        cfg: &crate::config::Config,
        now_ms: u64,
    ) -> crate::control::node::Reconfigured {
        let plan = Arc::clone(&self.plan);
        let r = self.plane.reconfigure(cfg, &plan, now_ms, &mut self.outbox);
        // The machines' timers may be due earlier now (a registration at once).
        self.next_timer_ms = now_ms;
        self.perform(now_ms);
        r
    }

    /// IPsec peer `name`'s state, as the SA changes reported it.
    pub fn ipsec_state(&self, name: &str) -> Option<PeerState> {
        self.ipsec_peers
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.state)
    }

    /// Forgets the mappings learnt from the mapping system inside `filter` (all without one):
    /// gone from the map-cache at once, resolved again on the next miss. Static mappings stay.
    pub fn clear_map_cache(&mut self, filter: Option<ipnet::IpNet>, now_ms: u64) -> usize {
        let n = match self.plane.itr.as_mut() {
            Some(itr) => itr.clear(filter, &mut self.outbox),
            None => 0,
        };
        self.perform(now_ms);
        n
    }

    fn poll_ipsec(&mut self, now_ms: u64) -> bool {
        let Some(rx) = &self.ipsec else {
            return false;
        };
        let changes: Vec<SaChange> = rx.try_iter().collect();
        if changes.is_empty() {
            return false;
        }
        let before = down_ranges(&self.ipsec_peers);
        for c in &changes {
            let (name, up) = match c {
                SaChange::Up(n) => (n, true),
                SaChange::Down(n) => (n, false),
                // Its ranges were let go of when the reload removed it.
                SaChange::Removed(n) => {
                    tracing::debug!(peer = %n, "IPsec peer unloaded");
                    continue;
                }
            };
            // A peer a reload removed meanwhile: nothing to follow.
            let Some(p) = self.ipsec_peers.iter_mut().find(|p| &p.name == name) else {
                continue;
            };
            if p.state.up != up {
                p.state = PeerState {
                    up,
                    since_ms: now_ms,
                    changes: p.state.changes + 1,
                };
            }
        }
        self.apply_down_ranges(&before, now_ms);
        true
    }

    /// Makes the RLOC ranges' reachability follow the peers' states, given the ranges that were
    /// down (`before`, [`down_ranges`]): a range is unreachable while any peer covering it is
    /// down, and only ranges whose state changed are touched.
    fn apply_down_ranges(
        &mut self,
        before: &std::collections::BTreeSet<ipnet::IpNet>,
        now_ms: u64,
    ) {
        let after = down_ranges(&self.ipsec_peers);
        let changes: Vec<_> = after
            .difference(before)
            .map(|r| (*r, false))
            .chain(before.difference(&after).map(|r| (*r, true)))
            .collect();
        self.plane
            .set_ranges_reachable(&changes, now_ms, &mut self.outbox);
    }

    /// Takes LISP control messages on a kernel UDP socket bound to `addr` (a Map-Server
    /// without DPDK ports).
    pub fn listen_udp(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        let s = UdpSocket::bind(addr)?;
        s.set_nonblocking(true)?;
        self.udp.push((s, addr.ip()));
        Ok(())
    }

    /// Messages waiting on the kernel sockets (bounded per pass).
    fn poll_udp(&mut self, now_ms: u64) -> bool {
        let mut busy = false;
        let mut buf = [0u8; 9216];
        for i in 0..self.udp.len() {
            for _ in 0..UDP_PER_POLL {
                let (n, from) = match self.udp[i].0.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!(%e, "control socket");
                        break;
                    }
                };
                busy = true;
                let local = self.udp[i].1;
                self.plane.on_udp(
                    from.ip(),
                    from.port(),
                    local,
                    &buf[..n],
                    now_ms,
                    &mut self.outbox,
                );
            }
        }
        busy
    }

    /// Sends `t` on a kernel socket: the one bound to its source, else one of its family.
    fn send_udp(&mut self, t: &Transmit) {
        let sock = self
            .udp
            .iter()
            .find(|(_, a)| Some(*a) == t.src)
            .or_else(|| {
                self.udp
                    .iter()
                    .find(|(_, a)| a.is_ipv4() == t.dst.is_ipv4())
            });
        let sent = sock.map(|(s, _)| s.send_to(&t.payload, SocketAddr::new(t.dst, t.dst_port)));
        match sent {
            Some(Ok(_)) => self.stats.control_sent += 1,
            _ => self.stats.control_send_failed += 1,
        }
    }

    /// Carries out what the machines asked for: table updates first (a neighbour just
    /// learned lets waiting messages go), then frames and messages.
    fn perform(&mut self, now_ms: u64) -> bool {
        let mut did = false;
        // Sending can ask for more (a next hop to resolve): a few rounds at most.
        for _ in 0..4 {
            if self.outbox.is_empty() {
                break;
            }
            did = true;
            let mut out = std::mem::take(&mut self.outbox);
            for u in out.updates.drain(..) {
                self.apply(u, now_ms);
            }
            for f in out.frames.drain(..) {
                self.send_frame(f.port, &f.bytes);
            }
            for t in out.transmits.drain(..) {
                self.send_message(t, now_ms);
            }
            // Events left over were routed inside the control plane already.
            out.events.clear();
            // Anything the sends produced is in self.outbox now; keep the allocations.
            out.clear();
            if self.outbox.is_empty() {
                self.outbox = out;
            }
        }
        // Messages whose next hop is known now go; expired ones are dropped.
        let mut still = VecDeque::new();
        while let Some((deadline, port, nh, t)) = self.waiting.pop_front() {
            if let Some(n) = self.neighbors.get(nh) {
                self.send_to(port, n.mac, t);
                did = true;
            } else if now_ms >= deadline {
                self.stats.control_no_neighbor += 1;
                did = true;
            } else {
                still.push_back((deadline, port, nh, t));
            }
        }
        self.waiting = still;
        did
    }

    fn apply(&mut self, u: Update, now_ms: u64) {
        let ok = match u {
            Update::Map {
                iid,
                prefix,
                mapping,
            } => match self.cache.insert(iid, prefix, mapping, now_ms) {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(iid, %prefix, %e, "map-cache update refused");
                    false
                }
            },
            Update::Unmap { iid, prefix } => {
                self.cache.remove(iid, prefix);
                true
            }
            Update::Neighbor { ip, .. } | Update::NeighborGone { ip }
                if self.static_neighbors.contains(&ip) =>
            {
                true
            }
            Update::Neighbor { ip, mac, port } => match self.plan.ports.get(port) {
                Some(p) => self
                    .neighbors
                    .insert(
                        ip,
                        Neighbor {
                            mac,
                            port: p.dpdk_port,
                        },
                    )
                    .map_err(|e| tracing::warn!(%ip, %e, "neighbour table update refused"))
                    .is_ok(),
                None => false,
            },
            Update::NeighborGone { ip } => {
                self.neighbors.remove(ip);
                true
            }
        };
        if !ok {
            self.stats.update_failed += 1;
        }
    }

    /// The port a control message to `dst` leaves by and the next hop to resolve: a port
    /// `dst` is on-link on (as the data plane sees it), else the gateway of an RLOC port, else
    /// that of an EID port (a Map-Server reached through the enterprise network) of the
    /// family.
    fn route(&self, dst: IpAddr) -> Option<(usize, IpAddr)> {
        let ports = &self.plan.ports;
        if let Some(i) = (0..ports.len()).find(|i| self.plan.on_link(*i, dst)) {
            return Some((i, dst));
        }
        [PortRole::Rloc, PortRole::Eid].iter().find_map(|role| {
            ports.iter().enumerate().find_map(|(i, p)| {
                let g = p.gateway?;
                (p.role == *role && g.is_ipv4() == dst.is_ipv4()).then_some((i, g))
            })
        })
    }

    fn send_message(&mut self, t: Transmit, now_ms: u64) {
        if !self.udp.is_empty() {
            self.send_udp(&t);
            return;
        }
        let Some((port, nh)) = self.route(t.dst) else {
            self.stats.control_no_route += 1;
            tracing::debug!(dst = %t.dst, "no route for a control message");
            return;
        };
        match self.neighbors.get(nh) {
            Some(n) => self.send_to(port, n.mac, t),
            None => {
                self.plane
                    .on_neighbor_miss(port, nh, now_ms, &mut self.outbox);
                if self.waiting.len() >= WAITING_MAX {
                    self.waiting.pop_front();
                    self.stats.control_no_neighbor += 1;
                }
                self.waiting.push_back((now_ms + WAITING_MS, port, nh, t));
            }
        }
    }

    /// Sends `t` on plan port `port` to next-hop MAC `mac`.
    fn send_to(&mut self, port: usize, mac: [u8; 6], t: Transmit) {
        let p = &self.plan.ports[port];
        let src = t
            .src
            .filter(|s| s.is_ipv4() == t.dst.is_ipv4())
            .or_else(|| {
                p.addresses
                    .iter()
                    .map(|n| n.addr())
                    .find(|a| a.is_ipv4() == t.dst.is_ipv4())
            });
        let frame = src.and_then(|src| {
            udp::frame(
                p.mac, mac, src, t.dst, t.src_port, t.dst_port, 64, &t.payload,
            )
        });
        match frame {
            Some(f) => self.send_frame(port, &f),
            None => self.stats.control_send_failed += 1,
        }
    }

    fn send_frame(&mut self, port: usize, bytes: &[u8]) {
        let sent = self
            .pool
            .alloc_from(bytes)
            .and_then(|m| self.txs.get_mut(port)?.tx_one(m).ok());
        match sent {
            Some(()) => self.stats.control_sent += 1,
            None => self.stats.control_send_failed += 1,
        }
    }

    fn punted(&mut self, mut m: Mbuf, now_ms: u64) {
        let Some(p) = punt_from_tag(m.user_tag()) else {
            self.stats.unhandled += 1;
            return;
        };
        self.stats.punts.inc(p.reason);
        let port_index = self
            .plan
            .ports
            .iter()
            .position(|pp| pp.dpdk_port == m.port());
        match (p.reason, port_index) {
            (Reason::PuntArp | Reason::PuntNd, Some(port)) => {
                self.plane
                    .on_frame(port, m.data(), now_ms, &mut self.outbox);
                return;
            }
            (Reason::PuntLispControl, Some(_)) => {
                match udp::parse(m.data()) {
                    Ok(d) if d.dst_port == LISP_CONTROL_PORT || d.src_port == LISP_CONTROL_PORT => {
                        let payload = &m.data()[d.payload.clone()];
                        self.plane.on_udp(
                            d.src,
                            d.src_port,
                            d.dst,
                            payload,
                            now_ms,
                            &mut self.outbox,
                        );
                    }
                    Ok(_) => self.stats.unhandled += 1,
                    Err(_) => self.stats.control_not_udp += 1,
                }
                return;
            }
            _ => {}
        }
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
