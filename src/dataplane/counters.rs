//! Per-worker counters, one slot per [`Reason`], and the per-burst latency histogram.
//!
//! The pipeline counts into a plain array during a burst; the worker publishes it once per
//! burst into its own [`WorkerCounters`] (relaxed stores by the single writer, on cache lines no
//! other worker writes), which the control core reads at any time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hdrhistogram::Histogram;

macro_rules! reasons {
    ($($(#[$m:meta])* $var:ident = $name:literal,)+) => {
        /// What happened to a packet (or what a packet caused). Every drop has its own reason.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum Reason {
            $($(#[$m])* $var,)+
        }

        impl Reason {
            /// Every reason, in counter order.
            pub const ALL: &'static [Reason] = &[$(Reason::$var),+];

            /// Name in logs, `pxtr ctl show stats` and metrics.
            pub fn name(self) -> &'static str {
                match self {
                    $(Reason::$var => $name,)+
                }
            }

            /// Whether the packet was dropped for this reason.
            pub fn is_drop(self) -> bool {
                self.name().starts_with("drop_")
            }
        }
    };
}

reasons! {
    /// Frames received.
    Rx = "rx",
    /// Bytes received.
    RxBytes = "rx_bytes",
    /// Frames handed to a TX queue and accepted.
    Tx = "tx",
    /// Bytes sent.
    TxBytes = "tx_bytes",
    /// Packets LISP-encapsulated toward an RLOC (ITR, PITR, use-PETR).
    Encap = "encap",
    /// LISP data packets decapsulated and sent on (ETR, PETR); a packet fragmented for the
    /// outgoing port counts once per fragment, like `encap`.
    Decap = "decap",
    /// Packets forwarded natively (negative entry "native-forward", PETR to non-LISP sites).
    NativeForward = "native_forward",
    /// ARP frames punted to the control core.
    PuntArp = "punt_arp",
    /// IPv6 Neighbor Discovery punted.
    PuntNd = "punt_nd",
    /// ICMP / ICMPv6 to one of our addresses punted.
    PuntIcmp = "punt_icmp",
    /// LISP control (UDP 4342) to one of our addresses punted.
    PuntLispControl = "punt_lisp_control",
    /// Other traffic to one of our addresses punted (IKE, management, ...).
    PuntLocal = "punt_local",
    /// Packets whose TTL ran out here, punted for ICMP Time Exceeded.
    PuntTtlExpired = "punt_ttl_expired",
    /// Packets too big for the RLOC-side MTU after encapsulation, punted for ICMP
    /// Fragmentation Needed / Packet Too Big.
    PuntTooBig = "punt_too_big",
    /// Map-cache misses reported to the control core (a Map-Request follows).
    MissReported = "miss_reported",
    /// Map-cache misses not reported because of the per-destination or global rate limit.
    MissRateLimited = "miss_rate_limited",
    /// Packets held while their destination is resolved.
    Held = "held",
    /// Packets too big for the path, DF clear, split into IPv4 fragments (each then counted as
    /// sent on).
    Fragmented = "fragmented",
    /// Held packets sent after their mapping arrived.
    HeldReleased = "held_released",
    /// Reports to the control core lost because its event queue was full.
    EventsLost = "events_lost",
    /// Sources of packets from an extended-subnet range reported to the control core (host
    /// detection).
    SourceReported = "source_reported",
    /// Locator-status-bits of a sending site reported to the control core (changed, or
    /// 10 s old).
    LocatorStatusReported = "locator_status_reported",
    /// Frames not addressed to us (promiscuous port) or to a destination we do not serve.
    DropNotForUs = "drop_not_for_us",
    /// Frames too short or with inconsistent IP headers.
    DropMalformed = "drop_malformed",
    /// IPv4 packets to forward whose header checksum is wrong (RFC 1812 5.2.2).
    DropBadChecksum = "drop_bad_checksum",
    /// Frames of an EtherType we do not handle (VLAN tags, MPLS, ...).
    DropEthertype = "drop_ethertype",
    /// IP multicast and broadcast (not routed through LISP here).
    DropMulticast = "drop_multicast",
    /// Chained (multi-segment) frames.
    DropChained = "drop_chained",
    /// Negative map-cache entry with action drop.
    DropNegative = "drop_negative",
    /// A mapping with no usable locator (all unreachable or priority 255).
    DropNoUsableRloc = "drop_no_usable_rloc",
    /// Packets to an unresolved destination (miss policy drop, or the hold queue is full).
    DropMiss = "drop_miss",
    /// Held packets whose destination was not resolved in time.
    DropHoldExpired = "drop_hold_expired",
    /// No RLOC of ours in the family of the remote RLOC.
    DropNoSourceRloc = "drop_no_source_rloc",
    /// No MAC known for the next hop (the control core is asked to resolve it).
    DropNoNeighbor = "drop_no_neighbor",
    /// Too big for the outgoing MTU and not sent: DF clear but not fragmented (fragmentation
    /// off, IPv4 options, or no buffers for the fragments); or, after decapsulation toward an
    /// EID port with a smaller MTU, DF set or IPv6 (no ICMP error back through the tunnel yet).
    DropTooBig = "drop_too_big",
    /// LISP data packets that failed validation (checksum, lengths, ports, K bits).
    DropDecapInvalid = "drop_decap_invalid",
    /// Decapsulated packets of an instance-ID no EID port serves.
    DropUnknownIid = "drop_unknown_iid",
    /// Packets with no route after decapsulation (no gateway configured).
    DropNoRoute = "drop_no_route",
    /// Not enough headroom to prepend the outer headers.
    DropNoHeadroom = "drop_no_headroom",
    /// The punt ring to the control core was full (such frames are not counted under their
    /// `punt_*` reason).
    DropPuntRingFull = "drop_punt_ring_full",
    /// Map-Requests / ECMs and ARP / ND frames not punted: over this worker's budget per
    /// second for their kind (a flood of them cannot crowd out registrations and replies).
    DropPuntRateLimited = "drop_punt_rate_limited",
    /// The TX queue did not take the packet.
    DropTxFull = "drop_tx_full",
    /// LISP data to us while the role has no ETR/PETR function.
    DropRole = "drop_role",
}

/// Number of reasons.
pub const REASONS: usize = Reason::ALL.len();

/// Counts of one burst (or any span), indexed by [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts(pub [u64; REASONS]);

impl Default for Counts {
    fn default() -> Self {
        Counts([0; REASONS])
    }
}

impl Counts {
    #[inline(always)]
    pub fn add(&mut self, r: Reason, n: u64) {
        self.0[r as usize] += n;
    }
    #[inline(always)]
    pub fn inc(&mut self, r: Reason) {
        self.0[r as usize] += 1;
    }
    pub fn get(&self, r: Reason) -> u64 {
        self.0[r as usize]
    }
    /// Sum of every drop reason.
    pub fn drops(&self) -> u64 {
        Reason::ALL
            .iter()
            .filter(|r| r.is_drop())
            .map(|r| self.get(*r))
            .sum()
    }
    /// `self += other`.
    pub fn merge(&mut self, other: &Counts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }
    /// The reasons with a non-zero count, for logs.
    pub fn nonzero(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n != 0)
    }
}

/// One worker's published counters (written by that worker only).
#[derive(Debug)]
pub struct WorkerCounters {
    slots: [AtomicU64; REASONS],
    /// Bursts processed and idle sleeps (not per packet).
    bursts: AtomicU64,
    idle_sleeps: AtomicU64,
    latency: Mutex<Histogram<u64>>,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            bursts: AtomicU64::new(0),
            idle_sleeps: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
        }
    }
}

/// Burst latencies in nanoseconds, 1 ns to 1 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1_000_000_000, 3).expect("static histogram bounds are valid")
}

impl WorkerCounters {
    /// Adds a burst's counts (single writer: load + store, no read-modify-write).
    #[inline]
    pub fn publish(&self, c: &Counts) {
        for (slot, n) in self.slots.iter().zip(c.0.iter()) {
            if *n != 0 {
                slot.store(
                    slot.load(Ordering::Relaxed).wrapping_add(*n),
                    Ordering::Relaxed,
                );
            }
        }
    }

    #[inline]
    pub fn add_bursts(&self, n: u64) {
        self.bursts.store(
            self.bursts.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn add_idle_sleep(&self) {
        self.idle_sleeps.store(
            self.idle_sleeps.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    }

    /// Merges a worker-local histogram (the worker calls this about once a second; the lock is
    /// only ever contended by a reader copying it out).
    pub fn merge_latency(&self, local: &mut Histogram<u64>) {
        if let Ok(mut h) = self.latency.try_lock() {
            // Same bounds on both sides: cannot fail.
            let _ = h.add(&*local);
            local.reset();
        }
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> WorkerSnapshot {
        let mut counts = Counts::default();
        for (c, s) in counts.0.iter_mut().zip(self.slots.iter()) {
            *c = s.load(Ordering::Relaxed);
        }
        WorkerSnapshot {
            counts,
            bursts: self.bursts.load(Ordering::Relaxed),
            idle_sleeps: self.idle_sleeps.load(Ordering::Relaxed),
        }
    }

    /// A copy of the latency histogram (ns per burst).
    pub fn latency(&self) -> Histogram<u64> {
        match self.latency.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// A copy of one worker's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerSnapshot {
    pub counts: Counts,
    pub bursts: u64,
    pub idle_sleeps: u64,
}
