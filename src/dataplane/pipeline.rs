//! The per-worker burst pipeline: classify, batched map-cache lookups, encapsulate or
//! decapsulate, next-hop MAC from the neighbour table, and per-port output arrays the worker
//! hands to its TX queues. No allocation, lock or system call per packet: every array is sized
//! once, the tables are read through per-burst snapshots.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;
use ipnet::IpNet;

use crate::config::{MissPolicy, PortRole};
use crate::dpdk::MAX_BURST;
use crate::mapcache::{
    MapCacheReader, Neighbor, NeighborReader, NeighborSnapshot, Packed, Resolution, Snapshot,
};
use crate::wire::data::DataRepr;
use crate::wire::encap::{self, EncapParams, Outer};
use crate::wire::Error as WireError;

use super::buf::PacketBuf;
use super::classify::{
    classify, lean_decap_v4, lean_v4, local_bloom_bit, mac_word, Class, IpInfo, LocalAddresses,
    PortView, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_LEN,
};
use super::counters::{Counts, Reason};

/// Most frames one port's output array holds per call (a full burst plus released held
/// packets).
pub const MAX_OUT: usize = 2 * MAX_BURST;

/// One port as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlan {
    pub name: String,
    pub role: PortRole,
    /// DPDK port id (what the neighbour table stores).
    pub dpdk_port: u16,
    pub mac: [u8; 6],
    /// Our addresses on this port, with their subnets (on-link destinations).
    pub addresses: Vec<IpNet>,
    /// IP MTU.
    pub mtu: u16,
    /// Next hop for destinations off this port's subnets.
    pub gateway: Option<IpAddr>,
    /// Instance-ID of the EIDs behind this port (EID ports).
    pub iid: u32,
    /// Dynamic-EID ranges detected on this port: their hosts are on-link here, whatever the
    /// port's own subnets (a moved host keeps its address).
    pub dynamic_eids: Vec<IpNet>,
    /// The extended-subnet ones among them: the sources of packets forwarded from them are
    /// reported to the control core ([`Event::SourceSeen`]), which detects hosts that way.
    pub extended: Vec<IpNet>,
}

/// Which LISP functions the appliance performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Functions {
    /// Encapsulate traffic from EID ports.
    pub itr: bool,
    /// Decapsulate LISP data to our RLOCs and deliver it to EID ports.
    pub etr: bool,
    /// Encapsulate traffic arriving on RLOC ports toward EIDs (from non-LISP sites).
    pub pitr: bool,
    /// Decapsulate and forward natively toward non-LISP destinations.
    pub petr: bool,
}

/// Everything the workers share. It never changes in place: a live reload publishes a new one
/// ([`PreparedPlan`]), which each worker adopts between two bursts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub ports: Vec<PortPlan>,
    pub rlocs: Vec<IpAddr>,
    /// Proxy-ETRs for destinations with a native-forward entry (use-petr); first per family.
    pub petrs: Vec<IpAddr>,
    pub functions: Functions,
    /// Split DF-clear IPv4 packets that do not fit the path into fragments (RFC 9300 7.1,
    /// stateless: the inner packet is fragmented, each fragment encapsulated); else drop them.
    pub fragment: bool,
    pub miss_policy: MissPolicy,
    /// Packets a worker holds while their destinations are resolved (miss policy queue).
    pub hold_capacity: usize,
    /// How long a packet is held before it is dropped.
    pub hold_timeout_ms: u64,
    /// Shortest interval between two reports of the same missing destination (RFC 9301
    /// section 5.3: one Map-Request per second per destination).
    pub miss_interval_ms: u64,
    /// Most miss reports (and neighbour requests) per second per worker.
    pub miss_reports_per_sec: u32,
}

impl Plan {
    fn index_of_dpdk_port(&self, dpdk_port: u16) -> Option<usize> {
        self.ports.iter().position(|p| p.dpdk_port == dpdk_port)
    }

    fn source_rloc(&self, v6: bool) -> Option<IpAddr> {
        self.rlocs.iter().copied().find(|r| r.is_ipv6() == v6)
    }

    /// The PETR to use: the first one we have a source RLOC for (the underlay's family, not
    /// the inner packet's, decides).
    fn petr(&self) -> Option<IpAddr> {
        self.petrs
            .iter()
            .copied()
            .find(|p| self.rlocs.iter().any(|r| r.is_ipv6() == p.is_ipv6()))
    }

    /// Whether `ip` is on-link on port `port`: in one of its subnets or, on an EID port, in
    /// one of its dynamic-EID ranges.
    pub fn on_link(&self, port: usize, ip: IpAddr) -> bool {
        let p = &self.ports[port];
        p.addresses.iter().any(|n| n.contains(&ip))
            || p.dynamic_eids.iter().any(|n| n.contains(&ip))
    }
}

/// Why a frame goes to the control core, and what it needs to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Punt {
    pub reason: Reason,
    /// For [`Reason::PuntTooBig`]: the largest inner packet that fits (the MTU to announce in
    /// ICMP Fragmentation Needed / Packet Too Big); 0 otherwise.
    pub mtu: u16,
}

/// The plan's addresses and routes in the form the per-packet path reads: integers in small
/// arrays instead of `IpAddr` and `IpNet` behind vectors of ports.
struct Fast {
    local_v4: Vec<u32>,
    /// One bit per IPv4 local address ([`local_bloom_bit`]): most destinations are ruled out by one
    /// test instead of a scan.
    local_v4_bloom: u64,
    local_v6: Vec<u128>,
    rloc_v4: Vec<u32>,
    rloc_v6: Vec<u128>,
    /// Our first RLOC of each family (outer source address).
    src_v4: Option<u32>,
    src_v6: Option<u128>,
    /// RLOC-port subnets: (network, mask, port).
    onlink_v4: Vec<(u32, u32, usize)>,
    onlink_v6: Vec<(u128, u128, usize)>,
    /// The first RLOC port with a gateway of each family.
    gw_v4: Option<(usize, IpAddr)>,
    gw_v6: Option<(usize, IpAddr)>,
    /// The instance-IDs of the EID ports, each once: LISP data of another instance is not
    /// delivered.
    eid_iids: Vec<u32>,
}

impl Fast {
    fn new(plan: &Plan) -> Self {
        let mut f = Fast {
            local_v4: Vec::new(),
            local_v4_bloom: 0,
            local_v6: Vec::new(),
            rloc_v4: Vec::new(),
            rloc_v6: Vec::new(),
            src_v4: None,
            src_v6: None,
            onlink_v4: Vec::new(),
            onlink_v6: Vec::new(),
            gw_v4: None,
            gw_v6: None,
            eid_iids: Vec::new(),
        };
        for r in &plan.rlocs {
            match r {
                IpAddr::V4(a) => {
                    f.rloc_v4.push(u32::from(*a));
                    f.local_v4.push(u32::from(*a));
                    f.src_v4.get_or_insert(u32::from(*a));
                }
                IpAddr::V6(a) => {
                    f.rloc_v6.push(u128::from(*a));
                    f.local_v6.push(u128::from(*a));
                    f.src_v6.get_or_insert(u128::from(*a));
                }
            }
        }
        for (i, p) in plan.ports.iter().enumerate() {
            for n in &p.addresses {
                match n {
                    IpNet::V4(n) => {
                        f.local_v4.push(u32::from(n.addr()));
                        if p.role == PortRole::Rloc {
                            f.onlink_v4
                                .push((u32::from(n.network()), u32::from(n.netmask()), i));
                        }
                    }
                    IpNet::V6(n) => {
                        f.local_v6.push(u128::from(n.addr()));
                        if p.role == PortRole::Rloc {
                            f.onlink_v6
                                .push((u128::from(n.network()), u128::from(n.netmask()), i));
                        }
                    }
                }
            }
            if p.role == PortRole::Eid && !f.eid_iids.contains(&p.iid) {
                f.eid_iids.push(p.iid);
            }
            if p.role == PortRole::Rloc {
                match p.gateway {
                    Some(g @ IpAddr::V4(_)) if f.gw_v4.is_none() => f.gw_v4 = Some((i, g)),
                    Some(g @ IpAddr::V6(_)) if f.gw_v6.is_none() => f.gw_v6 = Some((i, g)),
                    _ => {}
                }
            }
        }
        f.local_v4_bloom = f.local_v4.iter().fold(0, |b, a| b | local_bloom_bit(*a));
        f
    }

    /// The RLOC port toward `ip` and the next hop to resolve: the RLOC itself when on-link,
    /// else the port's gateway.
    #[inline(always)]
    fn rloc_route(&self, ip: &IpAddr) -> Option<(usize, IpAddr)> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(*a);
                match self.onlink_v4.iter().find(|(n, m, _)| a & m == *n) {
                    Some((_, _, p)) => Some((*p, IpAddr::V4(a.into()))),
                    None => self.gw_v4,
                }
            }
            IpAddr::V6(a) => {
                let a = u128::from(*a);
                match self.onlink_v6.iter().find(|(n, m, _)| a & m == *n) {
                    Some((_, _, p)) => Some((*p, IpAddr::V6(a.into()))),
                    None => self.gw_v6,
                }
            }
        }
    }
}

impl LocalAddresses for Fast {
    #[inline(always)]
    fn is_local(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.local_v4_bloom & local_bloom_bit(a) != 0 && self.local_v4.contains(&a)
            }
            IpAddr::V6(a) => self.local_v6.contains(&u128::from(a)),
        }
    }
    #[inline(always)]
    fn is_rloc(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.rloc_v4.contains(&u32::from(a)),
            IpAddr::V6(a) => self.rloc_v6.contains(&u128::from(a)),
        }
    }
}

/// What a worker tells the control core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// No mapping for this EID: send a Map-Request.
    Miss { iid: u32, eid: IpAddr },
    /// No MAC for this next hop on this port (index in the plan): ARP / ND for it.
    NeighborMiss { port: usize, ip: IpAddr },
    /// LISP data from the site of EID `eid` carried locator-status-bits `lsb` (RFC 9300 10:
    /// bit i says whether that site's i-th locator is up); reported when they change for the
    /// sending RLOC, and every 10 s.
    LocatorStatus {
        iid: u32,
        eid: IpAddr,
        lsb: u32,
        /// How many bits `lsb` has: 8 with an instance-ID, else 32.
        width: u32,
    },
    /// A packet from `ip` at `mac`, in an extended-subnet range of port `port`, was routed
    /// through us: the host is here (reported at most every 10 s per source).
    SourceSeen {
        port: usize,
        ip: IpAddr,
        mac: [u8; 6],
    },
}

/// What one call of [`Pipeline::process`] produced. The caller empties it after each call.
pub struct Outputs<B> {
    /// Frames to send, per port (plan order).
    pub tx: Vec<ArrayVec<B, MAX_OUT>>,
    /// Frames for the control core, with why.
    pub punts: ArrayVec<(Punt, B), MAX_BURST>,
    pub events: ArrayVec<Event, MAX_OUT>,
}

impl<B> Outputs<B> {
    pub fn new(ports: usize) -> Self {
        Outputs {
            tx: (0..ports).map(|_| ArrayVec::new()).collect(),
            punts: ArrayVec::new(),
            events: ArrayVec::new(),
        }
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.punts.is_empty() && self.events.is_empty() && self.tx.iter().all(|t| t.is_empty())
    }
}

struct Held<B> {
    pkt: B,
    info: IpInfo,
    in_port: usize,
    deadline_ms: u64,
}

/// Rate limit of the reports to the control core: per destination (a direct-mapped table of
/// recent keys; a collision only lets an extra report through, which the global cap bounds)
/// and per worker in one-second windows.
struct Limiter {
    slots: Box<[(u64, u64)]>,
    interval_ms: u64,
    per_sec: u32,
    /// One-second windows per kind (0: misses, 1: neighbour requests), so a flood of one kind
    /// cannot use up the other's budget.
    window_start: [u64; 2],
    in_window: [u32; 2],
}

const LIMITER_SLOTS: usize = 4096;

/// Sources of extended-subnet ranges recently reported (direct-mapped: a collision only
/// reports a source again), and a per-second cap on the reports, so a host spoofing many
/// sources cannot flood the control core.
struct SourceReports {
    slots: Box<[(u64, u64)]>,
    window_start: u64,
    in_window: u32,
}

const SOURCE_SLOTS: usize = 1024;
/// Sending RLOCs whose locator-status-bits a worker remembers (direct-mapped).
const LSB_SLOTS: usize = 256;
/// Unchanged locator-status-bits are reported again after this long.
const LSB_REPORT_MS: u64 = 10_000;
/// A source is reported again after this long (the control core's proof of life).
const SOURCE_REPORT_MS: u64 = 10_000;
/// Most source reports per second per worker.
const SOURCE_REPORTS_PER_SEC: u32 = 1_000;

impl SourceReports {
    fn new() -> Self {
        SourceReports {
            slots: vec![(u64::MAX, 0); SOURCE_SLOTS].into_boxed_slice(),
            window_start: 0,
            in_window: 0,
        }
    }

    /// Whether `ip` is to be reported now (and records it).
    fn due(&mut self, ip: IpAddr, now_ms: u64) -> bool {
        let key = Limiter::key(2, 0, ip);
        let slot = &mut self.slots[(key >> 54) as usize % SOURCE_SLOTS];
        if slot.0 == key && now_ms.saturating_sub(slot.1) < SOURCE_REPORT_MS {
            return false;
        }
        if now_ms.saturating_sub(self.window_start) >= 1000 {
            self.window_start = now_ms;
            self.in_window = 0;
        }
        if self.in_window >= SOURCE_REPORTS_PER_SEC {
            return false;
        }
        self.in_window += 1;
        *slot = (key, now_ms);
        true
    }
}

/// Map-Requests and ECMs (LISP control types 1 and 8) a worker punts per second, at most.
pub const MAP_REQUEST_PUNTS_PER_SEC: u32 = 10_000;
/// ARP and ND frames a worker punts per second, at most.
pub const ARP_ND_PUNTS_PER_SEC: u32 = 10_000;

/// Per-worker budgets of the punts a flood can come as: Map-Requests (anyone can send them)
/// and ARP/ND. Registrations, notifies and replies are not limited here, so a flood of
/// requests cannot crowd them out of the punt ring.
#[derive(Default)]
struct PuntBudget {
    window_start: [u64; 2],
    in_window: [u32; 2],
}

impl PuntBudget {
    fn allow(&mut self, r: Reason, frame: &[u8], now_ms: u64) -> bool {
        let (k, max) = match r {
            Reason::PuntArp | Reason::PuntNd => (1, ARP_ND_PUNTS_PER_SEC),
            Reason::PuntLispControl if matches!(lisp_control_type(frame), Some(1 | 8)) => {
                (0, MAP_REQUEST_PUNTS_PER_SEC)
            }
            _ => return true,
        };
        if now_ms.saturating_sub(self.window_start[k]) >= 1000 {
            self.window_start[k] = now_ms;
            self.in_window[k] = 0;
        }
        if self.in_window[k] >= max {
            return false;
        }
        self.in_window[k] += 1;
        true
    }
}

/// The LISP control message type (first 4 bits of the UDP payload) of a frame classify
/// punted as LISP control; `None` when the frame is too short.
fn lisp_control_type(frame: &[u8]) -> Option<u8> {
    let ip = frame.get(ETH_LEN..)?;
    let l4 = match ip.first()? >> 4 {
        4 => usize::from(ip[0] & 0x0f) * 4,
        6 => 40,
        _ => return None,
    };
    Some(ip.get(l4 + 8)? >> 4)
}

impl Limiter {
    fn new(interval_ms: u64, per_sec: u32) -> Self {
        Limiter {
            slots: vec![(u64::MAX, 0); LIMITER_SLOTS].into_boxed_slice(),
            interval_ms,
            per_sec,
            window_start: [0; 2],
            in_window: [0; 2],
        }
    }

    fn key(kind: u64, scope: u32, ip: IpAddr) -> u64 {
        let a = match ip {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let v = u128::from(a);
                (v as u64) ^ ((v >> 64) as u64).rotate_left(17) ^ 1 << 63
            }
        };
        (a ^ u64::from(scope) << 33 ^ kind << 62).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Whether a report of `kind` (as given to [`Limiter::key`]) for `key` may go now (and
    /// records it).
    fn allow(&mut self, kind: usize, key: u64, now_ms: u64) -> bool {
        let slot = &mut self.slots[(key >> 52) as usize % LIMITER_SLOTS];
        if slot.0 == key && now_ms.saturating_sub(slot.1) < self.interval_ms {
            return false;
        }
        let k = kind.min(1);
        if now_ms.saturating_sub(self.window_start[k]) >= 1000 {
            self.window_start[k] = now_ms;
            self.in_window[k] = 0;
        }
        if self.in_window[k] >= self.per_sec {
            return false;
        }
        self.in_window[k] += 1;
        *slot = (key, now_ms);
        true
    }
}

/// A plan with what the per-packet path derives from it, built away from the workers (on the
/// control core), so that a worker adopts it ([`Pipeline::adopt`]) by swapping three pointers:
/// no allocation, no lock. The publisher keeps a clone until [`PreparedPlan::is_unshared`]
/// says every worker let go of it, so the memory is also freed away from the workers.
#[derive(Clone)]
pub struct PreparedPlan {
    plan: Arc<Plan>,
    fast: Arc<Fast>,
    views: Arc<[PortView]>,
}

impl PreparedPlan {
    pub fn new(plan: Arc<Plan>) -> Self {
        let views = plan
            .ports
            .iter()
            .map(|p| PortView {
                mac: p.mac,
                forward: match p.role {
                    PortRole::Eid => plan.functions.itr,
                    PortRole::Rloc => plan.functions.pitr,
                },
            })
            .collect();
        let fast = Arc::new(Fast::new(&plan));
        PreparedPlan { plan, fast, views }
    }

    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Nobody but this value holds any part of it (the workers moved on to a newer plan).
    pub fn is_unshared(&self) -> bool {
        Arc::strong_count(&self.plan) == 1
            && Arc::strong_count(&self.fast) == 1
            && Arc::strong_count(&self.views) == 1
    }

    /// Hands this plan to every worker's queue (each takes it with [`Pipeline::take_plan`]
    /// before its next burst). A plan a worker has not taken yet is superseded: it comes back
    /// from the queue and is dropped here, on the publisher's core.
    pub fn publish(&self, queues: &[Arc<ArrayQueue<PreparedPlan>>]) {
        for q in queues {
            drop(q.force_push(self.clone()));
        }
    }
}

/// One worker's pipeline.
pub struct Pipeline<B> {
    plan: Arc<Plan>,
    fast: Arc<Fast>,
    views: Arc<[PortView]>,
    cache: MapCacheReader,
    neighbors: NeighborReader,
    st: State<B>,
    scratch: Box<Scratch>,
    /// Whether IPv4 packets may take the lean path (tests compare it with the general one).
    lean: bool,
}

/// Per-burst arrays, kept between bursts so that none is cleared per burst: every slot a
/// burst reads was written earlier in the same burst.
struct Scratch {
    infos: [IpInfo; MAX_BURST],
    r4: [Packed; MAX_BURST],
    r6: [Resolution; MAX_BURST],
    at: [u8; MAX_BURST],
    /// The lean path's packets: destination, flow hash, lookup result.
    lean_dst: [u32; MAX_BURST],
    lean_hash: [u32; MAX_BURST],
    lean_r4: [Packed; MAX_BURST],
    /// The lean path's decapsulated packets: inner destination, instance-ID.
    lean_dec_dst: [u32; MAX_BURST],
    lean_dec_iid: [u32; MAX_BURST],
    /// Per lean decapsulated packet, its slot in the host memo, or [`NO_SLOT`] for a lookup.
    lean_dec_at: [u16; MAX_BURST],
    /// The inner destinations the host memo did not know, to look up in one batch.
    lean_dec_miss: [u32; MAX_BURST],
    /// The next hops of a burst's decapsulated packets, IPv4 and IPv6.
    n4: [Option<Neighbor>; MAX_BURST],
    n6: [Option<Neighbor>; MAX_BURST],
}

/// The pipeline's mutable state apart from the table readers (borrowed beside their
/// snapshots).
struct State<B> {
    plan: Arc<Plan>,
    fast: Arc<Fast>,
    ipv4_id: u16,
    limiter: Limiter,
    budget: PuntBudget,
    sources: SourceReports,
    /// Locator-status-bits last reported per sending RLOC: (key, bits, when).
    lsb_seen: Box<[(u64, u32, u64)]>,
    hold: Vec<Held<B>>,
    next_hold_check: u64,
    counts: Counts,
    /// Outer headers per IPv4 RLOC and next hops per decapsulated host, kept across bursts
    /// while the neighbour table and the plan stay as they were (see [`RlocMemo`]).
    memo: RlocMemo,
}

/// What every packet to one IPv4 RLOC shares, worked out once: the port, the Ethernet header,
/// and the outer IPv4 header's constant words.
#[derive(Clone, Copy, Default)]
struct OuterV4 {
    /// The memo's stamp when it was made; an older one is stale ([`RlocMemo`]).
    stamp: u64,
    rloc: u32,
    /// The outer IPv4 header checksum's constant part ([`outer_v4_sum`]).
    sum: u32,
    port: u16,
    /// The largest inner packet that fits the port's MTU.
    max_inner: u16,
    eth: [u8; ETH_LEN],
}

/// Slots of [`RlocMemo`] (a power of two): direct-mapped by RLOC.
const MEMO_BITS: u32 = 10;
const MEMO_SLOTS: usize = 1 << MEMO_BITS;

/// Where decapsulated IPv4 packets to one host of one instance go, worked out once by
/// [`Ctx::deliver`]: the port, the Ethernet header and the port's MTU.
#[derive(Clone, Copy, Default)]
struct HostV4 {
    /// The memo's stamp when it was made; an older one is stale ([`RlocMemo`]).
    stamp: u64,
    /// [`HostV4::key`] of the inner destination and instance-ID.
    key: u64,
    eth: [u8; ETH_LEN],
    port: u16,
    /// The largest IP packet the port sends unfragmented.
    mtu: u16,
}

impl HostV4 {
    #[inline(always)]
    fn key(dst: u32, iid: u32) -> u64 {
        u64::from(iid) << 32 | u64::from(dst)
    }

    #[inline(always)]
    fn slot(dst: u32, iid: u32) -> usize {
        (dst.wrapping_add(iid.wrapping_mul(0x0100_0193))
            .wrapping_mul(0x9E37_79B1)
            >> (32 - HOST_MEMO_BITS)) as usize
    }
}

/// Slots of the host memo (a power of two): direct-mapped by destination and instance-ID.
const HOST_MEMO_BITS: u32 = 10;
const HOST_MEMO_SLOTS: usize = 1 << HOST_MEMO_BITS;
/// No host memo slot: the packet's neighbour is looked up.
const NO_SLOT: u16 = u16::MAX;
const _: () = assert!(HOST_MEMO_SLOTS < NO_SLOT as usize);
/// Bursts the host memo is set aside for when it does not pay.
const HOST_MEMO_REST: u32 = 64;
/// Bursts it is kept after a rest (or a new plan or neighbour), however few packets hit: the
/// first fills it.
const HOST_MEMO_GRACE: u32 = 2;

/// Memo of outer headers by IPv4 RLOC, so packets to one RLOC route and look up the next hop
/// once, not once each; and of the next hops of decapsulated packets by inner IPv4
/// destination, so packets to one host look up its neighbour once. Valid while the neighbour
/// table and the plan stay as they were: a change to either starts a new stamp, and slots of
/// older stamps are ignored, not cleared.
struct RlocMemo {
    stamp: u64,
    /// The neighbour table's generation the stamp was started at.
    neighbors_seen: u64,
    slots: Box<[OuterV4; MEMO_SLOTS]>,
    hosts: Box<[HostV4; HOST_MEMO_SLOTS]>,
    /// Bursts left before the host memo is consulted again: 0 while it is in use. Traffic
    /// to more hosts than it holds gains nothing from it and pays its misses, so a burst
    /// where fewer than a quarter of the packets hit sets it aside for the next
    /// [`HOST_MEMO_REST`] bursts with lean decapsulated packets.
    hosts_rest: u32,
    /// Bursts the host memo is kept whatever its hits: after a rest it has to fill first.
    hosts_grace: u32,
}

impl RlocMemo {
    fn new() -> Self {
        RlocMemo {
            stamp: 1,
            neighbors_seen: u64::MAX,
            slots: Box::new([OuterV4::default(); MEMO_SLOTS]),
            hosts: Box::new([HostV4::default(); HOST_MEMO_SLOTS]),
            hosts_rest: 0,
            hosts_grace: HOST_MEMO_GRACE,
        }
    }

    /// Whether this burst consults the host memo.
    #[inline(always)]
    fn hosts_in_use(&mut self) -> bool {
        if self.hosts_rest == 0 {
            return true;
        }
        self.hosts_rest -= 1;
        if self.hosts_rest == 0 {
            self.hosts_grace = HOST_MEMO_GRACE;
        }
        false
    }

    /// A burst that consulted the host memo: `hits` of `n` packets were sent from it.
    #[inline(always)]
    fn hosts_judge(&mut self, hits: usize, n: usize) {
        if self.hosts_grace > 0 {
            self.hosts_grace -= 1;
        } else if hits * 4 < n {
            self.hosts_rest = HOST_MEMO_REST;
        }
    }

    /// Called once per burst: a new stamp when the neighbour table has changed.
    #[inline(always)]
    fn check(&mut self, neighbors_generation: u64) {
        if neighbors_generation != self.neighbors_seen {
            self.neighbors_seen = neighbors_generation;
            self.renew();
        }
    }

    /// Starts a new stamp: every slot made before is stale.
    fn renew(&mut self) {
        self.stamp += 1;
        if self.hosts_rest == 0 {
            self.hosts_grace = HOST_MEMO_GRACE;
        }
    }

    #[inline(always)]
    fn slot(rloc: u32) -> usize {
        (rloc.wrapping_mul(0x9E37_79B1) >> (32 - MEMO_BITS)) as usize
    }
}

/// The next-hop MAC of the first off-link destination of a burst, reused for the rest.
struct GatewayCache {
    ip: Option<(usize, IpAddr)>,
    mac: Option<[u8; 6]>,
}

impl<B: PacketBuf> Pipeline<B> {
    pub fn new(plan: Arc<Plan>, cache: MapCacheReader, neighbors: NeighborReader) -> Self {
        Self::with_prepared(PreparedPlan::new(plan), cache, neighbors)
    }

    /// [`Pipeline::new`] over a plan prepared already (shared with the publisher).
    pub fn with_prepared(
        p: PreparedPlan,
        cache: MapCacheReader,
        neighbors: NeighborReader,
    ) -> Self {
        let PreparedPlan { plan, fast, views } = p;
        Pipeline {
            st: State {
                limiter: Limiter::new(plan.miss_interval_ms, plan.miss_reports_per_sec),
                budget: PuntBudget::default(),
                sources: SourceReports::new(),
                lsb_seen: vec![(u64::MAX, 0, 0); LSB_SLOTS].into_boxed_slice(),
                hold: Vec::with_capacity(plan.hold_capacity),
                ipv4_id: 0,
                next_hold_check: 0,
                counts: Counts::default(),
                memo: RlocMemo::new(),
                plan: Arc::clone(&plan),
                fast: Arc::clone(&fast),
            },
            views,
            cache,
            neighbors,
            fast,
            plan,
            scratch: Box::new(Scratch {
                infos: [IpInfo::EMPTY; MAX_BURST],
                r4: [Packed::MISS; MAX_BURST],
                r6: [Resolution::Miss; MAX_BURST],
                at: [0; MAX_BURST],
                lean_dst: [0; MAX_BURST],
                lean_hash: [0; MAX_BURST],
                lean_r4: [Packed::MISS; MAX_BURST],
                lean_dec_dst: [0; MAX_BURST],
                lean_dec_iid: [0; MAX_BURST],
                lean_dec_at: [NO_SLOT; MAX_BURST],
                lean_dec_miss: [0; MAX_BURST],
                n4: [None; MAX_BURST],
                n6: [None; MAX_BURST],
            }),
            lean: true,
        }
    }

    /// Sends every packet down the general path (`false`), which the lean path must match
    /// byte for byte: for tests and benchmarks that compare the two.
    #[doc(hidden)]
    pub fn set_lean_path(&mut self, on: bool) {
        self.lean = on;
    }

    /// The counts since the last call (and starts a new span).
    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.st.counts)
    }

    /// The counts since the last [`Pipeline::take_counts`].
    pub fn counts(&self) -> &Counts {
        &self.st.counts
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Takes a new plan between two bursts (live reload): dynamic-EID and extended-subnet
    /// ranges, PETRs. Ports, functions and sizes are the same as the running plan's (a reload
    /// that changes them is refused), so held packets and counters carry on. Only pointers
    /// move; the old plan's memory is freed by whoever holds it last (the publisher).
    pub fn adopt(&mut self, p: PreparedPlan) {
        debug_assert_eq!(p.plan.ports.len(), self.plan.ports.len());
        self.st.plan = Arc::clone(&p.plan);
        self.st.fast = Arc::clone(&p.fast);
        // Routes, RLOCs and port MACs come from the plan: the outer headers are made anew.
        self.st.memo.renew();
        self.plan = p.plan;
        self.fast = p.fast;
        self.views = p.views;
    }

    /// Takes the newest plan waiting in `queue` (what the control core published on a
    /// reload), if any: the worker calls it between two bursts, so the next burst runs it.
    /// Usually two loads of lines written only on a reload (`is_empty`; an empty `pop` would
    /// run a full memory fence every call); no allocation, no lock. A plan passed over (two
    /// reloads between two bursts) is only let go of here: its publisher still holds it and
    /// frees it.
    pub fn take_plan(&mut self, queue: &ArrayQueue<PreparedPlan>) -> bool {
        if queue.is_empty() {
            return false;
        }
        let mut newest = None;
        while let Some(p) = queue.pop() {
            newest = Some(p);
        }
        match newest {
            Some(p) => {
                self.adopt(p);
                true
            }
            None => false,
        }
    }

    /// Packets held now.
    pub fn held(&self) -> usize {
        self.st.hold.len()
    }

    /// The worker is going idle: stop holding up the map-cache writer's reclamation.
    pub fn offline(&mut self) {
        self.cache.offline();
        self.neighbors.offline();
    }

    /// Processes a burst received on port `in_port` (plan index); `pkts` is emptied. Outputs
    /// are appended to `out`, which must have room for a burst (the caller empties it after
    /// every call).
    pub fn process(
        &mut self,
        in_port: usize,
        pkts: &mut ArrayVec<B, MAX_BURST>,
        now_ms: u64,
        out: &mut Outputs<B>,
    ) {
        let plan = &*self.plan;
        let Some(view) = self.views.get(in_port).copied() else {
            self.st.counts.add(Reason::DropNotForUs, pkts.len() as u64);
            pkts.clear();
            return;
        };
        let iid = plan.ports[in_port].iid;
        let mut fwd: ArrayVec<B, MAX_BURST> = ArrayVec::new();
        let Scratch {
            infos,
            r4,
            r6,
            at,
            lean_dst,
            lean_hash,
            lean_r4,
            lean_dec_dst,
            lean_dec_iid,
            lean_dec_at,
            lean_dec_miss,
            n4,
            n6,
        } = &mut *self.scratch;
        let mut dec: ArrayVec<Decapped<B>, MAX_BURST> = ArrayVec::new();
        let mut gw = GatewayCache {
            ip: None,
            mac: None,
        };
        let neighbors = self.neighbors.snapshot();
        let cache = self.cache.snapshot();
        self.st.memo.check(neighbors.generation());
        // Held packets whose mapping arrived go first: they are older than this burst.
        if !self.st.hold.is_empty() && now_ms >= self.st.next_hold_check {
            self.st.next_hold_check = now_ms + 1;
            self.st
                .recheck_held(&cache, &neighbors, &mut gw, now_ms, out);
        }
        // Extended-subnet ranges of this port (their sources are reported; usually none).
        let extended = &plan.ports[in_port].extended;
        // Every frame's headers start loading before the first is parsed.
        for pkt in pkts.iter() {
            pkt.prefetch();
        }
        // Counted in registers, added once per burst.
        let rx = pkts.len() as u64;
        let mut rx_bytes = 0u64;
        // The lean path: IPv4 packets to forward that need nothing but a lookup and an IPv4
        // encapsulation (the common case) are found with a few word compares and go through
        // a loop of their own; anything else, or anything the lean path cannot finish, takes
        // the general path, which classifies and counts it in full.
        let lean = self.lean && view.forward && extended.is_empty() && self.fast.src_v4.is_some();
        let mac = mac_word(view.mac);
        let (local, bloom) = (&self.fast.local_v4[..], self.fast.local_v4_bloom);
        let lean_dec = self.lean && (plan.functions.etr || plan.functions.petr);
        let lean_table = if lean { cache.v4_table(iid) } else { None };
        let mut lean_pkts: ArrayVec<B, MAX_BURST> = ArrayVec::new();
        let mut lean_dec_pkts: ArrayVec<B, MAX_BURST> = ArrayVec::new();
        for mut pkt in pkts.drain(..) {
            rx_bytes += pkt.data().len() as u64;
            if lean && !pkt.is_chained() {
                if let Some((dst, hash)) =
                    lean_v4(pkt.data(), mac, local, bloom, pkt.rx_ip_checksum())
                {
                    if let Some(t) = lean_table {
                        cache.prefetch_v4(t, dst);
                    }
                    let k = lean_pkts.len();
                    lean_dst[k] = dst;
                    lean_hash[k] = hash;
                    lean_pkts.push(pkt);
                    continue;
                }
            }
            if pkt.is_chained() {
                self.st.counts.inc(Reason::DropChained);
                continue;
            }
            let slot = fwd.len();
            // LISP data to one of our RLOCs is recognised without the full classification,
            // and the common case (IPv4 in IPv4, no locator-status-bits) stripped here too.
            let class = if lean_dec && lean_decap_v4(pkt.data(), mac, &self.fast.rloc_v4) {
                match lean_strip(&self.fast.eid_iids, pkt) {
                    Ok((p, dst, iid)) => {
                        let k = lean_dec_pkts.len();
                        lean_dec_dst[k] = dst;
                        lean_dec_iid[k] = iid;
                        lean_dec_pkts.push(p);
                        continue;
                    }
                    Err(p) => {
                        pkt = p;
                        Class::Decap
                    }
                }
            } else {
                classify(pkt.data(), &view, &*self.fast, &mut infos[slot])
            };
            match class {
                Class::Forward => {
                    if infos[slot].dst.is_ipv4() && !ipv4_header_ok(&pkt) {
                        self.st.counts.inc(Reason::DropBadChecksum);
                    } else if infos[slot].ttl <= 1 {
                        punt(out, Reason::PuntTtlExpired, pkt, &mut self.st.counts);
                    } else {
                        if !extended.is_empty() {
                            self.st
                                .source_seen(pkt.data(), in_port, extended, now_ms, out);
                        }
                        fwd.push(pkt);
                    }
                }
                Class::Decap => {
                    if let Some(d) = decap_strip(plan, pkt, &mut self.st.counts) {
                        if let Some((rloc, src, lsb, width)) = d.status {
                            self.st
                                .locator_status(d.iid, rloc, src, lsb, width, now_ms, out);
                        }
                        dec.push(d);
                    }
                }
                Class::Punt(r) => {
                    if self.st.budget.allow(r, pkt.data(), now_ms) {
                        punt(out, r, pkt, &mut self.st.counts);
                    } else {
                        self.st.counts.inc(Reason::DropPuntRateLimited);
                    }
                }
                Class::Drop(r) => self.st.counts.inc(r),
            }
        }
        self.st.counts.add(Reason::Rx, rx);
        self.st.counts.add(Reason::RxBytes, rx_bytes);
        if !lean_dec_pkts.is_empty() {
            // Hosts the memo knows are sent from it; the others' neighbours are looked up in
            // one batch. Then every packet goes in the order received.
            let n = lean_dec_pkts.len();
            let use_memo = self.st.memo.hosts_in_use();
            let mut misses = 0;
            if use_memo {
                let stamp = self.st.memo.stamp;
                let hosts = &self.st.memo.hosts;
                for (i, pkt) in lean_dec_pkts.iter().enumerate() {
                    let (dst, iid) = (lean_dec_dst[i], lean_dec_iid[i]);
                    let at = HostV4::slot(dst, iid);
                    let h = &hosts[at];
                    let ip_len = pkt.data().len().saturating_sub(ETH_LEN);
                    if h.stamp == stamp
                        && h.key == HostV4::key(dst, iid)
                        && ip_len <= usize::from(h.mtu)
                    {
                        lean_dec_at[i] = at as u16;
                    } else {
                        lean_dec_at[i] = NO_SLOT;
                        lean_dec_miss[misses] = dst;
                        misses += 1;
                    }
                }
                self.st.memo.hosts_judge(n - misses, n);
                if misses > 0 {
                    neighbors.lookup_v4_batch(&lean_dec_miss[..misses], &mut n4[..misses]);
                }
            } else {
                neighbors.lookup_v4_batch(&lean_dec_dst[..n], &mut n4[..n]);
            }
            let mut ctx = self.st.ctx(&neighbors, &mut gw, now_ms);
            let (mut looked_up, mut decaps) = (0, 0);
            // What the misses teach the memo is written after the loop: a slot the first pass
            // found for one host must not be taken over by another before its packets leave.
            let mut learned: ArrayVec<(u32, u32, usize, [u8; 6]), MAX_BURST> = ArrayVec::new();
            for (i, mut pkt) in lean_dec_pkts.drain(..).enumerate() {
                let (dst, iid) = (lean_dec_dst[i], lean_dec_iid[i]);
                if use_memo && lean_dec_at[i] != NO_SLOT {
                    let h = &ctx.memo.hosts[usize::from(lean_dec_at[i])];
                    let port = usize::from(h.port);
                    pkt.data_mut()[..ETH_LEN].copy_from_slice(&h.eth);
                    decaps += 1;
                    ctx.send(port, pkt, out);
                    continue;
                }
                let d = Decapped {
                    pkt,
                    dst: IpAddr::V4(Ipv4Addr::from(dst)),
                    iid,
                    status: None,
                };
                let sent = ctx.deliver(d, n4[looked_up], out);
                looked_up += 1;
                if let (true, Some((port, mac))) = (use_memo, sent) {
                    learned.push((dst, iid, port, mac));
                }
            }
            for (dst, iid, port, mac) in learned {
                ctx.remember_host(dst, iid, port, mac);
            }
            ctx.counts.add(Reason::Decap, decaps);
        }
        if !dec.is_empty() {
            // The burst's next hops in one batch per family, so the lookups' cache misses
            // overlap.
            let mut v4: ArrayVec<u32, MAX_BURST> = ArrayVec::new();
            let mut v6: ArrayVec<u128, MAX_BURST> = ArrayVec::new();
            for d in &dec {
                match d.dst {
                    IpAddr::V4(a) => v4.push(u32::from(a)),
                    IpAddr::V6(a) => v6.push(u128::from(a)),
                }
            }
            neighbors.lookup_v4_batch(&v4, &mut n4[..v4.len()]);
            if !v6.is_empty() {
                neighbors.lookup_v6_batch(&v6, &mut n6[..v6.len()]);
            }
            let (mut i4, mut i6) = (0, 0);
            let mut ctx = self.st.ctx(&neighbors, &mut gw, now_ms);
            for d in dec.drain(..) {
                let n = match d.dst {
                    IpAddr::V4(_) => {
                        i4 += 1;
                        n4[i4 - 1]
                    }
                    IpAddr::V6(_) => {
                        i6 += 1;
                        n6[i6 - 1]
                    }
                };
                let _ = ctx.deliver(d, n, out);
            }
        }
        let mut missed: ArrayVec<(B, IpInfo), MAX_BURST> = ArrayVec::new();
        if !lean_pkts.is_empty() {
            let n = lean_pkts.len();
            cache.resolve_v4_packed(iid, &lean_dst[..n], &lean_hash[..n], &mut lean_r4[..n]);
            let mut ctx = self.st.ctx(&neighbors, &mut gw, now_ms);
            let mut encaps = 0;
            for (i, pkt) in lean_pkts.drain(..).enumerate() {
                let p = lean_r4[i];
                let pkt = match p.rloc_v4() {
                    Some(rloc) => match ctx.encap_lean(pkt, rloc, lean_hash[i], iid) {
                        Ok((port, pkt)) => {
                            encaps += 1;
                            ctx.send(port, pkt, out);
                            continue;
                        }
                        Err(pkt) => pkt,
                    },
                    None => pkt,
                };
                // Anything else about it the general path decides, from a full classification
                // (the packet is as received).
                let mut info = IpInfo::EMPTY;
                if classify(pkt.data(), &view, &*self.fast, &mut info) != Class::Forward {
                    debug_assert!(
                        false,
                        "the lean path took a packet classify does not forward"
                    );
                    ctx.counts.inc(Reason::DropMalformed);
                    continue;
                }
                if let Err(pkt) = ctx.act(pkt, &info, iid, &cache.unpack(p), out) {
                    missed.push((pkt, info));
                }
            }
            ctx.counts.add(Reason::Encap, encaps);
        }
        if !fwd.is_empty() {
            let n = fwd.len();
            resolve(&cache, iid, &infos[..n], r4, r6, at);
            let mut ctx = self.st.ctx(&neighbors, &mut gw, now_ms);
            let mut encaps = 0;
            for (i, pkt) in fwd.drain(..).enumerate() {
                let info = &infos[i];
                let r = if info.dst.is_ipv4() {
                    let p = r4[usize::from(at[i])];
                    // The common case, an IPv4 RLOC: straight to the IPv4 encapsulation.
                    if let Some(rloc) = p.rloc_v4() {
                        match ctx.encap_v4_fast(pkt, info, iid, rloc) {
                            Ok((port, pkt)) => {
                                encaps += 1;
                                ctx.send(port, pkt, out);
                            }
                            Err(pkt) => {
                                ctx.encap(pkt, info, iid, &IpAddr::V4(Ipv4Addr::from(rloc)), out)
                            }
                        }
                        continue;
                    }
                    cache.unpack(p)
                } else {
                    r6[usize::from(at[i])]
                };
                if let Err(pkt) = ctx.act(pkt, info, iid, &r, out) {
                    missed.push((pkt, *info));
                }
            }
            ctx.counts.add(Reason::Encap, encaps);
        }
        // Not `for .. in missed`: that moves the whole array (2.5 KB) even when empty.
        if !missed.is_empty() {
            for (pkt, info) in missed.drain(..) {
                self.st.miss(pkt, info, iid, in_port, now_ms, out);
            }
        }
    }
}

impl<B: PacketBuf> State<B> {
    /// Reports the source of a packet to forward when it lies in one of the receiving port's
    /// extended-subnet ranges (`frame` passed classify: its IP header is there).
    fn source_seen(
        &mut self,
        frame: &[u8],
        port: usize,
        extended: &[IpNet],
        now_ms: u64,
        out: &mut Outputs<B>,
    ) {
        let src = match u16::from_be_bytes([frame[12], frame[13]]) {
            ETHERTYPE_IPV4 => {
                let b: [u8; 4] = frame[26..30].try_into().unwrap_or([0; 4]);
                IpAddr::from(b)
            }
            _ => {
                let b: [u8; 16] = frame[22..38].try_into().unwrap_or([0; 16]);
                IpAddr::from(b)
            }
        };
        if !extended.iter().any(|n| n.contains(&src)) || !self.sources.due(src, now_ms) {
            return;
        }
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&frame[6..12]);
        if out
            .events
            .try_push(Event::SourceSeen { port, ip: src, mac })
            .is_ok()
        {
            self.counts.inc(Reason::SourceReported);
        } else {
            self.counts.inc(Reason::EventsLost);
        }
    }

    /// Reports the locator-status-bits a packet from RLOC `rloc` (source EID `eid`) carried,
    /// when they differ from the last ones of that RLOC or those are 10 s old.
    #[allow(clippy::too_many_arguments)]
    fn locator_status(
        &mut self,
        iid: u32,
        rloc: IpAddr,
        eid: IpAddr,
        lsb: u32,
        width: u32,
        now_ms: u64,
        out: &mut Outputs<B>,
    ) {
        let key = Limiter::key(3, iid, rloc);
        let slot = &mut self.lsb_seen[(key >> 56) as usize % LSB_SLOTS];
        if slot.0 == key && slot.1 == lsb && now_ms.saturating_sub(slot.2) < LSB_REPORT_MS {
            return;
        }
        if out
            .events
            .try_push(Event::LocatorStatus {
                iid,
                eid,
                lsb,
                width,
            })
            .is_ok()
        {
            *slot = (key, lsb, now_ms);
            self.counts.inc(Reason::LocatorStatusReported);
        } else {
            self.counts.inc(Reason::EventsLost);
        }
    }

    /// The per-packet context over this state, for one burst's snapshots.
    fn ctx<'a, 'b>(
        &'a mut self,
        neighbors: &'a NeighborSnapshot<'b>,
        gw: &'a mut GatewayCache,
        now_ms: u64,
    ) -> Ctx<'a, 'b> {
        Ctx {
            plan: &self.plan,
            fast: &self.fast,
            neighbors,
            gw,
            limiter: &mut self.limiter,
            ipv4_id: &mut self.ipv4_id,
            counts: &mut self.counts,
            memo: &mut self.memo,
            now_ms,
        }
    }

    /// A packet toward an unresolved destination: report it (rate-limited), then hold or
    /// drop it.
    fn miss(
        &mut self,
        pkt: B,
        info: IpInfo,
        iid: u32,
        in_port: usize,
        now_ms: u64,
        out: &mut Outputs<B>,
    ) {
        if self
            .limiter
            .allow(0, Limiter::key(0, iid, info.dst), now_ms)
        {
            if out
                .events
                .try_push(Event::Miss { iid, eid: info.dst })
                .is_ok()
            {
                self.counts.inc(Reason::MissReported);
            } else {
                self.counts.inc(Reason::EventsLost);
            }
        } else {
            self.counts.inc(Reason::MissRateLimited);
        }
        if self.plan.miss_policy == MissPolicy::Queue && self.hold.len() < self.plan.hold_capacity {
            self.counts.inc(Reason::Held);
            self.hold.push(Held {
                pkt,
                info,
                in_port,
                deadline_ms: now_ms + self.plan.hold_timeout_ms,
            });
        } else {
            self.counts.inc(Reason::DropMiss);
        }
    }

    fn recheck_held(
        &mut self,
        cache: &Snapshot<'_>,
        neighbors: &NeighborSnapshot<'_>,
        gw: &mut GatewayCache,
        now_ms: u64,
        out: &mut Outputs<B>,
    ) {
        let plan = Arc::clone(&self.plan);
        let mut i = 0;
        let mut released = 0;
        // At most this many held packets are looked at per call (every millisecond), so a
        // large hold queue under a flood of misses cannot stall the worker.
        let mut budget = 4 * MAX_BURST;
        while i < self.hold.len() && budget > 0 {
            budget -= 1;
            let h = &self.hold[i];
            let iid = plan.ports[h.in_port].iid;
            let r = cache.resolve(iid, h.info.dst, h.info.flow_hash);
            let waiting = matches!(r, Resolution::Miss | Resolution::SendMapRequest);
            if waiting && now_ms < h.deadline_ms {
                i += 1;
                continue;
            }
            if !waiting && released >= MAX_BURST {
                // Room in the output arrays is for one burst of releases per call.
                break;
            }
            // In order: packets of a flow leave as they came.
            let h = self.hold.remove(i);
            if waiting {
                self.counts.inc(Reason::DropHoldExpired);
                continue;
            }
            released += 1;
            self.counts.inc(Reason::HeldReleased);
            let mut ctx = self.ctx(neighbors, gw, now_ms);
            // Not a miss any more: act cannot hand the packet back.
            if ctx.act(h.pkt, &h.info, iid, &r, out).is_err() {
                self.counts.inc(Reason::DropMiss);
            }
        }
    }
}

fn punt<B>(out: &mut Outputs<B>, r: Reason, pkt: B, counts: &mut Counts) {
    punt_mtu(out, r, 0, pkt, counts);
}

/// Whether the IPv4 header of a frame to forward has a right checksum: the NIC's verdict when
/// it checked, else computed (classify has validated the header length).
#[inline(always)]
fn ipv4_header_ok<B: PacketBuf>(pkt: &B) -> bool {
    match pkt.rx_ip_checksum() {
        Some(ok) => ok,
        None => {
            let f = pkt.data();
            let ihl = usize::from(f[ETH_LEN] & 0x0f) * 4;
            match f.get(ETH_LEN..ETH_LEN + 20).map(<&[u8; 20]>::try_from) {
                Some(Ok(h)) if ihl == 20 => crate::wire::checksum::ipv4_header20_ok(h),
                _ => crate::wire::checksum::checksum(&f[ETH_LEN..ETH_LEN + ihl]) == 0,
            }
        }
    }
}

/// Hands a frame to the control core: counted under its reason, or as
/// `drop_punt_ring_full` when there is no room (never both).
fn punt_mtu<B>(out: &mut Outputs<B>, reason: Reason, mtu: u16, pkt: B, counts: &mut Counts) {
    if out.punts.try_push((Punt { reason, mtu }, pkt)).is_ok() {
        counts.inc(reason);
    } else {
        counts.inc(Reason::DropPuntRingFull);
    }
}

/// Batched lookups of a burst's destinations, IPv4 into `r4` and IPv6 into `r6`; `at[i]`
/// is where packet `i`'s result is (results are read in place, not copied).
fn resolve(
    cache: &Snapshot<'_>,
    iid: u32,
    infos: &[IpInfo],
    r4: &mut [Packed; MAX_BURST],
    r6: &mut [Resolution; MAX_BURST],
    at: &mut [u8; MAX_BURST],
) {
    let mut v4: ArrayVec<u32, MAX_BURST> = ArrayVec::new();
    let mut h4: ArrayVec<u32, MAX_BURST> = ArrayVec::new();
    let mut v6: ArrayVec<Ipv6Addr, MAX_BURST> = ArrayVec::new();
    let mut h6: ArrayVec<u32, MAX_BURST> = ArrayVec::new();
    for (info, a) in infos.iter().zip(at.iter_mut()) {
        match &info.dst {
            IpAddr::V4(d) => {
                *a = v4.len() as u8;
                v4.push(u32::from(*d));
                h4.push(info.flow_hash);
            }
            IpAddr::V6(d) => {
                *a = v6.len() as u8;
                v6.push(*d);
                h6.push(info.flow_hash);
            }
        }
    }
    if !v4.is_empty() {
        cache.resolve_v4_packed(iid, &v4, &h4, &mut r4[..v4.len()]);
    }
    if !v6.is_empty() {
        cache.resolve_v6(iid, &v6, &h6, &mut r6[..v6.len()]);
    }
}

struct Ctx<'a, 'b> {
    plan: &'a Plan,
    fast: &'a Fast,
    neighbors: &'a NeighborSnapshot<'b>,
    gw: &'a mut GatewayCache,
    limiter: &'a mut Limiter,
    ipv4_id: &'a mut u16,
    counts: &'a mut Counts,
    memo: &'a mut RlocMemo,
    now_ms: u64,
}

impl Ctx<'_, '_> {
    /// Acts on a lookup result. `Err(pkt)` hands a miss back to the caller.
    fn act<B: PacketBuf>(
        &mut self,
        pkt: B,
        info: &IpInfo,
        iid: u32,
        r: &Resolution,
        out: &mut Outputs<B>,
    ) -> Result<(), B> {
        match r {
            Resolution::Encapsulate(rloc) => self.encap(pkt, info, iid, rloc, out),
            Resolution::NativelyForward => match self.plan.petr() {
                Some(petr) => self.encap(pkt, info, iid, &petr, out),
                None => self.native(pkt, info, out),
            },
            Resolution::Drop => self.counts.inc(Reason::DropNegative),
            Resolution::NoUsableRloc => self.counts.inc(Reason::DropNoUsableRloc),
            Resolution::SendMapRequest | Resolution::Miss => return Err(pkt),
        }
        Ok(())
    }

    /// The MAC of next hop `ip` on port `port`; on a miss, asks the control core (rate-limited)
    /// and counts the drop.
    fn next_hop_mac(
        &mut self,
        port: usize,
        ip: IpAddr,
        out_events: &mut ArrayVec<Event, MAX_OUT>,
    ) -> Option<[u8; 6]> {
        if self.gw.ip == Some((port, ip)) {
            if let Some(m) = self.gw.mac {
                return Some(m);
            }
        }
        // Only a neighbour learned on the port the packet leaves by.
        let on_port = self
            .neighbors
            .lookup(ip)
            .filter(|n| self.plan.index_of_dpdk_port(n.port) == Some(port));
        match on_port {
            Some(n) => {
                self.gw.ip = Some((port, ip));
                self.gw.mac = Some(n.mac);
                Some(n.mac)
            }
            None => {
                self.counts.inc(Reason::DropNoNeighbor);
                if self
                    .limiter
                    .allow(1, Limiter::key(1, port as u32, ip), self.now_ms)
                    && out_events
                        .try_push(Event::NeighborMiss { port, ip })
                        .is_err()
                {
                    self.counts.inc(Reason::EventsLost);
                }
                None
            }
        }
    }

    /// Too big: DF-set IPv4 and IPv6 go up for an ICMP error announcing `mtu` (the largest
    /// inner packet that fits); the rest is fragmented into `frags` (when the plan says so and
    /// it can be) or dropped. Returns whether `frags` holds fragments to send.
    fn too_big<B: PacketBuf>(
        &mut self,
        pkt: B,
        info: &IpInfo,
        mtu: u16,
        port: usize,
        out: &mut Outputs<B>,
        frags: &mut ArrayVec<(B, IpInfo), MAX_FRAGS>,
    ) -> bool {
        if info.dont_fragment {
            punt_mtu(out, Reason::PuntTooBig, mtu, pkt, self.counts);
            false
        } else if self.plan.fragment
            && fragment_v4(
                &pkt,
                info,
                usize::from(mtu),
                out.tx[port].remaining_capacity(),
                frags,
            )
        {
            self.counts.inc(Reason::Fragmented);
            true
        } else {
            frags.clear();
            self.counts.inc(Reason::DropTooBig);
            false
        }
    }

    /// The outer header of a burst's packets to IPv4 RLOC `rloc`, from the memo or made now.
    /// `None` when the general path must handle it (no source RLOC, no route, no neighbour:
    /// it counts and reports those).
    /// Returns the memo slot (read in place: a copy of the struct, read back right after it
    /// was written, would stall on store-to-load forwarding).
    #[inline(always)]
    fn outer_v4(&mut self, rloc: u32) -> Option<usize> {
        let stamp = self.memo.stamp;
        let at = RlocMemo::slot(rloc);
        let slot = &mut self.memo.slots[at];
        if slot.stamp == stamp && slot.rloc == rloc {
            return Some(at);
        }
        let src = self.fast.src_v4?;
        let (port, nh) = self.fast.rloc_route(&IpAddr::V4(Ipv4Addr::from(rloc)))?;
        // RLOCs behind one gateway share its MAC (the burst's gateway cache).
        let mac = match self.gw.mac {
            Some(m) if self.gw.ip == Some((port, nh)) => m,
            _ => {
                let n = self.neighbors.lookup(nh)?;
                if self.plan.index_of_dpdk_port(n.port) != Some(port) {
                    return None;
                }
                self.gw.ip = Some((port, nh));
                self.gw.mac = Some(n.mac);
                n.mac
            }
        };
        let slot = &mut self.memo.slots[at];
        let mut eth = [0u8; ETH_LEN];
        write_eth(&mut eth, mac, self.plan.ports[port].mac, ETHERTYPE_IPV4);
        *slot = OuterV4 {
            stamp,
            rloc,
            // Plan indices are below DPDK's port limit.
            port: port as u16,
            eth,
            max_inner: self.plan.ports[port]
                .mtu
                .saturating_sub(encap::OUTER_V4_LEN as u16),
            sum: outer_v4_sum(src, rloc),
        };
        Some(at)
    }

    /// IPv4-underlay encapsulation of a packet that fits: `Ok((port, frame))` to send,
    /// `Err(pkt)` untouched for [`Ctx::encap`] (too big, no outer header, no headroom). Counts
    /// nothing: the caller counts what it sends.
    #[inline(always)]
    fn encap_v4_fast<B: PacketBuf>(
        &mut self,
        pkt: B,
        info: &IpInfo,
        iid: u32,
        rloc: u32,
    ) -> Result<(usize, B), B> {
        self.encap_to_v4(
            pkt,
            info.ip_len,
            info.dst.is_ipv6(),
            info.flow_hash,
            iid,
            rloc,
        )
    }

    /// [`Ctx::encap_v4_fast`] for the lean path, whose packets [`lean_v4`] accepted (an IPv4
    /// header of 20 bytes, TTL > 1, its length inside the frame).
    #[inline(always)]
    fn encap_lean<B: PacketBuf>(
        &mut self,
        pkt: B,
        rloc: u32,
        flow_hash: u32,
        iid: u32,
    ) -> Result<(usize, B), B> {
        let f = pkt.data();
        let ip_len = usize::from(u16::from_be_bytes([f[ETH_LEN + 2], f[ETH_LEN + 3]]));
        self.encap_to_v4(pkt, ip_len, false, flow_hash, iid, rloc)
    }

    /// Encapsulates the `ip_len`-byte IP packet (IPv6 if `v6`) of a frame that classify
    /// accepted (its TTL above 1) toward IPv4 RLOC `rloc`: the inner TTL is decremented and
    /// copied out, DSCP and ECN are copied (RFC 6040 normal mode), DF is set, the UDP checksum
    /// is zero (RFC 9300 5.3). The same bytes as [`encap::encapsulate`] with a data header
    /// carrying only the instance-ID.
    #[inline(always)]
    fn encap_to_v4<B: PacketBuf>(
        &mut self,
        mut pkt: B,
        ip_len: usize,
        v6: bool,
        flow_hash: u32,
        iid: u32,
        rloc: u32,
    ) -> Result<(usize, B), B> {
        let Some(at) = self.outer_v4(rloc) else {
            return Err(pkt);
        };
        let o = &self.memo.slots[at];
        if ip_len > usize::from(o.max_inner) {
            return Err(pkt);
        }
        let (port, sum) = (usize::from(o.port), o.sum);
        let sport = encap::source_port(pkt.rss_hash().unwrap_or(flow_hash));
        let hl = encap::OUTER_V4_LEN;
        let Some(frame) = pkt.reframe(hl, ETH_LEN + hl + ip_len) else {
            return Err(pkt);
        };
        // Only a packet that is sent takes an IPv4 ID.
        let id = self.ipv4_id.wrapping_add(1);
        *self.ipv4_id = id;
        frame[..ETH_LEN].copy_from_slice(&self.memo.slots[at].eth);
        let outer = Outer4 {
            src: self.fast.src_v4.unwrap_or(0),
            dst: rloc,
            sum,
            sport,
            id,
            iid,
        };
        encap_v4(frame, ip_len, v6, &outer);
        Ok((port, pkt))
    }

    #[inline(never)]
    fn encap<B: PacketBuf>(
        &mut self,
        mut pkt: B,
        info: &IpInfo,
        iid: u32,
        rloc: &IpAddr,
        out: &mut Outputs<B>,
    ) {
        let v6 = rloc.is_ipv6();
        let has_src = if v6 {
            self.fast.src_v6.is_some()
        } else {
            self.fast.src_v4.is_some()
        };
        if !has_src {
            self.counts.inc(Reason::DropNoSourceRloc);
            return;
        }
        let Some((port, nh)) = self.fast.rloc_route(rloc) else {
            self.counts.inc(Reason::DropNoRoute);
            return;
        };
        let hl = if v6 {
            encap::OUTER_V6_LEN
        } else {
            encap::OUTER_V4_LEN
        };
        // The next hop first: a packet that cannot leave is one drop, not one per fragment.
        let Some(mac) = self.next_hop_mac(port, nh, &mut out.events) else {
            return;
        };
        let mtu = self.plan.ports[port].mtu;
        if info.ip_len + hl > usize::from(mtu) {
            let mut frags = ArrayVec::new();
            if self.too_big(
                pkt,
                info,
                mtu.saturating_sub(hl as u16),
                port,
                out,
                &mut frags,
            ) {
                for (f, finfo) in frags {
                    self.encap(f, &finfo, iid, rloc, out);
                }
            }
            return;
        }
        let flow_hash = pkt.rss_hash().unwrap_or(info.flow_hash);
        *self.ipv4_id = self.ipv4_id.wrapping_add(1);
        if let (IpAddr::V4(dst), Some(src)) = (rloc, self.fast.src_v4) {
            // The common case, IPv4 underlay: headers written directly (the general path below
            // also handles IPv6 outer headers and their UDP checksum).
            if !pkt.adj(ETH_LEN) {
                self.counts.inc(Reason::DropMalformed);
                return;
            }
            let Some(frame) = pkt.prepend(ETH_LEN + hl) else {
                self.counts.inc(Reason::DropNoHeadroom);
                return;
            };
            let dst = u32::from(*dst);
            let outer = Outer4 {
                src,
                dst,
                sum: outer_v4_sum(src, dst),
                sport: encap::source_port(flow_hash),
                id: *self.ipv4_id,
                iid,
            };
            encap_v4(frame, info.ip_len, info.dst.is_ipv6(), &outer);
            write_eth(frame, mac, self.plan.ports[port].mac, ETHERTYPE_IPV4);
            pkt.truncate(ETH_LEN + hl + info.ip_len);
            self.counts.inc(Reason::Encap);
            self.send(port, pkt, out);
            return;
        }
        let Some(outer) = self
            .plan
            .source_rloc(v6)
            .and_then(|src| Outer::new(src, *rloc))
        else {
            self.counts.inc(Reason::DropNoSourceRloc);
            return;
        };
        let params = EncapParams {
            outer,
            flow_hash,
            header: DataRepr {
                iid: Some(iid),
                ..DataRepr::default()
            },
            ipv4_id: *self.ipv4_id,
            ipv6_zero_checksum: false,
        };
        // Drop the Ethernet header, make room for Ethernet + outer headers.
        if !pkt.adj(ETH_LEN) {
            self.counts.inc(Reason::DropMalformed);
            return;
        }
        let Some(frame) = pkt.prepend(ETH_LEN + hl) else {
            self.counts.inc(Reason::DropNoHeadroom);
            return;
        };
        let len = match encap::encapsulate(&mut frame[ETH_LEN..], &params) {
            Ok(n) => n,
            Err(WireError::TtlExpired) => {
                self.counts.inc(Reason::DropMalformed);
                return;
            }
            Err(_) => {
                self.counts.inc(Reason::DropMalformed);
                return;
            }
        };
        let ethertype = if rloc.is_ipv6() {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        write_eth(frame, mac, self.plan.ports[port].mac, ethertype);
        pkt.truncate(ETH_LEN + len);
        self.counts.inc(Reason::Encap);
        self.send(port, pkt, out);
    }

    /// Native forwarding toward the RLOC-side gateway (negative entry native-forward, no PETR).
    fn native<B: PacketBuf>(&mut self, mut pkt: B, info: &IpInfo, out: &mut Outputs<B>) {
        let Some((port, nh)) = self.fast.rloc_route(&info.dst) else {
            self.counts.inc(Reason::DropNoRoute);
            return;
        };
        let Some(mac) = self.next_hop_mac(port, nh, &mut out.events) else {
            return;
        };
        let mtu = self.plan.ports[port].mtu;
        if info.ip_len > usize::from(mtu) {
            let mut frags = ArrayVec::new();
            if self.too_big(pkt, info, mtu, port, out, &mut frags) {
                for (f, finfo) in frags {
                    self.native(f, &finfo, out);
                }
            }
            return;
        }
        let frame = pkt.data_mut();
        decrement_ttl(&mut frame[ETH_LEN..]);
        let src = self.plan.ports[port].mac;
        frame[0..6].copy_from_slice(&mac);
        frame[6..12].copy_from_slice(&src);
        pkt.truncate(ETH_LEN + info.ip_len);
        self.counts.inc(Reason::NativeForward);
        self.send(port, pkt, out);
    }

    fn send<B>(&mut self, port: usize, pkt: B, out: &mut Outputs<B>) {
        if out.tx[port].try_push(pkt).is_err() {
            self.counts.inc(Reason::DropTxFull);
        }
    }
}

/// A decapsulated packet waiting for its next hop: the frame holds 14 bytes of room for the
/// Ethernet header in front of the inner packet.
struct Decapped<B> {
    pkt: B,
    dst: IpAddr,
    iid: u32,
    /// With the L bit: the sending RLOC, the inner source EID, the locator-status-bits and
    /// how many there are.
    status: Option<(IpAddr, IpAddr, u32, u32)>,
}

/// Validates a LISP data frame to one of our RLOCs and strips its outer headers, leaving room
/// for an Ethernet header. `None`: dropped (and counted).
fn decap_strip<B: PacketBuf>(plan: &Plan, mut pkt: B, counts: &mut Counts) -> Option<Decapped<B>> {
    if !plan.functions.etr && !plan.functions.petr {
        counts.inc(Reason::DropRole);
        return None;
    }
    // The common case (IPv4 in IPv4) in a few loads, the rest through the general parser.
    let frame = &mut pkt.data_mut()[ETH_LEN..];
    let (inner_offset, inner_len, v4, iid, lsb) = match encap::decapsulate_v4(frame) {
        Some(d) => {
            let src = IpAddr::from(<[u8; 4]>::try_from(&frame[12..16]).unwrap_or([0; 4]));
            (
                d.inner_offset,
                d.inner_len,
                true,
                d.iid,
                d.lsb.map(|l| (src, l)),
            )
        }
        None => match encap::decapsulate(frame, true) {
            Ok(d) => (
                d.inner_offset,
                d.inner_len,
                d.inner_version == 4,
                d.header.iid,
                d.header.lsb.map(|l| (d.outer_src, l)),
            ),
            Err(_) => {
                counts.inc(Reason::DropDecapInvalid);
                return None;
            }
        },
    };
    let inner_at = ETH_LEN + inner_offset;
    // The inner TTL became min(inner, outer): a packet whose outer TTL ran out is not
    // delivered with TTL 0.
    let ttl_at = inner_at + if v4 { 8 } else { 7 };
    if pkt.data().get(ttl_at).map_or(true, |t| *t == 0) {
        counts.inc(Reason::DropDecapInvalid);
        return None;
    }
    // Locator-status-bits: 8 of them next to an instance-ID, else 32.
    let width = if iid.is_some() { 8 } else { 32 };
    let iid = iid.unwrap_or(0);
    if !plan
        .ports
        .iter()
        .any(|p| p.role == PortRole::Eid && p.iid == iid)
    {
        counts.inc(Reason::DropUnknownIid);
        return None;
    }
    let inner = &pkt.data()[inner_at..inner_at + inner_len];
    // Source (at offset 12 / 8) and destination (16 / 24) of the inner IPv4 / IPv6 header.
    let addr = |at4: usize, at6: usize| -> IpAddr {
        if v4 {
            IpAddr::V4(Ipv4Addr::new(
                inner[at4],
                inner[at4 + 1],
                inner[at4 + 2],
                inner[at4 + 3],
            ))
        } else {
            let mut a = [0u8; 16];
            a.copy_from_slice(&inner[at6..at6 + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        }
    };
    let dst = addr(16, 24);
    // The source only matters with locator-status-bits (rare): not read otherwise.
    let status = lsb.map(|(rloc, l)| (rloc, addr(12, 8), l, width));
    // Keep ETH_LEN bytes in front of the inner packet for its new Ethernet header.
    if !pkt.adj(inner_at - ETH_LEN) {
        counts.inc(Reason::DropMalformed);
        return None;
    }
    pkt.truncate(ETH_LEN + inner_len);
    Some(Decapped {
        pkt,
        dst,
        iid,
        status,
    })
}

/// The lean path's decapsulation of a frame [`lean_decap_v4`] accepted, for the common case:
/// IPv4 in IPv4 without locator-status-bits, to an instance with an EID port. Strips the frame
/// to room for an Ethernet header and the inner packet and returns it with the inner
/// destination and the instance-ID. `Err` hands the frame to [`decap_strip`], which then does
/// (and counts) what it does with any frame: `decapsulate_v4` may have set the inner TTL and
/// ECN already, as it would again (its changes are idempotent).
#[inline(always)]
fn lean_strip<B: PacketBuf>(eid_iids: &[u32], mut pkt: B) -> Result<(B, u32, u32), B> {
    let frame = &mut pkt.data_mut()[ETH_LEN..];
    let Some(d) = encap::decapsulate_v4(frame) else {
        return Err(pkt);
    };
    // decapsulate_v4 checked the inner header: at least 20 bytes.
    let inner = &frame[d.inner_offset..];
    let iid = d.iid.unwrap_or(0);
    if d.lsb.is_some() || inner.len() < 20 || inner[8] == 0 || !eid_iids.contains(&iid) {
        return Err(pkt);
    }
    let dst = u32::from_be_bytes([inner[16], inner[17], inner[18], inner[19]]);
    let (inner_at, inner_len) = (ETH_LEN + d.inner_offset, d.inner_len);
    if !pkt.adj(inner_at - ETH_LEN) {
        return Err(pkt);
    }
    pkt.truncate(ETH_LEN + inner_len);
    Ok((pkt, dst, iid))
}

impl Ctx<'_, '_> {
    /// Sends a decapsulated packet on: to its neighbour (`neighbor`, looked up for the burst);
    /// else, on an EID subnet, asks for the host's MAC and drops; else to the gateway of an EID
    /// port of the instance (routed enterprise sites), else (PETR) out of the RLOC side.
    /// Returns the port and next-hop MAC when the packet went out whole: what any packet of
    /// that instance to that destination that fits the port's MTU would get, until the
    /// neighbour table or the plan changes.
    fn deliver<B: PacketBuf>(
        &mut self,
        d: Decapped<B>,
        neighbor: Option<crate::mapcache::Neighbor>,
        out: &mut Outputs<B>,
    ) -> Option<(usize, [u8; 6])> {
        let Decapped {
            mut pkt, dst, iid, ..
        } = d;
        let plan = self.plan;
        // A neighbour counts only on an EID port of the packet's instance (or, on a PETR, the
        // RLOC side): a LISP packet must not reach another instance's hosts or the underlay.
        let allowed = |i: usize| match plan.ports[i].role {
            PortRole::Eid => plan.ports[i].iid == iid,
            PortRole::Rloc => plan.functions.petr,
        };
        let (port, mac) = match neighbor
            .and_then(|n| plan.index_of_dpdk_port(n.port).map(|i| (i, n.mac)))
            .filter(|(i, _)| allowed(*i))
        {
            Some(x) => x,
            None => {
                let eid_ports = || {
                    plan.ports
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.role == PortRole::Eid && p.iid == iid)
                };
                let hop = if let Some((i, _)) = eid_ports().find(|(i, _)| plan.on_link(*i, dst)) {
                    Some((i, dst))
                } else if let Some((i, g)) = eid_ports().find_map(|(i, p)| {
                    p.gateway
                        .filter(|g| g.is_ipv6() == dst.is_ipv6())
                        .map(|g| (i, g))
                }) {
                    Some((i, g))
                } else if plan.functions.petr {
                    self.fast.rloc_route(&dst)
                } else {
                    None
                };
                let Some((port, nh)) = hop else {
                    self.counts.inc(Reason::DropNoRoute);
                    return None;
                };
                if nh == dst {
                    // On-link host without a neighbour entry: ask for it, drop this one.
                    self.counts.inc(Reason::DropNoNeighbor);
                    if self
                        .limiter
                        .allow(1, Limiter::key(1, port as u32, dst), self.now_ms)
                        && out
                            .events
                            .try_push(Event::NeighborMiss { port, ip: dst })
                            .is_err()
                    {
                        self.counts.inc(Reason::EventsLost);
                    }
                    return None;
                }
                match self.next_hop_mac(port, nh, &mut out.events) {
                    Some(m) => (port, m),
                    None => return None,
                }
            }
        };
        let ethertype = if dst.is_ipv6() {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        let mtu = plan.ports[port].mtu;
        let ip_len = pkt.data().len().saturating_sub(ETH_LEN);
        if ip_len > usize::from(mtu) {
            // Bigger than the outgoing link (an EID port with a smaller MTU than the tunnel
            // carried): DF-clear IPv4 is fragmented when the plan says so; DF-set IPv4 and
            // IPv6 are dropped and counted. Their sender is behind a remote ITR, so the ICMP
            // error would have to be encapsulated back to it: not done yet (docs/dataplane.md).
            let f = pkt.data();
            let dont_fragment = dst.is_ipv6() || f.get(ETH_LEN + 6).map_or(true, |b| b & 0x40 != 0);
            let info = IpInfo {
                dst,
                ip_len,
                ttl: 0,
                dont_fragment,
                flow_hash: 0,
            };
            let mut frags: ArrayVec<(B, IpInfo), MAX_FRAGS> = ArrayVec::new();
            if dont_fragment
                || !plan.fragment
                || !fragment_v4(
                    &pkt,
                    &info,
                    usize::from(mtu),
                    out.tx[port].remaining_capacity(),
                    &mut frags,
                )
            {
                self.counts.inc(Reason::DropTooBig);
                return None;
            }
            self.counts.inc(Reason::Fragmented);
            for (mut f, _) in frags {
                write_eth(f.data_mut(), mac, plan.ports[port].mac, ethertype);
                self.counts.inc(Reason::Decap);
                self.send(port, f, out);
            }
            return None;
        }
        write_eth(pkt.data_mut(), mac, plan.ports[port].mac, ethertype);
        self.counts.inc(Reason::Decap);
        self.send(port, pkt, out);
        Some((port, mac))
    }

    /// Remembers where [`Ctx::deliver`] sent a decapsulated IPv4 packet to `dst` in `iid`.
    fn remember_host(&mut self, dst: u32, iid: u32, port: usize, mac: [u8; 6]) {
        let mut eth = [0u8; ETH_LEN];
        write_eth(&mut eth, mac, self.plan.ports[port].mac, ETHERTYPE_IPV4);
        self.memo.hosts[HostV4::slot(dst, iid)] = HostV4 {
            stamp: self.memo.stamp,
            key: HostV4::key(dst, iid),
            eth,
            port: port as u16,
            mtu: self.plan.ports[port].mtu,
        };
    }
}

/// The outer IPv4 + UDP + LISP header fields of one packet apart from those copied from the
/// inner packet.
#[derive(Clone, Copy)]
struct Outer4 {
    src: u32,
    dst: u32,
    /// [`outer_v4_sum`] of `src` and `dst`.
    sum: u32,
    sport: u16,
    id: u16,
    iid: u32,
}

/// The part of an outer IPv4 header's checksum sum that is the same for every packet from
/// `src` to `dst`: flags (DF), protocol (UDP) and the addresses.
#[inline(always)]
fn outer_v4_sum(src: u32, dst: u32) -> u32 {
    0x4000 + 17 + (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff)
}

/// Writes outer IPv4 + UDP + LISP headers (instance-ID `o.iid`) in front of the `ip_len`-byte
/// inner IP packet (IPv6 if `v6`) at `frame[ETH_LEN + 36..]`, validated by classify (TTL > 1):
/// the inner TTL is decremented and copied out, DSCP and ECN are copied (RFC 6040 normal
/// mode), DF is set, the UDP checksum is zero (RFC 9300 5.3). Same bytes as
/// [`encap::encapsulate`] with a data header carrying only the instance-ID.
#[inline(always)]
fn encap_v4(frame: &mut [u8], ip_len: usize, v6: bool, o: &Outer4) {
    let (hdr, inner) = frame[ETH_LEN..].split_at_mut(encap::OUTER_V4_LEN);
    let (tos, ttl) = if v6 {
        // From the value, not read back after the store (store-to-load forwarding).
        let ttl = inner[7] - 1;
        inner[7] = ttl;
        ((inner[0] << 4) | (inner[1] >> 4), ttl)
    } else {
        (inner[1], decrement_ttl_v4(inner))
    };
    let total = (encap::OUTER_V4_LEN + ip_len) as u16;
    let Outer4 {
        src,
        dst,
        sum,
        sport,
        id,
        iid,
    } = *o;
    // The header checksum from the values (reading the header back would stall on
    // store-to-load forwarding).
    let w0 = 0x4500 | u16::from(tos);
    let sum = sum + u32::from(w0) + u32::from(total) + u32::from(id) + (u32::from(ttl) << 8);
    let c = !(crate::wire::checksum::fold(sum) as u16);
    let ulen = total - 20;
    // Five stores of whole words, each the bytes in wire order read as a little-endian
    // integer (bytes 0..2 of the UDP checksum and 1..4 of the LISP header are zero).
    let be16 = |v: u16| u64::from(v.swap_bytes());
    let be32 = |v: u32| u64::from(v.swap_bytes());
    let words = [
        // version/IHL, TOS, total length, ID, flags (DF) and fragment offset
        0x45 | u64::from(tos) << 8 | be16(total) << 16 | be16(id) << 32 | 0x40 << 48,
        // TTL, protocol (UDP), checksum, source
        u64::from(ttl) | 17 << 8 | be16(c) << 16 | be32(src) << 32,
        // destination, UDP source and destination ports
        be32(dst) | be16(sport) << 32 | be16(crate::wire::LISP_DATA_PORT) << 48,
        // UDP length, UDP checksum (zero), LISP flags (I bit, no nonce)
        be16(ulen) | 0x08 << 32,
    ];
    for (k, w) in words.iter().enumerate() {
        hdr[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    // LISP instance-ID and zero locator-status-bits.
    hdr[32..36].copy_from_slice(&((iid & 0x00ff_ffff) << 8).to_be_bytes());
}

/// Most fragments one packet is split into (a 9000-byte packet over a 576-byte path).
pub const MAX_FRAGS: usize = 20;

/// Splits the DF-clear IPv4 packet in `pkt` (an Ethernet frame) into fragments of at most
/// `max_ip` bytes each, at most `room` of them (RFC 791: payload in multiples of 8 bytes, offsets and MF carried over
/// from a packet that is itself a fragment), each a new Ethernet frame in `frags`. False (and
/// `frags` to be discarded) for IPv6, IPv4 options, a path too small or no buffers.
fn fragment_v4<B: PacketBuf>(
    pkt: &B,
    info: &IpInfo,
    max_ip: usize,
    room: usize,
    frags: &mut ArrayVec<(B, IpInfo), MAX_FRAGS>,
) -> bool {
    if info.dst.is_ipv6() {
        return false;
    }
    let f = pkt.data();
    let Some(ip) = f.get(ETH_LEN..ETH_LEN + info.ip_len) else {
        return false;
    };
    if ip[0] != 0x45 || max_ip < 28 {
        return false;
    }
    let step = (max_ip - 20) / 8 * 8;
    let payload = &ip[20..];
    if payload.len().div_ceil(step) > MAX_FRAGS {
        return false;
    }
    let field = u16::from_be_bytes([ip[6], ip[7]]);
    let (base, more) = (field & 0x1fff, field & 0x2000 != 0);
    if usize::from(base) * 8 + payload.len() > 65_515 {
        // Data that would end past the largest IPv4 packet: not ours to split.
        return false;
    }
    let n = payload.len().div_ceil(step);
    // Checked before any buffer is allocated: all fragments fit, or none is made.
    if n > frags.remaining_capacity() || n > room {
        return false;
    }
    // Fragments keep the flow's hash (a new buffer has no RSS hash), so they leave with the
    // same UDP source port as the flow's other packets.
    let flow_hash = pkt.rss_hash().unwrap_or(info.flow_hash);
    for (k, chunk) in payload.chunks(step).enumerate() {
        let Some(mut b) = pkt.alloc_sibling() else {
            return false;
        };
        let len = 20 + chunk.len();
        let Some(buf) = b.append(ETH_LEN + len) else {
            return false;
        };
        buf[..ETH_LEN].copy_from_slice(&f[..ETH_LEN]);
        let h = &mut buf[ETH_LEN..ETH_LEN + 20];
        h.copy_from_slice(&ip[..20]);
        let mf = if k + 1 < n || more { 0x2000 } else { 0 };
        let off = base + (k * step / 8) as u16;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        h[6..8].copy_from_slice(&(mf | off).to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        let c = crate::wire::checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        buf[ETH_LEN + 20..].copy_from_slice(chunk);
        frags.push((
            b,
            IpInfo {
                ip_len: len,
                flow_hash,
                ..*info
            },
        ));
    }
    true
}

#[inline(always)]
fn write_eth(frame: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
    frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// Decrements the TTL / hop limit of an IP packet (checked > 1 by the caller), keeping the
/// IPv4 header checksum right (RFC 1624).
#[inline(always)]
fn decrement_ttl(ip: &mut [u8]) {
    if ip[0] >> 4 == 6 {
        ip[7] -= 1;
    } else {
        decrement_ttl_v4(ip);
    }
}

/// Decrements the TTL (above 1) of IPv4 header `ip` and updates its checksum; returns the new
/// TTL.
#[inline(always)]
fn decrement_ttl_v4(ip: &mut [u8]) -> u8 {
    let h: &mut [u8; 12] = match ip.get_mut(..12).map(<&mut [u8; 12]>::try_from) {
        Some(Ok(h)) => h,
        _ => return 0,
    };
    // From the values, not read back after the store (store-to-load forwarding).
    let old = u16::from_be_bytes([h[8], h[9]]);
    let new = old - 0x0100;
    h[8] = (new >> 8) as u8;
    let c = u16::from_be_bytes([h[10], h[11]]);
    let c = crate::wire::checksum::update16(c, old, new);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    (new >> 8) as u8
}
