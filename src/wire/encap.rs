//! Building and removing the outer headers of LISP data packets (RFC 9300 section 5.3):
//! outer IPv4 or IPv6, UDP to port 4341, and the LISP data header, in front of an inner IPv4 or
//! IPv6 packet. No allocation: both work in place on the packet buffer.
//!
//! Encapsulation (ITR, PITR): the inner TTL / hop limit is decremented (the ITR routes the
//! packet) and copied to the outer header; DSCP and ECN are copied inner to outer (RFC 6040
//! normal mode); the outer IPv4 header has DF set and its checksum computed; the outer UDP checksum is zero for IPv4
//! and, for IPv6, computed unless the caller opts into zero checksums (RFC 6935/6936); the UDP
//! source port comes from the caller's flow hash (49152-65535), so receivers can spread flows.
//!
//! Decapsulation (ETR, PETR): the outer headers are validated, ECN is combined per RFC 6040
//! (a CE mark on a not-ECN-capable packet drops it), the inner TTL becomes the smaller of inner
//! and outer, and the inner IPv4 checksum is updated incrementally.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::data::{DataHeader, DataRepr, HEADER_LEN};
use super::{Error, Result, LISP_DATA_PORT};

/// Outer IPv4 + UDP + LISP.
pub const OUTER_V4_LEN: usize = 20 + 8 + HEADER_LEN;
/// Outer IPv6 + UDP + LISP.
pub const OUTER_V6_LEN: usize = 40 + 8 + HEADER_LEN;

/// Outer addresses: our RLOC and the chosen remote RLOC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outer {
    V4 { src: Ipv4Addr, dst: Ipv4Addr },
    V6 { src: Ipv6Addr, dst: Ipv6Addr },
}

impl Outer {
    /// Bytes of outer header this family needs in front of the inner packet.
    pub fn header_len(&self) -> usize {
        match self {
            Outer::V4 { .. } => OUTER_V4_LEN,
            Outer::V6 { .. } => OUTER_V6_LEN,
        }
    }

    /// From two addresses of one family.
    pub fn new(src: IpAddr, dst: IpAddr) -> Option<Outer> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Some(Outer::V4 { src, dst }),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Some(Outer::V6 { src, dst }),
            _ => None,
        }
    }
}

/// How to encapsulate one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncapParams {
    pub outer: Outer,
    /// Hash of the inner flow (or the NIC's RSS hash): picks the UDP source port (and the IPv6
    /// flow label).
    pub flow_hash: u32,
    pub header: DataRepr,
    /// Identification of the outer IPv4 header.
    pub ipv4_id: u16,
    /// Send IPv6 outer packets with a zero UDP checksum (RFC 6935), when every ETR accepts it.
    pub ipv6_zero_checksum: bool,
}

/// The UDP source port for a flow hash: in the dynamic range 49152-65535 (RFC 9300 5.3).
#[inline]
pub fn source_port(flow_hash: u32) -> u16 {
    let h = flow_hash ^ (flow_hash >> 16);
    0xc000 | (h as u16 & 0x3fff)
}

/// What an inner packet looks like, for the header fields the tunnel copies.
struct Inner {
    v6: bool,
    ttl: u8,
    /// DSCP and ECN (IPv4 TOS / IPv6 traffic class).
    tos: u8,
    len: usize,
}

#[inline]
fn inner_info(inner: &[u8]) -> Result<Inner> {
    let first = *inner.first().ok_or(Error::Truncated("inner packet"))?;
    match first >> 4 {
        4 => {
            if inner.len() < 20 {
                return Err(Error::Truncated("inner IPv4 header"));
            }
            let ihl = usize::from(first & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([inner[2], inner[3]]));
            if ihl < 20 || total < ihl {
                return Err(Error::Ipv4HeaderLength);
            }
            if total > inner.len() {
                return Err(Error::IpLength);
            }
            Ok(Inner {
                v6: false,
                ttl: inner[8],
                tos: inner[1],
                len: total,
            })
        }
        6 => {
            if inner.len() < 40 {
                return Err(Error::Truncated("inner IPv6 header"));
            }
            let total = 40 + usize::from(u16::from_be_bytes([inner[4], inner[5]]));
            if total > inner.len() {
                return Err(Error::IpLength);
            }
            Ok(Inner {
                v6: true,
                ttl: inner[7],
                tos: (inner[0] << 4) | (inner[1] >> 4),
                len: total,
            })
        }
        v => Err(Error::IpVersion(v)),
    }
}

/// Sets the TTL / hop limit of an inner packet, keeping an IPv4 checksum right.
#[inline]
fn set_inner_ttl(inner: &mut [u8], v6: bool, ttl: u8) {
    if v6 {
        inner[7] = ttl;
    } else {
        let old = u16::from_be_bytes([inner[8], inner[9]]);
        inner[8] = ttl;
        let new = u16::from_be_bytes([inner[8], inner[9]]);
        let c = u16::from_be_bytes([inner[10], inner[11]]);
        inner[10..12].copy_from_slice(&checksum::update16(c, old, new).to_be_bytes());
    }
}

/// Sets the ECN bits of an inner packet, keeping an IPv4 checksum right.
#[inline]
fn set_inner_ecn(inner: &mut [u8], v6: bool, ecn: u8) {
    if v6 {
        inner[1] = (inner[1] & !0x30) | ((ecn & 3) << 4);
    } else {
        let old = u16::from_be_bytes([inner[0], inner[1]]);
        inner[1] = (inner[1] & !3) | (ecn & 3);
        let new = u16::from_be_bytes([inner[0], inner[1]]);
        let c = u16::from_be_bytes([inner[10], inner[11]]);
        inner[10..12].copy_from_slice(&checksum::update16(c, old, new).to_be_bytes());
    }
}

/// Encapsulates in place. `pkt` holds `params.outer.header_len()` bytes of room followed by
/// the inner IP packet (possibly followed by padding, which is dropped from the lengths).
/// Returns the length of the encapsulated packet.
pub fn encapsulate(pkt: &mut [u8], params: &EncapParams) -> Result<usize> {
    let hl = params.outer.header_len();
    if pkt.len() < hl {
        return Err(Error::NoRoom("outer headers"));
    }
    let (hdr, inner) = pkt.split_at_mut(hl);
    let info = inner_info(inner)?;
    if info.ttl <= 1 {
        return Err(Error::TtlExpired);
    }
    // Everything that can fail is checked before the packet is touched.
    let udp_len = 8 + HEADER_LEN + info.len;
    let udp_len16 = u16::try_from(udp_len).map_err(|_| Error::TooLong("inner packet"))?;
    let total_v4 = match params.outer {
        Outer::V4 { .. } => {
            u16::try_from(20 + udp_len).map_err(|_| Error::TooLong("inner packet"))?
        }
        Outer::V6 { .. } => 0,
    };
    let ip_len = hl - 8 - HEADER_LEN;
    params.header.emit(&mut hdr[ip_len + 8..])?;
    let ttl = info.ttl - 1;
    set_inner_ttl(inner, info.v6, ttl);
    let inner = &inner[..info.len];
    let sport = source_port(params.flow_hash);
    {
        let udp = &mut hdr[ip_len..];
        udp[0..2].copy_from_slice(&sport.to_be_bytes());
        udp[2..4].copy_from_slice(&LISP_DATA_PORT.to_be_bytes());
        udp[4..6].copy_from_slice(&udp_len16.to_be_bytes());
        udp[6..8].copy_from_slice(&[0, 0]);
    }
    match params.outer {
        Outer::V4 { src, dst } => {
            let total = total_v4;
            let h = &mut hdr[..20];
            h[0] = 0x45;
            h[1] = info.tos;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[4..6].copy_from_slice(&params.ipv4_id.to_be_bytes());
            // DF always: an ETR does not reassemble (fragments are dropped on decap), so the
            // ITR handles the RLOC-side MTU before encapsulating (ICMP too-big / inner
            // fragmentation, issue #5) instead of leaving it to the underlay.
            h[6..8].copy_from_slice(&[0x40, 0]);
            h[8] = ttl;
            h[9] = 17;
            h[10..12].copy_from_slice(&[0, 0]);
            h[12..16].copy_from_slice(&src.octets());
            h[16..20].copy_from_slice(&dst.octets());
            let c = checksum::checksum(h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
        Outer::V6 { src, dst } => {
            let flow = params.flow_hash & 0x000f_ffff;
            let word = (6u32 << 28) | (u32::from(info.tos) << 20) | flow;
            let h = &mut hdr[..40];
            h[0..4].copy_from_slice(&word.to_be_bytes());
            h[4..6].copy_from_slice(&udp_len16.to_be_bytes());
            h[6] = 17;
            h[7] = ttl;
            h[8..24].copy_from_slice(&src.octets());
            h[24..40].copy_from_slice(&dst.octets());
            if !params.ipv6_zero_checksum {
                let acc =
                    checksum::pseudo_header(IpAddr::V6(src), IpAddr::V6(dst), 17, udp_len as u32);
                let acc = checksum::sum(acc, &hdr[40..40 + 8 + HEADER_LEN]);
                let acc = checksum::sum(acc, inner);
                let mut c = !(checksum::fold(acc) as u16);
                if c == 0 {
                    c = 0xffff;
                }
                hdr[40 + 6..40 + 8].copy_from_slice(&c.to_be_bytes());
            }
        }
    }
    Ok(hl + info.len)
}

/// What decapsulation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decap {
    /// Where the inner packet starts in the buffer.
    pub inner_offset: usize,
    /// Its length (without any trailing padding).
    pub inner_len: usize,
    /// 4 or 6.
    pub inner_version: u8,
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
    pub src_port: u16,
    pub header: DataRepr,
}

/// RFC 6040 section 4.2: the inner ECN after decapsulation, or None to drop.
/// Codepoints: 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE.
#[inline]
pub fn ecn_decap(inner: u8, outer: u8) -> Option<u8> {
    match (inner & 3, outer & 3) {
        (0, 3) => None,
        (0, _) => Some(0),
        (3, _) => Some(3),
        (_, 3) => Some(3),
        (2, 1) => Some(1),
        (i, _) => Some(i),
    }
}

/// What [`decapsulate_v4`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decap4 {
    /// Where the inner IPv4 packet starts (always 36: outer IPv4 + UDP + LISP headers).
    pub inner_offset: usize,
    pub inner_len: usize,
    /// The instance-ID when the I bit is set.
    pub iid: Option<u32>,
    /// The locator-status-bits when the L bit is set (8 with an instance-ID, else 32).
    pub lsb: Option<u32>,
}

/// [`decapsulate`] for its common case, in a handful of loads: an outer IPv4 header without
/// options, a zero UDP checksum, an inner IPv4 packet. `None` when the packet is not that case
/// or is invalid: the caller then runs [`decapsulate`], which handles the rest and names the
/// error; the buffer is unchanged then. When `Some`, the buffer was changed exactly as
/// `decapsulate` changes it (inner TTL, ECN, IPv4 checksum) and the result agrees with it.
#[inline(always)]
pub fn decapsulate_v4(pkt: &mut [u8]) -> Option<Decap4> {
    const INNER: usize = 20 + 8 + HEADER_LEN;
    let be16 = |b: &[u8], at: usize| usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
    if pkt.len() < INNER + 20 || pkt[0] != 0x45 {
        return None;
    }
    let total = be16(pkt, 2);
    if total < INNER + 20 || total > pkt.len() {
        return None;
    }
    let h: &[u8; 20] = pkt[..20].try_into().ok()?;
    if !checksum::ipv4_header20_ok(h) || be16(pkt, 6) & 0x3fff != 0 || pkt[9] != 17 {
        return None;
    }
    let (outer_ttl, outer_ecn) = (pkt[8], pkt[1] & 3);
    let udp = &pkt[20..total];
    if be16(udp, 2) != usize::from(LISP_DATA_PORT) || be16(udp, 4) != udp.len() || be16(udp, 6) != 0
    {
        return None;
    }
    let flags = udp[8];
    // N with V, and the K bits, are errors: decapsulate reports them.
    if flags & 0x90 == 0x90 || flags & 0x03 != 0 {
        return None;
    }
    let iid = (flags & 0x08 != 0).then(|| u32::from_be_bytes([0, udp[12], udp[13], udp[14]]));
    let lsb = (flags & 0x40 != 0).then(|| match iid {
        Some(_) => u32::from(udp[15]),
        None => u32::from_be_bytes([udp[12], udp[13], udp[14], udp[15]]),
    });
    let inner = &mut pkt[INNER..total];
    let ihl = usize::from(inner[0] & 0x0f) * 4;
    let len = be16(inner, 2);
    if inner[0] >> 4 != 4 || ihl < 20 || len < ihl || len > inner.len() {
        return None;
    }
    let ecn = ecn_decap(inner[1] & 3, outer_ecn)?;
    if ecn != inner[1] & 3 {
        set_inner_ecn(inner, false, ecn);
    }
    if outer_ttl < inner[8] {
        set_inner_ttl(inner, false, outer_ttl);
    }
    Some(Decap4 {
        inner_offset: INNER,
        inner_len: len,
        iid,
        lsb,
    })
}

/// Validates and removes the outer headers in place (the buffer is left as it was except for
/// the inner TTL, ECN and IPv4 checksum). `verify_udp_checksum` checks non-zero UDP checksums
/// (a zero one is accepted: IPv4 LISP uses it, and RFC 6936 allows it for IPv6 tunnels).
#[inline]
pub fn decapsulate(pkt: &mut [u8], verify_udp_checksum: bool) -> Result<Decap> {
    let first = *pkt.first().ok_or(Error::Truncated("outer header"))?;
    let (ip_len, end, outer_src, outer_dst, outer_ttl, outer_tos) = match first >> 4 {
        4 => {
            if pkt.len() < 20 {
                return Err(Error::Truncated("outer IPv4 header"));
            }
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 || pkt.len() < ihl {
                return Err(Error::Ipv4HeaderLength);
            }
            let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
            if total < ihl || total > pkt.len() {
                return Err(Error::IpLength);
            }
            if checksum::checksum(&pkt[..ihl]) != 0 {
                return Err(Error::Ipv4Checksum);
            }
            let frag = u16::from_be_bytes([pkt[6], pkt[7]]);
            if frag & 0x3fff != 0 {
                return Err(Error::Fragment);
            }
            if pkt[9] != 17 {
                return Err(Error::NotUdp(pkt[9]));
            }
            let src = IpAddr::V4(Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]));
            let dst = IpAddr::V4(Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]));
            (ihl, total, src, dst, pkt[8], pkt[1])
        }
        6 => {
            if pkt.len() < 40 {
                return Err(Error::Truncated("outer IPv6 header"));
            }
            let total = 40 + usize::from(u16::from_be_bytes([pkt[4], pkt[5]]));
            if total > pkt.len() {
                return Err(Error::IpLength);
            }
            if pkt[6] != 17 {
                return Err(Error::NotUdp(pkt[6]));
            }
            let mut s = [0u8; 16];
            s.copy_from_slice(&pkt[8..24]);
            let mut d = [0u8; 16];
            d.copy_from_slice(&pkt[24..40]);
            let tos = (pkt[0] << 4) | (pkt[1] >> 4);
            (
                40,
                total,
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                pkt[7],
                tos,
            )
        }
        v => return Err(Error::IpVersion(v)),
    };
    let udp = &pkt[ip_len..end];
    if udp.len() < 8 + HEADER_LEN {
        return Err(Error::Truncated("UDP and LISP headers"));
    }
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    if dst_port != LISP_DATA_PORT {
        return Err(Error::NotLispPort(dst_port));
    }
    if usize::from(u16::from_be_bytes([udp[4], udp[5]])) != udp.len() {
        return Err(Error::UdpLength);
    }
    let check = u16::from_be_bytes([udp[6], udp[7]]);
    if verify_udp_checksum && check != 0 {
        let acc = checksum::pseudo_header(outer_src, outer_dst, 17, udp.len() as u32);
        if checksum::fold(checksum::sum(acc, udp)) != 0xffff {
            return Err(Error::UdpChecksum);
        }
    }
    let header = DataRepr::parse(&DataHeader::new_checked(&udp[8..])?)?;
    let inner_offset = ip_len + 8 + HEADER_LEN;
    let inner = &mut pkt[inner_offset..end];
    let info = inner_info(inner)?;
    let ecn = ecn_decap(info.tos & 3, outer_tos & 3).ok_or(Error::EcnDrop)?;
    if ecn != info.tos & 3 {
        set_inner_ecn(inner, info.v6, ecn);
    }
    if outer_ttl < info.ttl {
        set_inner_ttl(inner, info.v6, outer_ttl);
    }
    Ok(Decap {
        inner_offset,
        inner_len: info.len,
        inner_version: if info.v6 { 6 } else { 4 },
        outer_src,
        outer_dst,
        src_port,
        header,
    })
}
