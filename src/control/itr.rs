//! The ITR's control plane (RFC 9301 sections 5.3, 6.1, 7.1): resolving EIDs the map-cache
//! misses with Map-Requests in Encapsulated Control Messages to the Map-Resolvers (with
//! retransmission and failover), installing the Map-Replies (positive and negative) as
//! map-cache updates, refreshing entries in use before their TTL runs out, answering an SMR
//! with an SMR-invoked Map-Request, and RLOC-probing the locators in use.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;

use super::{
    control_transmit, eid_prefix, map_request, rloc_toward, Event, Nonces, Outbox, Update,
};
use crate::mapcache::{Locator, Mapping, NegativeAction, MAX_LOCATORS};
use crate::wire::control::{Action, Ecm, EcmInner, MapReply, MapRequest, MappingRecord, Message};
use crate::wire::{Address, LISP_CONTROL_PORT};

/// Timers and limits of the ITR (defaults from RFC 9301 where it gives them).
#[derive(Debug, Clone)]
pub struct ItrConfig {
    /// Map-Resolvers in order of preference.
    pub map_resolvers: Vec<IpAddr>,
    /// Our RLOCs: the ITR-RLOCs of our Map-Requests (where replies come back to).
    pub rlocs: Vec<IpAddr>,
    /// Set the p bit (Map-Requests sent as a PITR).
    pub pitr: bool,
    /// Wait before a Map-Request is sent again (RFC 9301: at most one per second per EID).
    pub retry_ms: u64,
    /// Unanswered Map-Requests to one Map-Resolver before the next one is tried.
    pub attempts_per_resolver: u32,
    /// Unanswered Map-Requests before giving up on an EID (RFC 9301: 10).
    pub max_attempts: u32,
    /// After giving up, misses of that EID are not resolved again for this long (RFC 9301:
    /// 30 seconds).
    pub backoff_ms: u64,
    /// Most EIDs being resolved at once; more are refused and counted.
    pub max_pending: usize,
    /// RLOC-probe interval for locators in use; 0 turns probing off.
    pub probe_interval_ms: u64,
    /// A probe unanswered this long is a miss; the next probe follows after the same time.
    pub probe_timeout_ms: u64,
    /// Consecutive missed probes that make a locator unreachable.
    pub probe_misses: u32,
}

impl Default for ItrConfig {
    fn default() -> Self {
        ItrConfig {
            map_resolvers: Vec::new(),
            rlocs: Vec::new(),
            pitr: false,
            retry_ms: 1_000,
            attempts_per_resolver: 2,
            max_attempts: 10,
            backoff_ms: 30_000,
            max_pending: 10_000,
            probe_interval_ms: 30_000,
            probe_timeout_ms: 2_000,
            probe_misses: 3,
        }
    }
}

/// What the ITR has done, for logs, `pxtr ctl show stats` and metrics.
#[derive(Debug, Default, Clone)]
pub struct ItrStats {
    pub requests_sent: u64,
    pub retransmits: u64,
    pub resolver_failovers: u64,
    pub gave_up: u64,
    pub suppressed_backoff: u64,
    pub refused_pending_full: u64,
    pub refused_no_resolver: u64,
    pub replies: u64,
    pub replies_unmatched: u64,
    pub records_installed: u64,
    pub negative_installed: u64,
    pub records_not_covering: u64,
    pub records_unusable: u64,
    pub records_ttl_zero: u64,
    pub records_own_site: u64,
    pub ranges_changed: u64,
    pub lsb_changes: u64,
    pub hosts_local_again: u64,
    pub expired: u64,
    pub refreshes: u64,
    pub smr_received: u64,
    pub smr_invoked_sent: u64,
    pub smr_not_cached: u64,
    pub probes_sent: u64,
    pub probe_replies: u64,
    pub probe_replies_unmatched: u64,
    pub probe_misses: u64,
    pub rloc_down: u64,
    pub rloc_up: u64,
    /// Mappings removed by `pxtr ctl clear map-cache`.
    pub cleared: u64,
}

impl ItrStats {
    /// Every counter with its name.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("map_requests_sent", self.requests_sent),
            ("map_request_retransmits", self.retransmits),
            ("map_resolver_failovers", self.resolver_failovers),
            ("resolve_gave_up", self.gave_up),
            ("resolve_suppressed_backoff", self.suppressed_backoff),
            ("resolve_refused_pending_full", self.refused_pending_full),
            ("resolve_refused_no_resolver", self.refused_no_resolver),
            ("map_replies", self.replies),
            ("map_replies_unmatched", self.replies_unmatched),
            ("mappings_installed", self.records_installed),
            ("negative_mappings_installed", self.negative_installed),
            ("reply_records_not_covering", self.records_not_covering),
            ("reply_records_unusable", self.records_unusable),
            ("reply_records_ttl_zero", self.records_ttl_zero),
            ("reply_records_own_site", self.records_own_site),
            ("rloc_range_reachability_changes", self.ranges_changed),
            ("locator_status_changes", self.lsb_changes),
            (
                "remote_host_routes_dropped_local_again",
                self.hosts_local_again,
            ),
            ("mappings_expired", self.expired),
            ("mappings_cleared", self.cleared),
            ("mapping_refreshes", self.refreshes),
            ("smr_received", self.smr_received),
            ("smr_invoked_sent", self.smr_invoked_sent),
            ("smr_not_cached", self.smr_not_cached),
            ("rloc_probes_sent", self.probes_sent),
            ("rloc_probe_replies", self.probe_replies),
            ("rloc_probe_replies_unmatched", self.probe_replies_unmatched),
            ("rloc_probe_misses", self.probe_misses),
            ("rloc_down", self.rloc_down),
            ("rloc_up", self.rloc_up),
        ]
    }
}

/// An instance-ID and EID-prefix (a host route for a miss).
type Key = (u32, IpNet);

#[derive(Debug, Clone)]
struct Pending {
    /// The latest request's nonce.
    nonce: u64,
    /// Every nonce sent for it: a reply to an earlier try still counts (its round trip may
    /// be longer than the retry interval).
    sent: Vec<u64>,
    /// Map-Requests sent so far.
    attempts: u32,
    /// Index into the Map-Resolvers.
    resolver: usize,
    /// Map-Requests sent to the current resolver.
    at_resolver: u32,
    next_at: u64,
    smr_invoked: bool,
}

/// A mapping the ITR installed.
#[derive(Debug, Clone)]
struct Installed {
    mapping: Mapping,
    /// The record's R bit per locator: a locator its owner declared down stays down
    /// whatever probing says.
    r_bits: Vec<bool>,
    /// Each locator's position in the record, and what the site's locator-status-bits last
    /// said of it (up until they say otherwise).
    positions: Vec<usize>,
    lsb_bits: Vec<bool>,
    /// When it was installed (a refresh asks whether it was used since).
    installed_at: u64,
    /// When it runs out, and when to refresh it if it is in use.
    expires_at: u64,
    refresh_at: u64,
    /// Its locators' addresses (probing).
    rlocs: Vec<IpAddr>,
    /// Whether the mapping points at another site (not only our own RLOCs).
    remote: bool,
}

/// RLOC-probe state of one locator.
#[derive(Debug, Clone)]
struct Probe {
    /// Installed mappings with this locator, and one of them (the EID asked about).
    users: u32,
    sample: Key,
    /// The outstanding probe: nonce and deadline.
    outstanding: Option<(u64, u64)>,
    next_at: u64,
    misses: u32,
    up: bool,
}

/// An installed entry or a probe is due (the timer wheel's items).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Pending(u32, IpNet),
    Entry(u32, IpNet),
    Probe(IpAddr),
}

/// The ITR control-plane machine.
#[derive(Debug)]
pub struct Itr {
    cfg: ItrConfig,
    nonces: Nonces,
    pending: HashMap<Key, Pending>,
    by_nonce: HashMap<u64, Key>,
    /// Keys not to resolve again before the time given (gave up).
    backoff: HashMap<Key, u64>,
    installed: HashMap<Key, Installed>,
    probes: HashMap<IpAddr, Probe>,
    probe_nonces: HashMap<u64, IpAddr>,
    /// Locators made unreachable from outside (IPsec SA down).
    admin_down: Vec<IpNet>,
    /// (when, what): the timer wheel.
    due: BTreeSet<(u64, Due)>,
    /// The Map-Resolver new requests start with (moves on failover).
    preferred: usize,
    pub stats: ItrStats,
}

impl Itr {
    pub fn new(cfg: ItrConfig, nonces: Nonces) -> Self {
        Itr {
            cfg,
            nonces,
            pending: HashMap::new(),
            by_nonce: HashMap::new(),
            backoff: HashMap::new(),
            installed: HashMap::new(),
            probes: HashMap::new(),
            probe_nonces: HashMap::new(),
            admin_down: Vec::new(),
            due: BTreeSet::new(),
            preferred: 0,
            stats: ItrStats::default(),
        }
    }

    /// The Map-Resolvers now (live reload). Resolutions under way carry on: with their
    /// resolver if it stays, else from the first of the new list; without any resolver they
    /// are dropped (and counted as refused), since nobody can be asked.
    pub fn set_map_resolvers(&mut self, resolvers: Vec<IpAddr>) {
        let old = std::mem::replace(&mut self.cfg.map_resolvers, resolvers);
        let new = &self.cfg.map_resolvers;
        self.preferred = old
            .get(self.preferred)
            .and_then(|a| new.iter().position(|b| b == a))
            .unwrap_or(0);
        if new.is_empty() {
            for (_, p) in self.pending.drain() {
                for n in &p.sent {
                    self.by_nonce.remove(n);
                }
                self.stats.refused_no_resolver += 1;
            }
            return;
        }
        for p in self.pending.values_mut() {
            match old
                .get(p.resolver)
                .and_then(|a| new.iter().position(|b| b == a))
            {
                Some(i) => p.resolver = i,
                None => {
                    p.resolver = 0;
                    p.at_resolver = 0;
                }
            }
        }
    }

    /// EIDs being resolved.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The mapping the ITR installed for exactly `iid`/`prefix`, and when it expires.
    pub fn installed(&self, iid: u32, prefix: IpNet) -> Option<(&Mapping, u64)> {
        self.installed
            .get(&(iid, prefix))
            .map(|i| (&i.mapping, i.expires_at))
    }

    /// Whether locator `rloc` is considered reachable (probing and [`Itr::set_rloc_reachable`]).
    pub fn rloc_up(&self, rloc: IpAddr) -> bool {
        !self.admin_down.iter().any(|n| n.contains(&rloc))
            && self.probes.get(&rloc).map_or(true, |p| p.up)
    }

    /// The data plane missed `eid` in instance `iid` (or proxy-ARP asked about it): send a
    /// Map-Request unless one is outstanding or the EID is backing off.
    pub fn resolve(&mut self, iid: u32, eid: IpAddr, now_ms: u64, out: &mut Outbox) {
        let key = (iid, IpNet::from(eid));
        self.start(key, false, now_ms, out);
    }

    fn start(&mut self, key: Key, smr_invoked: bool, now_ms: u64, out: &mut Outbox) -> bool {
        if self.pending.contains_key(&key) {
            return false;
        }
        if let Some(&until) = self.backoff.get(&key) {
            if now_ms < until {
                self.stats.suppressed_backoff += 1;
                return false;
            }
            self.backoff.remove(&key);
        }
        if self.cfg.map_resolvers.is_empty() {
            self.stats.refused_no_resolver += 1;
            return false;
        }
        if self.pending.len() >= self.cfg.max_pending {
            self.stats.refused_pending_full += 1;
            return false;
        }
        let mut p = Pending {
            nonce: 0,
            sent: Vec::new(),
            attempts: 0,
            resolver: self.preferred % self.cfg.map_resolvers.len(),
            at_resolver: 0,
            next_at: now_ms,
            smr_invoked,
        };
        self.send_request(key, &mut p, now_ms, out);
        self.pending.insert(key, p);
        true
    }

    /// Sends (again) the Map-Request of `p` for `key` to its current resolver.
    fn send_request(&mut self, key: Key, p: &mut Pending, now_ms: u64, out: &mut Outbox) {
        p.nonce = self.nonces.next();
        p.sent.push(p.nonce);
        self.by_nonce.insert(p.nonce, key);
        p.attempts += 1;
        p.at_resolver += 1;
        p.next_at = now_ms + self.cfg.retry_ms;
        self.due.insert((p.next_at, Due::Pending(key.0, key.1)));
        let (iid, prefix) = key;
        let mut req = map_request(p.nonce, Address::None, &self.cfg.rlocs, iid, prefix);
        req.pitr = self.cfg.pitr;
        req.smr_invoked = p.smr_invoked;
        let resolver = self.cfg.map_resolvers[p.resolver];
        // The inner header goes from our RLOC of the EID's family to the EID.
        let inner_src =
            rloc_toward(&self.cfg.rlocs, prefix.addr()).unwrap_or(match prefix.addr() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            });
        let Ok(message) = Message::MapRequest(req).to_vec() else {
            return;
        };
        let ecm = Ecm {
            security: false,
            ddt: false,
            to_etr: false,
            to_ms: false,
            inner: EcmInner {
                src: inner_src,
                dst: prefix.addr(),
                src_port: LISP_CONTROL_PORT,
                dst_port: LISP_CONTROL_PORT,
                ttl: 64,
                ipv4_id: 0,
                dont_fragment: false,
                udp_checksum: true,
            },
            message,
        };
        let Ok(payload) = Message::Ecm(ecm).to_vec() else {
            return;
        };
        out.transmits.push(control_transmit(
            rloc_toward(&self.cfg.rlocs, resolver),
            resolver,
            payload,
        ));
        self.stats.requests_sent += 1;
        if p.attempts > 1 {
            self.stats.retransmits += 1;
        }
    }

    /// A Map-Reply arrived (from an ETR, a Map-Server proxying, or an RLOC-probe reply).
    pub fn on_map_reply(&mut self, reply: &MapReply, now_ms: u64, out: &mut Outbox) {
        if reply.probe {
            self.on_probe_reply(reply, now_ms, out);
            return;
        }
        let Some(key) = self.by_nonce.get(&reply.nonce).copied() else {
            self.stats.replies_unmatched += 1;
            tracing::debug!(
                nonce = reply.nonce,
                "Map-Reply with an unknown nonce dropped"
            );
            return;
        };
        if let Some(p) = self.pending.remove(&key) {
            for n in p.sent {
                self.by_nonce.remove(&n);
            }
        }
        self.stats.replies += 1;
        for rec in &reply.records {
            let Some((iid, prefix)) = eid_prefix(&rec.eid, rec.mask_len) else {
                self.stats.records_unusable += 1;
                continue;
            };
            // A reply may give a less specific prefix than asked, never one that does not
            // cover what was asked.
            if iid != key.0
                || !prefix.contains(&key.1.addr())
                || prefix.prefix_len() > key.1.prefix_len()
            {
                self.stats.records_not_covering += 1;
                continue;
            }
            self.install(iid, prefix, rec, now_ms, out);
        }
    }

    /// Installs one Map-Reply record.
    fn install(
        &mut self,
        iid: u32,
        prefix: IpNet,
        rec: &MappingRecord,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        let key = (iid, prefix);
        if rec.ttl == 0 {
            // TTL 0: not to be cached; forget what we had.
            self.stats.records_ttl_zero += 1;
            self.uninstall(key, out);
            return;
        }
        let Some((mut mapping, positions)) = mapping_and_positions(rec) else {
            self.stats.records_unusable += 1;
            return;
        };
        if !mapping.locators.is_empty()
            && mapping
                .locators
                .iter()
                .all(|l| self.cfg.rlocs.contains(&l.address))
        {
            // Our own site (our ETR answered): not something to encapsulate to. Caching it
            // would send our own hosts' traffic to ourselves once they move away.
            self.stats.records_own_site += 1;
            self.uninstall(key, out);
            return;
        }
        let r_bits: Vec<bool> = mapping.locators.iter().map(|l| l.reachable).collect();
        for l in &mut mapping.locators {
            l.reachable &= self.rloc_up(l.address);
        }
        let ttl_ms = u64::from(rec.ttl) * 60_000;
        let rlocs: Vec<IpAddr> = mapping.locators.iter().map(|l| l.address).collect();
        let remote = rlocs.iter().any(|r| !self.cfg.rlocs.contains(r));
        let expires_at = now_ms + ttl_ms;
        // Refresh when a tenth of the TTL is left (at least 5 s before expiry).
        let refresh_at = expires_at.saturating_sub((ttl_ms / 10).max(5_000).min(ttl_ms));
        if mapping.locators.is_empty() {
            self.stats.negative_installed += 1;
        } else {
            self.stats.records_installed += 1;
        }
        for r in &rlocs {
            self.watch_rloc(*r, key, now_ms);
        }
        // The old entry's locators after the new one's, so a locator in both keeps its state.
        if let Some(old) = self.installed.remove(&key) {
            self.due.remove(&(old.refresh_at, Due::Entry(iid, prefix)));
            self.due.remove(&(old.expires_at, Due::Entry(iid, prefix)));
            for r in old.rlocs {
                self.unwatch_rloc(r);
            }
        }
        self.due.insert((refresh_at, Due::Entry(iid, prefix)));
        out.updates.push(Update::Map {
            iid,
            prefix,
            mapping: mapping.clone(),
        });
        out.events.push(if remote {
            Event::Remote { iid, prefix }
        } else {
            Event::NotRemote { iid, prefix }
        });
        self.installed.insert(
            key,
            Installed {
                lsb_bits: vec![true; positions.len()],
                positions,
                mapping,
                r_bits,
                installed_at: now_ms,
                expires_at,
                refresh_at,
                rlocs,
                remote,
            },
        );
    }

    /// Forgets the mappings it installed that lie inside `filter` (all without one), as their
    /// expiry would (`pxtr ctl clear map-cache`): unmapped from the map-cache, no longer
    /// answered for by proxy, resolved again on the next miss. Returns how many.
    pub fn clear(&mut self, filter: Option<IpNet>, out: &mut Outbox) -> usize {
        let keys: Vec<Key> = self
            .installed
            .keys()
            .filter(|(_, p)| super::prefix_overlaps(filter, p))
            .copied()
            .collect();
        for k in &keys {
            self.uninstall(*k, out);
            self.backoff.remove(k);
        }
        self.stats.cleared += keys.len() as u64;
        keys.len()
    }

    fn uninstall(&mut self, key: Key, out: &mut Outbox) {
        if let Some(old) = self.installed.remove(&key) {
            self.due.remove(&(old.refresh_at, Due::Entry(key.0, key.1)));
            self.due.remove(&(old.expires_at, Due::Entry(key.0, key.1)));
            out.updates.push(Update::Unmap {
                iid: key.0,
                prefix: key.1,
            });
            if old.remote {
                out.events.push(Event::NotRemote {
                    iid: key.0,
                    prefix: key.1,
                });
            }
            for r in old.rlocs {
                self.unwatch_rloc(r);
            }
        }
    }

    /// Counts a mapping `key` using `rloc`; starts probing it if probing is on and it is new.
    fn watch_rloc(&mut self, rloc: IpAddr, key: Key, now_ms: u64) {
        if self.cfg.probe_interval_ms == 0 || self.cfg.rlocs.contains(&rloc) {
            return;
        }
        let p = self.probes.entry(rloc).or_insert_with(|| {
            // The first probe soon, so a dead locator is found before the next interval.
            let next_at = now_ms + self.cfg.probe_timeout_ms;
            self.due.insert((next_at, Due::Probe(rloc)));
            Probe {
                users: 0,
                sample: key,
                outstanding: None,
                next_at,
                misses: 0,
                up: true,
            }
        });
        p.users += 1;
        p.sample = key;
    }

    /// A mapping stopped using `rloc`: probing stops with its last user.
    fn unwatch_rloc(&mut self, rloc: IpAddr) {
        let Some(p) = self.probes.get_mut(&rloc) else {
            return;
        };
        p.users = p.users.saturating_sub(1);
        if p.users > 0 {
            // The sample may be the mapping that went: pick any other user when probing.
            return;
        }
        if let Some(p) = self.probes.remove(&rloc) {
            self.due.remove(&(p.next_at, Due::Probe(rloc)));
            if let Some((n, _)) = p.outstanding {
                self.probe_nonces.remove(&n);
            }
        }
    }

    /// An SMR (a Map-Request with the S bit) from `src`: ask the mapping system again, with
    /// an SMR-invoked Map-Request, for each EID of it we have cached (RFC 9301 6.1).
    pub fn on_smr(&mut self, src: IpAddr, req: &MapRequest, now_ms: u64, out: &mut Outbox) {
        self.stats.smr_received += 1;
        for rec in &req.records {
            let Some((iid, prefix)) = eid_prefix(&rec.eid, rec.mask_len) else {
                self.stats.smr_not_cached += 1;
                continue;
            };
            match self.covering(iid, prefix.addr()) {
                Some(_) => {
                    // The EID the SMR names, not the cached prefix covering it: a host that
                    // moved out of a cached prefix has a host route of its own now.
                    if self.start((iid, prefix), true, now_ms, out) {
                        self.stats.smr_invoked_sent += 1;
                        tracing::info!(%src, iid, %prefix, "SMR: asking the mapping system again");
                    }
                }
                None => self.stats.smr_not_cached += 1,
            }
        }
    }

    /// The longest installed prefix covering `ip` in `iid`.
    fn covering(&self, iid: u32, ip: IpAddr) -> Option<Key> {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (0..=max).rev().find_map(|len| {
            let net = IpNet::new(ip, len).ok()?.trunc();
            self.installed
                .contains_key(&(iid, net))
                .then_some((iid, net))
        })
    }

    /// A host was detected here (`Event::HostUp`): a host route that sent it to another site
    /// is stale (the host came back, and the SMR that should say so may be lost).
    pub fn host_is_local(&mut self, iid: u32, ip: IpAddr, out: &mut Outbox) {
        let key = (iid, IpNet::from(ip));
        if self.installed.get(&key).is_some_and(|i| i.remote) {
            self.stats.hosts_local_again += 1;
            tracing::info!(iid, %ip, "host detected here: its host route to another site removed");
            self.uninstall(key, out);
        }
    }

    /// Marks `rloc` reachable or not from outside the ITR (an IPsec SA coming up or going
    /// down): every mapping with it is installed again with the new state.
    pub fn set_rloc_reachable(&mut self, rloc: IpAddr, up: bool, out: &mut Outbox) {
        self.set_range_reachable(IpNet::from(rloc), up, out);
    }

    /// [`Itr::set_rloc_reachable`] for every RLOC in `range` (an IPsec peer's RLOC range:
    /// unreachable while no SA to it is up).
    pub fn set_range_reachable(&mut self, range: IpNet, up: bool, out: &mut Outbox) {
        let range = range.trunc();
        let changed = if up {
            let before = self.admin_down.len();
            self.admin_down.retain(|n| *n != range);
            self.admin_down.len() != before
        } else if self.admin_down.contains(&range) {
            false
        } else {
            self.admin_down.push(range);
            true
        };
        if changed {
            self.stats.ranges_changed += 1;
            self.reinstall_in(range, out);
        }
    }

    /// Installs again every mapping with `rloc`, its locators' reachability as now known.
    fn reinstall_with(&mut self, rloc: IpAddr, out: &mut Outbox) {
        self.reinstall_in(IpNet::from(rloc), out);
    }

    /// Installs again every mapping with a locator in `range`.
    fn reinstall_in(&mut self, range: IpNet, out: &mut Outbox) {
        let mut keys: Vec<Key> = self
            .installed
            .iter()
            .filter(|(_, i)| i.rlocs.iter().any(|r| range.contains(r)))
            .map(|(k, _)| *k)
            .collect();
        keys.sort();
        for key in keys {
            self.publish(key, out);
        }
    }

    /// Installs the mapping of `key` again, each locator reachable when its record's R bit,
    /// the site's locator-status-bits and our probes (or the IPsec SA) all say so.
    fn publish(&mut self, key: Key, out: &mut Outbox) {
        let Some(i) = self.installed.get(&key) else {
            return;
        };
        let state: Vec<bool> = (0..i.rlocs.len())
            .map(|j| i.r_bits[j] && i.lsb_bits[j] && self.rloc_up(i.rlocs[j]))
            .collect();
        let Some(i) = self.installed.get_mut(&key) else {
            return;
        };
        for (l, up) in i.mapping.locators.iter_mut().zip(state) {
            l.reachable = up;
        }
        out.updates.push(Update::Map {
            iid: key.0,
            prefix: key.1,
            mapping: i.mapping.clone(),
        });
    }

    /// LISP data from the site of `eid` carried locator-status-bits `lsb` (`width` of them: 8
    /// with an instance-ID, else 32; RFC 9300 10): bit i is the site's i-th locator (in its
    /// mapping record's order). The mapping covering `eid` is installed again when they change
    /// what is reachable.
    pub fn on_locator_status(
        &mut self,
        iid: u32,
        eid: IpAddr,
        lsb: u32,
        width: u32,
        out: &mut Outbox,
    ) {
        let Some(key) = self.covering(iid, eid) else {
            return;
        };
        let Some(i) = self.installed.get_mut(&key) else {
            return;
        };
        let bits: Vec<bool> = i
            .positions
            .iter()
            .map(|p| u32::try_from(*p).map_or(true, |p| p >= width || lsb >> p & 1 == 1))
            .collect();
        if bits != i.lsb_bits {
            i.lsb_bits = bits;
            self.stats.lsb_changes += 1;
            tracing::info!(iid, %eid, lsb = format!("{lsb:#x}"), "locator-status-bits changed");
            self.publish(key, out);
        }
    }

    fn on_probe_reply(&mut self, reply: &MapReply, now_ms: u64, out: &mut Outbox) {
        let Some(rloc) = self.probe_nonces.remove(&reply.nonce) else {
            self.stats.probe_replies_unmatched += 1;
            return;
        };
        self.stats.probe_replies += 1;
        let Some(p) = self.probes.get_mut(&rloc) else {
            return;
        };
        p.outstanding = None;
        p.misses = 0;
        // The next probe one interval after this answer.
        self.due.remove(&(p.next_at, Due::Probe(rloc)));
        p.next_at = now_ms + self.cfg.probe_interval_ms;
        self.due.insert((p.next_at, Due::Probe(rloc)));
        if !p.up {
            p.up = true;
            self.stats.rloc_up += 1;
            tracing::info!(%rloc, "locator reachable again (RLOC-probe answered)");
            self.reinstall_with(rloc, out);
        }
    }

    /// Sends an RLOC-probe to `rloc`.
    fn send_probe(&mut self, rloc: IpAddr, now_ms: u64, out: &mut Outbox) {
        let Some(p) = self.probes.get(&rloc) else {
            return;
        };
        let sample = p.sample;
        let (iid, prefix) = if self
            .installed
            .get(&sample)
            .is_some_and(|i| i.rlocs.contains(&rloc))
        {
            sample
        } else {
            // The sample went away (its users did not): find another user.
            match self.installed.iter().find(|(_, i)| i.rlocs.contains(&rloc)) {
                Some((k, _)) => *k,
                None => return,
            }
        };
        let nonce = self.nonces.next();
        let mut req = map_request(nonce, Address::None, &self.cfg.rlocs, iid, prefix);
        req.probe = true;
        let Ok(payload) = Message::MapRequest(req).to_vec() else {
            return;
        };
        out.transmits.push(control_transmit(
            rloc_toward(&self.cfg.rlocs, rloc),
            rloc,
            payload,
        ));
        self.stats.probes_sent += 1;
        let deadline = now_ms + self.cfg.probe_timeout_ms;
        if let Some(p) = self.probes.get_mut(&rloc) {
            if let Some((old, _)) = p.outstanding.replace((nonce, deadline)) {
                self.probe_nonces.remove(&old);
            }
            p.next_at = deadline;
        }
        self.probe_nonces.insert(nonce, rloc);
        self.due.insert((deadline, Due::Probe(rloc)));
    }

    /// Runs what is due by `now_ms`: retransmissions and failover, expiry, refresh of entries
    /// in use, RLOC probes. `in_use(iid, prefix, since_ms)` tells from the map-cache's usage
    /// whether the entry was used after `since_ms` (when it was installed).
    pub fn on_timer(
        &mut self,
        now_ms: u64,
        in_use: &mut dyn FnMut(u32, IpNet, u64) -> bool,
        out: &mut Outbox,
    ) {
        while let Some(&(at, what)) = self.due.first() {
            if at > now_ms {
                break;
            }
            self.due.pop_first();
            match what {
                Due::Pending(iid, prefix) => self.pending_due((iid, prefix), at, now_ms, out),
                Due::Entry(iid, prefix) => self.entry_due((iid, prefix), at, now_ms, in_use, out),
                Due::Probe(rloc) => self.probe_due(rloc, at, now_ms, out),
            }
        }
    }

    fn pending_due(&mut self, key: Key, at: u64, now_ms: u64, out: &mut Outbox) {
        let Some(mut p) = self.pending.remove(&key) else {
            return;
        };
        if p.next_at != at {
            self.pending.insert(key, p);
            return;
        }
        if p.attempts >= self.cfg.max_attempts {
            for n in &p.sent {
                self.by_nonce.remove(n);
            }
            self.stats.gave_up += 1;
            self.backoff.insert(key, now_ms + self.cfg.backoff_ms);
            if self.backoff.len() > self.cfg.max_pending {
                self.backoff.retain(|_, until| *until > now_ms);
            }
            tracing::warn!(iid = key.0, eid = %key.1, attempts = p.attempts,
                "no Map-Reply: giving up for now");
            return;
        }
        let n = self.cfg.map_resolvers.len();
        if p.at_resolver >= self.cfg.attempts_per_resolver && n > 1 {
            let from = self.cfg.map_resolvers[p.resolver];
            p.resolver = (p.resolver + 1) % n;
            p.at_resolver = 0;
            self.preferred = p.resolver;
            self.stats.resolver_failovers += 1;
            tracing::warn!(%from, to = %self.cfg.map_resolvers[p.resolver],
                "Map-Resolver not answering: failing over");
        }
        self.send_request(key, &mut p, now_ms, out);
        self.pending.insert(key, p);
    }

    fn entry_due(
        &mut self,
        key: Key,
        at: u64,
        now_ms: u64,
        in_use: &mut dyn FnMut(u32, IpNet, u64) -> bool,
        out: &mut Outbox,
    ) {
        let Some(i) = self.installed.get(&key) else {
            return;
        };
        if at == i.expires_at || now_ms >= i.expires_at {
            self.stats.expired += 1;
            self.uninstall(key, out);
            return;
        }
        if at == i.refresh_at {
            let (expires_at, since) = (i.expires_at, i.installed_at);
            self.due.insert((expires_at, Due::Entry(key.0, key.1)));
            if in_use(key.0, key.1, since) && self.start(key, false, now_ms, out) {
                self.stats.refreshes += 1;
            }
        }
    }

    fn probe_due(&mut self, rloc: IpAddr, at: u64, now_ms: u64, out: &mut Outbox) {
        let Some(p) = self.probes.get_mut(&rloc) else {
            return;
        };
        if p.next_at != at {
            return;
        }
        if let Some((nonce, _)) = p.outstanding.take() {
            self.probe_nonces.remove(&nonce);
            self.stats.probe_misses += 1;
            p.misses += 1;
            if p.misses >= self.cfg.probe_misses && p.up {
                p.up = false;
                self.stats.rloc_down += 1;
                tracing::warn!(%rloc, misses = p.misses, "locator unreachable (RLOC-probes unanswered)");
                self.reinstall_with(rloc, out);
            }
        }
        self.send_probe(rloc, now_ms, out);
    }

    /// The earliest time [`Itr::on_timer`] has something to do.
    pub fn next_timer(&self) -> Option<u64> {
        self.due.first().map(|(at, _)| *at)
    }
}

/// The map-cache form of a mapping record: IP locators only (at most
/// [`MAX_LOCATORS`], the most preferred kept), R bit as reachability; a record without
/// locators is negative with its action. `None` when it has locators but none usable.
pub fn mapping_from_record(rec: &MappingRecord) -> Option<Mapping> {
    mapping_and_positions(rec).map(|(m, _)| m)
}

/// [`mapping_from_record`], with each map-cache locator's position in the record (what
/// locator-status-bits refer to).
fn mapping_and_positions(rec: &MappingRecord) -> Option<(Mapping, Vec<usize>)> {
    let mut locs: Vec<(usize, Locator)> = rec
        .locators
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            Some((
                i,
                Locator {
                    address: l.address.ip()?,
                    priority: l.priority,
                    weight: l.weight,
                    reachable: l.reachable,
                },
            ))
        })
        .collect();
    if locs.is_empty() && !rec.locators.is_empty() {
        return None;
    }
    locs.sort_by_key(|(_, l)| l.priority);
    locs.truncate(MAX_LOCATORS);
    let positions: Vec<usize> = locs.iter().map(|(i, _)| *i).collect();
    let locs: Vec<Locator> = locs.into_iter().map(|(_, l)| l).collect();
    let ttl = Some(Duration::from_secs(u64::from(rec.ttl) * 60));
    if locs.is_empty() {
        let action = match rec.action {
            Action::NativelyForward | Action::NoAction => NegativeAction::NativelyForward,
            Action::SendMapRequest => NegativeAction::SendMapRequest,
            Action::DropNoReason | Action::DropPolicyDenied | Action::DropAuthFailure => {
                NegativeAction::Drop
            }
            // An action this version does not know: ask again rather than guess.
            Action::Other(_) => NegativeAction::SendMapRequest,
        };
        return Some((Mapping::negative(action, ttl), positions));
    }
    Some((
        Mapping {
            locators: locs.into_iter().collect(),
            action: NegativeAction::default(),
            ttl,
            version: rec.map_version,
        },
        positions,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{eid_address, ip_address};
    use crate::wire::control::EidRecord;
    use crate::wire::control::Locator as WireLocator;

    const MR1: &str = "192.0.2.1";
    const MR2: &str = "192.0.2.2";
    const OURS: &str = "198.51.100.1";
    const PEER: &str = "203.0.113.9";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn itr(probe_interval_ms: u64) -> Itr {
        Itr::new(
            ItrConfig {
                map_resolvers: vec![ip(MR1), ip(MR2)],
                rlocs: vec![ip(OURS)],
                probe_interval_ms,
                ..ItrConfig::default()
            },
            Nonces::seeded(1),
        )
    }

    /// The Map-Requests in `out` (ECM-wrapped or plain) with their destinations; empties it.
    fn requests(out: &mut Outbox) -> Vec<(IpAddr, MapRequest, bool)> {
        let v = out
            .transmits
            .drain(..)
            .map(|t| {
                assert_eq!((t.src_port, t.dst_port), (4342, 4342));
                match Message::parse(&t.payload).unwrap() {
                    Message::Ecm(e) => match e.message().unwrap() {
                        Message::MapRequest(r) => {
                            assert_eq!(e.inner.dst, r.records[0].eid.ip().unwrap());
                            assert_eq!(t.src, Some(ip(OURS)));
                            (t.dst, r, true)
                        }
                        m => panic!("ECM carries {m:?}"),
                    },
                    Message::MapRequest(r) => (t.dst, r, false),
                    m => panic!("sent {m:?}"),
                }
            })
            .collect();
        out.clear();
        v
    }

    fn reply(nonce: u64, iid: u32, prefix: &str, rlocs: &[&str], ttl_min: u32) -> MapReply {
        let p = net(prefix);
        MapReply {
            probe: false,
            echo_nonce_capable: false,
            security: false,
            nonce,
            records: vec![MappingRecord {
                ttl: ttl_min,
                action: Action::NativelyForward,
                authoritative: true,
                map_version: 0,
                eid: eid_address(iid, p.addr()),
                mask_len: p.prefix_len(),
                locators: rlocs
                    .iter()
                    .map(|r| WireLocator::new(ip_address(ip(r)), 1, 100))
                    .collect(),
            }],
        }
    }

    /// Each locator's reachability in the last mapping `out` installed.
    fn reachability(out: &Outbox) -> Vec<(IpAddr, bool)> {
        match out.updates.last() {
            Some(Update::Map { mapping, .. }) => mapping
                .locators
                .iter()
                .map(|l| (l.address, l.reachable))
                .collect(),
            u => panic!("{u:?}"),
        }
    }

    fn never(_: u32, _: IpNet, _: u64) -> bool {
        false
    }

    #[test]
    fn reloaded_map_resolvers_carry_pending_resolutions_over() {
        let mut itr = Itr::new(
            ItrConfig {
                map_resolvers: vec![ip(MR1), ip(MR2)],
                rlocs: vec![ip("198.51.100.1")],
                ..ItrConfig::default()
            },
            Nonces::seeded(1),
        );
        let mut out = Outbox::default();
        itr.resolve(0, ip("10.9.0.1"), 0, &mut out);
        assert_eq!(out.transmits[0].dst, ip(MR1));
        out.clear();
        // MR1 is gone: the next try goes to the first of the new list.
        itr.set_map_resolvers(vec![ip(MR2)]);
        itr.on_timer(1_000, &mut |_, _, _| false, &mut out);
        assert_eq!(out.transmits.len(), 1);
        assert_eq!(out.transmits[0].dst, ip(MR2));
        assert_eq!(itr.pending(), 1);
        // None left: nothing to ask, the resolution is dropped (and a later try is not sent).
        out.clear();
        itr.set_map_resolvers(vec![]);
        assert_eq!(itr.pending(), 0);
        itr.on_timer(2_000, &mut |_, _, _| false, &mut out);
        assert!(out.transmits.is_empty());
    }

    #[test]
    fn a_miss_sends_one_map_request_in_an_ecm_and_a_reply_installs_it() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.resolve(7, ip("10.1.1.20"), 0, &mut out);
        let reqs = requests(&mut out);
        assert_eq!(reqs.len(), 1);
        let (dst, req, in_ecm) = &reqs[0];
        assert!(in_ecm, "Map-Requests to a Map-Resolver go in an ECM");
        assert_eq!(*dst, ip(MR1));
        assert_eq!(req.records[0].mask_len, 32);
        assert_eq!(req.records[0].eid, eid_address(7, ip("10.1.1.20")));
        assert_eq!(req.itr_rlocs, vec![ip_address(ip(OURS))]);
        assert!(!req.smr && !req.probe && !req.smr_invoked);
        // A second miss while it is outstanding sends nothing.
        itr.resolve(7, ip("10.1.1.20"), 10, &mut out);
        assert!(out.transmits.is_empty());

        // A reply with another nonce changes nothing.
        itr.on_map_reply(
            &reply(req.nonce ^ 1, 7, "10.1.1.20/32", &[PEER], 10),
            20,
            &mut out,
        );
        assert!(out.updates.is_empty());
        assert_eq!(itr.stats.replies_unmatched, 1);

        itr.on_map_reply(
            &reply(req.nonce, 7, "10.1.1.0/24", &[PEER], 10),
            20,
            &mut out,
        );
        let prefix = net("10.1.1.0/24");
        match &out.updates[..] {
            [Update::Map {
                iid: 7,
                prefix: p,
                mapping,
            }] => {
                assert_eq!(*p, prefix);
                assert_eq!(mapping.locators.len(), 1);
                assert_eq!(mapping.locators[0].address, ip(PEER));
                assert!(mapping.locators[0].reachable);
                assert_eq!(mapping.ttl, Some(Duration::from_secs(600)));
            }
            u => panic!("updates {u:?}"),
        }
        assert_eq!(out.events, vec![Event::Remote { iid: 7, prefix }]);
        assert_eq!(itr.pending(), 0);
        assert_eq!(itr.installed(7, prefix).unwrap().1, 20 + 600_000);
        // The same nonce again is stale.
        out.clear();
        itr.on_map_reply(
            &reply(req.nonce, 7, "10.1.1.0/24", &[PEER], 10),
            30,
            &mut out,
        );
        assert!(out.updates.is_empty());
    }

    #[test]
    fn records_that_do_not_cover_the_eid_are_ignored() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.resolve(0, ip("10.1.1.20"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        let mut r = reply(nonce, 0, "10.9.0.0/16", &[PEER], 10);
        // Another instance for the right prefix, and a more specific prefix: not it either.
        r.records.push(
            reply(nonce, 5, "10.1.1.0/24", &[PEER], 10)
                .records
                .remove(0),
        );
        r.records.push(
            reply(nonce, 0, "10.1.1.20/32", &[PEER], 10)
                .records
                .remove(0),
        );
        itr.on_map_reply(&r, 1, &mut out);
        assert_eq!(out.updates.len(), 1, "{:?}", out.updates);
        assert_eq!(itr.stats.records_not_covering, 2);
    }

    #[test]
    fn negative_replies_install_their_action() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.resolve(0, ip("172.16.0.1"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        let mut r = reply(nonce, 0, "172.16.0.0/12", &[], 1);
        r.records[0].action = Action::DropPolicyDenied;
        itr.on_map_reply(&r, 0, &mut out);
        match &out.updates[..] {
            [Update::Map { mapping, .. }] => {
                assert!(mapping.locators.is_empty());
                assert_eq!(mapping.action, NegativeAction::Drop);
            }
            u => panic!("{u:?}"),
        }
        assert_eq!(
            out.events,
            vec![Event::NotRemote {
                iid: 0,
                prefix: net("172.16.0.0/12")
            }]
        );
        assert_eq!(itr.stats.negative_installed, 1);
    }

    #[test]
    fn unanswered_requests_are_retried_then_fail_over_then_give_up_and_back_off() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        let eid = ip("10.1.1.20");
        itr.resolve(0, eid, 0, &mut out);
        let mut dsts = vec![requests(&mut out)[0].0];
        // Nothing before the retry time.
        itr.on_timer(999, &mut never, &mut out);
        assert!(out.transmits.is_empty());
        let mut nonces = std::collections::HashSet::new();
        let mut t = 0;
        while itr.pending() > 0 {
            t += 1_000;
            itr.on_timer(t, &mut never, &mut out);
            for (d, r, _) in requests(&mut out) {
                dsts.push(d);
                assert!(nonces.insert(r.nonce), "a retransmission takes a new nonce");
            }
            assert!(t < 60_000, "never gave up");
        }
        // Two to each resolver in turn, ten in all.
        let want: Vec<IpAddr> = [MR1, MR1, MR2, MR2, MR1, MR1, MR2, MR2, MR1, MR1]
            .iter()
            .map(|s| ip(s))
            .collect();
        assert_eq!(dsts, want);
        assert_eq!(itr.stats.gave_up, 1);
        assert_eq!(itr.stats.resolver_failovers, 4);
        // Backing off: a miss within 30 s sends nothing; after it, a new request goes to the
        // resolver that was tried last.
        itr.resolve(0, eid, t + 29_999, &mut out);
        assert!(out.transmits.is_empty());
        assert_eq!(itr.stats.suppressed_backoff, 1);
        itr.resolve(0, eid, t + 30_000, &mut out);
        assert_eq!(requests(&mut out)[0].0, ip(MR1));
        // A late reply to an abandoned nonce is not installed.
        let old = nonces.iter().next().copied().unwrap();
        itr.on_map_reply(&reply(old, 0, "10.1.1.0/24", &[PEER], 10), t, &mut out);
        assert!(out.updates.is_empty());
    }

    #[test]
    fn entries_in_use_are_refreshed_before_expiry_and_the_rest_expire() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        let (a, b) = (net("10.1.0.0/16"), net("10.2.0.0/16"));
        for (eid, p) in [("10.1.0.1", "10.1.0.0/16"), ("10.2.0.1", "10.2.0.0/16")] {
            itr.resolve(0, ip(eid), 0, &mut out);
            let nonce = requests(&mut out)[0].1.nonce;
            itr.on_map_reply(&reply(nonce, 0, p, &[PEER], 10), 0, &mut out);
        }
        out.clear();
        let mut used = |_: u32, p: IpNet, since: u64| {
            assert_eq!(since, 0, "asked about use since the install");
            p == net("10.1.0.0/16")
        };
        // A tenth of the 10 minutes before expiry: a refresh of the used entry only.
        itr.on_timer(539_999, &mut used, &mut out);
        assert!(out.transmits.is_empty());
        itr.on_timer(540_000, &mut used, &mut out);
        let reqs = requests(&mut out);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].1.records[0].mask_len, 16);
        assert_eq!(reqs[0].1.records[0].eid, eid_address(0, a.addr()));
        // Its reply extends it; the unused one expires at 10 minutes.
        itr.on_map_reply(
            &reply(reqs[0].1.nonce, 0, "10.1.0.0/16", &[PEER], 10),
            541_000,
            &mut out,
        );
        out.clear();
        itr.on_timer(599_999, &mut used, &mut out);
        assert!(out.updates.is_empty());
        itr.on_timer(600_000, &mut used, &mut out);
        assert_eq!(out.updates, vec![Update::Unmap { iid: 0, prefix: b }]);
        assert_eq!(out.events, vec![Event::NotRemote { iid: 0, prefix: b }]);
        assert_eq!(itr.installed(0, a).unwrap().1, 541_000 + 600_000);
        assert!(itr.installed(0, b).is_none());
        assert_eq!(itr.stats.expired, 1);
    }

    #[test]
    fn an_smr_sends_an_smr_invoked_request_for_cached_eids_only() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.resolve(0, ip("10.1.1.20"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        itr.on_map_reply(&reply(nonce, 0, "10.1.1.0/24", &[PEER], 10), 0, &mut out);
        out.clear();
        let mut smr = MapRequest::new(
            99,
            eid_address(0, ip("10.1.1.20")),
            vec![ip_address(ip(PEER))],
            vec![
                EidRecord {
                    mask_len: 32,
                    eid: eid_address(0, ip("10.1.1.20")),
                },
                EidRecord {
                    mask_len: 32,
                    eid: eid_address(0, ip("10.7.7.7")),
                },
            ],
        );
        smr.smr = true;
        itr.on_smr(ip(PEER), &smr, 5, &mut out);
        let reqs = requests(&mut out);
        assert_eq!(reqs.len(), 1);
        let (dst, req, in_ecm) = &reqs[0];
        assert_eq!(
            (*dst, *in_ecm),
            (ip(MR1), true),
            "SMR-invoked requests go to the mapping system"
        );
        assert!(req.smr_invoked && !req.smr);
        // The EID the SMR named, not the cached /24 around it.
        assert_eq!(req.records[0].mask_len, 32);
        assert_eq!(req.records[0].eid, eid_address(0, ip("10.1.1.20")));
        assert_eq!(itr.stats.smr_not_cached, 1);
        // Its reply replaces the mapping: the host moved.
        itr.on_map_reply(
            &reply(req.nonce, 0, "10.1.1.0/24", &["203.0.113.77"], 10),
            6,
            &mut out,
        );
        match &out.updates[..] {
            [Update::Map { mapping, .. }] => {
                assert_eq!(mapping.locators[0].address, ip("203.0.113.77"))
            }
            u => panic!("{u:?}"),
        }
    }

    #[test]
    fn unanswered_rloc_probes_make_a_locator_unreachable_until_it_answers() {
        let mut itr = itr(30_000);
        let mut out = Outbox::default();
        itr.resolve(0, ip("10.1.1.20"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        itr.on_map_reply(
            &reply(nonce, 0, "10.1.1.0/24", &[PEER, "203.0.113.10"], 10),
            0,
            &mut out,
        );
        out.clear();
        // Probes to both locators; the second answers every time.
        let mut t = 0;
        let mut down_at = None;
        while down_at.is_none() {
            t += 2_000;
            assert!(t <= 20_000, "never marked down");
            itr.on_timer(t, &mut never, &mut out);
            let updates = std::mem::take(&mut out.updates);
            for (dst, req, in_ecm) in requests(&mut out) {
                assert!(req.probe && !in_ecm, "probes go straight to the locator");
                if dst == ip("203.0.113.10") {
                    let mut r = reply(req.nonce, 0, "10.1.1.0/24", &[], 10);
                    r.probe = true;
                    itr.on_map_reply(&r, t, &mut out);
                }
            }
            if let Some(Update::Map { mapping, .. }) = updates.first() {
                down_at = Some(t);
                let state: Vec<(IpAddr, bool)> = mapping
                    .locators
                    .iter()
                    .map(|l| (l.address, l.reachable))
                    .collect();
                assert_eq!(state, vec![(ip(PEER), false), (ip("203.0.113.10"), true)]);
            }
        }
        // First probe at 2 s, three misses: marked down when the third times out.
        assert_eq!(down_at, Some(8_000));
        assert!(!itr.rloc_up(ip(PEER)) && itr.rloc_up(ip("203.0.113.10")));
        // It answers the next probe: reachable again.
        t += 2_000;
        itr.on_timer(t, &mut never, &mut out);
        let reqs = requests(&mut out);
        let (_, req, _) = reqs.iter().find(|(d, _, _)| *d == ip(PEER)).unwrap();
        let mut r = reply(req.nonce, 0, "10.1.1.0/24", &[], 10);
        r.probe = true;
        itr.on_map_reply(&r, t, &mut out);
        match &out.updates[..] {
            [Update::Map { mapping, .. }] => assert!(mapping.locators.iter().all(|l| l.reachable)),
            u => panic!("{u:?}"),
        }
        assert_eq!((itr.stats.rloc_down, itr.stats.rloc_up), (1, 1));
    }

    #[test]
    fn an_rloc_marked_down_from_outside_is_installed_unreachable() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.set_rloc_reachable(ip(PEER), false, &mut out);
        itr.resolve(0, ip("10.1.1.20"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        itr.on_map_reply(&reply(nonce, 0, "10.1.1.0/24", &[PEER], 10), 0, &mut out);
        match &out.updates[..] {
            [Update::Map { mapping, .. }] => assert!(!mapping.locators[0].reachable),
            u => panic!("{u:?}"),
        }
        out.clear();
        itr.set_rloc_reachable(ip(PEER), true, &mut out);
        match &out.updates[..] {
            [Update::Map { mapping, .. }] => assert!(mapping.locators[0].reachable),
            u => panic!("{u:?}"),
        }
    }

    #[test]
    fn a_reply_to_an_earlier_try_still_counts() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.resolve(0, ip("10.1.1.20"), 0, &mut out);
        let first = requests(&mut out)[0].1.nonce;
        itr.on_timer(1_000, &mut never, &mut out);
        let second = requests(&mut out)[0].1.nonce;
        assert_ne!(first, second);
        // The answer to the first try arrives after the second went out.
        itr.on_map_reply(
            &reply(first, 0, "10.1.1.0/24", &[PEER], 10),
            1_100,
            &mut out,
        );
        assert_eq!(out.updates.len(), 1);
        assert_eq!(itr.pending(), 0);
        // The second try's answer is stale now.
        out.clear();
        itr.on_map_reply(
            &reply(second, 0, "10.1.1.0/24", &[PEER], 10),
            1_200,
            &mut out,
        );
        assert!(out.updates.is_empty());
        assert_eq!(itr.stats.replies_unmatched, 1);
    }

    #[test]
    fn a_locator_its_owner_declared_down_stays_down_when_probing_changes_others() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.resolve(0, ip("10.1.1.20"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        let mut r = reply(nonce, 0, "10.1.1.0/24", &[PEER, "203.0.113.10"], 10);
        r.records[0].locators[1].reachable = false;
        itr.on_map_reply(&r, 0, &mut out);
        out.clear();
        // The other locator goes down and comes back: the declared-down one stays down.
        itr.set_rloc_reachable(ip(PEER), false, &mut out);
        itr.set_rloc_reachable(ip(PEER), true, &mut out);
        match out.updates.last() {
            Some(Update::Map { mapping, .. }) => {
                let state: Vec<bool> = mapping.locators.iter().map(|l| l.reachable).collect();
                assert_eq!(state, vec![true, false]);
            }
            u => panic!("{u:?}"),
        }
    }

    #[test]
    fn mappings_to_our_own_rlocs_are_not_cached() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.resolve(0, ip("10.1.1.30"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        itr.on_map_reply(&reply(nonce, 0, "10.1.0.0/16", &[OURS], 1440), 0, &mut out);
        assert!(out.updates.is_empty(), "{:?}", out.updates);
        assert!(itr.installed(0, net("10.1.0.0/16")).is_none());
        assert_eq!(itr.stats.records_own_site, 1);
    }

    #[test]
    fn a_host_detected_here_drops_its_host_route_to_another_site() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        for (eid, p) in [("10.1.1.20", "10.1.1.20/32"), ("10.1.2.1", "10.1.2.0/24")] {
            itr.resolve(0, ip(eid), 0, &mut out);
            let nonce = requests(&mut out)[0].1.nonce;
            itr.on_map_reply(&reply(nonce, 0, p, &[PEER], 10), 0, &mut out);
        }
        out.clear();
        itr.host_is_local(0, ip("10.1.1.20"), &mut out);
        assert_eq!(
            out.updates,
            vec![Update::Unmap {
                iid: 0,
                prefix: net("10.1.1.20/32")
            }]
        );
        // Only host routes: a covering prefix stays.
        out.clear();
        itr.host_is_local(0, ip("10.1.2.1"), &mut out);
        assert!(out.updates.is_empty());
        assert!(itr.installed(0, net("10.1.2.0/24")).is_some());
    }

    #[test]
    fn locator_status_bits_mark_the_sites_locators_in_record_order() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        itr.resolve(0, ip("10.1.1.20"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        // Record order: B (priority 2) first, A (priority 1) second; the map-cache keeps A
        // first (most preferred), so bit 0 is B and bit 1 is A.
        let mut r = reply(nonce, 0, "10.1.1.0/24", &["203.0.113.10", PEER], 10);
        r.records[0].locators[0].priority = 2;
        itr.on_map_reply(&r, 0, &mut out);
        out.clear();
        // Bit 1 (A = PEER) clear.
        itr.on_locator_status(0, ip("10.1.1.99"), 0b01, 8, &mut out);
        assert_eq!(
            reachability(&out),
            vec![(ip(PEER), false), (ip("203.0.113.10"), true)]
        );
        // The same bits again: nothing to do.
        out.clear();
        itr.on_locator_status(0, ip("10.1.1.99"), 0b01, 8, &mut out);
        assert!(out.updates.is_empty());
        // Both up again.
        itr.on_locator_status(0, ip("10.1.1.99"), 0b11, 8, &mut out);
        assert_eq!(
            reachability(&out),
            vec![(ip(PEER), true), (ip("203.0.113.10"), true)]
        );
        // An EID we have no mapping for: nothing.
        out.clear();
        itr.on_locator_status(0, ip("10.9.9.9"), 0, 8, &mut out);
        assert!(out.updates.is_empty());
        assert_eq!(itr.stats.lsb_changes, 2);
    }

    #[test]
    fn an_rloc_range_marked_down_makes_its_locators_unreachable_until_up() {
        let mut itr = itr(0);
        let mut out = Outbox::default();
        // The IPsec peer's range is down before any SA is up.
        itr.set_range_reachable(net("203.0.113.0/24"), false, &mut out);
        itr.resolve(0, ip("10.1.1.20"), 0, &mut out);
        let nonce = requests(&mut out)[0].1.nonce;
        itr.on_map_reply(
            &reply(nonce, 0, "10.1.1.0/24", &[PEER, "192.0.2.77"], 10),
            0,
            &mut out,
        );
        assert_eq!(
            reachability(&out),
            vec![(ip(PEER), false), (ip("192.0.2.77"), true)]
        );
        // Marking it down again changes nothing; the SA coming up brings it back.
        out.clear();
        itr.set_range_reachable(net("203.0.113.0/24"), false, &mut out);
        assert!(out.updates.is_empty());
        itr.set_range_reachable(net("203.0.113.0/24"), true, &mut out);
        assert_eq!(
            reachability(&out),
            vec![(ip(PEER), true), (ip("192.0.2.77"), true)]
        );
        assert_eq!(itr.stats.ranges_changed, 2);
    }
}
