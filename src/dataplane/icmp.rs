//! ICMP errors the control core sends for punted packets: Time Exceeded (the TTL ran out
//! here) and Fragmentation Needed / Packet Too Big (the packet does not fit the tunnel). The
//! error is written over the punted frame itself, so answering needs no buffer allocation.
//!
//! Rules (RFC 1812 section 4.3.2.7, RFC 4443 section 2.4): no error about an ICMP error, about
//! a non-first fragment, or to a source that is not a unicast address; the error quotes as
//! much of the original as fits in 576 bytes (IPv4) or 1280 bytes (IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::checksum;

use super::buf::PacketBuf;
use super::classify::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETH_LEN};

/// Which error to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpKind {
    /// TTL / hop limit exceeded in transit.
    TimeExceeded,
    /// Fragmentation needed (IPv4, DF set) / Packet Too Big (IPv6), announcing `mtu`.
    TooBig { mtu: u16 },
}

/// Why no error was sent (counted by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IcmpSkip {
    #[error("not an IPv4 or IPv6 packet")]
    NotIp,
    #[error("the packet is itself an ICMP error")]
    AboutError,
    #[error("non-first fragment")]
    Fragment,
    #[error("the source is not a unicast address")]
    BadSource,
    #[error("no address of ours in the packet's family on that port")]
    NoSourceAddress,
    #[error("no headroom to grow the frame")]
    NoRoom,
}

const V4_LIMIT: usize = 576;
const V6_LIMIT: usize = 1280;

/// Rewrites `pkt` (an Ethernet frame as received) into the ICMP error `kind` for it, from
/// `our_mac` and our address of the packet's family, back to the packet's source.
pub fn icmp_error_in_place<B: PacketBuf>(
    pkt: &mut B,
    kind: IcmpKind,
    our_mac: [u8; 6],
    our_v4: Option<Ipv4Addr>,
    our_v6: Option<Ipv6Addr>,
) -> Result<(), IcmpSkip> {
    let f = pkt.data();
    if f.len() < ETH_LEN + 20 {
        return Err(IcmpSkip::NotIp);
    }
    let mut peer_mac = [0u8; 6];
    peer_mac.copy_from_slice(&f[6..12]);
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let ip = &f[ETH_LEN..];
    let mut out = [0u8; ETH_LEN + V6_LIMIT];
    let len = match ethertype {
        ETHERTYPE_IPV4 if ip[0] >> 4 == 4 => {
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
            if ihl < 20 || total < ihl {
                return Err(IcmpSkip::NotIp);
            }
            if u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
                return Err(IcmpSkip::Fragment);
            }
            if ip[9] == 1 && total > ihl && matches!(ip[ihl], 3 | 4 | 5 | 11 | 12) {
                return Err(IcmpSkip::AboutError);
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            if src.is_unspecified() || src.is_multicast() || src.is_broadcast() || src.is_loopback()
            {
                return Err(IcmpSkip::BadSource);
            }
            let ours = our_v4.ok_or(IcmpSkip::NoSourceAddress)?;
            let quote = total.min(V4_LIMIT - 28);
            let (icmp_type, code, word) = match kind {
                IcmpKind::TimeExceeded => (11u8, 0u8, 0u32),
                IcmpKind::TooBig { mtu } => (3, 4, u32::from(mtu)),
            };
            let total_out = 20 + 8 + quote;
            let h = &mut out[ETH_LEN..ETH_LEN + total_out];
            h[0] = 0x45;
            h[1] = 0xc0;
            h[2..4].copy_from_slice(&(total_out as u16).to_be_bytes());
            h[8] = 64;
            h[9] = 1;
            h[12..16].copy_from_slice(&ours.octets());
            h[16..20].copy_from_slice(&src.octets());
            let c = checksum::checksum(&h[..20]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h[20] = icmp_type;
            h[21] = code;
            h[24..28].copy_from_slice(&word.to_be_bytes());
            h[28..].copy_from_slice(&ip[..quote]);
            let c = checksum::checksum(&h[20..]);
            h[22..24].copy_from_slice(&c.to_be_bytes());
            write_eth(&mut out, peer_mac, our_mac, ETHERTYPE_IPV4);
            ETH_LEN + total_out
        }
        ETHERTYPE_IPV6 if ip.len() >= 40 && ip[0] >> 4 == 6 => {
            let total = (40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))).min(ip.len());
            if ip[6] == 58 && total > 40 && ip[40] < 128 {
                return Err(IcmpSkip::AboutError);
            }
            let mut s = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            let src = Ipv6Addr::from(s);
            if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
                return Err(IcmpSkip::BadSource);
            }
            let ours = our_v6.ok_or(IcmpSkip::NoSourceAddress)?;
            let quote = total.min(V6_LIMIT - 48);
            let (icmp_type, word) = match kind {
                IcmpKind::TimeExceeded => (3u8, 0u32),
                IcmpKind::TooBig { mtu } => (2, u32::from(mtu)),
            };
            let plen = 8 + quote;
            let h = &mut out[ETH_LEN..ETH_LEN + 40 + plen];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(plen as u16).to_be_bytes());
            h[6] = 58;
            h[7] = 64;
            h[8..24].copy_from_slice(&ours.octets());
            h[24..40].copy_from_slice(&src.octets());
            h[40] = icmp_type;
            h[44..48].copy_from_slice(&word.to_be_bytes());
            h[48..].copy_from_slice(&ip[..quote]);
            let acc = checksum::pseudo_header(IpAddr::V6(ours), IpAddr::V6(src), 58, plen as u32);
            let c = !(checksum::fold(checksum::sum(acc, &h[40..])) as u16);
            h[42..44].copy_from_slice(&c.to_be_bytes());
            write_eth(&mut out, peer_mac, our_mac, ETHERTYPE_IPV6);
            ETH_LEN + 40 + plen
        }
        _ => return Err(IcmpSkip::NotIp),
    };
    let cur = pkt.data().len();
    if len > cur {
        pkt.prepend(len - cur).ok_or(IcmpSkip::NoRoom)?;
    } else {
        pkt.truncate(len);
    }
    pkt.data_mut()[..len].copy_from_slice(&out[..len]);
    Ok(())
}

fn write_eth(out: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    out[0..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    out[12..14].copy_from_slice(&ethertype.to_be_bytes());
}
