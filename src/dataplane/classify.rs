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
    let h = (u64::from(src) << 32 | u64::from(u32::from(dst)))
        ^ (u64::from(proto) << 40)
        ^ (u64::from(sp) << 16 | u64::from(dp)).rotate_left(21);
    info.dst = dst_ip;
    info.ip_len = total;
    info.ttl = ip[8];
    info.dont_fragment = frag & 0x4000 != 0;
    info.flow_hash = mix(h);
    Class::Forward
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
