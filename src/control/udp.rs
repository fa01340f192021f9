//! LISP control messages in and out of Ethernet frames: the UDP/IP headers of what the data
//! plane punts to us, and the frames the runtime sends for a [`super::Transmit`], built and
//! checked with smoltcp's wire types.

use std::net::IpAddr;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpPacket, UdpRepr,
};

/// A received UDP datagram: addresses, ports and where its payload is in the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// The payload's range in the frame.
    pub payload: std::ops::Range<usize>,
}

/// Why a punted frame is not a usable UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotUdp {
    /// Truncated or inconsistent headers.
    Malformed,
    /// An IPv4 fragment (control messages are not reassembled).
    Fragment,
    /// Not UDP, or IPv6 with extension headers.
    Protocol,
    /// A wrong IPv4 header or UDP checksum.
    Checksum,
}

/// The UDP datagram in an Ethernet frame (IPv4 or IPv6, no VLAN), checksums verified (a zero
/// IPv4 UDP checksum means none, RFC 768).
pub fn parse(frame: &[u8]) -> Result<Datagram, NotUdp> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| NotUdp::Malformed)?;
    let l3 = EthernetFrame::<&[u8]>::header_len();
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(&frame[l3..]).map_err(|_| NotUdp::Malformed)?;
            if !ip.verify_checksum() {
                return Err(NotUdp::Checksum);
            }
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(NotUdp::Fragment);
            }
            if ip.next_header() != IpProtocol::Udp {
                return Err(NotUdp::Protocol);
            }
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let hl = usize::from(ip.header_len());
            let total = usize::from(ip.total_len());
            let udp = UdpPacket::new_checked(&frame[l3 + hl..l3 + total])
                .map_err(|_| NotUdp::Malformed)?;
            if udp.checksum() != 0
                && !udp.verify_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(dst))
            {
                return Err(NotUdp::Checksum);
            }
            let start = l3 + hl + 8;
            Ok(Datagram {
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
                payload: start..l3 + hl + usize::from(udp.len()),
            })
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(&frame[l3..]).map_err(|_| NotUdp::Malformed)?;
            if ip.next_header() != IpProtocol::Udp {
                return Err(NotUdp::Protocol);
            }
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let len = usize::from(ip.payload_len());
            let udp = UdpPacket::new_checked(&frame[l3 + 40..l3 + 40 + len])
                .map_err(|_| NotUdp::Malformed)?;
            // IPv6 UDP checksums are mandatory (RFC 8200 8.1).
            if !udp.verify_checksum(&IpAddress::Ipv6(src), &IpAddress::Ipv6(dst)) {
                return Err(NotUdp::Checksum);
            }
            Ok(Datagram {
                src: IpAddr::V6(src),
                dst: IpAddr::V6(dst),
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
                payload: l3 + 48..l3 + 40 + usize::from(udp.len()),
            })
        }
        _ => Err(NotUdp::Protocol),
    }
}

/// An Ethernet frame carrying `payload` in UDP from `src`:`src_port` to `dst`:`dst_port`
/// (one family), with both checksums; `None` when the families differ.
#[allow(clippy::too_many_arguments)]
pub fn frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
    ttl: u8,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let udp = UdpRepr { src_port, dst_port };
    let udp_len = 8 + payload.len();
    let caps = ChecksumCapabilities::default();
    let (ethertype, ip_len) = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (EthernetProtocol::Ipv4, 20),
        (IpAddr::V6(_), IpAddr::V6(_)) => (EthernetProtocol::Ipv6, 40),
        _ => return None,
    };
    let mut buf = vec![0u8; 14 + ip_len + udp_len];
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype,
    }
    .emit(&mut eth);
    let l3 = &mut buf[14..];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let repr = Ipv4Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Udp,
                payload_len: udp_len,
                hop_limit: ttl,
            };
            let mut ip = Ipv4Packet::new_unchecked(&mut l3[..]);
            repr.emit(&mut ip, &caps);
            let mut u = UdpPacket::new_unchecked(&mut l3[20..]);
            udp.emit(
                &mut u,
                &IpAddress::Ipv4(s),
                &IpAddress::Ipv4(d),
                payload.len(),
                |b| b.copy_from_slice(payload),
                &caps,
            );
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let repr = Ipv6Repr {
                src_addr: s,
                dst_addr: d,
                next_header: IpProtocol::Udp,
                payload_len: udp_len,
                hop_limit: ttl,
            };
            let mut ip = Ipv6Packet::new_unchecked(&mut l3[..]);
            repr.emit(&mut ip);
            let mut u = UdpPacket::new_unchecked(&mut l3[40..]);
            udp.emit(
                &mut u,
                &IpAddress::Ipv6(s),
                &IpAddress::Ipv6(d),
                payload.len(),
                |b| b.copy_from_slice(payload),
                &caps,
            );
        }
        _ => return None,
    }
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_back_and_damage_is_caught() {
        for (s, d) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
            let (s, d): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let f = frame([2; 6], [4; 6], s, d, 4342, 61000, 64, b"hello lisp").unwrap();
            let dg = parse(&f).unwrap();
            assert_eq!(
                (dg.src, dg.dst, dg.src_port, dg.dst_port),
                (s, d, 4342, 61000)
            );
            assert_eq!(&f[dg.payload.clone()], b"hello lisp");
            // A flipped payload bit fails the UDP checksum.
            let mut bad = f.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(parse(&bad), Err(NotUdp::Checksum));
            for n in 0..f.len() {
                assert!(parse(&f[..n]).is_err(), "a frame cut at {n} bytes parsed");
            }
        }
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(frame([0; 6], [0; 6], v4, v6, 1, 2, 64, b"").is_none());
    }
}
