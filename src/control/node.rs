//! One appliance's control plane: the machines its role and config call for, wired together.
//! Still sans-IO: received UDP control messages, punted ARP/ND frames, data-plane misses and
//! the time go in; an [`Outbox`] of messages, frames and table updates comes out. Events from
//! one machine to another, and control messages to one of our own addresses (our ETR
//! registering with our embedded Map-Server, our ITR asking our Map-Resolver), are handled
//! here before anything leaves.

use std::net::IpAddr;

use ipnet::IpNet;

use super::etr::{DatabaseMapping, Etr, EtrConfig, MapServerTarget};
use super::hosts::{HostPort, Hosts, HostsConfig};
use super::itr::{Itr, ItrConfig};
use super::map_server::MapServer;
use super::{algorithm, Event, Nonces, Outbox, Transmit};
use crate::config::{Config, MobilityMode, PortRole, Role};
use crate::dataplane::{Plan, PortPlan};
use crate::wire::control::{Ecm, Message, XtrId};

/// Rounds of local delivery per input: a bound on message loops between our own machines.
const MAX_LOCAL_ROUNDS: usize = 16;

/// Control messages that no machine took.
#[derive(Debug, Default, Clone)]
pub struct NodeStats {
    pub malformed: u64,
    /// A message for a function this appliance does not run (e.g. a Map-Register without the
    /// embedded Map-Server).
    pub not_served: u64,
    /// Map-Replies and Map-Notify-Acks and such that no machine expects.
    pub unexpected: u64,
    pub local_deliveries: u64,
    /// Local deliveries dropped: our machines kept answering each other.
    pub local_loops: u64,
}

/// The control plane of one appliance.
pub struct ControlPlane {
    pub itr: Option<Itr>,
    pub etr: Option<Etr>,
    pub map_server: Option<MapServer>,
    pub hosts: Option<Hosts>,
    /// Every address of ours (RLOCs and port addresses): messages to them are delivered here.
    ours: Vec<IpAddr>,
    rlocs: Vec<IpAddr>,
    pub stats: NodeStats,
    /// For machines made later (an ETR a reload gives its first Map-Server).
    nonces: Nonces,
}

/// What a reconfiguration did to the state the machines held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Map-Server registrations of removed sites or prefixes.
    pub registrations_removed: usize,
    /// ETR database prefixes withdrawn (TTL 0).
    pub prefixes_withdrawn: usize,
    /// Detected hosts withdrawn by the ETR (outside the new dynamic-EID ranges).
    pub hosts_withdrawn: usize,
    /// Detected neighbours whose dynamic-EID instance changed with the ranges.
    pub hosts_changed: usize,
}

/// The Map-Servers the ETR registers with.
fn map_server_targets(cfg: &Config) -> Vec<MapServerTarget> {
    cfg.lisp
        .map_servers
        .iter()
        .filter_map(|m| {
            Some(MapServerTarget {
                address: m.address?,
                algorithm: algorithm(m.key_id),
                key: m.key.as_bytes().to_vec(),
            })
        })
        .collect()
}

fn database(cfg: &Config) -> Vec<DatabaseMapping> {
    cfg.lisp
        .database_mappings
        .iter()
        .map(|d| DatabaseMapping {
            iid: d.iid,
            prefix: d.prefix,
            priority: d.priority,
            weight: d.weight,
        })
        .collect()
}

fn dynamic(cfg: &Config) -> Vec<(u32, IpNet)> {
    cfg.lisp
        .dynamic_eids
        .iter()
        .filter_map(|d| Some((d.iid, d.prefix?)))
        .collect()
}

/// The dynamic-EID ranges of `mode` detected on plan port `p` (EID ports only).
fn ranges(cfg: &Config, p: &PortPlan, mode: MobilityMode) -> Vec<(u32, IpNet)> {
    cfg.lisp
        .dynamic_eids
        .iter()
        .filter(|d| p.role == PortRole::Eid && d.port == p.name && d.mode == mode)
        .filter_map(|d| Some((d.iid, d.prefix?)))
        .collect()
}

fn new_etr(cfg: &Config, plan: &Plan, nonces: &mut Nonces) -> Etr {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&nonces.next().to_be_bytes());
    id[8..].copy_from_slice(&nonces.next().to_be_bytes());
    Etr::new(
        EtrConfig {
            map_servers: map_server_targets(cfg),
            rlocs: plan.rlocs.clone(),
            database: database(cfg),
            dynamic: dynamic(cfg),
            xtr_id: XtrId {
                xtr_id: id,
                site_id: 0,
            },
            ..EtrConfig::default()
        },
        nonces.split(),
    )
}

impl ControlPlane {
    /// The machines for `cfg` (already validated) over the running ports of `plan`.
    pub fn new(cfg: &Config, plan: &Plan, mut nonces: Nonces) -> Self {
        let role = cfg.appliance.role.unwrap_or(Role::Pxtr);
        let lisp = &cfg.lisp;
        let xtr = role != Role::MsMr;
        let itr = xtr.then(|| {
            Itr::new(
                ItrConfig {
                    map_resolvers: lisp.map_resolvers.clone(),
                    rlocs: plan.rlocs.clone(),
                    pitr: plan.functions.pitr && role == Role::Pxtr,
                    ..ItrConfig::default()
                },
                nonces.split(),
            )
        });
        let etr = (xtr && !lisp.map_servers.is_empty()).then(|| new_etr(cfg, plan, &mut nonces));
        // The Map-Server answers ITR-RLOCs of the families we can send from: our RLOCs and
        // port addresses, or without DPDK ports the kernel sockets it listens on (0.0.0.0 by
        // default).
        let listen = &cfg.map_server.listen;
        let has = |v4: bool| {
            plan.rlocs.iter().any(|r| r.is_ipv4() == v4)
                || plan
                    .ports
                    .iter()
                    .any(|p| p.addresses.iter().any(|a| a.addr().is_ipv4() == v4))
                || (plan.ports.is_empty()
                    && (listen.iter().any(|a| a.is_ipv4() == v4) || (listen.is_empty() && v4)))
        };
        let map_server = cfg.map_server.enabled.then(|| {
            let mut ms = MapServer::new(&cfg.map_server, nonces.split());
            ms.set_reply_families(has(true), has(false));
            ms
        });
        // Every port: EID ports detect hosts and proxy; RLOC ports resolve next hops and
        // answer for our addresses.
        let host_ports: Vec<HostPort> = plan
            .ports
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let eid = p.role == PortRole::Eid;
                let ranges = |mode| ranges(cfg, p, mode);
                HostPort {
                    index,
                    mac: p.mac,
                    iid: p.iid,
                    addresses: p.addresses.clone(),
                    dynamic: ranges(MobilityMode::AcrossSubnet),
                    extended: ranges(MobilityMode::ExtendedSubnet),
                    // In path (the site's gateway): answer for everything not local.
                    proxy_all: eid && role == Role::Xtr,
                    answer_for: cfg
                        .ports
                        .iter()
                        .find(|c| c.name == p.name)
                        .map(|c| c.answer_arp_for.clone())
                        .unwrap_or_default(),
                    proxy: eid,
                }
            })
            .collect();
        let hosts = (!host_ports.is_empty()).then(|| {
            Hosts::new(HostsConfig {
                ports: host_ports,
                ..HostsConfig::default()
            })
        });
        let mut ours: Vec<IpAddr> = plan.rlocs.clone();
        for p in &plan.ports {
            for a in &p.addresses {
                if !ours.contains(&a.addr()) {
                    ours.push(a.addr());
                }
            }
        }
        ControlPlane {
            itr,
            etr,
            map_server,
            hosts,
            ours,
            rlocs: plan.rlocs.clone(),
            stats: NodeStats::default(),
            nonces,
        }
    }

    /// Applies a changed configuration (live reload; `cfg` validated, and the same as the
    /// running one in everything [`crate::config::diff`] calls restart-only) to the machines
    /// in place, so that what they hold stays where it is still valid: resolutions under way,
    /// registrations, detected hosts. The ETR re-registers at once with the new set.
    pub fn reconfigure(
        &mut self,
        cfg: &Config,
        plan: &Plan,
        now_ms: u64,
        out: &mut Outbox,
    ) -> Reconfigured {
        let mut r = Reconfigured::default();
        let lisp = &cfg.lisp;
        if let Some(itr) = &mut self.itr {
            itr.set_map_resolvers(lisp.map_resolvers.clone());
        }
        let xtr = cfg.role() != Role::MsMr;
        match &mut self.etr {
            Some(etr) => {
                (r.prefixes_withdrawn, r.hosts_withdrawn) = etr.reconfigure(
                    map_server_targets(cfg),
                    database(cfg),
                    dynamic(cfg),
                    now_ms,
                    out,
                );
            }
            None if xtr && !lisp.map_servers.is_empty() => {
                let mut etr = new_etr(cfg, plan, &mut self.nonces);
                // Hosts detected so far are registered too.
                if let Some(h) = &self.hosts {
                    for host in h.hosts() {
                        if let Some(iid) = host.iid {
                            etr.on_event(&Event::HostUp { iid, ip: host.ip }, now_ms, out);
                        }
                    }
                }
                etr.register_now(now_ms, out);
                self.etr = Some(etr);
            }
            None => {}
        }
        if let Some(ms) = &mut self.map_server {
            r.registrations_removed = ms.reconfigure(&cfg.map_server);
        }
        if let Some(h) = &mut self.hosts {
            let ranges: Vec<_> = plan
                .ports
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    (
                        i,
                        ranges(cfg, p, MobilityMode::AcrossSubnet),
                        ranges(cfg, p, MobilityMode::ExtendedSubnet),
                    )
                })
                .collect();
            r.hosts_changed = h.set_ranges(&ranges, out);
        }
        self.settle(now_ms, out);
        r
    }

    /// Our RLOCs.
    pub fn rlocs(&self) -> &[IpAddr] {
        &self.rlocs
    }

    /// Whether `ip` is one of our addresses.
    pub fn is_ours(&self, ip: IpAddr) -> bool {
        self.ours.contains(&ip)
    }

    /// A UDP datagram to or from the LISP control port reached one of our addresses.
    pub fn on_udp(
        &mut self,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        payload: &[u8],
        now_ms: u64,
        out: &mut Outbox,
    ) {
        self.dispatch(src, src_port, dst, payload, now_ms, out);
        self.settle(now_ms, out);
    }

    fn dispatch(
        &mut self,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        payload: &[u8],
        now_ms: u64,
        out: &mut Outbox,
    ) {
        let msg = match Message::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(%src, %e, "malformed LISP control message");
                return;
            }
        };
        match msg {
            Message::MapRequest(req) => {
                if req.smr {
                    match &mut self.itr {
                        Some(itr) => itr.on_smr(src, &req, now_ms, out),
                        None => self.stats.not_served += 1,
                    }
                } else {
                    match &mut self.etr {
                        Some(etr) => etr.on_map_request(dst, src_port, &req, out),
                        None => self.stats.not_served += 1,
                    }
                }
            }
            Message::Ecm(ecm) => self.on_ecm(&ecm, dst, now_ms, out),
            Message::MapReply(reply) => match &mut self.itr {
                Some(itr) => itr.on_map_reply(&reply, now_ms, out),
                None => self.stats.unexpected += 1,
            },
            Message::MapRegister(_) => match &mut self.map_server {
                Some(ms) => ms.on_map_register_at(dst, src, src_port, payload, now_ms, out),
                None => self.stats.not_served += 1,
            },
            Message::MapNotify(n) => match n.kind {
                crate::wire::control::NotifyKind::Notify => match &mut self.etr {
                    Some(etr) => etr.on_map_notify(src, payload, now_ms, out),
                    None => self.stats.unexpected += 1,
                },
                crate::wire::control::NotifyKind::Ack => match &mut self.map_server {
                    Some(ms) => ms.on_map_notify_ack(src, payload, now_ms, out),
                    None => self.stats.unexpected += 1,
                },
            },
        }
    }

    /// An Encapsulated Control Message: a Map-Request for our Map-Resolver, or one a
    /// Map-Server forwarded to us as an ETR.
    fn on_ecm(&mut self, ecm: &Ecm, dst: IpAddr, now_ms: u64, out: &mut Outbox) {
        let req = match ecm.message() {
            Ok(Message::MapRequest(r)) => r,
            Ok(_) => {
                self.stats.unexpected += 1;
                return;
            }
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if ecm.to_etr {
            match &mut self.etr {
                Some(etr) => etr.on_map_request(dst, ecm.inner.src_port, &req, out),
                None => self.stats.not_served += 1,
            }
            return;
        }
        match &mut self.map_server {
            Some(ms) => ms.on_map_request_at(dst, ecm, &req, now_ms, out),
            None => self.stats.not_served += 1,
        }
    }

    /// An ARP or ND frame punted from plan port `port`.
    pub fn on_frame(&mut self, port: usize, frame: &[u8], now_ms: u64, out: &mut Outbox) {
        if let Some(h) = &mut self.hosts {
            h.on_frame(port, frame, now_ms, out);
        }
        self.settle(now_ms, out);
    }

    /// The data plane missed `eid` in `iid`.
    pub fn on_miss(&mut self, iid: u32, eid: IpAddr, now_ms: u64, out: &mut Outbox) {
        if let Some(itr) = &mut self.itr {
            itr.resolve(iid, eid, now_ms, out);
        }
        self.settle(now_ms, out);
    }

    /// RLOCs in each range became reachable (`true`) or not from outside (the IPsec SA to
    /// their xTR).
    pub fn set_ranges_reachable(
        &mut self,
        ranges: &[(IpNet, bool)],
        now_ms: u64,
        out: &mut Outbox,
    ) {
        if ranges.is_empty() {
            return;
        }
        if let Some(itr) = &mut self.itr {
            for &(range, up) in ranges {
                itr.set_range_reachable(range, up, out);
            }
        }
        // A tunnel just came up: registrations lost while it was down need not wait a minute
        // (one round, however many ranges came up).
        if ranges.iter().any(|&(_, up)| up) {
            if let Some(etr) = &mut self.etr {
                etr.register_now(now_ms, out);
            }
        }
        self.settle(now_ms, out);
    }

    /// LISP data from the site of `eid` carried locator-status-bits `lsb`.
    pub fn on_locator_status(
        &mut self,
        iid: u32,
        eid: IpAddr,
        lsb: u32,
        width: u32,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        if let Some(itr) = &mut self.itr {
            itr.on_locator_status(iid, eid, lsb, width, out);
        }
        self.settle(now_ms, out);
    }

    /// The data plane routed a packet from `ip` at `mac` in an extended-subnet range of plan
    /// port `port`.
    pub fn on_source_seen(
        &mut self,
        port: usize,
        ip: IpAddr,
        mac: [u8; 6],
        now_ms: u64,
        out: &mut Outbox,
    ) {
        if let Some(h) = &mut self.hosts {
            h.on_source_seen(port, ip, mac, now_ms, out);
        }
        self.settle(now_ms, out);
    }

    /// The data plane has no MAC for next hop `ip` on plan port `port`.
    pub fn on_neighbor_miss(&mut self, port: usize, ip: IpAddr, now_ms: u64, out: &mut Outbox) {
        if let Some(h) = &mut self.hosts {
            h.resolve_neighbor(port, ip, now_ms, out);
        }
        self.settle(now_ms, out);
    }

    /// Runs every machine's timers. `in_use(iid, prefix, since_ms)`: whether the map-cache
    /// entry was used after `since_ms` (refresh before expiry).
    pub fn on_timer(
        &mut self,
        now_ms: u64,
        in_use: &mut dyn FnMut(u32, IpNet, u64) -> bool,
        out: &mut Outbox,
    ) {
        if let Some(itr) = &mut self.itr {
            itr.on_timer(now_ms, in_use, out);
        }
        if let Some(etr) = &mut self.etr {
            etr.on_timer(now_ms, out);
        }
        if let Some(ms) = &mut self.map_server {
            ms.on_timer(now_ms, out);
        }
        if let Some(h) = &mut self.hosts {
            h.on_timer(now_ms, out);
        }
        self.settle(now_ms, out);
    }

    /// The earliest time [`ControlPlane::on_timer`] has something to do.
    pub fn next_timer(&self) -> Option<u64> {
        [
            self.itr.as_ref().and_then(Itr::next_timer),
            self.etr.as_ref().and_then(Etr::next_timer),
            self.map_server.as_ref().and_then(MapServer::next_timer),
            self.hosts.as_ref().and_then(Hosts::next_timer),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Routes events between the machines and delivers messages to our own addresses, until
    /// only what leaves the appliance is left in `out`.
    fn settle(&mut self, now_ms: u64, out: &mut Outbox) {
        for _ in 0..MAX_LOCAL_ROUNDS {
            let events = std::mem::take(&mut out.events);
            let (local, remote): (Vec<Transmit>, Vec<Transmit>) =
                std::mem::take(&mut out.transmits)
                    .into_iter()
                    .partition(|t| self.is_ours(t.dst));
            out.transmits = remote;
            if events.is_empty() && local.is_empty() {
                return;
            }
            for e in &events {
                self.route_event(e, now_ms, out);
            }
            for t in local {
                self.stats.local_deliveries += 1;
                let src = t.src.unwrap_or(t.dst);
                self.dispatch(src, t.src_port, t.dst, &t.payload, now_ms, out);
            }
        }
        let dropped =
            out.events.len() + out.transmits.iter().filter(|t| self.is_ours(t.dst)).count();
        if dropped > 0 {
            self.stats.local_loops += dropped as u64;
            tracing::warn!(
                dropped,
                "control messages between our own machines kept looping: dropped"
            );
            out.events.clear();
            let ours = self.ours.clone();
            out.transmits.retain(|t| !ours.contains(&t.dst));
        }
    }

    fn route_event(&mut self, e: &Event, now_ms: u64, out: &mut Outbox) {
        match e {
            Event::HostUp { .. } | Event::HostDown { .. } => {
                if let (Event::HostUp { iid, ip }, Some(itr)) = (e, &mut self.itr) {
                    itr.host_is_local(*iid, *ip, out);
                }
                if let Some(etr) = &mut self.etr {
                    etr.on_event(e, now_ms, out);
                }
            }
            Event::HostMovedAway { .. } | Event::Remote { .. } | Event::NotRemote { .. } => {
                if let Some(h) = &mut self.hosts {
                    h.on_event(e, now_ms, out);
                }
            }
            Event::Resolve { iid, eid } => {
                if let Some(itr) = &mut self.itr {
                    itr.resolve(*iid, *eid, now_ms, out);
                }
            }
        }
    }

    /// Every counter of every machine, with its name.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![
            ("control_malformed", self.stats.malformed),
            ("control_not_served", self.stats.not_served),
            ("control_unexpected", self.stats.unexpected),
            ("control_local_deliveries", self.stats.local_deliveries),
            ("control_local_loops", self.stats.local_loops),
        ];
        if let Some(m) = &self.itr {
            v.extend(m.stats.counters());
        }
        if let Some(m) = &self.etr {
            v.extend(m.stats.counters());
        }
        if let Some(m) = &self.map_server {
            v.extend(m.stats.counters());
        }
        if let Some(m) = &self.hosts {
            v.extend(m.stats.counters());
        }
        v
    }
}
