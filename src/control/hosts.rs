//! EID detection and proxy-ARP/ND on the server-mobility interface (seed: "Critical Points
//! and Traffic Flows" 4-6, both packet walks, "LISP Host Mobility").
//!
//! A sans-IO machine fed with the ARP and ICMPv6 Neighbor Discovery frames the workers punt
//! (`dataplane::classify`: all ARP, and NS/NA/RS/RA/Redirect directly in ICMPv6), the time and
//! the events of the LISP machines. Its outputs go into an [`Outbox`]: frames to send on a
//! port, neighbour-table updates, and events (`HostUp`, `HostDown`, `Resolve`).
//!
//! - **Learning.** The sender of every ARP packet (and the source of an NS with a source
//!   link-layer option, the target of an NA with the Override flag and a target link-layer
//!   option) that is on-link on the port (inside one of its subnets or dynamic-EID ranges) is
//!   a neighbour: [`Update::Neighbor`] when new or changed. Inside a dynamic-EID range it is
//!   a local host: [`Event::HostUp`] once. A host we treated as moved away that talks on the
//!   wire again is local again.
//! - **Answering** an ARP request or NS for target T on port p, in this order: one of our
//!   addresses on p → answer; in p's `answer_for` → answer; a known neighbour on p → never
//!   (the host answers itself); remote (a mapping to another site covers it, or it moved
//!   away) → proxy answer with our MAC; inside a dynamic range of a `proxy_all` port (the
//!   cloud xTR, which routes everything) → proxy answer, and resolve it; inside a dynamic
//!   range otherwise → no answer, but `Resolve` and an ARP probe/NS, so a local host shows
//!   up and a remote one gets a mapping. The asker is remembered for `pending_ms`: when
//!   [`Event::Remote`] covers the target meanwhile, it is answered at once with what its
//!   request would have got then (the same decision, so never for a target that has become
//!   local), not after its next retry (Linux retries once a second). `NotRemote` or the
//!   deadline forgets it unanswered. Gratuitous ARP, ARP probes
//!   (RFC 5227, sender 0.0.0.0) and DAD NS are never proxied: answering them would make a
//!   host that moved back believe its address is taken.
//! - **Liveness.** A neighbour silent for `probe_after_ms` is probed (unicast ARP request /
//!   NS to its MAC, RFC 4861 7.3.3 style) `probes` times every `probe_interval_ms`; then it
//!   is gone (`NeighborGone`, and `HostDown` for a host).
//! - **Moves.** [`Event::HostMovedAway`] forgets the host, marks it remote and announces our
//!   MAC for it (gratuitous ARP / unsolicited NA with Override, as a Mobile IPv6 home agent
//!   does, RFC 6275 10.4.1), so hosts that cached its MAC send to us.
//!
//! IPv6 answers follow RFC 4861: hop limit 255 and a valid checksum are required (7.1.1,
//! 7.1.2); NAs for our own (and `answer_for`) addresses carry Override, proxy NAs do not
//! (7.2.8) so a real owner's NA wins; the Router flag is set on `proxy_all` ports, where we
//! are the router; proxy NAs are sourced from our link-local address.
//!
//! Every table is bounded (neighbours, remote prefixes, moved-away marks, rate-limit state,
//! askers waiting for a mapping);
//! what is refused is counted, so an ARP flood cannot grow memory. Tables iterated for
//! output are ordered (BTreeMap/BTreeSet), so the outputs are deterministic.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use super::{Event, Frame, Outbox, Update};

/// Ethernet's minimum frame (without FCS): ARP frames are padded to it.
const MIN_FRAME: usize = 60;
const ETH_HEADER: usize = 14;
const IPV6_HEADER: usize = 40;
const ARP_LEN: usize = 28;
/// RFC 4861: ND messages are sent, and accepted, with hop limit 255 only.
const ND_HOP_LIMIT: u8 = 255;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ZERO_MAC: [u8; 6] = [0; 6];

/// One port the machine listens and answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Plan port index (what `on_frame` is called with and what [`Frame::port`] carries).
    pub index: usize,
    /// Our MAC on the port.
    pub mac: [u8; 6],
    /// Instance-ID of the port's EID traffic: used to look up remote prefixes for targets
    /// outside every dynamic range.
    pub iid: u32,
    /// Our addresses on the port, with their subnets.
    pub addresses: Vec<IpNet>,
    /// Dynamic-EID ranges detected on this port: (instance-ID, range).
    pub dynamic: Vec<(u32, IpNet)>,
    /// Answer for every non-local target inside a dynamic range (the cloud xTR, default
    /// gateway of its subnet, which routes everything).
    pub proxy_all: bool,
    /// Extra addresses we always answer for on this port (e.g. the enterprise gateway address
    /// at the cloud site).
    pub answer_for: Vec<IpAddr>,
    /// Answer for remote EIDs (proxy-ARP/ND): EID ports. RLOC ports only answer for our own
    /// addresses, learn neighbours and resolve next hops.
    pub proxy: bool,
    /// Extended-subnet ranges (LAN extension between sites): hosts in them are detected from
    /// the packets they route through us ([`Hosts::on_source_seen`]), never from ARP/ND
    /// (which crosses the extension); nobody in them is answered for, and a host that leaves
    /// is not announced with our MAC.
    pub extended: Vec<(u32, IpNet)>,
}

/// A port's ranges for [`Hosts::set_ranges`]: plan port index, dynamic ranges and
/// extended-subnet ranges, each (instance-ID, range).
pub type PortRanges = (usize, Vec<(u32, IpNet)>, Vec<(u32, IpNet)>);

/// Timers and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsConfig {
    pub ports: Vec<HostPort>,
    /// A neighbour silent this long is probed.
    pub probe_after_ms: u64,
    /// Interval between two probes.
    pub probe_interval_ms: u64,
    /// Unanswered probes after which a neighbour is gone.
    pub probes: u32,
    /// Shortest interval between two `Resolve` events, and between two solicitations (ARP
    /// request / NS for a target we do not know, `resolve_neighbor`), for one target.
    pub resolve_interval_ms: u64,
    /// Most neighbours (hosts included) tracked; more are refused and counted.
    pub max_neighbors: usize,
    /// Most targets remembered by each rate limiter; the oldest is evicted beyond it.
    pub max_rate_entries: usize,
    /// Most remote prefixes tracked; more are refused and counted.
    pub max_remote_prefixes: usize,
    /// Most moved-away hosts tracked; more are refused and counted.
    pub max_moved_away: usize,
    /// How long an asker for an unknown target is remembered, to be answered as soon as a
    /// mapping makes the target remote (Linux gives up an ARP resolution after 3 s).
    pub pending_ms: u64,
    /// Most askers remembered per target; more are refused and counted.
    pub max_askers_per_target: usize,
    /// Most askers remembered in all; more are refused and counted.
    pub max_pending_askers: usize,
}

impl Default for HostsConfig {
    fn default() -> Self {
        HostsConfig {
            ports: Vec::new(),
            probe_after_ms: 60_000,
            probe_interval_ms: 1_000,
            probes: 3,
            resolve_interval_ms: 1_000,
            max_neighbors: 65_536,
            max_rate_entries: 65_536,
            max_remote_prefixes: 1 << 20,
            max_moved_away: 65_536,
            pending_ms: 3_000,
            max_askers_per_target: 4,
            max_pending_askers: 4_096,
        }
    }
}

macro_rules! stats {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        /// What the machine has seen and done, for logs and `pxtr ctl`.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct HostsStats {
            $($(#[$m])* pub $name: u64,)*
        }

        impl HostsStats {
            /// Every counter by name, in declaration order.
            pub fn counters(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name)),*]
            }
        }
    };
}

stats! {
    /// Frames given to `on_frame`.
    frames,
    /// Frames for a port we were not configured with.
    unknown_port,
    /// Frames neither ARP nor ICMPv6 NS/NA (other ethertypes, other IPv6 payloads).
    not_arp_nd,
    /// Truncated or invalid frames (bad lengths, hardware or protocol types, options, codes).
    malformed,
    /// ICMPv6 with a bad checksum.
    bad_checksum,
    /// Sources the data plane reported from extended-subnet ranges (host detection).
    sources_seen,
    /// Sources reported outside every extended-subnet range of their port (ignored).
    sources_outside_ranges,
    /// ND not sent with hop limit 255 (RFC 4861: possibly from off-link).
    bad_hop_limit,
    /// Frames sent with our own MAC (looped back or spoofed): ignored.
    from_self,
    arp_requests,
    arp_replies,
    /// ARP operations other than request and reply.
    arp_other,
    /// Gratuitous ARP (sender == target): learned from, never answered.
    gratuitous_arps,
    /// RFC 5227 ARP probes (sender 0.0.0.0): only answered for our own addresses.
    arp_probes_seen,
    ns_received,
    na_received,
    /// DAD Neighbor Solicitations (source ::): only answered for our own addresses.
    dad_seen,
    /// RS, RA, Redirect: not ours to handle.
    nd_other,
    /// Answers (ARP reply, NA) for our own addresses.
    replies_self,
    /// Answers for `answer_for` addresses.
    replies_answer_for,
    /// Proxy answers for remote (mapped elsewhere or moved-away) targets (late ones included).
    proxy_replies,
    /// Of `proxy_replies`, those sent to a remembered asker when the mapping arrived.
    proxy_replies_late,
    /// Proxy answers for targets in a dynamic range of a `proxy_all` port.
    proxy_all_replies,
    /// Requests not answered because the target is a local neighbour.
    not_answered_local,
    /// Requests not answered because the target is unknown (a resolve was started).
    not_answered_unknown,
    /// Requests for targets we have nothing to do with.
    not_ours,
    /// `Resolve` events emitted.
    resolves,
    /// `Resolve` events not emitted (rate limit).
    resolves_limited,
    /// ARP requests / NS sent for targets we do not know (probes, `resolve_neighbor`).
    solicits_sent,
    /// Solicitations not sent (rate limit).
    solicits_limited,
    /// Probes of known neighbours that went silent.
    probes_sent,
    /// Gratuitous ARPs / unsolicited NAs sent for hosts that moved away.
    announcements_sent,
    neighbors_learned,
    /// MAC or port changes of known neighbours.
    neighbor_changes,
    /// Neighbours that stopped answering probes.
    neighbors_gone,
    /// Neighbour updates re-emitted for `resolve_neighbor` of a known neighbour.
    neighbor_reemits,
    hosts_up,
    hosts_down,
    /// `HostMovedAway` events received.
    hosts_moved_away,
    /// Moved-away hosts seen on the wire again.
    hosts_back,
    /// Frames claiming one of our (or an `answer_for`) addresses from another MAC.
    address_conflicts,
    /// Senders not learned because they are not on-link on the port.
    learn_off_link,
    /// Neighbours not learned because the table is full.
    learn_refused,
    /// Remote prefixes not tracked because the set is full.
    remote_refused,
    /// Moved-away hosts not tracked because the set is full.
    moved_refused,
    /// Rate-limit entries evicted before their interval ran out (table full).
    rate_limit_evictions,
    /// Askers for unknown targets remembered (to answer when the mapping arrives).
    askers_remembered,
    /// Askers not remembered because their target or the table is full.
    askers_refused,
    /// Remembered askers forgotten unanswered after `pending_ms`.
    askers_expired,
    /// Remembered askers forgotten unanswered because the target did not become remote
    /// (`NotRemote`, a negative answer, local meanwhile).
    askers_dropped,
}

/// Liveness of a learned neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// Heard from within `probe_after_ms`.
    Reachable,
    /// Silent: `sent` probes sent so far, unanswered.
    Probing { sent: u32 },
}

/// A learned neighbour, for `pxtr ctl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostInfo {
    /// The dynamic-EID instance it was detected in; `None` for a plain neighbour (in a
    /// subnet of the port, outside every dynamic range).
    pub iid: Option<u32>,
    pub ip: IpAddr,
    pub mac: [u8; 6],
    /// Plan port index.
    pub port: usize,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub state: HostState,
}

struct Entry {
    mac: [u8; 6],
    port: usize,
    iid: Option<u32>,
    first_seen: u64,
    last_seen: u64,
    state: HostState,
    /// When the timer has to look at the entry next.
    due: u64,
    /// The time of its item in the timer queue, if any (never later than `due`).
    queued: Option<u64>,
}

impl Entry {
    fn info(&self, ip: IpAddr) -> HostInfo {
        HostInfo {
            iid: self.iid,
            ip,
            mac: self.mac,
            port: self.port,
            first_seen_ms: self.first_seen,
            last_seen_ms: self.last_seen,
            state: self.state,
        }
    }
}

struct Port {
    cfg: HostPort,
    /// Source of proxy NAs and of NS for targets outside our IPv6 subnets: a configured
    /// link-local address, else the EUI-64 one of our MAC (RFC 4291 appendix A).
    link_local: Ipv6Addr,
}

impl Port {
    fn new(mut cfg: HostPort) -> Self {
        for (_, net) in cfg.dynamic.iter_mut().chain(cfg.extended.iter_mut()) {
            *net = net.trunc();
        }
        let link_local = cfg
            .addresses
            .iter()
            .find_map(|n| match n.addr() {
                IpAddr::V6(a) if is_link_local(a) => Some(a),
                _ => None,
            })
            .unwrap_or_else(|| eui64_link_local(cfg.mac));
        Port { cfg, link_local }
    }

    fn is_own(&self, ip: IpAddr) -> bool {
        ip == IpAddr::V6(self.link_local) || self.cfg.addresses.iter().any(|n| n.addr() == ip)
    }

    fn in_subnet(&self, ip: IpAddr) -> bool {
        self.cfg.addresses.iter().any(|n| n.contains(&ip))
    }

    /// The instance of the longest dynamic range holding `ip`.
    fn dynamic_iid(&self, ip: IpAddr) -> Option<u32> {
        self.cfg
            .dynamic
            .iter()
            .filter(|(_, n)| n.contains(&ip))
            .max_by_key(|(_, n)| n.prefix_len())
            .map(|(iid, _)| *iid)
    }

    /// The instance of the longest extended-subnet range holding `ip`.
    fn extended_iid(&self, ip: IpAddr) -> Option<u32> {
        self.cfg
            .extended
            .iter()
            .filter(|(_, n)| n.contains(&ip))
            .max_by_key(|(_, n)| n.prefix_len())
            .map(|(iid, _)| *iid)
    }

    /// The instance a target is looked up in.
    fn iid_of(&self, ip: IpAddr) -> u32 {
        self.dynamic_iid(ip).unwrap_or(self.cfg.iid)
    }

    /// An address a host can have: unicast, and not the broadcast address of a subnet.
    fn unicast(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let special =
                    a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback();
                let subnet_broadcast = self.cfg.addresses.iter().any(|n| match n {
                    IpNet::V4(n) => n.prefix_len() < 31 && n.broadcast() == a,
                    IpNet::V6(_) => false,
                });
                !special && !subnet_broadcast
            }
            IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
        }
    }

    /// Our IPv4 address on a subnet holding `t`, else 0.0.0.0 (RFC 5227 probe).
    fn source_v4(&self, t: Ipv4Addr) -> Ipv4Addr {
        self.cfg
            .addresses
            .iter()
            .find_map(|n| match (n, n.addr()) {
                (IpNet::V4(net), IpAddr::V4(a)) if net.contains(&t) => Some(a),
                _ => None,
            })
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Our IPv6 address on a subnet holding `t`, else our link-local address.
    fn source_v6(&self, t: Ipv6Addr) -> Ipv6Addr {
        self.cfg
            .addresses
            .iter()
            .find_map(|n| match (n, n.addr()) {
                (IpNet::V6(net), IpAddr::V6(a)) if net.contains(&t) => Some(a),
                _ => None,
            })
            .unwrap_or(self.link_local)
    }
}

/// Per-key rate limit with bounded state: a key is allowed once per `interval`; the state
/// holds at most `cap` keys, the oldest evicted first.
struct RateLimiter<K> {
    interval: u64,
    cap: usize,
    last: HashMap<K, u64>,
    /// Keys in the order they were allowed (one item per key in `last`).
    order: VecDeque<(u64, K)>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    fn new(interval: u64, cap: usize) -> Self {
        RateLimiter {
            interval,
            cap: cap.max(1),
            last: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `k` may go now (and records it); `evicted` counts forced evictions.
    fn allow(&mut self, k: K, now: u64, evicted: &mut u64) -> bool {
        while let Some(&(t, old)) = self.order.front() {
            if t.saturating_add(self.interval) > now {
                break;
            }
            self.order.pop_front();
            self.last.remove(&old);
        }
        if self.last.contains_key(&k) {
            return false;
        }
        self.last.insert(k, now);
        self.order.push_back((now, k));
        while self.last.len() > self.cap {
            let Some((_, old)) = self.order.pop_front() else {
                break;
            };
            self.last.remove(&old);
            *evicted += 1;
        }
        true
    }

    fn len(&self) -> usize {
        self.last.len()
    }
}

/// What to do about a target someone asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Own,
    AnswerFor,
    Local,
    Remote,
    ProxyAll { iid: u32 },
    Unknown { iid: u32 },
    NotOurs,
}

/// How to answer: with Override (ours) or not (proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    override_: bool,
}

/// Who asked (ARP request, NS) and where the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Asker {
    /// The ARP sender / NS source address.
    ip: IpAddr,
    /// The ARP sender MAC / the NS source link-layer option (else the Ethernet source).
    mac: [u8; 6],
}

/// An asker for an unknown target, waiting for a mapping.
struct Waiting {
    /// Port position (in `Hosts::ports`) it asked on.
    pi: usize,
    asker: Asker,
    /// Forgotten from then on.
    deadline: u64,
}

/// The askers of one unknown target.
struct Pending {
    askers: Vec<Waiting>,
    /// The time of its item in the pending timer queue (never later than any deadline).
    queued: u64,
}

/// The EID detection and proxy-ARP/ND machine.
pub struct Hosts {
    ports: Vec<Port>,
    probe_after_ms: u64,
    probe_interval_ms: u64,
    probes: u32,
    max_neighbors: usize,
    max_remote: usize,
    max_moved: usize,
    entries: BTreeMap<IpAddr, Entry>,
    /// (due, ip): when each entry's timer fires.
    timers: BTreeSet<(u64, IpAddr)>,
    remote: HashSet<(u32, IpNet)>,
    /// How many remote prefixes of each length exist (longest-match lookups probe only these).
    remote_lens_v4: [u32; 33],
    remote_lens_v6: [u32; 129],
    moved_away: BTreeSet<(u32, IpAddr)>,
    pending_ms: u64,
    max_askers_per_target: usize,
    max_pending_askers: usize,
    /// Askers of unknown targets, by (instance, target): ordered, so the targets a prefix
    /// covers are one range.
    pending: BTreeMap<(u32, IpAddr), Pending>,
    /// (due, iid, target): one item per pending target.
    pending_timers: BTreeSet<(u64, u32, IpAddr)>,
    /// Askers in `pending`.
    pending_askers: usize,
    solicit_limit: RateLimiter<IpAddr>,
    resolve_limit: RateLimiter<(u32, IpAddr)>,
    pub stats: HostsStats,
}

impl Hosts {
    pub fn new(cfg: HostsConfig) -> Self {
        let mut ports: Vec<Port> = Vec::with_capacity(cfg.ports.len());
        for p in cfg.ports {
            if !ports.iter().any(|q| q.cfg.index == p.index) {
                ports.push(Port::new(p));
            }
        }
        Hosts {
            ports,
            probe_after_ms: cfg.probe_after_ms,
            probe_interval_ms: cfg.probe_interval_ms,
            probes: cfg.probes,
            max_neighbors: cfg.max_neighbors,
            max_remote: cfg.max_remote_prefixes,
            max_moved: cfg.max_moved_away,
            entries: BTreeMap::new(),
            timers: BTreeSet::new(),
            remote: HashSet::new(),
            remote_lens_v4: [0; 33],
            remote_lens_v6: [0; 129],
            moved_away: BTreeSet::new(),
            pending_ms: cfg.pending_ms,
            max_askers_per_target: cfg.max_askers_per_target,
            max_pending_askers: cfg.max_pending_askers,
            pending: BTreeMap::new(),
            pending_timers: BTreeSet::new(),
            pending_askers: 0,
            solicit_limit: RateLimiter::new(cfg.resolve_interval_ms, cfg.max_rate_entries),
            resolve_limit: RateLimiter::new(cfg.resolve_interval_ms, cfg.max_rate_entries),
            stats: HostsStats::default(),
        }
    }

    /// The dynamic-EID and extended-subnet ranges of each port now (live reload; `ranges`:
    /// plan port index, dynamic ranges, extended ranges). Detected neighbours stay; one whose
    /// instance changes with the ranges goes down from the old instance (`HostDown`: the ETR
    /// withdraws it) and up in the new one, or stays a plain neighbour outside every range.
    /// Returns how many hosts changed so.
    pub fn set_ranges(&mut self, ranges: &[PortRanges], out: &mut Outbox) -> usize {
        for (index, dynamic, extended) in ranges {
            if let Some(p) = self.ports.iter_mut().find(|p| p.cfg.index == *index) {
                let mut cfg = p.cfg.clone();
                cfg.dynamic = dynamic.clone();
                cfg.extended = extended.clone();
                *p = Port::new(cfg);
            }
        }
        let mut moved = 0;
        for (ip, e) in self.entries.iter_mut() {
            let Some(port) = self.ports.iter().find(|p| p.cfg.index == e.port) else {
                continue;
            };
            // Extended-subnet hosts are detected from the packets they route, never from
            // ARP: a neighbour is not made one here, a host already one stays.
            let iid = port
                .dynamic_iid(*ip)
                .or_else(|| port.extended_iid(*ip).filter(|i| e.iid == Some(*i)));
            if iid == e.iid {
                continue;
            }
            moved += 1;
            if let Some(old) = e.iid {
                out.events.push(Event::HostDown { iid: old, ip: *ip });
                self.stats.hosts_down += 1;
            }
            if let Some(new) = iid {
                out.events.push(Event::HostUp { iid: new, ip: *ip });
                self.stats.hosts_up += 1;
            }
            e.iid = iid;
        }
        moved
    }

    // ----- introspection -----

    /// Local hosts (learned inside a dynamic range), by address.
    pub fn hosts(&self) -> impl Iterator<Item = HostInfo> + '_ {
        self.neighbors().filter(|h| h.iid.is_some())
    }

    /// Every learned neighbour (hosts and plain neighbours), by address.
    pub fn neighbors(&self) -> impl Iterator<Item = HostInfo> + '_ {
        self.entries.iter().map(|(ip, e)| e.info(*ip))
    }

    /// The learned neighbour `ip`.
    pub fn neighbor(&self, ip: IpAddr) -> Option<HostInfo> {
        self.entries.get(&ip).map(|e| e.info(ip))
    }

    /// Hosts that moved to another site and that we answer for.
    pub fn moved_away(&self) -> impl Iterator<Item = (u32, IpAddr)> + '_ {
        self.moved_away.iter().copied()
    }

    /// Whether `ip` in instance `iid` is at another site (whether or not it is also local:
    /// a local host overrides this when answering).
    pub fn is_remote(&self, iid: u32, ip: IpAddr) -> bool {
        if self.moved_away.contains(&(iid, ip)) {
            return true;
        }
        let (lens, max): (&[u32], u8) = match ip {
            IpAddr::V4(_) => (&self.remote_lens_v4, 32),
            IpAddr::V6(_) => (&self.remote_lens_v6, 128),
        };
        (0..=max).rev().any(|len| {
            lens[usize::from(len)] != 0
                && IpNet::new(ip, len).is_ok_and(|n| self.remote.contains(&(iid, n.trunc())))
        })
    }

    /// Remote prefixes tracked.
    pub fn remote_prefixes(&self) -> usize {
        self.remote.len()
    }

    /// Askers waiting for a mapping, and the targets they asked for.
    pub fn pending_askers(&self) -> (usize, usize) {
        (self.pending_askers, self.pending.len())
    }

    /// Targets held by the two rate limiters (solicitations, resolves).
    pub fn rate_limit_entries(&self) -> (usize, usize) {
        (self.solicit_limit.len(), self.resolve_limit.len())
    }

    // ----- inputs -----

    /// An ARP or ICMPv6 ND frame punted from plan port `port`.
    pub fn on_frame(&mut self, port: usize, frame: &[u8], now_ms: u64, out: &mut Outbox) {
        self.stats.frames += 1;
        let Some(pi) = self.port_pos(port) else {
            self.stats.unknown_port += 1;
            return;
        };
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.stats.malformed += 1;
            return;
        };
        let src = eth.src_addr();
        if src.0 == self.ports[pi].cfg.mac {
            self.stats.from_self += 1;
            return;
        }
        if !src.is_unicast() {
            self.stats.malformed += 1;
            return;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => self.on_arp(pi, eth.payload(), now_ms, out),
            EthernetProtocol::Ipv6 => self.on_ipv6(pi, src.0, eth.payload(), now_ms, out),
            _ => self.stats.not_arp_nd += 1,
        }
    }

    /// An event of the LISP machines.
    pub fn on_event(&mut self, e: &Event, now_ms: u64, out: &mut Outbox) {
        match *e {
            Event::Remote { iid, prefix } => {
                self.add_remote(iid, prefix);
                self.answer_pending(iid, prefix, now_ms, out);
            }
            Event::NotRemote { iid, prefix } => {
                // A negative answer (or the mapping gone): whoever waits stays unanswered.
                for (_, p) in self.take_pending(iid, prefix) {
                    for w in p.askers {
                        if w.deadline <= now_ms {
                            self.stats.askers_expired += 1;
                        } else {
                            self.stats.askers_dropped += 1;
                        }
                    }
                }
                let key = (iid, prefix.trunc());
                if self.remote.remove(&key) {
                    let slot = self.remote_len_slot(key.1);
                    *slot = slot.saturating_sub(1);
                }
                // The other site no longer has the host (its mapping expired or was
                // withdrawn): stop answering for it until a new mapping says otherwise.
                if prefix.prefix_len() == prefix.max_prefix_len() {
                    self.moved_away.remove(&(iid, prefix.addr()));
                }
            }
            Event::HostMovedAway { iid, ip } => self.moved(iid, ip, out),
            Event::HostUp { .. } | Event::HostDown { .. } | Event::Resolve { .. } => {}
        }
    }

    /// When `on_timer` has something to do next.
    pub fn next_timer(&self) -> Option<u64> {
        let neighbors = self.timers.first().map(|&(t, _)| t);
        let pending = self.pending_timers.first().map(|&(t, _, _)| t);
        neighbors.into_iter().chain(pending).min()
    }

    /// Probes silent neighbours, declares unanswering ones gone, forgets expired askers.
    pub fn on_timer(&mut self, now_ms: u64, out: &mut Outbox) {
        self.expire_pending(now_ms);
        while let Some(&(due, ip)) = self.timers.first() {
            if due > now_ms {
                break;
            }
            self.timers.pop_first();
            let Some(e) = self.entries.get_mut(&ip) else {
                continue;
            };
            if e.queued != Some(due) {
                continue;
            }
            e.queued = None;
            if e.due > now_ms {
                // Heard from since this item was queued.
                self.schedule(ip);
                continue;
            }
            let sent = match e.state {
                HostState::Reachable => 0,
                HostState::Probing { sent } => sent,
            };
            if sent >= self.probes {
                self.gone(ip, out);
                continue;
            }
            e.state = HostState::Probing { sent: sent + 1 };
            e.due = now_ms.saturating_add(self.probe_interval_ms);
            let (port, mac) = (e.port, e.mac);
            self.schedule(ip);
            if let Some(pi) = self.port_pos(port) {
                let bytes = self.solicitation(pi, ip, Some(mac));
                out.frames.push(Frame { port, bytes });
                self.stats.probes_sent += 1;
            }
        }
    }

    /// The data plane has no MAC for next hop `ip` on plan port `port`: ask for it (at most
    /// once per `resolve_interval_ms`), or re-publish it when we know it there.
    pub fn resolve_neighbor(&mut self, port: usize, ip: IpAddr, now_ms: u64, out: &mut Outbox) {
        let Some(pi) = self.port_pos(port) else {
            self.stats.unknown_port += 1;
            return;
        };
        if !self
            .solicit_limit
            .allow(ip, now_ms, &mut self.stats.rate_limit_evictions)
        {
            self.stats.solicits_limited += 1;
            return;
        }
        if let Some(e) = self.entries.get(&ip).filter(|e| e.port == port) {
            out.updates.push(Update::Neighbor {
                ip,
                mac: e.mac,
                port,
            });
            self.stats.neighbor_reemits += 1;
            return;
        }
        let bytes = self.solicitation(pi, ip, None);
        out.frames.push(Frame { port, bytes });
        self.stats.solicits_sent += 1;
    }

    // ----- ARP -----

    fn on_arp(&mut self, pi: usize, payload: &[u8], now: u64, out: &mut Outbox) {
        let parsed = ArpPacket::new_checked(payload).and_then(|p| ArpRepr::parse(&p));
        let (op, sha, spa, tpa) = match parsed {
            Ok(ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_protocol_addr,
                ..
            }) => (
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_protocol_addr,
            ),
            _ => {
                self.stats.malformed += 1;
                return;
            }
        };
        let our_mac = self.ports[pi].cfg.mac;
        if sha.0 == our_mac {
            self.stats.from_self += 1;
            return;
        }
        if !sha.is_unicast() {
            self.stats.malformed += 1;
            return;
        }
        match op {
            ArpOperation::Request => self.stats.arp_requests += 1,
            ArpOperation::Reply => self.stats.arp_replies += 1,
            _ => {
                self.stats.arp_other += 1;
                return;
            }
        }
        let (s, t) = (IpAddr::V4(spa), IpAddr::V4(tpa));
        if !spa.is_unspecified() {
            self.learn(pi, s, sha.0, true, now, out);
        }
        if op != ArpOperation::Request {
            return;
        }
        if spa == tpa {
            self.stats.gratuitous_arps += 1;
            return;
        }
        let asker = Asker { ip: s, mac: sha.0 };
        // The answer goes out before any probe `act` sends: the asker is waiting for it.
        let mark = out.frames.len();
        let answer = if spa.is_unspecified() {
            // RFC 5227 probe: defend our addresses, never claim anyone else's.
            self.stats.arp_probes_seen += 1;
            self.defend(pi, t)
        } else {
            self.act(pi, t, asker, now, out)
        };
        if let Some(f) = answer.and_then(|a| self.answer(pi, t, asker, a)) {
            out.frames.insert(mark, f);
        }
    }

    // ----- IPv6 Neighbor Discovery -----

    fn on_ipv6(&mut self, pi: usize, eth_src: [u8; 6], payload: &[u8], now: u64, out: &mut Outbox) {
        let Ok(ip) = Ipv6Packet::new_checked(payload) else {
            self.stats.malformed += 1;
            return;
        };
        let Ok(ip_repr) = Ipv6Repr::parse(&ip) else {
            self.stats.malformed += 1;
            return;
        };
        if ip_repr.next_header != IpProtocol::Icmpv6 {
            self.stats.not_arp_nd += 1;
            return;
        }
        let icmp_bytes = ip.payload();
        let Ok(icmp) = Icmpv6Packet::new_checked(icmp_bytes) else {
            self.stats.malformed += 1;
            return;
        };
        if !matches!(
            icmp.msg_type(),
            Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert
        ) {
            self.stats.nd_other += 1;
            return;
        }
        if !icmp.verify_checksum(&ip_repr.src_addr, &ip_repr.dst_addr) {
            self.stats.bad_checksum += 1;
            return;
        }
        if ip_repr.hop_limit != ND_HOP_LIMIT {
            self.stats.bad_hop_limit += 1;
            return;
        }
        if icmp.msg_code() != 0 {
            self.stats.malformed += 1;
            return;
        }
        let (src, dst) = (ip_repr.src_addr, ip_repr.dst_addr);
        match NdiscRepr::parse(&icmp) {
            Ok(NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            }) => {
                let Ok(sll) = ethernet_lladdr(lladdr) else {
                    self.stats.malformed += 1;
                    return;
                };
                self.on_ns(pi, eth_src, src, dst, target_addr, sll, now, out);
            }
            Ok(NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            }) => {
                let Ok(tll) = ethernet_lladdr(lladdr) else {
                    self.stats.malformed += 1;
                    return;
                };
                self.on_na(pi, eth_src, dst, flags, target_addr, tll, now, out);
            }
            _ => self.stats.malformed += 1,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_ns(
        &mut self,
        pi: usize,
        eth_src: [u8; 6],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        target: Ipv6Addr,
        sll: Option<[u8; 6]>,
        now: u64,
        out: &mut Outbox,
    ) {
        self.stats.ns_received += 1;
        if target.is_multicast() {
            self.stats.malformed += 1;
            return;
        }
        let t = IpAddr::V6(target);
        if src.is_unspecified() {
            // Duplicate Address Detection (RFC 4861 7.1.1: to the solicited-node group, no
            // source link-layer option). Defend our addresses only; a proxy answer would
            // make a host that moved back believe its address is taken.
            if sll.is_some() || !is_solicited_node(dst) {
                self.stats.malformed += 1;
                return;
            }
            self.stats.dad_seen += 1;
            if let Some(a) = self.defend(pi, t) {
                let bytes = self.na(pi, [0x33, 0x33, 0, 0, 0, 1], ALL_NODES, target, false, a);
                out.frames.push(Frame {
                    port: self.ports[pi].cfg.index,
                    bytes,
                });
            }
            return;
        }
        match sll {
            Some(mac) if mac == self.ports[pi].cfg.mac => {
                self.stats.from_self += 1;
                return;
            }
            Some(mac) => self.learn(pi, IpAddr::V6(src), mac, true, now, out),
            None => self.confirm(IpAddr::V6(src), eth_src, now),
        }
        if src == target {
            // A node soliciting its own address with its own source: nothing to answer.
            self.stats.not_ours += 1;
            return;
        }
        let asker = Asker {
            ip: IpAddr::V6(src),
            mac: sll.unwrap_or(eth_src),
        };
        let mark = out.frames.len();
        if let Some(f) = self
            .act(pi, t, asker, now, out)
            .and_then(|a| self.answer(pi, t, asker, a))
        {
            out.frames.insert(mark, f);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_na(
        &mut self,
        pi: usize,
        eth_src: [u8; 6],
        dst: Ipv6Addr,
        flags: NdiscNeighborFlags,
        target: Ipv6Addr,
        tll: Option<[u8; 6]>,
        now: u64,
        out: &mut Outbox,
    ) {
        self.stats.na_received += 1;
        // RFC 4861 7.1.2.
        if target.is_multicast()
            || (dst.is_multicast() && flags.contains(NdiscNeighborFlags::SOLICITED))
        {
            self.stats.malformed += 1;
            return;
        }
        let t = IpAddr::V6(target);
        match tll {
            Some(mac) if mac == self.ports[pi].cfg.mac => self.stats.from_self += 1,
            // Without Override an NA may come from a proxy: it confirms, never creates.
            Some(mac) => {
                let create = flags.contains(NdiscNeighborFlags::OVERRIDE);
                self.learn(pi, t, mac, create, now, out);
            }
            None => self.confirm(t, eth_src, now),
        }
    }

    // ----- decisions -----

    fn decide(&self, pi: usize, t: IpAddr) -> Decision {
        let port = &self.ports[pi];
        if port.is_own(t) {
            return Decision::Own;
        }
        if port.cfg.answer_for.contains(&t) {
            return Decision::AnswerFor;
        }
        if self
            .entries
            .get(&t)
            .is_some_and(|e| e.port == port.cfg.index)
        {
            return Decision::Local;
        }
        if port.extended_iid(t).is_some() {
            // The LAN extension carries ARP between the hosts of the subnet.
            return Decision::NotOurs;
        }
        let dynamic = port.dynamic_iid(t);
        if port.cfg.proxy && self.is_remote(port.iid_of(t), t) {
            return Decision::Remote;
        }
        match dynamic {
            Some(iid) if port.cfg.proxy_all => Decision::ProxyAll { iid },
            Some(iid) => Decision::Unknown { iid },
            None => Decision::NotOurs,
        }
    }

    /// Decides about `asker`'s request for `t`, counts it, starts resolving unknown targets
    /// (and remembers who asked), and says whether (and how) to answer.
    fn act(
        &mut self,
        pi: usize,
        t: IpAddr,
        asker: Asker,
        now: u64,
        out: &mut Outbox,
    ) -> Option<Answer> {
        let d = self.decide(pi, t);
        match d {
            Decision::ProxyAll { iid } => self.resolve_unknown(pi, iid, t, now, out),
            Decision::Unknown { iid } => {
                self.resolve_unknown(pi, iid, t, now, out);
                self.remember(pi, iid, t, asker, now);
            }
            _ => {}
        }
        self.answer_of(d)
    }

    /// Counts a decision about a request and says whether (and how) to answer it.
    fn answer_of(&mut self, d: Decision) -> Option<Answer> {
        match d {
            Decision::Own => {
                self.stats.replies_self += 1;
                Some(Answer { override_: true })
            }
            Decision::AnswerFor => {
                self.stats.replies_answer_for += 1;
                Some(Answer { override_: true })
            }
            Decision::Local => {
                self.stats.not_answered_local += 1;
                None
            }
            Decision::Remote => {
                self.stats.proxy_replies += 1;
                Some(Answer { override_: false })
            }
            Decision::ProxyAll { .. } => {
                self.stats.proxy_all_replies += 1;
                Some(Answer { override_: false })
            }
            Decision::Unknown { .. } => {
                self.stats.not_answered_unknown += 1;
                None
            }
            Decision::NotOurs => {
                self.stats.not_ours += 1;
                None
            }
        }
    }

    /// Answer to an ARP probe / DAD: for our own (and `answer_for`) addresses only.
    fn defend(&mut self, pi: usize, t: IpAddr) -> Option<Answer> {
        match self.decide(pi, t) {
            d @ (Decision::Own | Decision::AnswerFor) => self.answer_of(d),
            _ => None,
        }
    }

    // ----- askers waiting for a mapping -----

    /// Remembers `asker` of unknown target `t` for `pending_ms` (a retry moves its deadline
    /// on); bounded per target and in all, what does not fit is counted.
    fn remember(&mut self, pi: usize, iid: u32, t: IpAddr, asker: Asker, now: u64) {
        if !self.ports[pi].cfg.proxy || self.pending_ms == 0 {
            return;
        }
        let deadline = now.saturating_add(self.pending_ms);
        let full = self.pending_askers >= self.max_pending_askers;
        match self.pending.get_mut(&(iid, t)) {
            Some(p) => {
                if let Some(w) = p
                    .askers
                    .iter_mut()
                    .find(|w| w.pi == pi && w.asker.ip == asker.ip)
                {
                    // The queued item stays no later than the new deadline.
                    w.asker = asker;
                    w.deadline = deadline;
                    return;
                }
                if full || p.askers.len() >= self.max_askers_per_target {
                    self.stats.askers_refused += 1;
                    return;
                }
                p.askers.push(Waiting {
                    pi,
                    asker,
                    deadline,
                });
            }
            None => {
                if full || self.max_askers_per_target == 0 {
                    self.stats.askers_refused += 1;
                    return;
                }
                self.pending.insert(
                    (iid, t),
                    Pending {
                        askers: vec![Waiting {
                            pi,
                            asker,
                            deadline,
                        }],
                        queued: deadline,
                    },
                );
                self.pending_timers.insert((deadline, iid, t));
            }
        }
        self.pending_askers += 1;
        self.stats.askers_remembered += 1;
    }

    /// `iid`/`prefix` became remote: every asker still waiting for a target it covers gets
    /// the answer its request would get now (the same decision and frame as at once: so
    /// never for a target that has become local); all of them are forgotten.
    fn answer_pending(&mut self, iid: u32, prefix: IpNet, now: u64, out: &mut Outbox) {
        for (t, p) in self.take_pending(iid, prefix) {
            for w in p.askers {
                if w.deadline <= now {
                    self.stats.askers_expired += 1;
                    continue;
                }
                // Only what a remote target gets: a target that is local (or that we still
                // do not know, the prefix refused) stays unanswered, as a request now would.
                let d = self.decide(w.pi, t);
                if d != Decision::Remote {
                    self.stats.askers_dropped += 1;
                    continue;
                }
                if let Some(f) = self
                    .answer_of(d)
                    .and_then(|a| self.answer(w.pi, t, w.asker, a))
                {
                    out.frames.push(f);
                    self.stats.proxy_replies_late += 1;
                }
            }
        }
    }

    /// Takes the pending targets of instance `iid` inside `prefix` out of the table.
    fn take_pending(&mut self, iid: u32, prefix: IpNet) -> Vec<(IpAddr, Pending)> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let (first, last) = match prefix {
            IpNet::V4(n) => (IpAddr::V4(n.network()), IpAddr::V4(n.broadcast())),
            IpNet::V6(n) => (IpAddr::V6(n.network()), IpAddr::V6(n.broadcast())),
        };
        let keys: Vec<(u32, IpAddr)> = self
            .pending
            .range((iid, first)..=(iid, last))
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|(i, t)| {
                let p = self.pending.remove(&(i, t))?;
                self.pending_timers.remove(&(p.queued, i, t));
                self.pending_askers -= p.askers.len();
                Some((t, p))
            })
            .collect()
    }

    /// Forgets the askers whose deadline has come.
    fn expire_pending(&mut self, now: u64) {
        while let Some(&(due, iid, t)) = self.pending_timers.first() {
            if due > now {
                break;
            }
            self.pending_timers.pop_first();
            let Some(p) = self.pending.get_mut(&(iid, t)) else {
                continue;
            };
            let before = p.askers.len();
            p.askers.retain(|w| w.deadline > now);
            let expired = before - p.askers.len();
            self.pending_askers -= expired;
            self.stats.askers_expired += expired as u64;
            match p.askers.iter().map(|w| w.deadline).min() {
                Some(next) => {
                    p.queued = next;
                    self.pending_timers.insert((next, iid, t));
                }
                None => {
                    self.pending.remove(&(iid, t));
                }
            }
        }
    }

    /// `Resolve` the target and solicit it on the port, each rate-limited per target.
    fn resolve_unknown(&mut self, pi: usize, iid: u32, t: IpAddr, now: u64, out: &mut Outbox) {
        if self
            .resolve_limit
            .allow((iid, t), now, &mut self.stats.rate_limit_evictions)
        {
            out.events.push(Event::Resolve { iid, eid: t });
            self.stats.resolves += 1;
        } else {
            self.stats.resolves_limited += 1;
        }
        if self
            .solicit_limit
            .allow(t, now, &mut self.stats.rate_limit_evictions)
        {
            let bytes = self.solicitation(pi, t, None);
            out.frames.push(Frame {
                port: self.ports[pi].cfg.index,
                bytes,
            });
            self.stats.solicits_sent += 1;
        } else {
            self.stats.solicits_limited += 1;
        }
    }

    // ----- the neighbour table -----

    /// Learns `ip` at `mac` on port `pi` (creates it only if `create`).
    fn learn(
        &mut self,
        pi: usize,
        ip: IpAddr,
        mac: [u8; 6],
        create: bool,
        now: u64,
        out: &mut Outbox,
    ) {
        let port = &self.ports[pi];
        if !port.unicast(ip) {
            return;
        }
        if port.is_own(ip) || port.cfg.answer_for.contains(&ip) {
            self.stats.address_conflicts += 1;
            return;
        }
        // In an extended-subnet range ARP/ND says nothing about where a host is: it keeps
        // what the data plane made of it (on_source_seen).
        let extended = port.extended_iid(ip);
        let iid = match (port.dynamic_iid(ip), extended) {
            (Some(i), _) => Some(i),
            (None, Some(_)) => self.entries.get(&ip).and_then(|e| e.iid),
            (None, None) => None,
        };
        if iid.is_none() && extended.is_none() && !port.in_subnet(ip) {
            self.stats.learn_off_link += 1;
            return;
        }
        self.learn_as(pi, ip, mac, create, iid, now, out);
    }

    /// [`Hosts::learn`] with the instance decided: `Some` makes (or keeps) it a host of that
    /// dynamic-EID instance.
    #[allow(clippy::too_many_arguments)]
    fn learn_as(
        &mut self,
        pi: usize,
        ip: IpAddr,
        mac: [u8; 6],
        create: bool,
        iid: Option<u32>,
        now: u64,
        out: &mut Outbox,
    ) {
        let port = &self.ports[pi];
        let index = port.cfg.index;
        let due = now.saturating_add(self.probe_after_ms);
        if let Some(e) = self.entries.get_mut(&ip) {
            if e.mac != mac && !create {
                return;
            }
            if e.iid != iid {
                if let Some(old) = e.iid {
                    out.events.push(Event::HostDown { iid: old, ip });
                    self.stats.hosts_down += 1;
                }
                if let Some(new) = iid {
                    out.events.push(Event::HostUp { iid: new, ip });
                    self.stats.hosts_up += 1;
                }
                e.iid = iid;
            }
            if e.mac != mac || e.port != index {
                e.mac = mac;
                e.port = index;
                out.updates.push(Update::Neighbor {
                    ip,
                    mac,
                    port: index,
                });
                self.stats.neighbor_changes += 1;
            }
            e.last_seen = now;
            e.state = HostState::Reachable;
            e.due = due;
            self.schedule(ip);
            return;
        }
        if !create {
            return;
        }
        if self.entries.len() >= self.max_neighbors {
            self.stats.learn_refused += 1;
            return;
        }
        self.entries.insert(
            ip,
            Entry {
                mac,
                port: index,
                iid,
                first_seen: now,
                last_seen: now,
                state: HostState::Reachable,
                due,
                queued: None,
            },
        );
        self.schedule(ip);
        out.updates.push(Update::Neighbor {
            ip,
            mac,
            port: index,
        });
        self.stats.neighbors_learned += 1;
        if let Some(iid) = iid {
            if self.moved_away.remove(&(iid, ip)) {
                self.stats.hosts_back += 1;
            }
            out.events.push(Event::HostUp { iid, ip });
            self.stats.hosts_up += 1;
        }
    }

    /// The data plane routed a packet from `ip` at `mac`, received on plan port `port`: in an
    /// extended-subnet range of that port, the host is here (`HostUp` when new).
    pub fn on_source_seen(
        &mut self,
        port: usize,
        ip: IpAddr,
        mac: [u8; 6],
        now_ms: u64,
        out: &mut Outbox,
    ) {
        let Some(pi) = self.port_pos(port) else {
            self.stats.unknown_port += 1;
            return;
        };
        let p = &self.ports[pi];
        let Some(iid) = p.extended_iid(ip) else {
            self.stats.sources_outside_ranges += 1;
            return;
        };
        if !p.unicast(ip) || mac[0] & 1 == 1 {
            self.stats.malformed += 1;
            return;
        }
        self.stats.sources_seen += 1;
        self.learn_as(pi, ip, mac, true, Some(iid), now_ms, out);
    }

    /// A frame from `ip` at `mac` without a link-layer option: proof of life if it matches.
    fn confirm(&mut self, ip: IpAddr, mac: [u8; 6], now: u64) {
        let due = now.saturating_add(self.probe_after_ms);
        if let Some(e) = self.entries.get_mut(&ip) {
            if e.mac == mac {
                e.last_seen = now;
                e.state = HostState::Reachable;
                e.due = due;
                self.schedule(ip);
            }
        }
    }

    /// Makes sure the timer queue holds an item for `ip` no later than its `due`.
    fn schedule(&mut self, ip: IpAddr) {
        let Some(e) = self.entries.get_mut(&ip) else {
            return;
        };
        match e.queued {
            Some(q) if q <= e.due => {}
            old => {
                if let Some(q) = old {
                    self.timers.remove(&(q, ip));
                }
                self.timers.insert((e.due, ip));
                e.queued = Some(e.due);
            }
        }
    }

    fn remove(&mut self, ip: IpAddr) -> Option<Entry> {
        let e = self.entries.remove(&ip)?;
        if let Some(q) = e.queued {
            self.timers.remove(&(q, ip));
        }
        Some(e)
    }

    /// A neighbour that stopped answering.
    fn gone(&mut self, ip: IpAddr, out: &mut Outbox) {
        let Some(e) = self.remove(ip) else {
            return;
        };
        out.updates.push(Update::NeighborGone { ip });
        self.stats.neighbors_gone += 1;
        if let Some(iid) = e.iid {
            out.events.push(Event::HostDown { iid, ip });
            self.stats.hosts_down += 1;
        }
    }

    /// A host of ours registered at another site.
    fn moved(&mut self, iid: u32, ip: IpAddr, out: &mut Outbox) {
        self.stats.hosts_moved_away += 1;
        if self.entries.get(&ip).is_some_and(|e| e.iid == Some(iid)) {
            self.remove(ip);
            out.updates.push(Update::NeighborGone { ip });
        }
        if !self.moved_away.contains(&(iid, ip)) {
            if self.moved_away.len() >= self.max_moved {
                self.stats.moved_refused += 1;
            } else {
                self.moved_away.insert((iid, ip));
            }
        }
        for pi in 0..self.ports.len() {
            let port = &self.ports[pi];
            // Only across-subnet ranges: over a LAN extension the host is still reachable at
            // its own MAC.
            if !port
                .cfg
                .dynamic
                .iter()
                .any(|(i, n)| *i == iid && n.contains(&ip))
            {
                continue;
            }
            let mac = EthernetAddress(port.cfg.mac);
            match ip {
                IpAddr::V4(a) => {
                    let bytes = arp_frame(
                        EthernetAddress::BROADCAST,
                        mac,
                        ArpRepr::EthernetIpv4 {
                            operation: ArpOperation::Request,
                            source_hardware_addr: mac,
                            source_protocol_addr: a,
                            target_hardware_addr: EthernetAddress(ZERO_MAC),
                            target_protocol_addr: a,
                        },
                    );
                    out.frames.push(Frame {
                        port: port.cfg.index,
                        bytes,
                    });
                }
                IpAddr::V6(a) => {
                    // Unsolicited, with Override: caches holding the host's MAC switch to ours.
                    let bytes = self.na(
                        pi,
                        [0x33, 0x33, 0, 0, 0, 1],
                        ALL_NODES,
                        a,
                        false,
                        Answer { override_: true },
                    );
                    out.frames.push(Frame {
                        port: port.cfg.index,
                        bytes,
                    });
                }
            }
            self.stats.announcements_sent += 1;
        }
    }

    /// Tracks `iid`/`prefix` as remote (bounded).
    fn add_remote(&mut self, iid: u32, prefix: IpNet) {
        let key = (iid, prefix.trunc());
        if self.remote.contains(&key) {
            return;
        }
        if self.remote.len() >= self.max_remote {
            self.stats.remote_refused += 1;
            return;
        }
        self.remote.insert(key);
        *self.remote_len_slot(key.1) += 1;
    }

    // ----- frames -----

    /// The answer to `asker`'s request for `target` on port `pi`: an ARP reply or a solicited
    /// NA with our MAC, to the asker's MAC. `None` when the families differ (never: ARP asks
    /// IPv4 from IPv4, ND IPv6 from IPv6).
    fn answer(&self, pi: usize, target: IpAddr, asker: Asker, a: Answer) -> Option<Frame> {
        let port = &self.ports[pi];
        let our_mac = EthernetAddress(port.cfg.mac);
        let bytes = match (target, asker.ip) {
            (IpAddr::V4(t), IpAddr::V4(s)) => arp_frame(
                EthernetAddress(asker.mac),
                our_mac,
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: our_mac,
                    source_protocol_addr: t,
                    target_hardware_addr: EthernetAddress(asker.mac),
                    target_protocol_addr: s,
                },
            ),
            (IpAddr::V6(t), IpAddr::V6(s)) => self.na(pi, asker.mac, s, t, true, a),
            _ => return None,
        };
        Some(Frame {
            port: port.cfg.index,
            bytes,
        })
    }

    fn remote_len_slot(&mut self, net: IpNet) -> &mut u32 {
        let len = usize::from(net.prefix_len());
        match net {
            IpNet::V4(_) => &mut self.remote_lens_v4[len.min(32)],
            IpNet::V6(_) => &mut self.remote_lens_v6[len.min(128)],
        }
    }

    fn port_pos(&self, port: usize) -> Option<usize> {
        self.ports.iter().position(|p| p.cfg.index == port)
    }

    /// An ARP request / NS for `t` on port `pi`: unicast to `unicast` (probing a known
    /// neighbour), else broadcast / to the solicited-node group.
    fn solicitation(&self, pi: usize, t: IpAddr, unicast: Option<[u8; 6]>) -> Vec<u8> {
        let port = &self.ports[pi];
        let mac = EthernetAddress(port.cfg.mac);
        match t {
            IpAddr::V4(t) => arp_frame(
                unicast.map_or(EthernetAddress::BROADCAST, EthernetAddress),
                mac,
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Request,
                    source_hardware_addr: mac,
                    source_protocol_addr: port.source_v4(t),
                    target_hardware_addr: EthernetAddress(unicast.unwrap_or(ZERO_MAC)),
                    target_protocol_addr: t,
                },
            ),
            IpAddr::V6(t) => {
                let (eth_dst, dst) = match unicast {
                    Some(m) => (m, t),
                    None => {
                        let g = solicited_node(t);
                        (multicast_mac(g), g)
                    }
                };
                nd_frame(
                    eth_dst,
                    port.cfg.mac,
                    port.source_v6(t),
                    dst,
                    NdiscRepr::NeighborSolicit {
                        target_addr: t,
                        lladdr: Some(RawHardwareAddress::from_bytes(&port.cfg.mac)),
                    },
                )
            }
        }
    }

    /// An NA for `target` with our MAC.
    fn na(
        &self,
        pi: usize,
        eth_dst: [u8; 6],
        dst: Ipv6Addr,
        target: Ipv6Addr,
        solicited: bool,
        a: Answer,
    ) -> Vec<u8> {
        let port = &self.ports[pi];
        let mut flags = NdiscNeighborFlags::empty();
        if port.cfg.proxy_all {
            flags |= NdiscNeighborFlags::ROUTER;
        }
        if solicited {
            flags |= NdiscNeighborFlags::SOLICITED;
        }
        if a.override_ {
            flags |= NdiscNeighborFlags::OVERRIDE;
        }
        let src = if port.is_own(IpAddr::V6(target)) {
            target
        } else {
            port.link_local
        };
        nd_frame(
            eth_dst,
            port.cfg.mac,
            src,
            dst,
            NdiscRepr::NeighborAdvert {
                flags,
                target_addr: target,
                lladdr: Some(RawHardwareAddress::from_bytes(&port.cfg.mac)),
            },
        )
    }
}

/// An Ethernet frame carrying `arp`, padded to the Ethernet minimum.
fn arp_frame(eth_dst: EthernetAddress, eth_src: EthernetAddress, arp: ArpRepr) -> Vec<u8> {
    let mut buf = vec![0u8; MIN_FRAME];
    EthernetRepr {
        src_addr: eth_src,
        dst_addr: eth_dst,
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    arp.emit(&mut ArpPacket::new_unchecked(
        &mut buf[ETH_HEADER..ETH_HEADER + ARP_LEN],
    ));
    buf
}

/// An Ethernet frame carrying an IPv6 ND message (hop limit 255, checksum filled in).
fn nd_frame(
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: NdiscRepr<'_>,
) -> Vec<u8> {
    let icmp = Icmpv6Repr::Ndisc(nd);
    let icmp_len = icmp.buffer_len();
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp_len,
        hop_limit: ND_HOP_LIMIT,
    };
    let mut buf = vec![0u8; ETH_HEADER + IPV6_HEADER + icmp_len];
    EthernetRepr {
        src_addr: EthernetAddress(eth_src),
        dst_addr: EthernetAddress(eth_dst),
        ethertype: EthernetProtocol::Ipv6,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    ip.emit(&mut Ipv6Packet::new_unchecked(
        &mut buf[ETH_HEADER..ETH_HEADER + IPV6_HEADER],
    ));
    icmp.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(&mut buf[ETH_HEADER + IPV6_HEADER..]),
        &ChecksumCapabilities::default(),
    );
    buf
}

/// The MAC of a link-layer option: none, a unicast Ethernet address, or an error (a group
/// address; smoltcp built for Ethernet only reads the first 6 bytes of the option, the length
/// check is a safety net).
fn ethernet_lladdr(ll: Option<RawHardwareAddress>) -> Result<Option<[u8; 6]>, ()> {
    let Some(ll) = ll else {
        return Ok(None);
    };
    let mac: [u8; 6] = ll.as_bytes().try_into().map_err(|_| ())?;
    if EthernetAddress(mac).is_unicast() {
        Ok(Some(mac))
    } else {
        Err(())
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291 appendix A).
fn eui64_link_local(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        mac[0] ^ 0x02,
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ])
}

/// ff02::1:ffXX:XXXX, the solicited-node group of `a` (RFC 4291 2.7.1).
fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

fn is_solicited_node(a: Ipv6Addr) -> bool {
    a.octets()[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff]
}

/// 33:33 and the low 32 bits of an IPv6 multicast group (RFC 2464 7).
fn multicast_mac(g: Ipv6Addr) -> [u8; 6] {
    let o = g.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OUR: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const XTR: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
    const M1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
    const M2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x22];
    const M3: [u8; 6] = [0x02, 0, 0, 0, 0, 0x33];
    const BCAST: [u8; 6] = [0xff; 6];
    /// Plan port index of the test ports.
    const P: usize = 3;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// The enterprise PxTR: off-path on 10.1.0.0/24, hosts of 10.1.0.0/25 are mobile.
    fn pxtr_config() -> HostsConfig {
        HostsConfig {
            ports: vec![HostPort {
                index: P,
                mac: OUR,
                iid: 7,
                addresses: vec![net("10.1.0.2/24"), net("2001:db8:1::2/64")],
                dynamic: vec![(7, net("10.1.0.0/25")), (7, net("2001:db8:1::/64"))],
                proxy_all: false,
                answer_for: vec![],
                proxy: true,
                extended: vec![],
            }],
            ..HostsConfig::default()
        }
    }

    fn pxtr() -> Hosts {
        Hosts::new(pxtr_config())
    }

    /// A site on a stretched subnet (LAN extension): 10.1.0.0/25 in extended-subnet mode, the
    /// shared gateway address 10.1.0.1 answered locally.
    fn extended() -> Hosts {
        let mut cfg = pxtr_config();
        let p = &mut cfg.ports[0];
        p.extended = std::mem::take(&mut p.dynamic);
        p.answer_for = vec![ip("10.1.0.1")];
        Hosts::new(cfg)
    }

    /// The cloud xTR: default gateway of the moved hosts, with the enterprise gateway
    /// address (10.1.0.1, 2001:db8:1::1) to answer for and no address in their range.
    fn xtr() -> Hosts {
        Hosts::new(HostsConfig {
            ports: vec![HostPort {
                index: 0,
                mac: XTR,
                iid: 7,
                addresses: vec![net("10.2.0.1/24")],
                dynamic: vec![(7, net("10.1.0.0/24")), (7, net("2001:db8:1::/64"))],
                proxy_all: true,
                answer_for: vec![ip("10.1.0.1"), ip("2001:db8:1::1")],
                proxy: true,
                extended: vec![],
            }],
            ..HostsConfig::default()
        })
    }

    // ----- frames crafted and parsed with smoltcp, independently of the code under test -----

    fn arp(
        op: ArpOperation,
        eth_dst: [u8; 6],
        sha: [u8; 6],
        spa: &str,
        tha: [u8; 6],
        tpa: &str,
    ) -> Vec<u8> {
        let mut buf = vec![0u8; 14 + 28];
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.set_dst_addr(EthernetAddress(eth_dst));
        eth.set_src_addr(EthernetAddress(sha));
        eth.set_ethertype(EthernetProtocol::Arp);
        ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress(sha),
            source_protocol_addr: v4(spa),
            target_hardware_addr: EthernetAddress(tha),
            target_protocol_addr: v4(tpa),
        }
        .emit(&mut ArpPacket::new_unchecked(&mut buf[14..]));
        buf
    }

    /// An ARP request from `sha`/`spa` for `tpa`, broadcast.
    fn who_has(sha: [u8; 6], spa: &str, tpa: &str) -> Vec<u8> {
        arp(ArpOperation::Request, BCAST, sha, spa, ZERO_MAC, tpa)
    }

    #[derive(Debug, PartialEq, Eq)]
    struct ArpOut {
        eth_dst: [u8; 6],
        eth_src: [u8; 6],
        op: ArpOperation,
        sha: [u8; 6],
        spa: Ipv4Addr,
        tha: [u8; 6],
        tpa: Ipv4Addr,
    }

    fn parse_arp(f: &Frame) -> ArpOut {
        let eth = EthernetFrame::new_checked(&f.bytes[..]).unwrap();
        assert_eq!(eth.ethertype(), EthernetProtocol::Arp);
        assert!(f.bytes.len() >= 60, "ARP frames are padded to 60 bytes");
        let ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_hardware_addr,
            target_protocol_addr,
        } = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap()
        else {
            panic!("not Ethernet/IPv4 ARP")
        };
        ArpOut {
            eth_dst: eth.dst_addr().0,
            eth_src: eth.src_addr().0,
            op: operation,
            sha: source_hardware_addr.0,
            spa: source_protocol_addr,
            tha: target_hardware_addr.0,
            tpa: target_protocol_addr,
        }
    }

    fn arp_reply(eth_dst: [u8; 6], sha: [u8; 6], spa: &str, tha: [u8; 6], tpa: &str) -> ArpOut {
        ArpOut {
            eth_dst,
            eth_src: sha,
            op: ArpOperation::Reply,
            sha,
            spa: v4(spa),
            tha,
            tpa: v4(tpa),
        }
    }

    fn arp_request(eth_dst: [u8; 6], sha: [u8; 6], spa: &str, tha: [u8; 6], tpa: &str) -> ArpOut {
        ArpOut {
            op: ArpOperation::Request,
            ..arp_reply(eth_dst, sha, spa, tha, tpa)
        }
    }

    fn nd(
        eth_src: [u8; 6],
        eth_dst: [u8; 6],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        repr: NdiscRepr,
    ) -> Vec<u8> {
        let icmp_len = repr.buffer_len();
        let mut buf = vec![0u8; 14 + 40 + icmp_len];
        EthernetRepr {
            src_addr: EthernetAddress(eth_src),
            dst_addr: EthernetAddress(eth_dst),
            ethertype: EthernetProtocol::Ipv6,
        }
        .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp_len,
            hop_limit,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut buf[14..54]));
        let mut icmp = Icmpv6Packet::new_unchecked(&mut buf[54..]);
        repr.emit(&mut icmp);
        icmp.fill_checksum(&src, &dst);
        buf
    }

    fn ll(mac: [u8; 6]) -> Option<RawHardwareAddress> {
        Some(RawHardwareAddress::from_bytes(&mac))
    }

    /// An NS from `src` (link-layer option `mac`) for `target`, to its solicited-node group.
    fn ns(mac: [u8; 6], src: &str, target: &str) -> Vec<u8> {
        let g = solicited_node_of(v6(target));
        nd(
            mac,
            [
                0x33,
                0x33,
                0xff,
                g.octets()[13],
                g.octets()[14],
                g.octets()[15],
            ],
            v6(src),
            g,
            255,
            NdiscRepr::NeighborSolicit {
                target_addr: v6(target),
                lladdr: ll(mac),
            },
        )
    }

    fn na(mac: [u8; 6], target: &str, flags: NdiscNeighborFlags) -> Vec<u8> {
        nd(
            mac,
            [0x33, 0x33, 0, 0, 0, 1],
            v6(target),
            v6("ff02::1"),
            255,
            NdiscRepr::NeighborAdvert {
                flags,
                target_addr: v6(target),
                lladdr: ll(mac),
            },
        )
    }

    /// Solicited-node group computed independently of the module's helper.
    fn solicited_node_of(a: Ipv6Addr) -> Ipv6Addr {
        let s = a.segments();
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | (s[6] & 0xff), s[7])
    }

    #[derive(Debug, PartialEq, Eq)]
    enum NdKind {
        Ns {
            target: Ipv6Addr,
            sll: Option<[u8; 6]>,
        },
        Na {
            flags: NdiscNeighborFlags,
            target: Ipv6Addr,
            tll: Option<[u8; 6]>,
        },
    }

    #[derive(Debug, PartialEq, Eq)]
    struct NdOut {
        eth_dst: [u8; 6],
        eth_src: [u8; 6],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        kind: NdKind,
    }

    /// Parses an ND frame; checks the hop limit, the exact length and the checksum.
    fn parse_nd(f: &Frame) -> NdOut {
        let eth = EthernetFrame::new_checked(&f.bytes[..]).unwrap();
        assert_eq!(eth.ethertype(), EthernetProtocol::Ipv6);
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        let ip_repr = Ipv6Repr::parse(&ip).unwrap();
        assert_eq!(ip_repr.hop_limit, 255);
        assert_eq!(ip_repr.next_header, IpProtocol::Icmpv6);
        assert_eq!(f.bytes.len(), 14 + 40 + ip_repr.payload_len);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&ip_repr.src_addr, &ip_repr.dst_addr));
        // Icmpv6Repr::parse verifies the checksum again with the default capabilities.
        let Icmpv6Repr::Ndisc(repr) = Icmpv6Repr::parse(
            &ip_repr.src_addr,
            &ip_repr.dst_addr,
            &icmp,
            &ChecksumCapabilities::default(),
        )
        .unwrap() else {
            panic!("not ND")
        };
        let mac =
            |l: Option<RawHardwareAddress>| l.map(|l| <[u8; 6]>::try_from(l.as_bytes()).unwrap());
        let kind = match repr {
            NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            } => NdKind::Ns {
                target: target_addr,
                sll: mac(lladdr),
            },
            NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            } => NdKind::Na {
                flags,
                target: target_addr,
                tll: mac(lladdr),
            },
            other => panic!("unexpected {other:?}"),
        };
        NdOut {
            eth_dst: eth.dst_addr().0,
            eth_src: eth.src_addr().0,
            src: ip_repr.src_addr,
            dst: ip_repr.dst_addr,
            kind,
        }
    }

    fn frames(out: &mut Outbox) -> Vec<Frame> {
        let f = std::mem::take(&mut out.frames);
        assert!(f.iter().all(|f| f.port == P || f.port == 0));
        f
    }

    fn one_arp(out: &mut Outbox) -> ArpOut {
        let f = frames(out);
        assert_eq!(f.len(), 1, "{f:?}");
        parse_arp(&f[0])
    }

    fn one_nd(out: &mut Outbox) -> NdOut {
        let f = frames(out);
        assert_eq!(f.len(), 1, "{f:?}");
        parse_nd(&f[0])
    }

    /// Teaches `h` a host by an ARP request of its own (for our address) and empties `out`.
    fn learn_v4(h: &mut Hosts, mac: [u8; 6], addr: &str, now: u64) {
        let mut out = Outbox::default();
        h.on_frame(P, &who_has(mac, addr, "10.1.0.200"), now, &mut out);
    }

    // ----- ARP decisions -----

    #[test]
    fn arp_for_our_address_is_answered_with_our_mac() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.2"), 0, &mut out);
        assert_eq!(
            one_arp(&mut out),
            arp_reply(M1, OUR, "10.1.0.2", M1, "10.1.0.11")
        );
        assert_eq!(out.frames.len(), 0);
        assert_eq!(h.stats.replies_self, 1);
        assert_eq!(h.stats.arp_requests, 1);
        // A request unicast to us is answered the same way.
        h.on_frame(
            P,
            &arp(
                ArpOperation::Request,
                OUR,
                M1,
                "10.1.0.11",
                ZERO_MAC,
                "10.1.0.2",
            ),
            1,
            &mut out,
        );
        assert_eq!(
            one_arp(&mut out),
            arp_reply(M1, OUR, "10.1.0.2", M1, "10.1.0.11")
        );
    }

    #[test]
    fn local_host_is_never_answered_even_inside_a_remote_prefix() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        learn_v4(&mut h, M2, "10.1.0.22", 0);
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.22"), 1, &mut out);
        assert!(
            out.frames.is_empty()
                && out
                    .events
                    .iter()
                    .all(|e| !matches!(e, Event::Resolve { .. }))
        );
        assert_eq!(h.stats.not_answered_local, 1);
        // A mapping elsewhere covering it does not override a host we see on the wire.
        h.on_event(
            &Event::Remote {
                iid: 7,
                prefix: net("10.1.0.0/26"),
            },
            2,
            &mut out,
        );
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.22"), 3, &mut out);
        assert!(out.frames.is_empty());
        assert_eq!(h.stats.not_answered_local, 2);
        assert_eq!(h.stats.proxy_replies, 0);
        // A plain neighbour (in the subnet, outside the dynamic range) is local too.
        learn_v4(&mut h, M3, "10.1.0.200", 4);
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.200"), 5, &mut out);
        assert!(out.frames.is_empty());
        assert_eq!(h.stats.not_answered_local, 3);
    }

    #[test]
    fn remote_targets_are_proxied_until_not_remote() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        // A mapping in another instance does not count.
        h.on_event(
            &Event::Remote {
                iid: 8,
                prefix: net("10.1.0.0/26"),
            },
            0,
            &mut out,
        );
        assert!(!h.is_remote(7, ip("10.1.0.50")));
        h.on_event(
            &Event::Remote {
                iid: 7,
                prefix: net("10.1.0.48/29"),
            },
            0,
            &mut out,
        );
        assert!(h.is_remote(7, ip("10.1.0.50")));
        assert!(!h.is_remote(7, ip("10.1.0.56")));
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.50"), 1, &mut out);
        assert_eq!(
            one_arp(&mut out),
            arp_reply(M1, OUR, "10.1.0.50", M1, "10.1.0.11")
        );
        assert_eq!(h.stats.proxy_replies, 1);
        // The mapping goes: no more proxy answers, a resolve instead.
        h.on_event(
            &Event::NotRemote {
                iid: 7,
                prefix: net("10.1.0.48/29"),
            },
            2,
            &mut out,
        );
        assert_eq!(h.remote_prefixes(), 1);
        out.clear();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.50"), 3, &mut out);
        assert_eq!(
            out.events,
            vec![Event::Resolve {
                iid: 7,
                eid: ip("10.1.0.50")
            }]
        );
        assert_eq!(
            one_arp(&mut out),
            arp_request(BCAST, OUR, "10.1.0.2", ZERO_MAC, "10.1.0.50")
        );
        assert_eq!(h.stats.proxy_replies, 1);
        // Remote outside every dynamic range (iid of the port) is proxied as well.
        h.on_event(
            &Event::Remote {
                iid: 7,
                prefix: net("10.1.0.192/27"),
            },
            4,
            &mut out,
        );
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.201"), 5, &mut out);
        assert_eq!(
            one_arp(&mut out),
            arp_reply(M1, OUR, "10.1.0.201", M1, "10.1.0.11")
        );
    }

    #[test]
    fn unknown_target_resolves_and_probes_with_rate_limit() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        learn_v4(&mut h, M1, "10.1.0.11", 0);
        out.clear();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 1_000, &mut out);
        assert_eq!(
            out.events,
            vec![Event::Resolve {
                iid: 7,
                eid: ip("10.1.0.60")
            }]
        );
        assert_eq!(
            one_arp(&mut out),
            arp_request(BCAST, OUR, "10.1.0.2", ZERO_MAC, "10.1.0.60")
        );
        assert_eq!(h.stats.not_answered_unknown, 1);
        // The asker retries within the interval: nothing more.
        out.clear();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 1_999, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.stats.resolves_limited, 1);
        assert_eq!(h.stats.solicits_limited, 1);
        // Another target is not limited by the first.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.61"), 1_999, &mut out);
        assert_eq!(out.events.len(), 1);
        assert_eq!(frames(&mut out).len(), 1);
        out.clear();
        // After the interval: again.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 2_000, &mut out);
        assert_eq!(out.events.len(), 1);
        assert_eq!(one_arp(&mut out).tpa, v4("10.1.0.60"));
        // The local host answers our probe: it is detected, and no longer resolved.
        out.clear();
        h.on_frame(
            P,
            &arp(ArpOperation::Reply, OUR, M2, "10.1.0.60", OUR, "10.1.0.2"),
            2_100,
            &mut out,
        );
        assert_eq!(
            out.events,
            vec![Event::HostUp {
                iid: 7,
                ip: ip("10.1.0.60")
            }]
        );
        out.clear();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 5_000, &mut out);
        assert!(out.is_empty());
        // Outside every range and subnet: ignored.
        let before = h.stats.not_ours;
        h.on_frame(P, &who_has(M1, "10.1.0.11", "192.168.9.9"), 5_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.not_ours, before + 1);
    }

    #[test]
    fn probe_without_an_address_on_the_subnet_uses_sender_zero() {
        let mut h = xtr();
        let mut out = Outbox::default();
        h.resolve_neighbor(0, ip("10.1.0.77"), 0, &mut out);
        let f = frames(&mut out);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].port, 0);
        assert_eq!(
            parse_arp(&f[0]),
            arp_request(BCAST, XTR, "0.0.0.0", ZERO_MAC, "10.1.0.77")
        );
        // On its own subnet it uses its address.
        h.resolve_neighbor(0, ip("10.2.0.9"), 0, &mut out);
        assert_eq!(
            one_arp(&mut out),
            arp_request(BCAST, XTR, "10.2.0.1", ZERO_MAC, "10.2.0.9")
        );
    }

    #[test]
    fn cloud_xtr_answers_gateway_and_every_non_local_target() {
        let mut h = xtr();
        let mut out = Outbox::default();
        let ask = |t: &str| arp(ArpOperation::Request, BCAST, M1, "10.1.0.11", ZERO_MAC, t);
        // The moved host asks for its (enterprise) gateway.
        h.on_frame(0, &ask("10.1.0.1"), 0, &mut out);
        assert_eq!(
            out.events,
            vec![Event::HostUp {
                iid: 7,
                ip: ip("10.1.0.11")
            }]
        );
        assert_eq!(
            one_arp(&mut out),
            arp_reply(M1, XTR, "10.1.0.1", M1, "10.1.0.11")
        );
        assert_eq!(h.stats.replies_answer_for, 1);
        // ... and for an enterprise host nobody told us about: answered, and resolved.
        out.clear();
        h.on_frame(0, &ask("10.1.0.30"), 10, &mut out);
        assert_eq!(
            out.events,
            vec![Event::Resolve {
                iid: 7,
                eid: ip("10.1.0.30")
            }]
        );
        let f = frames(&mut out);
        assert_eq!(f.len(), 2);
        assert_eq!(
            parse_arp(&f[0]),
            arp_reply(M1, XTR, "10.1.0.30", M1, "10.1.0.11"),
            "the answer first"
        );
        assert_eq!(
            parse_arp(&f[1]),
            arp_request(BCAST, XTR, "0.0.0.0", ZERO_MAC, "10.1.0.30")
        );
        assert_eq!(h.stats.proxy_all_replies, 1);
        // Another moved host that is local: never answered.
        h.on_frame(
            0,
            &arp(
                ArpOperation::Request,
                BCAST,
                M2,
                "10.1.0.22",
                ZERO_MAC,
                "10.1.0.1",
            ),
            20,
            &mut out,
        );
        out.clear();
        h.on_frame(0, &ask("10.1.0.22"), 30, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.not_answered_local, 1);
        // Outside the range: not ours.
        h.on_frame(0, &ask("172.16.0.1"), 40, &mut out);
        assert!(out.is_empty());
        // The same frames on a pxtr port without proxy_all are not answered.
        let mut p = pxtr();
        p.on_frame(
            P,
            &arp(
                ArpOperation::Request,
                BCAST,
                M1,
                "10.1.0.11",
                ZERO_MAC,
                "10.1.0.30",
            ),
            0,
            &mut out,
        );
        assert!(frames(&mut out)
            .iter()
            .all(|f| parse_arp(f).op == ArpOperation::Request));
    }

    #[test]
    fn gratuitous_arp_probes_and_own_frames_are_never_proxied() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_event(
            &Event::Remote {
                iid: 7,
                prefix: net("10.1.0.0/25"),
            },
            0,
            &mut out,
        );
        // RFC 5227 probe for a remote address: a host coming back must not see a conflict.
        h.on_frame(
            P,
            &arp(
                ArpOperation::Request,
                BCAST,
                M1,
                "0.0.0.0",
                ZERO_MAC,
                "10.1.0.40",
            ),
            1,
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.stats.arp_probes_seen, 1);
        // ... but a probe for our own address is defended.
        h.on_frame(
            P,
            &arp(
                ArpOperation::Request,
                BCAST,
                M1,
                "0.0.0.0",
                ZERO_MAC,
                "10.1.0.2",
            ),
            2,
            &mut out,
        );
        assert_eq!(
            one_arp(&mut out),
            arp_reply(M1, OUR, "10.1.0.2", M1, "0.0.0.0")
        );
        // Gratuitous ARP (announcement) for a remote address: never answered, and the
        // host is local now.
        h.on_frame(
            P,
            &arp(
                ArpOperation::Request,
                BCAST,
                M1,
                "10.1.0.40",
                ZERO_MAC,
                "10.1.0.40",
            ),
            3,
            &mut out,
        );
        assert!(out.frames.is_empty());
        assert_eq!(h.stats.gratuitous_arps, 1);
        assert!(out.events.contains(&Event::HostUp {
            iid: 7,
            ip: ip("10.1.0.40")
        }));
        out.clear();
        // Gratuitous ARP from a remote address we cannot learn (off-link): still not
        // answered.
        h.on_event(
            &Event::Remote {
                iid: 7,
                prefix: net("10.5.0.0/16"),
            },
            3,
            &mut out,
        );
        h.on_frame(
            P,
            &arp(
                ArpOperation::Request,
                BCAST,
                M3,
                "10.5.0.5",
                ZERO_MAC,
                "10.5.0.5",
            ),
            3,
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.stats.gratuitous_arps, 2);
        // Gratuitous ARP reply: learned, not answered.
        h.on_frame(
            P,
            &arp(
                ArpOperation::Reply,
                BCAST,
                M2,
                "10.1.0.41",
                BCAST,
                "10.1.0.41",
            ),
            4,
            &mut out,
        );
        assert!(out.frames.is_empty());
        assert!(h.neighbor(ip("10.1.0.41")).is_some());
        out.clear();
        // Requests from our own MAC (loops) are ignored entirely.
        h.on_frame(P, &who_has(OUR, "10.1.0.9", "10.1.0.2"), 5, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.from_self, 1);
        assert!(h.neighbor(ip("10.1.0.9")).is_none());
        // A request whose Ethernet source is another MAC but whose sender MAC is ours too.
        let mut f = who_has(OUR, "10.1.0.9", "10.1.0.2");
        f[6..12].copy_from_slice(&M3);
        h.on_frame(P, &f, 6, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.from_self, 2);
    }

    // ----- detection -----

    #[test]
    fn reloaded_ranges_keep_neighbours_and_move_hosts_between_instances() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.99"), 100, &mut out);
        h.on_frame(P, &who_has(M3, "10.1.0.200", "10.1.0.99"), 100, &mut out);
        out.clear();
        // The range moves to the upper half: .11 is no longer a host (down, stays a plain
        // neighbour), .200 becomes one.
        let n = h.set_ranges(&[(P, vec![(7, net("10.1.0.128/25"))], vec![])], &mut out);
        assert_eq!(n, 2);
        assert_eq!(
            out.events,
            vec![
                Event::HostDown {
                    iid: 7,
                    ip: ip("10.1.0.11")
                },
                Event::HostUp {
                    iid: 7,
                    ip: ip("10.1.0.200")
                },
            ]
        );
        assert!(out.updates.is_empty(), "the neighbour table is untouched");
        assert_eq!(h.neighbor(ip("10.1.0.11")).unwrap().iid, None);
        assert_eq!(h.neighbor(ip("10.1.0.200")).unwrap().iid, Some(7));
        // The same ranges again change nothing.
        out.clear();
        let n = h.set_ranges(&[(P, vec![(7, net("10.1.0.128/25"))], vec![])], &mut out);
        assert_eq!((n, out.events.len()), (0, 0));
    }

    #[test]
    fn host_detection_reports_host_up_once() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.99"), 100, &mut out);
        assert_eq!(
            out.updates,
            vec![Update::Neighbor {
                ip: ip("10.1.0.11"),
                mac: M1,
                port: P
            }]
        );
        assert!(out.events.contains(&Event::HostUp {
            iid: 7,
            ip: ip("10.1.0.11")
        }));
        out.clear();
        // Later frames (request, reply) only refresh it.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.200"), 200, &mut out);
        h.on_frame(
            P,
            &arp(ArpOperation::Reply, M2, M1, "10.1.0.11", M2, "10.1.0.22"),
            300,
            &mut out,
        );
        assert!(out.updates.is_empty());
        assert!(!out.events.iter().any(|e| matches!(e, Event::HostUp { .. })));
        let info = h.neighbor(ip("10.1.0.11")).unwrap();
        assert_eq!(
            info,
            HostInfo {
                iid: Some(7),
                ip: ip("10.1.0.11"),
                mac: M1,
                port: P,
                first_seen_ms: 100,
                last_seen_ms: 300,
                state: HostState::Reachable
            }
        );
        assert_eq!(h.stats.hosts_up, 1);
        // In the subnet, outside the dynamic range: a neighbour, not a host.
        out.clear();
        h.on_frame(P, &who_has(M3, "10.1.0.200", "10.1.0.99"), 400, &mut out);
        assert_eq!(
            out.updates,
            vec![Update::Neighbor {
                ip: ip("10.1.0.200"),
                mac: M3,
                port: P
            }]
        );
        assert!(!out.events.iter().any(|e| matches!(e, Event::HostUp { .. })));
        assert_eq!(h.hosts().count(), 1);
        assert_eq!(h.neighbors().count(), 2);
        // Off-link sender, our own address from another MAC, subnet broadcast: not learned.
        out.clear();
        h.on_frame(P, &who_has(M3, "192.168.1.1", "10.1.0.99"), 500, &mut out);
        h.on_frame(P, &who_has(M3, "10.1.0.2", "10.1.0.99"), 500, &mut out);
        h.on_frame(P, &who_has(M3, "10.1.0.255", "10.1.0.99"), 500, &mut out);
        assert!(
            out.updates.is_empty() && !out.events.iter().any(|e| matches!(e, Event::HostUp { .. }))
        );
        assert_eq!(h.stats.learn_off_link, 1);
        assert_eq!(h.stats.address_conflicts, 1);
        assert_eq!(h.neighbors().count(), 2);
        // Unknown port.
        h.on_frame(9, &who_has(M3, "10.1.0.12", "10.1.0.99"), 500, &mut out);
        assert_eq!(h.stats.unknown_port, 1);
        assert!(out.updates.is_empty());
    }

    #[test]
    fn mac_change_updates_the_neighbor() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        learn_v4(&mut h, M1, "10.1.0.11", 0);
        h.on_frame(P, &who_has(M2, "10.1.0.11", "10.1.0.99"), 10, &mut out);
        assert_eq!(
            out.updates,
            vec![Update::Neighbor {
                ip: ip("10.1.0.11"),
                mac: M2,
                port: P
            }]
        );
        assert!(!out
            .events
            .iter()
            .any(|e| matches!(e, Event::HostUp { .. } | Event::HostDown { .. })));
        assert_eq!(h.neighbor(ip("10.1.0.11")).unwrap().mac, M2);
        assert_eq!(h.stats.neighbor_changes, 1);
    }

    #[test]
    fn moved_away_announces_our_mac_then_proxies_then_moves_back() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        learn_v4(&mut h, M2, "10.1.0.22", 0);
        h.on_event(
            &Event::HostMovedAway {
                iid: 7,
                ip: ip("10.1.0.22"),
            },
            10,
            &mut out,
        );
        assert_eq!(
            out.updates,
            vec![Update::NeighborGone {
                ip: ip("10.1.0.22")
            }]
        );
        assert!(out.events.is_empty());
        assert_eq!(
            one_arp(&mut out),
            arp_request(BCAST, OUR, "10.1.0.22", ZERO_MAC, "10.1.0.22")
        );
        assert!(h.neighbor(ip("10.1.0.22")).is_none());
        assert_eq!(h.next_timer(), None);
        assert_eq!(
            h.moved_away().collect::<Vec<_>>(),
            vec![(7, ip("10.1.0.22"))]
        );
        // Now an enterprise host asks for it: proxied.
        out.clear();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.22"), 20, &mut out);
        assert_eq!(
            one_arp(&mut out),
            arp_reply(M1, OUR, "10.1.0.22", M1, "10.1.0.11")
        );
        // It comes back and talks: local again, no more proxying.
        out.clear();
        h.on_frame(P, &who_has(M2, "10.1.0.22", "10.1.0.2"), 30, &mut out);
        assert!(out.events.contains(&Event::HostUp {
            iid: 7,
            ip: ip("10.1.0.22")
        }));
        assert!(out.updates.contains(&Update::Neighbor {
            ip: ip("10.1.0.22"),
            mac: M2,
            port: P
        }));
        assert_eq!(h.stats.hosts_back, 1);
        assert_eq!(h.moved_away().count(), 0);
        out.clear();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.22"), 40, &mut out);
        assert!(out.frames.is_empty());
        // Moved away while never seen here: still marked and announced.
        h.on_event(
            &Event::HostMovedAway {
                iid: 7,
                ip: ip("10.1.0.33"),
            },
            50,
            &mut out,
        );
        assert!(out.updates.is_empty());
        assert_eq!(one_arp(&mut out).spa, v4("10.1.0.33"));
        // Outside our dynamic ranges (or another instance): marked, not announced.
        h.on_event(
            &Event::HostMovedAway {
                iid: 8,
                ip: ip("10.1.0.34"),
            },
            50,
            &mut out,
        );
        assert!(out.frames.is_empty());
    }

    #[test]
    fn not_remote_host_route_clears_moved_away() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_event(
            &Event::HostMovedAway {
                iid: 7,
                ip: ip("10.1.0.22"),
            },
            0,
            &mut out,
        );
        assert!(h.is_remote(7, ip("10.1.0.22")));
        h.on_event(
            &Event::NotRemote {
                iid: 7,
                prefix: net("10.1.0.0/25"),
            },
            1,
            &mut out,
        );
        assert!(
            h.is_remote(7, ip("10.1.0.22")),
            "only its host route clears it"
        );
        h.on_event(
            &Event::NotRemote {
                iid: 7,
                prefix: net("10.1.0.22/32"),
            },
            2,
            &mut out,
        );
        assert!(!h.is_remote(7, ip("10.1.0.22")));
    }

    // ----- liveness -----

    #[test]
    fn silent_host_is_probed_and_declared_down() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        learn_v4(&mut h, M1, "10.1.0.11", 0);
        assert_eq!(h.next_timer(), Some(60_000));
        h.on_timer(59_999, &mut out);
        assert!(out.is_empty());
        for (i, t) in [60_000u64, 61_000, 62_000].into_iter().enumerate() {
            h.on_timer(t, &mut out);
            assert_eq!(
                one_arp(&mut out),
                arp_request(M1, OUR, "10.1.0.2", M1, "10.1.0.11"),
                "probe {i}"
            );
            assert!(out.is_empty());
            assert_eq!(
                h.neighbor(ip("10.1.0.11")).unwrap().state,
                HostState::Probing { sent: i as u32 + 1 }
            );
            assert_eq!(h.next_timer(), Some(t + 1_000));
            h.on_timer(t + 999, &mut out);
            assert!(out.is_empty());
        }
        h.on_timer(63_000, &mut out);
        assert_eq!(
            out.events,
            vec![Event::HostDown {
                iid: 7,
                ip: ip("10.1.0.11")
            }]
        );
        assert_eq!(
            out.updates,
            vec![Update::NeighborGone {
                ip: ip("10.1.0.11")
            }]
        );
        assert!(out.frames.is_empty());
        assert!(h.neighbor(ip("10.1.0.11")).is_none());
        assert_eq!(h.next_timer(), None);
        assert_eq!(h.stats.probes_sent, 3);
        assert_eq!(h.stats.hosts_down, 1);
        // A plain neighbour goes the same way, without HostDown.
        out.clear();
        learn_v4(&mut h, M3, "10.1.0.200", 100_000);
        for t in [160_000, 161_000, 162_000, 163_000] {
            h.on_timer(t, &mut out);
        }
        assert_eq!(frames(&mut out).len(), 3);
        assert!(out.events.is_empty());
        assert_eq!(
            out.updates,
            vec![Update::NeighborGone {
                ip: ip("10.1.0.200")
            }]
        );
    }

    #[test]
    fn answering_host_stays_up() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        learn_v4(&mut h, M1, "10.1.0.11", 0);
        h.on_timer(60_000, &mut out);
        assert_eq!(frames(&mut out).len(), 1);
        // It answers the probe.
        h.on_frame(
            P,
            &arp(ArpOperation::Reply, OUR, M1, "10.1.0.11", OUR, "10.1.0.2"),
            60_500,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(
            h.neighbor(ip("10.1.0.11")).unwrap().state,
            HostState::Reachable
        );
        let mut t = 60_500;
        while t < 120_500 {
            if let Some(n) = h.next_timer() {
                t = n.max(t);
            }
            if t >= 120_500 {
                break;
            }
            h.on_timer(t, &mut out);
            assert!(out.is_empty(), "at {t}: {out:?}");
            t += 1;
        }
        assert_eq!(h.next_timer(), Some(120_500));
        h.on_timer(120_500, &mut out);
        assert_eq!(one_arp(&mut out).op, ArpOperation::Request);
        // Heard from through another host's request while probing: back to reachable,
        // and not probed again before it has been silent for 60 s.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.22"), 121_000, &mut out);
        out.clear();
        for t in (121_000..181_000).step_by(500) {
            h.on_timer(t, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(
            h.neighbor(ip("10.1.0.11")).unwrap().state,
            HostState::Reachable
        );
    }

    // ----- IPv6 -----

    #[test]
    fn ns_is_answered_like_arp() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        let ask = |t: &str| ns(M1, "2001:db8:1::11", t);
        // Our address: S and O, sourced from it, TLLA ours, to the asker.
        h.on_frame(P, &ask("2001:db8:1::2"), 0, &mut out);
        assert_eq!(
            out.updates,
            vec![Update::Neighbor {
                ip: ip("2001:db8:1::11"),
                mac: M1,
                port: P
            }]
        );
        assert_eq!(
            out.events,
            vec![Event::HostUp {
                iid: 7,
                ip: ip("2001:db8:1::11")
            }]
        );
        assert_eq!(
            one_nd(&mut out),
            NdOut {
                eth_dst: M1,
                eth_src: OUR,
                src: v6("2001:db8:1::2"),
                dst: v6("2001:db8:1::11"),
                kind: NdKind::Na {
                    flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
                    target: v6("2001:db8:1::2"),
                    tll: Some(OUR)
                }
            }
        );
        // Remote: S without O (RFC 4861 7.2.8), from our link-local address.
        out.clear();
        h.on_event(
            &Event::Remote {
                iid: 7,
                prefix: net("2001:db8:1::50/128"),
            },
            1,
            &mut out,
        );
        h.on_frame(P, &ask("2001:db8:1::50"), 2, &mut out);
        assert_eq!(
            one_nd(&mut out),
            NdOut {
                eth_dst: M1,
                eth_src: OUR,
                src: v6("fe80::ff:fe00:1"),
                dst: v6("2001:db8:1::11"),
                kind: NdKind::Na {
                    flags: NdiscNeighborFlags::SOLICITED,
                    target: v6("2001:db8:1::50"),
                    tll: Some(OUR)
                }
            }
        );
        assert_eq!(h.stats.proxy_replies, 1);
        // Local: never.
        h.on_frame(P, &ns(M2, "2001:db8:1::22", "2001:db8:1::2"), 3, &mut out);
        out.clear();
        h.on_frame(P, &ask("2001:db8:1::22"), 4, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.not_answered_local, 1);
        // Unknown: Resolve and a multicast NS with our address and MAC.
        h.on_frame(P, &ask("2001:db8:1::60"), 5, &mut out);
        assert_eq!(
            out.events,
            vec![Event::Resolve {
                iid: 7,
                eid: ip("2001:db8:1::60")
            }]
        );
        assert_eq!(
            one_nd(&mut out),
            NdOut {
                eth_dst: [0x33, 0x33, 0xff, 0, 0, 0x60],
                eth_src: OUR,
                src: v6("2001:db8:1::2"),
                dst: v6("ff02::1:ff00:60"),
                kind: NdKind::Ns {
                    target: v6("2001:db8:1::60"),
                    sll: Some(OUR)
                }
            }
        );
        out.clear();
        h.on_frame(P, &ask("2001:db8:1::60"), 6, &mut out);
        assert!(out.is_empty());
        // Our link-local address is ours too.
        h.on_frame(P, &ask("fe80::ff:fe00:1"), 7, &mut out);
        let a = one_nd(&mut out);
        assert_eq!(a.src, v6("fe80::ff:fe00:1"));
        assert!(
            matches!(a.kind, NdKind::Na { flags, .. } if flags.contains(NdiscNeighborFlags::OVERRIDE))
        );
        // An NS without source link-layer option (unicast NUD) is answered to the frame's
        // Ethernet source.
        let unicast = nd(
            M1,
            OUR,
            v6("2001:db8:1::11"),
            v6("2001:db8:1::2"),
            255,
            NdiscRepr::NeighborSolicit {
                target_addr: v6("2001:db8:1::2"),
                lladdr: None,
            },
        );
        h.on_frame(P, &unicast, 8, &mut out);
        assert_eq!(one_nd(&mut out).eth_dst, M1);
    }

    #[test]
    fn nd_checks_checksum_and_hop_limit() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        let mut bad = ns(M1, "2001:db8:1::11", "2001:db8:1::2");
        let n = bad.len();
        bad[n - 1] ^= 0x01;
        h.on_frame(P, &bad, 0, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.bad_checksum, 1);
        let g = solicited_node_of(v6("2001:db8:1::2"));
        let hop64 = nd(
            M1,
            [0x33, 0x33, 0xff, 0, 0, 2],
            v6("2001:db8:1::11"),
            g,
            64,
            NdiscRepr::NeighborSolicit {
                target_addr: v6("2001:db8:1::2"),
                lladdr: ll(M1),
            },
        );
        h.on_frame(P, &hop64, 0, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.bad_hop_limit, 1);
        assert_eq!(h.neighbors().count(), 0);
        // The same with hop limit 255 and a good checksum goes through.
        h.on_frame(P, &ns(M1, "2001:db8:1::11", "2001:db8:1::2"), 0, &mut out);
        assert_eq!(frames(&mut out).len(), 1);
        out.clear();
        // A multicast link-layer address is invalid.
        let group_ll = nd(
            M1,
            [0x33, 0x33, 0xff, 0, 0, 2],
            v6("2001:db8:1::12"),
            g,
            255,
            NdiscRepr::NeighborSolicit {
                target_addr: v6("2001:db8:1::2"),
                lladdr: ll([0x33, 0x33, 0, 0, 0, 1]),
            },
        );
        h.on_frame(P, &group_ll, 0, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.malformed, 1);
        assert!(h.neighbor(ip("2001:db8:1::12")).is_none());
        // RS/RA are not ours; a non-ND ICMPv6 neither.
        let rs = nd(
            M1,
            [0x33, 0x33, 0, 0, 0, 2],
            v6("fe80::1"),
            v6("ff02::2"),
            255,
            NdiscRepr::RouterSolicit { lladdr: ll(M1) },
        );
        h.on_frame(P, &rs, 0, &mut out);
        assert_eq!(h.stats.nd_other, 1);
        // NS for a multicast target is invalid.
        h.on_frame(P, &ns(M1, "2001:db8:1::11", "ff02::1"), 0, &mut out);
        assert_eq!(h.stats.malformed, 2);
        assert!(frames(&mut out).is_empty());
    }

    #[test]
    fn na_learns_and_moved_away_sends_unsolicited_na() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        // Without Override (a proxy's answer) an unknown target is not learned.
        h.on_frame(
            P,
            &na(M3, "2001:db8:1::33", NdiscNeighborFlags::empty()),
            0,
            &mut out,
        );
        assert!(out.is_empty());
        assert!(h.neighbor(ip("2001:db8:1::33")).is_none());
        // With Override it is.
        h.on_frame(
            P,
            &na(M2, "2001:db8:1::22", NdiscNeighborFlags::OVERRIDE),
            1,
            &mut out,
        );
        assert_eq!(
            out.updates,
            vec![Update::Neighbor {
                ip: ip("2001:db8:1::22"),
                mac: M2,
                port: P
            }]
        );
        assert_eq!(
            out.events,
            vec![Event::HostUp {
                iid: 7,
                ip: ip("2001:db8:1::22")
            }]
        );
        // A proxy's NA (no Override) with another MAC does not change it.
        out.clear();
        h.on_frame(
            P,
            &na(M3, "2001:db8:1::22", NdiscNeighborFlags::empty()),
            2,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(h.neighbor(ip("2001:db8:1::22")).unwrap().mac, M2);
        // Solicited NA to a multicast destination is invalid (RFC 4861 7.1.2).
        h.on_frame(
            P,
            &na(
                M3,
                "2001:db8:1::34",
                NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
            ),
            2,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(h.stats.malformed, 1);
        // It moves away: forgotten, unsolicited NA with Override and our MAC to all nodes.
        h.on_event(
            &Event::HostMovedAway {
                iid: 7,
                ip: ip("2001:db8:1::22"),
            },
            3,
            &mut out,
        );
        assert_eq!(
            out.updates,
            vec![Update::NeighborGone {
                ip: ip("2001:db8:1::22")
            }]
        );
        assert_eq!(
            one_nd(&mut out),
            NdOut {
                eth_dst: [0x33, 0x33, 0, 0, 0, 1],
                eth_src: OUR,
                src: v6("fe80::ff:fe00:1"),
                dst: v6("ff02::1"),
                kind: NdKind::Na {
                    flags: NdiscNeighborFlags::OVERRIDE,
                    target: v6("2001:db8:1::22"),
                    tll: Some(OUR)
                }
            }
        );
        // And is proxied (no Override).
        out.clear();
        h.on_frame(P, &ns(M1, "2001:db8:1::11", "2001:db8:1::22"), 4, &mut out);
        let a = one_nd(&mut out);
        assert_eq!(
            a.kind,
            NdKind::Na {
                flags: NdiscNeighborFlags::SOLICITED,
                target: v6("2001:db8:1::22"),
                tll: Some(OUR)
            }
        );
    }

    #[test]
    fn dad_is_only_answered_for_our_addresses() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_event(
            &Event::Remote {
                iid: 7,
                prefix: net("2001:db8:1::/64"),
            },
            0,
            &mut out,
        );
        let dad = |t: &str| {
            let g = solicited_node_of(v6(t));
            nd(
                M1,
                [
                    0x33,
                    0x33,
                    0xff,
                    g.octets()[13],
                    g.octets()[14],
                    g.octets()[15],
                ],
                Ipv6Addr::UNSPECIFIED,
                g,
                255,
                NdiscRepr::NeighborSolicit {
                    target_addr: v6(t),
                    lladdr: None,
                },
            )
        };
        h.on_frame(P, &dad("2001:db8:1::40"), 1, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.stats.dad_seen, 1);
        h.on_frame(P, &dad("2001:db8:1::2"), 2, &mut out);
        assert_eq!(
            one_nd(&mut out),
            NdOut {
                eth_dst: [0x33, 0x33, 0, 0, 0, 1],
                eth_src: OUR,
                src: v6("2001:db8:1::2"),
                dst: v6("ff02::1"),
                kind: NdKind::Na {
                    flags: NdiscNeighborFlags::OVERRIDE,
                    target: v6("2001:db8:1::2"),
                    tll: Some(OUR)
                }
            }
        );
        // DAD with a source link-layer option is invalid.
        let g = solicited_node_of(v6("2001:db8:1::2"));
        let bad = nd(
            M1,
            [0x33, 0x33, 0xff, 0, 0, 2],
            Ipv6Addr::UNSPECIFIED,
            g,
            255,
            NdiscRepr::NeighborSolicit {
                target_addr: v6("2001:db8:1::2"),
                lladdr: ll(M1),
            },
        );
        h.on_frame(P, &bad, 3, &mut out);
        assert!(out.is_empty());
        assert_eq!(h.stats.malformed, 1);
    }

    #[test]
    fn cloud_xtr_na_has_router_flag() {
        let mut h = xtr();
        let mut out = Outbox::default();
        let ask = |t: &str| ns(M1, "2001:db8:1::11", t);
        // The gateway address: Override (it is ours on this link) and Router.
        h.on_frame(0, &ask("2001:db8:1::1"), 0, &mut out);
        let a = one_nd(&mut out);
        assert_eq!(
            a,
            NdOut {
                eth_dst: M1,
                eth_src: XTR,
                src: v6("fe80::ff:fe00:aa"),
                dst: v6("2001:db8:1::11"),
                kind: NdKind::Na {
                    flags: NdiscNeighborFlags::ROUTER
                        | NdiscNeighborFlags::SOLICITED
                        | NdiscNeighborFlags::OVERRIDE,
                    target: v6("2001:db8:1::1"),
                    tll: Some(XTR)
                }
            }
        );
        // Any other non-local target in the range: Router, no Override; plus resolve/NS.
        out.clear();
        h.on_frame(0, &ask("2001:db8:1::30"), 1, &mut out);
        assert_eq!(out.events.len(), 1);
        let f = frames(&mut out);
        assert_eq!(f.len(), 2);
        assert!(matches!(parse_nd(&f[1]).kind, NdKind::Ns { .. }));
        assert_eq!(parse_nd(&f[1]).src, v6("fe80::ff:fe00:aa"));
        assert_eq!(
            parse_nd(&f[0]).kind,
            NdKind::Na {
                flags: NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::SOLICITED,
                target: v6("2001:db8:1::30"),
                tll: Some(XTR)
            }
        );
    }

    #[test]
    fn silent_ipv6_host_is_probed_with_unicast_ns() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(
            P,
            &na(M2, "2001:db8:1::22", NdiscNeighborFlags::OVERRIDE),
            0,
            &mut out,
        );
        out.clear();
        h.on_timer(60_000, &mut out);
        assert_eq!(
            one_nd(&mut out),
            NdOut {
                eth_dst: M2,
                eth_src: OUR,
                src: v6("2001:db8:1::2"),
                dst: v6("2001:db8:1::22"),
                kind: NdKind::Ns {
                    target: v6("2001:db8:1::22"),
                    sll: Some(OUR)
                }
            }
        );
        // A solicited NA without target link-layer option, from its MAC, confirms it.
        let reply = nd(
            M2,
            OUR,
            v6("2001:db8:1::22"),
            v6("2001:db8:1::2"),
            255,
            NdiscRepr::NeighborAdvert {
                flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
                target_addr: v6("2001:db8:1::22"),
                lladdr: None,
            },
        );
        h.on_frame(P, &reply, 60_100, &mut out);
        for t in (60_100..=120_000).step_by(250) {
            h.on_timer(t, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(
            h.neighbor(ip("2001:db8:1::22")).unwrap().last_seen_ms,
            60_100
        );
    }

    // ----- askers of unknown targets, answered when the mapping arrives -----

    fn remote(h: &mut Hosts, iid: u32, prefix: &str, now: u64, out: &mut Outbox) {
        h.on_event(
            &Event::Remote {
                iid,
                prefix: net(prefix),
            },
            now,
            out,
        );
    }

    /// An ARP reply frame written byte by byte (not with smoltcp), padded to 60 bytes.
    fn arp_reply_bytes(
        eth_dst: [u8; 6],
        sha: [u8; 6],
        spa: &str,
        tha: [u8; 6],
        tpa: &str,
    ) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&eth_dst);
        f.extend_from_slice(&sha);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2]);
        f.extend_from_slice(&sha);
        f.extend_from_slice(&v4(spa).octets());
        f.extend_from_slice(&tha);
        f.extend_from_slice(&v4(tpa).octets());
        f.resize(60, 0);
        f
    }

    #[test]
    fn unknown_target_asker_is_answered_as_soon_as_the_mapping_arrives() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 1_000, &mut out);
        h.on_frame(P, &who_has(M2, "10.1.0.22", "10.1.0.60"), 1_001, &mut out);
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.61"), 1_002, &mut out);
        // Outside the prefix that will come.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.90"), 1_003, &mut out);
        // No answer yet: resolves and probes only.
        let resolves: Vec<_> = out
            .events
            .iter()
            .filter(|e| matches!(e, Event::Resolve { .. }))
            .collect();
        assert_eq!(resolves.len(), 3);
        assert!(frames(&mut out)
            .iter()
            .all(|f| parse_arp(f).op == ArpOperation::Request));
        assert_eq!(h.stats.not_answered_unknown, 4);
        assert_eq!(h.pending_askers(), (4, 3));
        assert_eq!(h.stats.askers_remembered, 4);
        out.clear();
        // The Map-Reply for 10.1.0.56/29: both askers of .60 and the one of .61, at once.
        remote(&mut h, 7, "10.1.0.56/29", 1_040, &mut out);
        let f = frames(&mut out);
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(f[0].port, P);
        assert_eq!(
            f[0].bytes,
            arp_reply_bytes(M1, OUR, "10.1.0.60", M1, "10.1.0.11"),
            "opcode 2, sender = target and our MAC, to the asker's IP and MAC"
        );
        assert_eq!(
            parse_arp(&f[1]),
            arp_reply(M2, OUR, "10.1.0.60", M2, "10.1.0.22")
        );
        assert_eq!(
            parse_arp(&f[2]),
            arp_reply(M1, OUR, "10.1.0.61", M1, "10.1.0.11")
        );
        assert_eq!(h.stats.proxy_replies_late, 3);
        assert_eq!(h.stats.proxy_replies, 3);
        // Forgotten: a refresh of the mapping answers nobody again; the other target waits.
        assert_eq!(h.pending_askers(), (1, 1));
        remote(&mut h, 7, "10.1.0.56/29", 1_050, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // The late answer is exactly what the asker's retry gets now.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 1_100, &mut out);
        assert_eq!(frames(&mut out)[0].bytes, f[0].bytes);
        assert_eq!(h.stats.proxy_replies_late, 3);
        assert_eq!(h.stats.proxy_replies, 4);
    }

    #[test]
    fn unknown_ipv6_target_asker_gets_a_solicited_proxy_na_when_the_mapping_arrives() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(P, &ns(M1, "2001:db8:1::11", "2001:db8:1::60"), 0, &mut out);
        assert!(out.events.contains(&Event::Resolve {
            iid: 7,
            eid: ip("2001:db8:1::60")
        }));
        assert!(matches!(one_nd(&mut out).kind, NdKind::Ns { .. }));
        // A unicast NS without a source link-layer option: answered to its Ethernet source.
        let unicast = nd(
            M2,
            OUR,
            v6("2001:db8:1::22"),
            v6("2001:db8:1::61"),
            255,
            NdiscRepr::NeighborSolicit {
                target_addr: v6("2001:db8:1::61"),
                lladdr: None,
            },
        );
        h.on_frame(P, &unicast, 1, &mut out);
        out.clear();
        assert_eq!(h.pending_askers(), (2, 2));
        remote(&mut h, 7, "2001:db8:1::/120", 30, &mut out);
        let f = frames(&mut out);
        assert_eq!(f.len(), 2, "{f:?}");
        let proxy_na = |eth_dst, dst: &str, target: &str| NdOut {
            eth_dst,
            eth_src: OUR,
            src: v6("fe80::ff:fe00:1"),
            dst: v6(dst),
            kind: NdKind::Na {
                // Solicited, without Override: a proxy answer (RFC 4861 7.2.8).
                flags: NdiscNeighborFlags::SOLICITED,
                target: v6(target),
                tll: Some(OUR),
            },
        };
        assert_eq!(
            parse_nd(&f[0]),
            proxy_na(M1, "2001:db8:1::11", "2001:db8:1::60")
        );
        assert_eq!(
            parse_nd(&f[1]),
            proxy_na(M2, "2001:db8:1::22", "2001:db8:1::61")
        );
        assert_eq!(h.stats.proxy_replies_late, 2);
        // The same bytes as the answer to a retry now.
        h.on_frame(P, &ns(M1, "2001:db8:1::11", "2001:db8:1::60"), 40, &mut out);
        assert_eq!(frames(&mut out)[0].bytes, f[0].bytes);
    }

    #[test]
    fn askers_expire_unanswered() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 0, &mut out);
        out.clear();
        assert_eq!(h.next_timer(), Some(3_000));
        h.on_timer(2_999, &mut out);
        assert_eq!(h.pending_askers(), (1, 1));
        h.on_timer(3_000, &mut out);
        assert_eq!(h.pending_askers(), (0, 0));
        assert_eq!(h.stats.askers_expired, 1);
        assert_eq!(
            h.next_timer(),
            Some(60_000),
            "only the asker's own probe left"
        );
        remote(&mut h, 7, "10.1.0.60/32", 3_001, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.stats.proxy_replies_late, 0);
        // Past the deadline but before the timer ran: not answered either.
        let mut h = pxtr();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.61"), 0, &mut out);
        out.clear();
        remote(&mut h, 7, "10.1.0.61/32", 3_000, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.stats.askers_expired, 1);
        assert_eq!(h.pending_askers(), (0, 0));
        // A retry moves the deadline on.
        let mut h = pxtr();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.62"), 0, &mut out);
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.62"), 2_000, &mut out);
        out.clear();
        assert_eq!(h.stats.askers_remembered, 1);
        h.on_timer(3_000, &mut out);
        assert_eq!(h.pending_askers(), (1, 1));
        assert_eq!(h.next_timer(), Some(5_000));
        remote(&mut h, 7, "10.1.0.62/32", 4_000, &mut out);
        assert_eq!(
            one_arp(&mut out),
            arp_reply(M1, OUR, "10.1.0.62", M1, "10.1.0.11")
        );
    }

    #[test]
    fn askers_of_a_target_that_became_local_or_not_remote_are_not_answered() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 0, &mut out);
        // The target answers our probe: a local host.
        h.on_frame(
            P,
            &arp(ArpOperation::Reply, OUR, M2, "10.1.0.60", OUR, "10.1.0.2"),
            10,
            &mut out,
        );
        out.clear();
        // A mapping elsewhere covering it does not make us answer for a local host.
        remote(&mut h, 7, "10.1.0.0/26", 20, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.stats.askers_dropped, 1);
        assert_eq!(h.stats.proxy_replies, 0);
        assert_eq!(h.pending_askers(), (0, 0));
        // A negative answer (NotRemote) forgets the asker unanswered.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.100"), 30, &mut out);
        out.clear();
        assert_eq!(h.pending_askers(), (1, 1));
        h.on_event(
            &Event::NotRemote {
                iid: 7,
                prefix: net("10.1.0.96/27"),
            },
            40,
            &mut out,
        );
        assert_eq!(h.pending_askers(), (0, 0));
        assert_eq!(h.stats.askers_dropped, 2);
        remote(&mut h, 7, "10.1.0.100/32", 50, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // A port that does not proxy remembers nobody.
        let mut cfg = pxtr_config();
        cfg.ports[0].proxy = false;
        let mut h = Hosts::new(cfg);
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 0, &mut out);
        assert!(out.events.contains(&Event::Resolve {
            iid: 7,
            eid: ip("10.1.0.60")
        }));
        assert_eq!(h.pending_askers(), (0, 0));
    }

    #[test]
    fn remote_for_an_unrelated_prefix_answers_nobody() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.60"), 0, &mut out);
        h.on_frame(P, &ns(M1, "2001:db8:1::11", "2001:db8:1::60"), 0, &mut out);
        out.clear();
        remote(&mut h, 7, "10.1.0.64/26", 10, &mut out);
        remote(&mut h, 7, "10.1.0.61/32", 10, &mut out);
        remote(&mut h, 8, "10.1.0.0/24", 10, &mut out);
        remote(&mut h, 7, "2001:db8:1::100/120", 10, &mut out);
        remote(&mut h, 8, "2001:db8:1::/64", 10, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(h.pending_askers(), (2, 2));
        // Its own prefix does.
        remote(&mut h, 7, "10.1.0.0/25", 20, &mut out);
        assert_eq!(one_arp(&mut out).spa, v4("10.1.0.60"));
        remote(&mut h, 7, "2001:db8:1::/64", 20, &mut out);
        assert_eq!(
            one_nd(&mut out).kind,
            NdKind::Na {
                flags: NdiscNeighborFlags::SOLICITED,
                target: v6("2001:db8:1::60"),
                tll: Some(OUR)
            }
        );
        assert_eq!(h.pending_askers(), (0, 0));
    }

    #[test]
    fn askers_are_bounded_per_target_and_in_all() {
        let mut cfg = pxtr_config();
        cfg.max_askers_per_target = 2;
        cfg.max_pending_askers = 5;
        let mut h = Hosts::new(cfg);
        let mut out = Outbox::default();
        let mac = |i: u8| [0x02, 0, 0, 0, 1, i];
        // Ten askers for one target: two remembered.
        for i in 0..10u8 {
            let s = format!("10.1.0.{}", 100 + i);
            h.on_frame(P, &who_has(mac(i), &s, "10.1.0.20"), 0, &mut out);
        }
        assert_eq!(h.pending_askers(), (2, 1));
        assert_eq!(h.stats.askers_refused, 8);
        // A retry of a remembered asker is neither new nor refused.
        h.on_frame(P, &who_has(mac(0), "10.1.0.100", "10.1.0.20"), 1, &mut out);
        assert_eq!(h.stats.askers_refused, 8);
        assert_eq!(h.stats.askers_remembered, 2);
        // A flood of targets: three more fit in all.
        for i in 0..50u8 {
            let t = format!("10.1.0.{}", 21 + i);
            h.on_frame(P, &who_has(mac(0), "10.1.0.100", &t), 2, &mut out);
        }
        assert_eq!(h.pending_askers(), (5, 4));
        assert_eq!(h.stats.askers_refused, 8 + 47);
        assert_eq!(h.stats.askers_remembered, 5);
        out.clear();
        // Exactly those are answered.
        remote(&mut h, 7, "10.1.0.0/25", 10, &mut out);
        let f = frames(&mut out);
        assert_eq!(f.len(), 5);
        assert_eq!(h.pending_askers(), (0, 0));
        // Room again afterwards (10.1.0.0/25 is remote now: ask for an IPv6 target).
        h.on_frame(
            P,
            &ns(mac(1), "2001:db8:1::101", "2001:db8:1::30"),
            20,
            &mut out,
        );
        assert_eq!(h.pending_askers(), (1, 1));
    }

    // ----- robustness and bounds -----

    fn valid_frames() -> Vec<Vec<u8>> {
        vec![
            who_has(M1, "10.1.0.11", "10.1.0.2"),
            arp(ArpOperation::Reply, OUR, M2, "10.1.0.22", OUR, "10.1.0.2"),
            ns(M1, "2001:db8:1::11", "2001:db8:1::2"),
            na(M2, "2001:db8:1::22", NdiscNeighborFlags::OVERRIDE),
        ]
    }

    #[test]
    fn truncated_frames_are_counted_and_never_panic() {
        let mut total = 0;
        for f in valid_frames() {
            let mut h = pxtr();
            let mut out = Outbox::default();
            for len in 0..f.len() {
                h.on_frame(P, &f[..len], 0, &mut out);
                total += 1;
                assert_eq!(h.stats.malformed, len as u64 + 1, "len {len} of {f:02x?}");
            }
            assert!(out.is_empty(), "{out:?}");
            // The whole frame goes through.
            h.on_frame(P, &f, 0, &mut out);
            assert_eq!(h.stats.malformed, f.len() as u64);
            assert!(!out.is_empty());
        }
        assert!(total > 200);
        // Bad ARP hardware/protocol types and lengths, unknown operations.
        let mut h = pxtr();
        let mut out = Outbox::default();
        let base = who_has(M1, "10.1.0.11", "10.1.0.2");
        // Hardware type 6, protocol type 0x8600, hardware length 8, protocol length 16,
        // operation 9.
        for (at, v) in [(15usize, 6u8), (16, 0x86), (18, 8), (19, 16), (21, 9)] {
            let mut f = base.clone();
            f[at] = v;
            h.on_frame(P, &f, 0, &mut out);
        }
        assert_eq!(h.stats.malformed, 4);
        assert_eq!(h.stats.arp_other, 1);
        assert!(out.is_empty());
        // An Ethernet multicast source, another ethertype.
        let mut f = base.clone();
        f[6] = 0x01;
        h.on_frame(P, &f, 0, &mut out);
        assert_eq!(h.stats.malformed, 5);
        let mut f = base.clone();
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        h.on_frame(P, &f, 0, &mut out);
        assert_eq!(h.stats.not_arp_nd, 1);
        assert!(out.is_empty());
    }

    /// Recomputes the ICMPv6 checksum of an IPv6 frame (so mutations reach the ND parser).
    fn fix_checksum(f: &mut [u8]) {
        if f.len() < 54 || f[12..14] != [0x86, 0xdd] {
            return;
        }
        let Ok(ip) = Ipv6Packet::new_checked(&f[14..]) else {
            return;
        };
        let (src, dst, end) = (ip.src_addr(), ip.dst_addr(), 14 + ip.total_len());
        if f.len() < 54 + 4 || end < 54 + 4 {
            return;
        }
        Icmpv6Packet::new_unchecked(&mut f[54..end]).fill_checksum(&src, &dst);
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(
            raw in any::<bool>(),
            arp in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..160),
        ) {
            // Raw bytes, or random bytes behind an ARP / IPv6 Ethernet header (so that
            // they reach the parsers).
            let bytes = if raw {
                body
            } else {
                let mut f = vec![0xff; 6];
                f.extend_from_slice(&M1);
                f.extend_from_slice(if arp { &[0x08, 0x06] } else { &[0x86, 0xdd] });
                f.extend_from_slice(&body);
                f
            };
            let mut h = pxtr();
            let mut x = xtr();
            let mut out = Outbox::default();
            h.on_frame(P, &bytes, 0, &mut out);
            x.on_frame(0, &bytes, 0, &mut out);
            h.on_timer(100_000, &mut out);
        }

        #[test]
        fn mutated_frames_never_panic(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
            fix in any::<bool>(),
        ) {
            let mut f = valid_frames().swap_remove(which);
            for (at, v) in edits {
                let n = f.len();
                f[at % n] = v;
            }
            if fix {
                fix_checksum(&mut f);
            }
            let n = f.len();
            let f = &f[..n - cut % 8];
            let mut h = pxtr();
            let mut x = xtr();
            let mut out = Outbox::default();
            for now in [0, 70_000, 200_000] {
                h.on_frame(P, f, now, &mut out);
                x.on_frame(0, f, now, &mut out);
                h.on_timer(now, &mut out);
                x.on_timer(now, &mut out);
            }
            // Whatever came out is well-formed.
            for fr in &out.frames {
                let eth = EthernetFrame::new_checked(&fr.bytes[..]).unwrap();
                match eth.ethertype() {
                    EthernetProtocol::Arp => { parse_arp(fr); }
                    _ => { parse_nd(fr); }
                }
            }
        }
    }

    #[test]
    fn floods_are_bounded() {
        let mut cfg = pxtr_config();
        cfg.max_neighbors = 16;
        cfg.max_rate_entries = 8;
        cfg.max_remote_prefixes = 4;
        cfg.max_moved_away = 2;
        let mut h = Hosts::new(cfg);
        let mut out = Outbox::default();
        for i in 0..100u32 {
            let s = format!("10.1.0.{}", i + 3);
            h.on_frame(P, &who_has(M1, &s, "10.1.0.2"), u64::from(i), &mut out);
        }
        assert_eq!(h.neighbors().count(), 16);
        assert_eq!(h.stats.learn_refused, 84);
        assert_eq!(out.updates.len(), 16, "no update for refused neighbours");
        // Unknown targets within one interval: the limiter keeps 8, evicting the oldest.
        let mut h = {
            let mut c = pxtr_config();
            c.max_rate_entries = 8;
            Hosts::new(c)
        };
        out.clear();
        for i in 0..100u32 {
            let t = format!("10.1.0.{}", i + 3);
            h.on_frame(P, &who_has(M1, "10.1.0.200", &t), 0, &mut out);
        }
        assert_eq!(h.rate_limit_entries(), (8, 8));
        assert_eq!(h.stats.rate_limit_evictions, 2 * 92);
        assert_eq!(h.stats.resolves, 100);
        // Prefix and moved-away sets.
        let mut h = {
            let mut c = pxtr_config();
            c.max_remote_prefixes = 4;
            c.max_moved_away = 2;
            Hosts::new(c)
        };
        for i in 0..10u8 {
            h.on_event(
                &Event::Remote {
                    iid: 7,
                    prefix: IpNet::new(IpAddr::V4(Ipv4Addr::new(10, 9, i, 0)), 24).unwrap(),
                },
                0,
                &mut out,
            );
            h.on_event(
                &Event::HostMovedAway {
                    iid: 7,
                    ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, 100 + i)),
                },
                0,
                &mut out,
            );
        }
        assert_eq!(h.remote_prefixes(), 4);
        assert_eq!(h.stats.remote_refused, 6);
        assert_eq!(h.moved_away().count(), 2);
        assert_eq!(h.stats.moved_refused, 8);
    }

    #[test]
    fn resolve_neighbor_solicits_with_rate_limit() {
        let mut h = pxtr();
        let mut out = Outbox::default();
        h.resolve_neighbor(P, ip("10.1.0.254"), 0, &mut out);
        assert_eq!(
            one_arp(&mut out),
            arp_request(BCAST, OUR, "10.1.0.2", ZERO_MAC, "10.1.0.254")
        );
        h.resolve_neighbor(P, ip("10.1.0.254"), 999, &mut out);
        assert!(out.is_empty());
        h.resolve_neighbor(P, ip("10.1.0.254"), 1_000, &mut out);
        assert_eq!(one_arp(&mut out).tpa, v4("10.1.0.254"));
        h.resolve_neighbor(P, ip("2001:db8:1::fe"), 0, &mut out);
        assert_eq!(
            one_nd(&mut out),
            NdOut {
                eth_dst: [0x33, 0x33, 0xff, 0, 0, 0xfe],
                eth_src: OUR,
                src: v6("2001:db8:1::2"),
                dst: v6("ff02::1:ff00:fe"),
                kind: NdKind::Ns {
                    target: v6("2001:db8:1::fe"),
                    sll: Some(OUR)
                }
            }
        );
        // Outside our IPv6 subnets: from our link-local address.
        h.resolve_neighbor(P, ip("2001:db8:9::1"), 0, &mut out);
        assert_eq!(one_nd(&mut out).src, v6("fe80::ff:fe00:1"));
        // A neighbour we know: its entry is published again instead.
        learn_v4(&mut h, M1, "10.1.0.11", 0);
        h.resolve_neighbor(P, ip("10.1.0.11"), 5, &mut out);
        assert!(out.frames.is_empty());
        assert_eq!(
            out.updates,
            vec![Update::Neighbor {
                ip: ip("10.1.0.11"),
                mac: M1,
                port: P
            }]
        );
        h.resolve_neighbor(7, ip("10.1.0.11"), 5, &mut out);
        assert_eq!(h.stats.unknown_port, 1);
    }

    #[test]
    fn counters_name_every_field_once() {
        let s = HostsStats {
            malformed: 3,
            ..HostsStats::default()
        };
        let c = s.counters();
        let names: HashSet<_> = c.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), c.len());
        assert!(c.contains(&("malformed", 3)));
        assert!(c.len() >= 40);
    }

    #[test]
    fn address_helpers() {
        assert_eq!(
            eui64_link_local([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
            v6("fe80::211:22ff:fe33:4455")
        );
        assert_eq!(solicited_node(v6("2001:db8::1:2:3")), v6("ff02::1:ff02:3"));
        assert!(is_solicited_node(v6("ff02::1:ff02:3")));
        assert!(!is_solicited_node(v6("ff02::1")));
        assert_eq!(
            multicast_mac(v6("ff02::1:ff02:3")),
            [0x33, 0x33, 0xff, 0x02, 0, 3]
        );
    }

    #[test]
    fn extended_subnet_hosts_come_from_routed_packets_not_from_arp() {
        let mut h = extended();
        let mut out = Outbox::default();
        // ARP from a host of the range (maybe from the other site, over the extension): a
        // neighbour, not a host of ours.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.1"), 100, &mut out);
        assert!(!out.events.iter().any(|e| matches!(e, Event::HostUp { .. })));
        assert_eq!(h.neighbor(ip("10.1.0.11")).unwrap().iid, None);
        // The shared gateway address is answered here (localized gateway).
        assert_eq!(one_arp(&mut out).spa, v4("10.1.0.1"));
        // A packet it routed through us: a host of ours, once.
        h.on_source_seen(P, ip("10.1.0.11"), M1, 200, &mut out);
        assert_eq!(
            out.events,
            vec![Event::HostUp {
                iid: 7,
                ip: ip("10.1.0.11")
            }]
        );
        out.clear();
        h.on_source_seen(P, ip("10.1.0.11"), M1, 300, &mut out);
        assert!(out.is_empty());
        // Its ARP does not make it a mere neighbour again.
        h.on_frame(P, &who_has(M1, "10.1.0.11", "10.1.0.99"), 400, &mut out);
        assert!(!out
            .events
            .iter()
            .any(|e| matches!(e, Event::HostDown { .. })));
        assert_eq!(h.neighbor(ip("10.1.0.11")).unwrap().iid, Some(7));
        // Outside every extended range, or from a group MAC: ignored.
        h.on_source_seen(P, ip("10.1.0.200"), M2, 500, &mut out);
        h.on_source_seen(P, ip("10.1.0.12"), [0x01, 0, 0x5e, 0, 0, 1], 500, &mut out);
        assert!(out.events.is_empty());
        assert_eq!(h.stats.sources_outside_ranges, 1);
    }

    #[test]
    fn extended_subnet_targets_are_never_proxied_and_moves_are_quiet() {
        let mut h = extended();
        let mut out = Outbox::default();
        // Remote, or unknown: no answer, no resolution (the hosts answer across the extension).
        h.on_event(
            &Event::Remote {
                iid: 7,
                prefix: net("10.1.0.0/26"),
            },
            0,
            &mut out,
        );
        out.clear();
        h.on_frame(P, &who_has(M2, "10.1.0.22", "10.1.0.33"), 10, &mut out);
        h.on_frame(P, &who_has(M2, "10.1.0.22", "10.1.0.100"), 10, &mut out);
        assert!(frames(&mut out).is_empty());
        assert!(!out
            .events
            .iter()
            .any(|e| matches!(e, Event::Resolve { .. })));
        // A host of ours registered at the other site: withdrawn here, no announcement of our
        // MAC (it is still reachable at its own over the extension).
        h.on_source_seen(P, ip("10.1.0.11"), M1, 20, &mut out);
        out.clear();
        h.on_event(
            &Event::HostMovedAway {
                iid: 7,
                ip: ip("10.1.0.11"),
            },
            30,
            &mut out,
        );
        assert!(frames(&mut out).is_empty());
        assert!(h.hosts().all(|i| i.ip != ip("10.1.0.11")));
        // Back, routing through us again: ours again.
        h.on_source_seen(P, ip("10.1.0.11"), M1, 40, &mut out);
        assert!(out.events.contains(&Event::HostUp {
            iid: 7,
            ip: ip("10.1.0.11")
        }));
    }
}
