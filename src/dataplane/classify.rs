//! First look at a received frame: what it is and what the pipeline does with it. Reads only
//! the Ethernet and IP headers (and the first 4 bytes of UDP / ICMP), never past the frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::{LISP_CONTROL_PORT, LISP_DATA_PORT};

use super::counters::Reason;

pub const ETH_LEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

/// What the pipeline does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An IP packet to route through LISP: look its destination up and encapsulate. The
    /// `IpInfo` passed to [`classify`] describes it.
    Forward,
    /// LISP data to one of our RLOCs: decapsulate.
    Decap,
    /// For the control core, counted under this reason.
    Punt(Reason),
    /// Dropped, counted under this reason.
    Drop(Reason),
}

/// What the pipeline needs of an IP packet to forward it. Filled in place by [`classify`] in
/// the burst's array and read by reference: copying it whole right after its fields were
/// written stalls the CPU (store-to-load forwarding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    pub dst: IpAddr,
    /// Length of the IP packet (its header's length field), without Ethernet padding.
    pub ip_len: usize,
    pub ttl: u8,
    /// IPv4 DF bit (always true for IPv6, which routers never fragment).
    pub dont_fragment: bool,
    /// Hash of the 5-tuple (addresses, protocol, ports when present).
    pub flow_hash: u32,
}

impl IpInfo {
    /// A placeholder for arrays filled by [`classify`].
    pub const EMPTY: IpInfo = IpInfo {
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ip_len: 0,
        ttl: 0,
        dont_fragment: false,
        flow_hash: 0,
    };
}

/// Which of our addresses a destination is.
pub trait LocalAddresses {
    /// One of the appliance's own addresses (any port, any RLOC).
    fn is_local(&self, ip: IpAddr) -> bool;
    /// One of our RLOCs (LISP data to it is decapsulated).
    fn is_rloc(&self, ip: IpAddr) -> bool;
}

/// What the receiving port lets through.
#[derive(Debug, Clone, Copy)]
pub struct PortView {
    pub mac: [u8; 6],
    /// Non-local IP packets are forwarded (EID ports; RLOC ports of a PITR).
    pub forward: bool,
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn mix(h: u64) -> u32 {
    let h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as u32 ^ h as u32
}

/// Classifies one Ethernet frame received on a port; for [`Class::Forward`] fills `info`.
#[inline(always)]
pub fn classify(
    frame: &[u8],
    port: &PortView,
    local: &impl LocalAddresses,
    info: &mut IpInfo,
) -> Class {
    if frame.len() < ETH_LEN {
        return Class::Drop(Reason::DropMalformed);
    }
    let ethertype = be16(frame, 12);
    if ethertype == ETHERTYPE_ARP {
        // All ARP goes up: the control core answers for us and for remote EIDs (proxy-ARP)
        // and learns local hosts from it, whoever the frame was addressed to.
        return Class::Punt(Reason::PuntArp);
    }
    let dst_mac = &frame[0..6];
    let to_us = dst_mac == port.mac;
    let group = dst_mac[0] & 1 != 0;
    let ip = &frame[ETH_LEN..];
    match ethertype {
        ETHERTYPE_IPV4 => classify_v4(ip, to_us, group, port, local, info),
        ETHERTYPE_IPV6 => classify_v6(ip, to_us, group, port, local, info),
        _ if !to_us && !group => Class::Drop(Reason::DropNotForUs),
        _ => Class::Drop(Reason::DropEthertype),
    }
}

/// A packet to one of our addresses: LISP data to an RLOC is decapsulated (unless it is a
/// fragment), the rest goes to the control core by kind.
#[inline(always)]
fn local_class(
    proto: u8,
    ports: Option<(u16, u16)>,
    icmp: u8,
    to_rloc: bool,
    fragment: bool,
) -> Class {
    match (proto, ports) {
        (PROTO_UDP, Some((_, LISP_DATA_PORT))) if to_rloc => {
            if fragment {
                Class::Drop(Reason::DropDecapInvalid)
            } else {
                Class::Decap
            }
        }
        (PROTO_UDP, Some((_, LISP_CONTROL_PORT))) | (PROTO_UDP, Some((LISP_CONTROL_PORT, _))) => {
            Class::Punt(Reason::PuntLispControl)
        }
        (p, _) if p == icmp => Class::Punt(Reason::PuntIcmp),
        _ => Class::Punt(Reason::PuntLocal),
    }
}

#[inline(always)]
fn classify_v4(
    ip: &[u8],
    to_us: bool,
    group: bool,
    port: &PortView,
    local: &impl LocalAddresses,
    info: &mut IpInfo,
) -> Class {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return Class::Drop(Reason::DropMalformed);
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    if ihl < 20 || total < ihl || total > ip.len() {
        return Class::Drop(Reason::DropMalformed);
    }
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if group || dst.is_multicast() || dst.is_broadcast() {
        return Class::Drop(Reason::DropMulticast);
    }
    if !to_us {
        return Class::Drop(Reason::DropNotForUs);
    }
    let proto = ip[9];
    let frag = be16(ip, 6);
    let first_fragment = frag & 0x1fff == 0;
    let l4 = &ip[ihl..total];
    let ports = if first_fragment && l4.len() >= 4 && matches!(proto, PROTO_UDP | PROTO_TCP) {
        Some((be16(l4, 0), be16(l4, 2)))
    } else {
        None
    };
    let dst_ip = IpAddr::V4(dst);
    if local.is_local(dst_ip) {
        // An ETR does not reassemble: fragmented LISP data is dropped.
        return local_class(
            proto,
            ports,
            PROTO_ICMP,
            local.is_rloc(dst_ip),
            frag & 0x3fff != 0,
        );
    }
    if !port.forward {
        return Class::Drop(Reason::DropNotForUs);
    }
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let (sp, dp) = ports.unwrap_or((0, 0));
    info.dst = dst_ip;
    info.ip_len = total;
    info.ttl = ip[8];
    info.dont_fragment = frag & 0x4000 != 0;
    info.flow_hash = flow_hash_v4(src, u32::from(dst), proto, sp, dp);
    Class::Forward
}

/// The flow hash of an IPv4 packet (ports 0 when it has none, or is a later fragment).
#[inline(always)]
pub(crate) fn flow_hash_v4(src: u32, dst: u32, proto: u8, sp: u16, dp: u16) -> u32 {
    let h = (u64::from(src) << 32 | u64::from(dst))
        ^ (u64::from(proto) << 40)
        ^ (u64::from(sp) << 16 | u64::from(dp)).rotate_left(21);
    mix(h)
}

/// The lean path's look at a frame, for the common case of a burst: an IPv4 packet without
/// options to the port's own MAC (`mac`: its 6 bytes as a little-endian integer), unicast
/// (below 224.0.0.0), not to one of our addresses (`local`, with `local_bloom` its Bloom
/// filter of [`local_bloom_bit`]s), TTL above 1, header checksum right (`hw`: the
/// NIC's verdict, if it checked). What it accepts, [`classify`] would call
/// [`Class::Forward`] with the same destination and flow hash, which it returns as `(dst,
/// flow_hash)`; anything else is `None`, for the general path to classify and count.
#[inline(always)]
pub(crate) fn lean_v4(
    frame: &[u8],
    mac: u64,
    local: &[u32],
    local_bloom: u64,
    hw: Option<bool>,
) -> Option<(u32, u32)> {
    let h: &[u8; 34] = frame.get(..34)?.try_into().ok()?;
    let w = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap_or([0; 8]));
    // Destination MAC, then ethertype 0x0800 with version 4 and a 20-byte header.
    if w(0) & 0xffff_ffff_ffff != mac || (w(8) >> 32) & 0x00ff_ffff != 0x0045_0008 {
        return None;
    }
    let total = usize::from(be16(h, 16));
    let dst = u32::from_be_bytes([h[30], h[31], h[32], h[33]]);
    if total < 20
        || total > frame.len() - ETH_LEN
        || h[22] <= 1
        || dst >= 0xe000_0000
        || (local_bloom & local_bloom_bit(dst) != 0 && local.contains(&dst))
    {
        return None;
    }
    let ok = match hw {
        Some(ok) => ok,
        None => {
            let ip: &[u8; 20] = h[ETH_LEN..].try_into().ok()?;
            crate::wire::checksum::ipv4_header20_ok(ip)
        }
    };
    if !ok {
        return None;
    }
    let proto = h[23];
    let src = u32::from_be_bytes([h[26], h[27], h[28], h[29]]);
    let (sp, dp) =
        if be16(h, 20) & 0x1fff == 0 && total >= 24 && matches!(proto, PROTO_UDP | PROTO_TCP) {
            // total <= frame.len() - 14 puts the ports inside the frame.
            let l4 = frame.get(34..38)?;
            (be16(l4, 0), be16(l4, 2))
        } else {
            (0, 0)
        };
    Some((dst, flow_hash_v4(src, dst, proto, sp, dp)))
}

/// Whether a frame is, beyond doubt, what [`classify`] calls [`Class::Decap`]: IPv4 without
/// options to the port's MAC (`mac` as for [`lean_v4`]) and to one of our IPv4 RLOCs, not a
/// fragment, UDP to port 4341 with room for its ports. A few word compares instead of the full
/// classification; `false` leaves the frame to [`classify`].
#[inline(always)]
pub(crate) fn lean_decap_v4(frame: &[u8], mac: u64, rlocs: &[u32]) -> bool {
    let Some(h) = frame.get(..38).and_then(|h| <&[u8; 38]>::try_from(h).ok()) else {
        return false;
    };
    let w = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap_or([0; 8]));
    if w(0) & 0xffff_ffff_ffff != mac || (w(8) >> 32) & 0x00ff_ffff != 0x0045_0008 {
        return false;
    }
    let total = usize::from(be16(h, 16));
    let dst = u32::from_be_bytes([h[30], h[31], h[32], h[33]]);
    total >= 24
        && total <= frame.len() - ETH_LEN
        && h[23] == PROTO_UDP
        && be16(h, 20) & 0x3fff == 0
        && be16(h, 36) == LISP_DATA_PORT
        && rlocs.contains(&dst)
}

/// The bit of IPv4 address `a` in a 64-bit Bloom filter of the appliance's own addresses.
#[inline(always)]
pub(crate) fn local_bloom_bit(a: u32) -> u64 {
    1 << (a.wrapping_mul(0x9E37_79B1) >> 26)
}

/// A MAC address as [`lean_v4`] compares it.
pub(crate) fn mac_word(mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(&mac);
    u64::from_le_bytes(b)
}

#[inline(always)]
fn classify_v6(
    ip: &[u8],
    to_us: bool,
    group: bool,
    port: &PortView,
    local: &impl LocalAddresses,
    info: &mut IpInfo,
) -> Class {
    if ip.len() < 40 || ip[0] >> 4 != 6 {
        return Class::Drop(Reason::DropMalformed);
    }
    let total = 40 + usize::from(be16(ip, 4));
    if total > ip.len() {
        return Class::Drop(Reason::DropMalformed);
    }
    let next = ip[6];
    let l4 = &ip[40..total];
    // Neighbor Discovery (RS, RA, NS, NA, Redirect) goes up whoever it is addressed to.
    if next == PROTO_ICMPV6 && !l4.is_empty() && (133..=137).contains(&l4[0]) {
        return Class::Punt(Reason::PuntNd);
    }
    let mut d = [0u8; 16];
    d.copy_from_slice(&ip[24..40]);
    let dst = Ipv6Addr::from(d);
    if group || dst.is_multicast() {
        return Class::Drop(Reason::DropMulticast);
    }
    if !to_us {
        return Class::Drop(Reason::DropNotForUs);
    }
    let ports = if l4.len() >= 4 && matches!(next, PROTO_UDP | PROTO_TCP) {
        Some((be16(l4, 0), be16(l4, 2)))
    } else {
        None
    };
    let dst_ip = IpAddr::V6(dst);
    if local.is_local(dst_ip) {
        return local_class(next, ports, PROTO_ICMPV6, local.is_rloc(dst_ip), false);
    }
    if !port.forward {
        return Class::Drop(Reason::DropNotForUs);
    }
    if dst.segments()[0] & 0xffc0 == 0xfe80 {
        // Link-local destinations are never routed.
        return Class::Drop(Reason::DropNotForUs);
    }
    let word = |o: usize| u64::from_be_bytes(ip[o..o + 8].try_into().unwrap_or([0; 8]));
    let (sp, dp) = ports.unwrap_or((0, 0));
    let h = word(8).rotate_left(7)
        ^ word(16)
        ^ word(24).rotate_left(29)
        ^ word(32)
        ^ (u64::from(next) << 40)
        ^ (u64::from(sp) << 16 | u64::from(dp)).rotate_left(51);
    info.dst = dst_ip;
    info.ip_len = total;
    info.ttl = ip[7];
    info.dont_fragment = true;
    info.flow_hash = mix(h);
    Class::Forward
}
