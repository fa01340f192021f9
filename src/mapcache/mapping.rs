//! Mappings (RFC 9301 Map-Reply records) and their reader-side form, the locator set: the
//! locators a packet may be sent to, already filtered and weighted per RFC 9300 §5.3/§6, so a
//! worker picks one with a flow hash and a short scan.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use arrayvec::ArrayVec;

/// Most locators a mapping holds.
pub const MAX_LOCATORS: usize = 8;

/// RFC 9300: a locator with this priority MUST NOT be used for unicast forwarding.
pub const PRIORITY_UNUSABLE: u8 = 255;

/// One RLOC of a mapping (RFC 9301 §5.4 Locator record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Locator {
    /// The RLOC.
    pub address: IpAddr,
    /// Unicast priority: lower is preferred; 255 means never for unicast.
    pub priority: u8,
    /// Unicast weight among locators of the same priority (relative share of flows).
    pub weight: u8,
    /// Whether the RLOC is reachable (R bit, RLOC probing, IPsec SA state).
    pub reachable: bool,
}

/// What a negative map-cache entry (no locators) tells the ITR to do (RFC 9301 §5.4 ACT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NegativeAction {
    /// Forward the packet without LISP encapsulation (Natively-Forward).
    NativelyForward,
    /// Drop the packet (Drop/No-Reason, Drop/Policy-Denied, Drop/Auth-Failure).
    Drop,
    /// Send a Map-Request for the EID (Send-Map-Request).
    #[default]
    SendMapRequest,
}

/// An EID-prefix's mapping as the control core installs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mapping {
    /// The locator set (RFC 9301 Locator records); empty for a negative entry.
    pub locators: ArrayVec<Locator, MAX_LOCATORS>,
    /// Used when `locators` is empty.
    pub action: NegativeAction,
    /// Record TTL; `None` never expires (static mappings).
    pub ttl: Option<std::time::Duration>,
    /// Map-Version number (RFC 9302); 0 when not versioned.
    pub version: u16,
}

impl Mapping {
    /// A negative mapping with `action`.
    pub fn negative(action: NegativeAction, ttl: Option<std::time::Duration>) -> Self {
        Mapping {
            action,
            ttl,
            ..Mapping::default()
        }
    }
}

/// Words per locator set: header, 2 of cumulative weights, 2 per locator address.
pub(crate) const SET_WORDS: usize = 3 + 2 * MAX_LOCATORS;

/// The reader-side form of a locator set, as the words stored for readers.
pub(crate) type SetImage = [u64; SET_WORDS];

/// Builds the set image: among reachable locators whose priority is not 255, those of the best
/// (lowest) priority, each with its share of the total weight. If they all have weight 0 they
/// share equally (RFC 9301 leaves the split to the ITR then); otherwise weight-0 ones get none.
pub(crate) fn set_image(locators: &[Locator]) -> SetImage {
    let mut img = [0u64; SET_WORDS];
    let best = locators
        .iter()
        .filter(|l| l.reachable && l.priority != PRIORITY_UNUSABLE)
        .map(|l| l.priority)
        .min();
    let Some(best) = best else {
        return img;
    };
    let chosen: ArrayVec<&Locator, MAX_LOCATORS> = locators
        .iter()
        .filter(|l| l.reachable && l.priority == best)
        .take(MAX_LOCATORS)
        .collect();
    let all_zero = chosen.iter().all(|l| l.weight == 0);
    let mut total: u64 = 0;
    let mut n = 0usize;
    let mut v6_mask = 0u64;
    for l in chosen.iter() {
        let w = if all_zero { 1 } else { u64::from(l.weight) };
        if w == 0 {
            continue;
        }
        total += w;
        img[1 + n / 4] |= total << (16 * (n % 4));
        let (hi, lo, v6) = split(l.address);
        img[3 + 2 * n] = hi;
        img[4 + 2 * n] = lo;
        v6_mask |= u64::from(v6) << n;
        n += 1;
    }
    img[0] = n as u64 | (total << 8) | (v6_mask << 24);
    img
}

fn split(a: IpAddr) -> (u64, u64, bool) {
    match a {
        IpAddr::V4(v4) => (0, u64::from(u32::from(v4)), false),
        IpAddr::V6(v6) => {
            let x = u128::from(v6);
            ((x >> 64) as u64, x as u64, true)
        }
    }
}

/// [`select`] in packed form for the data plane's per-packet path: `Some(Ok(v4))` for an IPv4
/// locator, `Some(Err(k))` for the set's locator `k` when it is IPv6 (read it with
/// [`locator_at`]), `None` when no locator is usable; with whether the set has one locator
/// (every flow gets it). No `IpAddr` is built (copying that enum through memory right after
/// writing it stalls the CPU).
#[inline(always)]
pub(crate) fn select_packed(
    words: &[AtomicU64],
    flow_hash: u32,
) -> Option<(Result<u32, usize>, bool)> {
    let h = words.first()?.load(Ordering::Relaxed);
    let n = (h & 0xFF) as usize;
    let total = (h >> 8) & 0xFFFF;
    if n == 0 || total == 0 {
        return None;
    }
    let x = (u64::from(flow_hash) * total) >> 32;
    let cum = [
        words.get(1)?.load(Ordering::Relaxed),
        words.get(2)?.load(Ordering::Relaxed),
    ];
    let mut k = 0;
    while k + 1 < n && x >= (cum[k / 4] >> (16 * (k % 4))) & 0xFFFF {
        k += 1;
    }
    let one = n == 1;
    if (h >> (24 + k)) & 1 == 1 {
        Some((Err(k), one))
    } else {
        Some((
            Ok(words.get(4 + 2 * k)?.load(Ordering::Relaxed) as u32),
            one,
        ))
    }
}

/// Locator `k` of a stored set image.
pub(crate) fn locator_at(words: &[AtomicU64], k: usize) -> Option<IpAddr> {
    let h = words.first()?.load(Ordering::Relaxed);
    if k >= (h & 0xFF) as usize {
        return None;
    }
    let hi = words.get(3 + 2 * k)?.load(Ordering::Relaxed);
    let lo = words.get(4 + 2 * k)?.load(Ordering::Relaxed);
    Some(if (h >> (24 + k)) & 1 == 1 {
        IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
    } else {
        IpAddr::V4(Ipv4Addr::from(lo as u32))
    })
}

/// Picks the RLOC for a flow from a stored set image (`words` = the set's words): the flow
/// hash scaled to the total weight falls in one locator's share, so a flow always gets the same
/// RLOC while the set is unchanged. `None` when no locator is usable.
#[inline(always)]
pub(crate) fn select(words: &[AtomicU64], flow_hash: u32) -> Option<IpAddr> {
    match select_packed(words, flow_hash)?.0 {
        Ok(a) => Some(IpAddr::V4(Ipv4Addr::from(a))),
        Err(k) => locator_at(words, k),
    }
}
