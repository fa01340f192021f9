//! The ETR's control plane (RFC 9301 sections 6.1, 8.2, 8.3): registering the local
//! EID-prefixes (database mappings) and the hosts detected in dynamic-EID ranges with every
//! configured Map-Server, each with its own key; following the Map-Notifies (a solicited one
//! confirms a registration, an unsolicited one says a host now registers from another site:
//! withdraw it and acknowledge); answering Map-Requests and RLOC-probes for local EIDs; and
//! sending SMRs to the ITRs that asked about a host when it leaves.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;

use ipnet::IpNet;

use super::{
    control_transmit, eid_address, eid_prefix, ip_address, map_request, rloc_toward, Event, Nonces,
    Outbox, Transmit,
};
use crate::wire::auth::{self, Algorithm};
use crate::wire::control::{
    Action, Locator, MapNotify, MapRegister, MapReply, MapRequest, MappingRecord, Message,
    NotifyKind, Registration, XtrId,
};
use crate::wire::LISP_CONTROL_PORT;

/// A Map-Server we register with.
#[derive(Debug, Clone)]
pub struct MapServerTarget {
    pub address: IpAddr,
    pub algorithm: Algorithm,
    pub key: Vec<u8>,
}

/// A local EID-prefix (database mapping) and the priority and weight of our RLOCs for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseMapping {
    pub iid: u32,
    pub prefix: IpNet,
    pub priority: u8,
    pub weight: u8,
}

#[derive(Debug, Clone)]
pub struct EtrConfig {
    pub map_servers: Vec<MapServerTarget>,
    /// Our RLOCs: the locators of every record we register.
    pub rlocs: Vec<IpAddr>,
    pub database: Vec<DatabaseMapping>,
    /// Dynamic-EID ranges: hosts detected in them are registered as host routes.
    pub dynamic: Vec<(u32, IpNet)>,
    /// Map-Register period (RFC 9301: 60 seconds).
    pub register_interval_ms: u64,
    /// TTL of our records, minutes (what ITRs cache them for; 1440 = one day).
    pub record_ttl_min: u32,
    /// Ask the Map-Servers to answer Map-Requests for us (P bit).
    pub proxy_reply: bool,
    /// Our xTR-ID and site-ID: Map-Servers tell ETRs apart by them (moves).
    pub xtr_id: XtrId,
    /// Most detected hosts registered at once.
    pub max_hosts: usize,
    /// Most ITRs remembered per EID for SMRs.
    pub max_smr_targets: usize,
}

impl Default for EtrConfig {
    fn default() -> Self {
        EtrConfig {
            map_servers: Vec::new(),
            rlocs: Vec::new(),
            database: Vec::new(),
            dynamic: Vec::new(),
            register_interval_ms: 60_000,
            record_ttl_min: 1440,
            proxy_reply: false,
            xtr_id: XtrId {
                xtr_id: [0; 16],
                site_id: 0,
            },
            max_hosts: 65_536,
            max_smr_targets: 32,
        }
    }
}

/// Records per Map-Register (keeps a message well under 1500 bytes).
const RECORDS_PER_REGISTER: usize = 24;
/// Outstanding Map-Register nonces remembered (to tell solicited Map-Notifies).
const NONCES_KEPT: usize = 4096;

#[derive(Debug, Default, Clone)]
pub struct EtrStats {
    pub registers_sent: u64,
    pub deregisters_sent: u64,
    pub notifies: u64,
    pub notifies_unsolicited: u64,
    pub notify_acks_sent: u64,
    pub notifies_unknown_source: u64,
    pub notifies_bad_auth: u64,
    pub notifies_malformed: u64,
    pub hosts_registered: u64,
    pub hosts_withdrawn: u64,
    pub hosts_moved_away: u64,
    pub hosts_refused_full: u64,
    pub hosts_outside_ranges: u64,
    pub replies_sent: u64,
    pub probe_replies_sent: u64,
    pub requests_not_ours: u64,
    pub requests_no_itr_rloc: u64,
    pub smrs_sent: u64,
}

impl EtrStats {
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("map_registers_sent", self.registers_sent),
            ("map_deregisters_sent", self.deregisters_sent),
            ("map_notifies", self.notifies),
            ("map_notifies_unsolicited", self.notifies_unsolicited),
            ("map_notify_acks_sent", self.notify_acks_sent),
            ("map_notifies_unknown_source", self.notifies_unknown_source),
            ("map_notifies_bad_auth", self.notifies_bad_auth),
            ("map_notifies_malformed", self.notifies_malformed),
            ("hosts_registered", self.hosts_registered),
            ("hosts_withdrawn", self.hosts_withdrawn),
            ("etr_hosts_withdrawn_moved_away", self.hosts_moved_away),
            ("hosts_refused_full", self.hosts_refused_full),
            ("hosts_outside_ranges", self.hosts_outside_ranges),
            ("etr_map_replies_sent", self.replies_sent),
            ("rloc_probe_replies_sent", self.probe_replies_sent),
            ("map_requests_not_ours", self.requests_not_ours),
            ("map_requests_no_itr_rloc", self.requests_no_itr_rloc),
            ("smrs_sent", self.smrs_sent),
        ]
    }
}

/// What the ETR knows of one Map-Server.
#[derive(Debug, Clone, Default)]
pub struct MapServerState {
    /// When it last confirmed a registration (solicited Map-Notify).
    pub last_notify_ms: Option<u64>,
    /// When we last sent it a full registration.
    pub last_register_ms: Option<u64>,
}

/// The ETR control-plane machine.
#[derive(Debug)]
pub struct Etr {
    cfg: EtrConfig,
    nonces: Nonces,
    /// Detected hosts we register: (iid, address) → when detected.
    hosts: BTreeMap<(u32, IpAddr), u64>,
    /// Nonces of our Map-Registers → Map-Server index, oldest first.
    sent: HashMap<u64, usize>,
    sent_order: VecDeque<u64>,
    /// ITR-RLOCs that asked about each of our records, for SMRs.
    askers: HashMap<(u32, IpNet), Vec<IpAddr>>,
    next_register_at: u64,
    servers: Vec<MapServerState>,
    pub stats: EtrStats,
}

impl Etr {
    pub fn new(cfg: EtrConfig, nonces: Nonces) -> Self {
        let servers = vec![MapServerState::default(); cfg.map_servers.len()];
        Etr {
            cfg,
            nonces,
            hosts: BTreeMap::new(),
            sent: HashMap::new(),
            sent_order: VecDeque::new(),
            askers: HashMap::new(),
            next_register_at: 0,
            servers,
            stats: EtrStats::default(),
        }
    }

    /// The detected hosts registered, with when each was detected.
    pub fn hosts(&self) -> impl Iterator<Item = (u32, IpAddr, u64)> + '_ {
        self.hosts.iter().map(|(&(iid, ip), &t)| (iid, ip, t))
    }

    /// Whether `ip` in `iid` is a detected local host.
    pub fn is_local_host(&self, iid: u32, ip: IpAddr) -> bool {
        self.hosts.contains_key(&(iid, ip))
    }

    /// Each Map-Server's address and state.
    pub fn map_servers(&self) -> impl Iterator<Item = (IpAddr, &MapServerState)> {
        self.cfg
            .map_servers
            .iter()
            .map(|m| m.address)
            .zip(self.servers.iter())
    }

    fn record(&self, iid: u32, prefix: IpNet, priority: u8, weight: u8, ttl: u32) -> MappingRecord {
        MappingRecord {
            ttl,
            action: Action::NoAction,
            authoritative: true,
            map_version: 0,
            eid: eid_address(iid, prefix.addr()),
            mask_len: prefix.prefix_len(),
            locators: self
                .cfg
                .rlocs
                .iter()
                .map(|r| Locator {
                    local: true,
                    ..Locator::new(ip_address(*r), priority, weight)
                })
                .collect(),
        }
    }

    fn host_record(&self, iid: u32, ip: IpAddr, ttl: u32) -> MappingRecord {
        self.record(iid, IpNet::from(ip), 1, 100, ttl)
    }

    /// Every record we register.
    fn all_records(&self) -> Vec<MappingRecord> {
        let ttl = self.cfg.record_ttl_min;
        self.cfg
            .database
            .iter()
            .map(|d| self.record(d.iid, d.prefix.trunc(), d.priority, d.weight, ttl))
            .chain(
                self.hosts
                    .keys()
                    .map(|&(iid, ip)| self.host_record(iid, ip, ttl)),
            )
            .collect()
    }

    /// Sends `records` to every Map-Server (several messages when there are many).
    fn register(&mut self, records: &[MappingRecord], now_ms: u64, out: &mut Outbox) {
        for i in 0..self.cfg.map_servers.len() {
            for chunk in records.chunks(RECORDS_PER_REGISTER) {
                self.register_to(i, chunk.to_vec(), out);
            }
            self.servers[i].last_register_ms = Some(now_ms);
        }
    }

    fn register_to(&mut self, ms: usize, records: Vec<MappingRecord>, out: &mut Outbox) {
        let target = &self.cfg.map_servers[ms];
        let nonce = self.nonces.next();
        let msg = Message::MapRegister(MapRegister {
            proxy_reply: self.cfg.proxy_reply,
            security: false,
            rtr: false,
            want_map_notify: true,
            registration: Registration {
                nonce,
                key_id: 0,
                algorithm_id: target.algorithm.id(),
                auth_data: vec![0; target.algorithm.auth_len()],
                records,
                xtr_id: Some(self.cfg.xtr_id),
            },
        });
        let payload = match auth::emit_signed(&msg, target.algorithm, &target.key) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(ms = %target.address, %e, "Map-Register not emitted");
                return;
            }
        };
        out.transmits.push(control_transmit(
            rloc_toward(&self.cfg.rlocs, target.address),
            target.address,
            payload,
        ));
        self.stats.registers_sent += 1;
        self.sent.insert(nonce, ms);
        self.sent_order.push_back(nonce);
        while self.sent_order.len() > NONCES_KEPT {
            if let Some(old) = self.sent_order.pop_front() {
                self.sent.remove(&old);
            }
        }
    }

    /// Periodic registration.
    pub fn on_timer(&mut self, now_ms: u64, out: &mut Outbox) {
        if now_ms < self.next_register_at {
            return;
        }
        self.next_register_at = now_ms + self.cfg.register_interval_ms;
        let records = self.all_records();
        if !records.is_empty() {
            self.register(&records, now_ms, out);
        }
    }

    /// Registers everything at once (a path to the Map-Servers just came up, e.g. an IPsec
    /// SA): the periodic registration restarts from now.
    pub fn register_now(&mut self, now_ms: u64, out: &mut Outbox) {
        self.next_register_at = now_ms;
        self.on_timer(now_ms, out);
    }

    /// The configuration now (live reload): Map-Servers and their keys, database mappings,
    /// dynamic-EID ranges. Database prefixes no longer ours, and detected hosts outside the new
    /// ranges (withdrawn as when they leave), are deregistered with TTL 0 at every Map-Server
    /// that stays, and the ITRs that asked about them get an SMR; then everything is
    /// registered at once with the new set. A removed Map-Server is no longer registered with
    /// (its registrations time out there); detected hosts inside the ranges stay registered.
    /// Returns (prefixes withdrawn, hosts withdrawn).
    pub fn reconfigure(
        &mut self,
        map_servers: Vec<MapServerTarget>,
        database: Vec<DatabaseMapping>,
        dynamic: Vec<(u32, IpNet)>,
        now_ms: u64,
        out: &mut Outbox,
    ) -> (usize, usize) {
        let old_servers: Vec<IpAddr> = self.cfg.map_servers.iter().map(|m| m.address).collect();
        let gone_db: Vec<DatabaseMapping> = self
            .cfg
            .database
            .iter()
            .filter(|d| {
                !database
                    .iter()
                    .any(|n| n.iid == d.iid && n.prefix.trunc() == d.prefix.trunc())
            })
            .copied()
            .collect();
        // Per-server state and the nonces outstanding follow their server's address.
        let servers: Vec<MapServerState> = map_servers
            .iter()
            .map(|m| {
                old_servers
                    .iter()
                    .position(|a| *a == m.address)
                    .map(|i| self.servers[i].clone())
                    .unwrap_or_default()
            })
            .collect();
        let index: Vec<Option<usize>> = old_servers
            .iter()
            .map(|a| map_servers.iter().position(|m| m.address == *a))
            .collect();
        self.sent.retain(|_, i| match index[*i] {
            Some(j) => {
                *i = j;
                true
            }
            None => false,
        });
        self.sent_order.retain(|n| self.sent.contains_key(n));
        self.cfg.map_servers = map_servers;
        self.cfg.database = database;
        self.cfg.dynamic = dynamic;
        self.servers = servers;
        let gone_hosts: Vec<(u32, IpAddr)> = self
            .hosts
            .keys()
            .filter(|(iid, ip)| !self.in_range(*iid, *ip))
            .copied()
            .collect();
        let mut withdraw = Vec::new();
        for d in &gone_db {
            tracing::info!(iid = d.iid, prefix = %d.prefix, "database mapping removed: withdrawing");
            withdraw.push(self.record(d.iid, d.prefix.trunc(), d.priority, d.weight, 0));
        }
        for &(iid, ip) in &gone_hosts {
            self.hosts.remove(&(iid, ip));
            self.stats.hosts_withdrawn += 1;
            tracing::info!(iid, %ip, "dynamic EID outside the new ranges: withdrawing");
            withdraw.push(self.host_record(iid, ip, 0));
        }
        if !withdraw.is_empty() {
            for i in 0..self.cfg.map_servers.len() {
                if !old_servers.contains(&self.cfg.map_servers[i].address) {
                    continue;
                }
                for chunk in withdraw.chunks(RECORDS_PER_REGISTER) {
                    self.register_to(i, chunk.to_vec(), out);
                    self.stats.deregisters_sent += 1;
                }
            }
        }
        for d in &gone_db {
            self.send_smrs(d.iid, d.prefix.trunc(), out);
        }
        for &(iid, ip) in &gone_hosts {
            self.send_smrs(iid, IpNet::from(ip), out);
        }
        self.register_now(now_ms, out);
        (gone_db.len(), gone_hosts.len())
    }

    /// The earliest time [`Etr::on_timer`] has something to do.
    pub fn next_timer(&self) -> Option<u64> {
        (!self.cfg.map_servers.is_empty()).then_some(self.next_register_at)
    }

    /// The dynamic-EID range of `ip` in `iid`, if any.
    fn in_range(&self, iid: u32, ip: IpAddr) -> bool {
        self.cfg
            .dynamic
            .iter()
            .any(|(i, net)| *i == iid && net.contains(&ip))
    }

    /// Events of the other machines: a host detected (register it at once) or gone (withdraw
    /// it with a TTL-0 registration and tell the ITRs that asked about it).
    pub fn on_event(&mut self, e: &Event, now_ms: u64, out: &mut Outbox) {
        match *e {
            Event::HostUp { iid, ip } => {
                if self.hosts.contains_key(&(iid, ip)) {
                    return;
                }
                if !self.in_range(iid, ip) {
                    self.stats.hosts_outside_ranges += 1;
                    return;
                }
                if self.hosts.len() >= self.cfg.max_hosts {
                    self.stats.hosts_refused_full += 1;
                    tracing::warn!(iid, %ip, max = self.cfg.max_hosts, "host not registered: too many hosts");
                    return;
                }
                self.hosts.insert((iid, ip), now_ms);
                self.stats.hosts_registered += 1;
                tracing::info!(iid, %ip, "dynamic EID detected: registering");
                let rec = self.host_record(iid, ip, self.cfg.record_ttl_min);
                self.register(&[rec], now_ms, out);
            }
            Event::HostDown { iid, ip } => {
                if self.hosts.remove(&(iid, ip)).is_none() {
                    return;
                }
                self.stats.hosts_withdrawn += 1;
                tracing::info!(iid, %ip, "dynamic EID gone: withdrawing");
                let rec = self.host_record(iid, ip, 0);
                self.stats.deregisters_sent += self.cfg.map_servers.len() as u64;
                self.register(&[rec], now_ms, out);
                self.send_smrs(iid, IpNet::from(ip), out);
            }
            _ => {}
        }
    }

    /// A Map-Notify or Map-Notify-Ack from `src` (UDP payload `msg`).
    pub fn on_map_notify(&mut self, src: IpAddr, msg: &[u8], now_ms: u64, out: &mut Outbox) {
        let Some(ms) = self.cfg.map_servers.iter().position(|m| m.address == src) else {
            self.stats.notifies_unknown_source += 1;
            tracing::warn!(%src, "Map-Notify from an address that is not one of our Map-Servers");
            return;
        };
        let target = self.cfg.map_servers[ms].clone();
        match auth::verify(msg, &target.key) {
            Ok(alg) if alg == target.algorithm => {}
            Ok(alg) => {
                // The right key under another algorithm than configured: a downgrade.
                self.stats.notifies_bad_auth += 1;
                tracing::warn!(%src, ?alg, configured = ?target.algorithm, "Map-Notify signed with another algorithm than the Map-Server's");
                return;
            }
            Err(e) => {
                self.stats.notifies_bad_auth += 1;
                tracing::warn!(%src, %e, "Map-Notify failed authentication");
                return;
            }
        }
        let notify = match MapNotify::parse(msg) {
            Ok(n) if n.kind == NotifyKind::Notify => n,
            Ok(_) => return, // A Map-Notify-Ack is for Map-Servers.
            Err(e) => {
                self.stats.notifies_malformed += 1;
                tracing::warn!(%src, %e, "malformed Map-Notify");
                return;
            }
        };
        self.stats.notifies += 1;
        if self.sent.remove(&notify.registration.nonce).is_some() {
            // Confirms one of our registrations.
            self.servers[ms].last_notify_ms = Some(now_ms);
            return;
        }
        // Unsolicited: the mapping of some of our EIDs changed at the Map-Server.
        self.stats.notifies_unsolicited += 1;
        for rec in &notify.registration.records {
            let Some((iid, prefix)) = eid_prefix(&rec.eid, rec.mask_len) else {
                continue;
            };
            let ours = rec
                .locators
                .iter()
                .any(|l| l.address.ip().is_some_and(|a| self.cfg.rlocs.contains(&a)));
            let host = prefix.addr();
            if !ours
                && prefix.prefix_len() == prefix.max_prefix_len()
                && self.hosts.remove(&(iid, host)).is_some()
            {
                self.stats.hosts_moved_away += 1;
                tracing::info!(iid, %host, "host now registered at another site: withdrawn here");
                out.events.push(Event::HostMovedAway { iid, ip: host });
                self.send_smrs(iid, prefix, out);
            }
        }
        // Acknowledge: the same message as a Map-Notify-Ack, signed with the same key.
        let ack = Message::MapNotify(MapNotify {
            kind: NotifyKind::Ack,
            rtr: false,
            registration: notify.registration,
        });
        match auth::emit_signed(&ack, target.algorithm, &target.key) {
            Ok(payload) => {
                out.transmits.push(control_transmit(
                    rloc_toward(&self.cfg.rlocs, src),
                    src,
                    payload,
                ));
                self.stats.notify_acks_sent += 1;
            }
            Err(e) => tracing::error!(%src, %e, "Map-Notify-Ack not emitted"),
        }
    }

    /// Our record covering `ip` in `iid`: a detected host, else the longest database
    /// mapping.
    fn our_record(&self, iid: u32, ip: IpAddr) -> Option<MappingRecord> {
        let ttl = self.cfg.record_ttl_min;
        if self.hosts.contains_key(&(iid, ip)) {
            return Some(self.host_record(iid, ip, ttl));
        }
        self.cfg
            .database
            .iter()
            .filter(|d| d.iid == iid && d.prefix.contains(&ip))
            .max_by_key(|d| d.prefix.prefix_len())
            .map(|d| self.record(d.iid, d.prefix.trunc(), d.priority, d.weight, ttl))
    }

    /// A Map-Request (not an SMR: those are the ITR's) that reached us at `dst` from
    /// `reply_port` (the UDP source port, the inner one for a request in an ECM): answer it for
    /// our EIDs to the requester's ITR-RLOC; answer an RLOC-probe in any case (RFC 9301 7.1).
    pub fn on_map_request(
        &mut self,
        dst: IpAddr,
        reply_port: u16,
        req: &MapRequest,
        out: &mut Outbox,
    ) {
        // Reply to an ITR-RLOC of a family we have an RLOC of.
        let Some(to) = req
            .itr_rlocs
            .iter()
            .filter_map(|a| a.ip())
            .find(|a| rloc_toward(&self.cfg.rlocs, *a).is_some())
        else {
            self.stats.requests_no_itr_rloc += 1;
            return;
        };
        let mut records = Vec::new();
        for r in &req.records {
            let Some((iid, prefix)) = eid_prefix(&r.eid, r.mask_len) else {
                continue;
            };
            if let Some(mut rec) = self.our_record(iid, prefix.addr()) {
                if !req.probe {
                    let key = (
                        iid,
                        IpNet::new(prefix.addr(), rec.mask_len).map_or(prefix, |n| n.trunc()),
                    );
                    let askers = self.askers.entry(key).or_default();
                    if !askers.contains(&to) {
                        if askers.len() >= self.cfg.max_smr_targets {
                            askers.remove(0);
                        }
                        askers.push(to);
                    }
                }
                if req.probe {
                    for l in &mut rec.locators {
                        l.probed = l.address.ip() == Some(dst);
                    }
                }
                records.push(rec);
            }
        }
        if records.is_empty() && !req.probe {
            self.stats.requests_not_ours += 1;
            return;
        }
        let reply = Message::MapReply(MapReply {
            probe: req.probe,
            echo_nonce_capable: false,
            security: false,
            nonce: req.nonce,
            records,
        });
        let Ok(payload) = reply.to_vec() else {
            return;
        };
        out.transmits.push(Transmit {
            src: rloc_toward(&self.cfg.rlocs, to),
            dst: to,
            src_port: LISP_CONTROL_PORT,
            dst_port: reply_port,
            payload,
        });
        if req.probe {
            self.stats.probe_replies_sent += 1;
        } else {
            self.stats.replies_sent += 1;
        }
    }

    /// SMRs to the ITRs that asked about `prefix` (or a record covering it), then forgets them.
    fn send_smrs(&mut self, iid: u32, prefix: IpNet, out: &mut Outbox) {
        let keys: Vec<(u32, IpNet)> = self
            .askers
            .keys()
            .filter(|(i, p)| *i == iid && p.contains(&prefix.addr()))
            .copied()
            .collect();
        let mut targets: Vec<IpAddr> = Vec::new();
        for k in keys {
            // A host route's askers are done with; a covering prefix's keep asking about it.
            let list = if k.1.prefix_len() == k.1.max_prefix_len() {
                self.askers.remove(&k).unwrap_or_default()
            } else {
                self.askers.get(&k).cloned().unwrap_or_default()
            };
            for t in list {
                if !targets.contains(&t) {
                    targets.push(t);
                }
            }
        }
        for t in targets {
            let mut smr = map_request(
                self.nonces.next(),
                eid_address(iid, prefix.addr()),
                &self.cfg.rlocs,
                iid,
                prefix,
            );
            smr.smr = true;
            let Ok(payload) = Message::MapRequest(smr).to_vec() else {
                continue;
            };
            out.transmits.push(control_transmit(
                rloc_toward(&self.cfg.rlocs, t),
                t,
                payload,
            ));
            self.stats.smrs_sent += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::control::EidRecord;

    const MS1: &str = "192.0.2.1";
    const MS2: &str = "192.0.2.2";
    const OURS: &str = "198.51.100.1";
    const ITR: &str = "203.0.113.9";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn etr() -> Etr {
        Etr::new(
            EtrConfig {
                map_servers: vec![
                    MapServerTarget {
                        address: ip(MS1),
                        algorithm: Algorithm::HmacSha1_96,
                        key: b"one".to_vec(),
                    },
                    MapServerTarget {
                        address: ip(MS2),
                        algorithm: Algorithm::HmacSha256_128,
                        key: b"two".to_vec(),
                    },
                ],
                rlocs: vec![ip(OURS)],
                database: vec![DatabaseMapping {
                    iid: 0,
                    prefix: net("10.1.0.0/16"),
                    priority: 1,
                    weight: 50,
                }],
                dynamic: vec![(0, net("10.1.1.0/24"))],
                xtr_id: XtrId {
                    xtr_id: [7; 16],
                    site_id: 3,
                },
                ..EtrConfig::default()
            },
            Nonces::seeded(9),
        )
    }

    /// The Map-Registers in `out`, each with its destination, checked against that Map-Server's
    /// key; empties the transmits.
    fn registers(out: &mut Outbox) -> Vec<(IpAddr, MapRegister)> {
        out.transmits
            .drain(..)
            .map(|t| {
                let key: &[u8] = if t.dst == ip(MS1) { b"one" } else { b"two" };
                let alg = auth::verify(&t.payload, key).expect("signed with the server's key");
                assert_eq!(
                    alg,
                    if t.dst == ip(MS1) {
                        Algorithm::HmacSha1_96
                    } else {
                        Algorithm::HmacSha256_128
                    }
                );
                assert!(auth::verify(&t.payload, b"other").is_err());
                match Message::parse(&t.payload).unwrap() {
                    Message::MapRegister(m) => (t.dst, m),
                    m => panic!("sent {m:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn a_reload_withdraws_what_is_gone_and_registers_the_new_set_at_once() {
        let mut e = etr();
        let mut out = Outbox::default();
        e.on_timer(0, &mut out);
        for ip_ in ["10.1.1.5", "10.1.1.6"] {
            e.on_event(
                &Event::HostUp {
                    iid: 0,
                    ip: ip(ip_),
                },
                10,
                &mut out,
            );
        }
        out.transmits.clear();
        // MS2 goes (MS1 stays, with the same key); 10.1.0.0/16 is replaced by 10.7.0.0/16;
        // the dynamic range shrinks to 10.1.1.6/32: 10.1.1.5 is withdrawn, 10.1.1.6 stays.
        let ms1 = e.cfg.map_servers[0].clone();
        let (withdrawn, hosts) = e.reconfigure(
            vec![ms1],
            vec![DatabaseMapping {
                iid: 0,
                prefix: net("10.7.0.0/16"),
                priority: 1,
                weight: 100,
            }],
            vec![(0, net("10.1.1.6/32"))],
            20_000,
            &mut out,
        );
        assert_eq!((withdrawn, hosts), (1, 1));
        let regs = registers(&mut out);
        assert!(
            regs.iter().all(|(dst, _)| *dst == ip(MS1)),
            "MS2 was removed"
        );
        // First the withdrawal (TTL 0) of what is gone, then the full new set.
        assert_eq!(
            prefixes(&regs[0].1),
            vec![(net("10.1.0.0/16"), 0), (net("10.1.1.5/32"), 0)]
        );
        assert_eq!(
            prefixes(&regs[1].1),
            vec![(net("10.7.0.0/16"), 1440), (net("10.1.1.6/32"), 1440)]
        );
        assert_eq!(regs.len(), 2);
        assert_eq!(e.map_servers().count(), 1);
        assert_eq!(e.hosts().count(), 1);
        // The periodic registration restarted from the reload.
        assert_eq!(e.next_timer(), Some(20_000 + e.cfg.register_interval_ms));
    }

    fn prefixes(m: &MapRegister) -> Vec<(IpNet, u32)> {
        m.registration
            .records
            .iter()
            .map(|r| (eid_prefix(&r.eid, r.mask_len).unwrap().1, r.ttl))
            .collect()
    }

    fn notify(etr_nonce: u64, records: Vec<MappingRecord>, key: &[u8], alg: Algorithm) -> Vec<u8> {
        let msg = Message::MapNotify(MapNotify {
            kind: NotifyKind::Notify,
            rtr: false,
            registration: Registration {
                nonce: etr_nonce,
                key_id: 0,
                algorithm_id: alg.id(),
                auth_data: vec![0; alg.auth_len()],
                records,
                xtr_id: None,
            },
        });
        auth::emit_signed(&msg, alg, key).unwrap()
    }

    fn request(eid: &str, mask: u8, probe: bool) -> MapRequest {
        let mut r = MapRequest::new(
            42,
            crate::wire::Address::None,
            vec![ip_address(ip(ITR))],
            vec![EidRecord {
                mask_len: mask,
                eid: eid_address(0, ip(eid)),
            }],
        );
        r.probe = probe;
        r
    }

    #[test]
    fn registers_every_minute_with_each_servers_key() {
        let mut etr = etr();
        let mut out = Outbox::default();
        etr.on_timer(0, &mut out);
        let regs = registers(&mut out);
        assert_eq!(regs.len(), 2);
        for (dst, m) in &regs {
            assert!(m.want_map_notify && !m.proxy_reply);
            assert_eq!(m.registration.xtr_id.unwrap().site_id, 3);
            assert_eq!(prefixes(m), vec![(net("10.1.0.0/16"), 1440)]);
            let l = &m.registration.records[0].locators[0];
            assert_eq!(
                (l.address.ip(), l.priority, l.weight, l.local),
                (Some(ip(OURS)), 1, 50, true)
            );
            assert!([ip(MS1), ip(MS2)].contains(dst));
        }
        etr.on_timer(59_999, &mut out);
        assert!(out.transmits.is_empty());
        etr.on_timer(60_000, &mut out);
        assert_eq!(registers(&mut out).len(), 2);
    }

    #[test]
    fn register_now_restarts_the_period() {
        let mut etr = etr();
        let mut out = Outbox::default();
        etr.on_timer(0, &mut out);
        assert_eq!(registers(&mut out).len(), 2);
        etr.register_now(5_000, &mut out);
        assert_eq!(registers(&mut out).len(), 2, "at once");
        etr.on_timer(60_000, &mut out);
        assert!(
            out.transmits.is_empty(),
            "the next one a period after the last"
        );
        etr.on_timer(65_000, &mut out);
        assert_eq!(registers(&mut out).len(), 2);
    }

    #[test]
    fn detected_hosts_are_registered_at_once_and_withdrawn_with_ttl_zero() {
        let mut etr = etr();
        let mut out = Outbox::default();
        etr.on_event(
            &Event::HostUp {
                iid: 0,
                ip: ip("10.1.1.20"),
            },
            5,
            &mut out,
        );
        let regs = registers(&mut out);
        assert_eq!(regs.len(), 2);
        assert_eq!(prefixes(&regs[0].1), vec![(net("10.1.1.20/32"), 1440)]);
        // Again, or outside the dynamic range, or in another instance: nothing.
        etr.on_event(
            &Event::HostUp {
                iid: 0,
                ip: ip("10.1.1.20"),
            },
            6,
            &mut out,
        );
        etr.on_event(
            &Event::HostUp {
                iid: 0,
                ip: ip("10.1.2.20"),
            },
            6,
            &mut out,
        );
        etr.on_event(
            &Event::HostUp {
                iid: 5,
                ip: ip("10.1.1.21"),
            },
            6,
            &mut out,
        );
        assert!(out.transmits.is_empty());
        assert_eq!(etr.stats.hosts_outside_ranges, 2);
        // The periodic registration carries it.
        etr.on_timer(10, &mut out);
        let regs = registers(&mut out);
        assert_eq!(
            prefixes(&regs[0].1),
            vec![(net("10.1.0.0/16"), 1440), (net("10.1.1.20/32"), 1440)]
        );
        etr.on_event(
            &Event::HostDown {
                iid: 0,
                ip: ip("10.1.1.20"),
            },
            20,
            &mut out,
        );
        let regs = registers(&mut out);
        assert_eq!(regs.len(), 2);
        assert_eq!(prefixes(&regs[1].1), vec![(net("10.1.1.20/32"), 0)]);
        assert!(!etr.is_local_host(0, ip("10.1.1.20")));
    }

    #[test]
    fn map_notifies_confirm_registrations_only_when_authentic() {
        let mut etr = etr();
        let mut out = Outbox::default();
        etr.on_timer(0, &mut out);
        let regs = registers(&mut out);
        let (to1, r1) = regs.iter().find(|(d, _)| *d == ip(MS1)).unwrap();
        assert_eq!(*to1, ip(MS1));
        let nonce = r1.registration.nonce;
        // Wrong key, or from an address that is not a Map-Server: ignored.
        let bad = notify(
            nonce,
            r1.registration.records.clone(),
            b"two",
            Algorithm::HmacSha1_96,
        );
        etr.on_map_notify(ip(MS1), &bad, 1, &mut out);
        // The right key under another algorithm than the Map-Server's: ignored too.
        let other_alg = notify(
            nonce,
            r1.registration.records.clone(),
            b"one",
            Algorithm::HmacSha256_128,
        );
        etr.on_map_notify(ip(MS1), &other_alg, 1, &mut out);
        let good = notify(
            nonce,
            r1.registration.records.clone(),
            b"one",
            Algorithm::HmacSha1_96,
        );
        etr.on_map_notify(ip(ITR), &good, 1, &mut out);
        assert_eq!(etr.stats.notifies_bad_auth, 2);
        assert_eq!(etr.stats.notifies_unknown_source, 1);
        assert!(etr.map_servers().all(|(_, s)| s.last_notify_ms.is_none()));
        etr.on_map_notify(ip(MS1), &good, 2, &mut out);
        let states: Vec<_> = etr
            .map_servers()
            .map(|(a, s)| (a, s.last_notify_ms))
            .collect();
        assert_eq!(states, vec![(ip(MS1), Some(2)), (ip(MS2), None)]);
        assert!(out.is_empty(), "a solicited Map-Notify is not acknowledged");
    }

    #[test]
    fn an_unsolicited_notify_that_a_host_moved_withdraws_it_acks_and_sends_smrs() {
        let mut etr = etr();
        let mut out = Outbox::default();
        let host = ip("10.1.1.20");
        etr.on_event(&Event::HostUp { iid: 0, ip: host }, 0, &mut out);
        out.clear();
        // An ITR asked about it.
        etr.on_map_request(ip(OURS), 4342, &request("10.1.1.20", 32, false), &mut out);
        out.clear();
        // The Map-Server says it now registers from another RLOC.
        let mut rec = etr.host_record(0, host, 1440);
        rec.locators = vec![Locator::new(ip_address(ip("203.0.113.50")), 1, 100)];
        let msg = notify(0xabc, vec![rec], b"two", Algorithm::HmacSha256_128);
        etr.on_map_notify(ip(MS2), &msg, 5, &mut out);
        assert_eq!(out.events, vec![Event::HostMovedAway { iid: 0, ip: host }]);
        assert!(!etr.is_local_host(0, host));
        let mut acks = 0;
        let mut smrs = 0;
        for t in &out.transmits {
            match Message::parse(&t.payload).unwrap() {
                Message::MapNotify(n) => {
                    assert_eq!(n.kind, NotifyKind::Ack);
                    assert_eq!(n.registration.nonce, 0xabc);
                    assert_eq!(t.dst, ip(MS2));
                    auth::verify(&t.payload, b"two").unwrap();
                    acks += 1;
                }
                Message::MapRequest(r) => {
                    assert!(r.smr);
                    assert_eq!(t.dst, ip(ITR));
                    assert_eq!(r.records[0].eid, eid_address(0, host));
                    smrs += 1;
                }
                m => panic!("{m:?}"),
            }
        }
        assert_eq!((acks, smrs), (1, 1));
        // A notify about a host of ours still at our RLOC withdraws nothing (but is acked).
        out.clear();
        etr.on_event(
            &Event::HostUp {
                iid: 0,
                ip: ip("10.1.1.21"),
            },
            6,
            &mut out,
        );
        out.clear();
        let rec = etr.host_record(0, ip("10.1.1.21"), 1440);
        let msg = notify(0xabd, vec![rec], b"two", Algorithm::HmacSha256_128);
        etr.on_map_notify(ip(MS2), &msg, 7, &mut out);
        assert!(out.events.is_empty());
        assert!(etr.is_local_host(0, ip("10.1.1.21")));
        assert_eq!(out.transmits.len(), 1);
    }

    #[test]
    fn map_requests_for_our_eids_are_answered_and_probes_always() {
        let mut etr = etr();
        let mut out = Outbox::default();
        etr.on_event(
            &Event::HostUp {
                iid: 0,
                ip: ip("10.1.1.20"),
            },
            0,
            &mut out,
        );
        out.clear();
        let reply_of = |out: &mut Outbox| -> (Transmit, MapReply) {
            assert_eq!(out.transmits.len(), 1);
            let t = out.transmits.remove(0);
            match Message::parse(&t.payload).unwrap() {
                Message::MapReply(r) => (t, r),
                m => panic!("{m:?}"),
            }
        };
        // A detected host: its host route. Replies go to the ITR-RLOC and the request's port.
        etr.on_map_request(ip(OURS), 61000, &request("10.1.1.20", 32, false), &mut out);
        let (t, r) = reply_of(&mut out);
        assert_eq!((t.dst, t.dst_port, r.nonce), (ip(ITR), 61000, 42));
        assert_eq!(
            (r.records[0].mask_len, r.records[0].authoritative),
            (32, true)
        );
        // Another address of the database prefix: the prefix.
        etr.on_map_request(ip(OURS), 4342, &request("10.1.9.9", 32, false), &mut out);
        assert_eq!(reply_of(&mut out).1.records[0].mask_len, 16);
        // Not ours: no reply.
        etr.on_map_request(ip(OURS), 4342, &request("10.9.9.9", 32, false), &mut out);
        assert!(out.transmits.is_empty());
        assert_eq!(etr.stats.requests_not_ours, 1);
        // An RLOC-probe: answered with the probe bit, the probed locator marked.
        etr.on_map_request(ip(OURS), 4342, &request("10.1.1.20", 32, true), &mut out);
        let (_, r) = reply_of(&mut out);
        assert!(r.probe);
        assert!(r.records[0].locators[0].probed);
        etr.on_map_request(ip(OURS), 4342, &request("10.9.9.9", 32, true), &mut out);
        let (_, r) = reply_of(&mut out);
        assert!(r.probe && r.records.is_empty());
    }
}
