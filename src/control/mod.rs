//! The control plane as sans-IO state machines (DESIGN.md): their inputs are received control
//! messages, punted frames, the time (milliseconds of the caller's clock) and the config; their
//! outputs go into an [`Outbox`] that the runtime (`src/app/control.rs`) performs: UDP control
//! messages to send, Ethernet frames to send, updates of the tables the workers read, and
//! events for the other machines. No sockets, threads, clocks or DPDK here, so every protocol
//! rule is tested with a virtual clock.
//!
//! - [`map_server`]: the embedded Map-Server and Map-Resolver (sites, registrations,
//!   Map-Notify, proxy replies, forwarding, negative replies).
//! - [`itr`]: resolving EIDs (Map-Request in an ECM to the Map-Resolvers, failover, nonces,
//!   refresh, negative replies, SMRs) and RLOC probing.
//! - [`etr`]: registering local EID-prefixes and detected hosts with the Map-Servers,
//!   answering Map-Requests and RLOC-probes for them, SMRs when a host leaves.
//! - [`hosts`]: EID detection on the server-mobility interface and proxy-ARP/ND.

pub mod etr;
pub mod hosts;
pub mod itr;
pub mod map_server;
pub mod node;
pub mod udp;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::KeyId;
use crate::mapcache::Mapping;
use crate::wire::auth::Algorithm;
use crate::wire::control::{EidRecord, MapRequest};
use crate::wire::{Address, LISP_CONTROL_PORT};

/// A LISP control message to send over UDP. The runtime adds the IP and UDP headers (source:
/// `src`, or the address of the port the destination is reached through) and the Ethernet
/// header of the next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub src: Option<IpAddr>,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: Vec<u8>,
}

/// An Ethernet frame to send as it is on a port (plan index): ARP and ND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub port: usize,
    pub bytes: Vec<u8>,
}

/// A change of the tables the workers read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Install or replace the mapping of `iid`/`prefix` in the map-cache.
    Map {
        iid: u32,
        prefix: IpNet,
        mapping: Mapping,
    },
    /// Remove the map-cache entry of exactly `iid`/`prefix`.
    Unmap { iid: u32, prefix: IpNet },
    /// A neighbour learned or confirmed on plan port `port` (ARP, ND).
    Neighbor {
        ip: IpAddr,
        mac: [u8; 6],
        port: usize,
    },
    /// A neighbour that is gone (aged out, moved away).
    NeighborGone { ip: IpAddr },
}

/// What one machine tells the others (the runtime routes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A host of a dynamic-EID range was detected on the server-mobility port: register it.
    HostUp { iid: u32, ip: IpAddr },
    /// A detected host aged out or stopped answering probes: stop registering it.
    HostDown { iid: u32, ip: IpAddr },
    /// A host of ours is now registered at another site (Map-Notify from the Map-Server, or a
    /// registration elsewhere on the embedded one): withdraw it locally, answer ARP for it.
    HostMovedAway { iid: u32, ip: IpAddr },
    /// Resolve `eid` (e.g. proxy-ARP was asked about an EID the map-cache does not have).
    Resolve { iid: u32, eid: IpAddr },
    /// `iid`/`prefix` now maps to RLOCs of another site (a Map-Reply installed it): hosts
    /// uses it to answer ARP for the EIDs in it.
    Remote { iid: u32, prefix: IpNet },
    /// `iid`/`prefix` no longer maps to another site (expired, negative, withdrawn).
    NotRemote { iid: u32, prefix: IpNet },
}

/// The outputs of the machines, performed (and emptied) by the runtime.
#[derive(Debug, Default)]
pub struct Outbox {
    pub transmits: Vec<Transmit>,
    pub frames: Vec<Frame>,
    pub updates: Vec<Update>,
    pub events: Vec<Event>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.transmits.is_empty()
            && self.frames.is_empty()
            && self.updates.is_empty()
            && self.events.is_empty()
    }

    pub fn clear(&mut self) {
        self.transmits.clear();
        self.frames.clear();
        self.updates.clear();
        self.events.clear();
    }
}

/// Unpredictable 64-bit nonces (Map-Request, Map-Register, RLOC-probe): SipHash with a random
/// key over a counter, so an off-path sender cannot guess the nonce of a reply we wait for.
/// Tests use [`Nonces::seeded`], a fixed sequence.
#[derive(Debug, Clone)]
pub struct Nonces {
    counter: u64,
    keyed: Option<RandomState>,
}

impl Nonces {
    /// Random nonces (the runtime's).
    pub fn random() -> Self {
        Nonces {
            counter: 0,
            keyed: Some(RandomState::new()),
        }
    }

    /// A fixed sequence from `seed` (tests).
    pub fn seeded(seed: u64) -> Self {
        Nonces {
            counter: seed,
            keyed: None,
        }
    }

    /// The next nonce (never 0, which some implementations read as "no nonce"). Not an
    /// `Iterator`: the sequence never ends, so `Option` would only add unwraps.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        loop {
            self.counter = self.counter.wrapping_add(1);
            let n = match &self.keyed {
                Some(k) => k.hash_one(self.counter),
                None => splitmix64(self.counter),
            };
            if n != 0 {
                return n;
            }
        }
    }
}

impl Nonces {
    /// An independent source for another machine: random if this one is, else the next
    /// seeded sequence.
    pub fn split(&mut self) -> Nonces {
        match self.keyed {
            Some(_) => Nonces::random(),
            None => Nonces::seeded(self.next().rotate_left(32)),
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether `p` is inside `filter` or covers it (no filter: every prefix) — what `pxtr ctl`'s
/// prefix filters select.
pub fn prefix_overlaps(filter: Option<IpNet>, p: &IpNet) -> bool {
    filter.map_or(true, |f| f.contains(p) || p.contains(&f))
}

/// The wire algorithm of a configured key-id.
pub fn algorithm(k: KeyId) -> Algorithm {
    match k {
        KeyId::HmacSha1_96 => Algorithm::HmacSha1_96,
        KeyId::HmacSha256_128 => Algorithm::HmacSha256_128,
    }
}

/// The LISP address of an IP address in instance `iid` (an Instance-ID LCAF unless 0).
pub fn eid_address(iid: u32, ip: IpAddr) -> Address {
    Address::with_iid(iid, ip_address(ip))
}

/// The LISP address of an IP address (RLOCs, ITR-RLOCs).
pub fn ip_address(ip: IpAddr) -> Address {
    match ip {
        IpAddr::V4(a) => Address::Ipv4(a),
        IpAddr::V6(a) => Address::Ipv6(a),
    }
}

/// A Map-Request about one EID-prefix, `iid`/`prefix`, to be answered to `rlocs` (the
/// ITR-RLOCs); no flag set.
pub fn map_request(
    nonce: u64,
    source_eid: Address,
    rlocs: &[IpAddr],
    iid: u32,
    prefix: IpNet,
) -> MapRequest {
    MapRequest::new(
        nonce,
        source_eid,
        rlocs.iter().map(|r| ip_address(*r)).collect(),
        vec![EidRecord {
            mask_len: prefix.prefix_len(),
            eid: eid_address(iid, prefix.addr()),
        }],
    )
}

/// The first of `rlocs` of the family of `dst` (the source of what we send it).
pub fn rloc_toward(rlocs: &[IpAddr], dst: IpAddr) -> Option<IpAddr> {
    rlocs.iter().copied().find(|r| r.is_ipv4() == dst.is_ipv4())
}

/// A control message from port 4342 to `dst` port 4342, from `src` (`None`: the address of
/// the port toward `dst`).
pub fn control_transmit(src: Option<IpAddr>, dst: IpAddr, payload: Vec<u8>) -> Transmit {
    Transmit {
        src,
        dst,
        src_port: LISP_CONTROL_PORT,
        dst_port: LISP_CONTROL_PORT,
        payload,
    }
}

/// The instance and prefix of a record's EID and mask length; `None` for a non-IP EID or a
/// mask longer than the family allows.
pub fn eid_prefix(eid: &Address, mask_len: u8) -> Option<(u32, IpNet)> {
    let ip = eid.ip()?;
    let net = IpNet::new(ip, mask_len).ok()?;
    Some((eid.iid(), net.trunc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_filters_select_what_is_inside_or_covers() {
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        let f = Some(n("10.2.0.0/16"));
        assert!(prefix_overlaps(None, &n("192.0.2.0/24")));
        assert!(prefix_overlaps(f, &n("10.2.3.0/24")), "inside");
        assert!(prefix_overlaps(f, &n("10.2.0.0/16")), "the same");
        assert!(prefix_overlaps(f, &n("10.0.0.0/8")), "covers");
        assert!(!prefix_overlaps(f, &n("10.3.0.0/16")), "beside");
        assert!(!prefix_overlaps(f, &n("10.3.0.0/24")), "beside, longer");
        assert!(!prefix_overlaps(f, &n("2001:db8::/32")), "other family");
    }

    #[test]
    fn nonces_are_distinct_and_never_zero() {
        for mut n in [
            Nonces::random(),
            Nonces::seeded(0),
            Nonces::seeded(u64::MAX - 3),
        ] {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..10_000 {
                let v = n.next();
                assert_ne!(v, 0);
                assert!(seen.insert(v), "nonce {v:#x} repeated");
            }
        }
        // Two random sources do not produce the same sequence.
        assert_ne!(Nonces::random().next(), Nonces::random().next());
    }

    #[test]
    fn eid_prefixes_round_trip_through_addresses() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let a = eid_address(7, ip);
        assert_eq!(a.iid(), 7);
        assert_eq!(
            eid_prefix(&a, 24),
            Some((7, "10.1.2.0/24".parse().unwrap()))
        );
        assert_eq!(eid_prefix(&a, 33), None);
        assert_eq!(eid_prefix(&Address::Mac([0; 6]), 48), None);
        assert_eq!(
            eid_address(0, ip),
            Address::Ipv4("10.1.2.3".parse().unwrap())
        );
    }
}
