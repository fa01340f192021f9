//! Encapsulated Control Message (type 8): a control message (usually a Map-Request) with its
//! own inner IP and UDP header, sent to a Map-Resolver or forwarded by a Map-Server to an ETR.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{finish, Message, MessageType};
use crate::wire::checksum;
use crate::wire::field::{Reader, Writer};
use crate::wire::{Error, Result};

/// The inner IP and UDP header of an ECM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcmInner {
    /// Inner source (the ITR's RLOC or the requesting host's EID) and destination (the EID
    /// asked about); both of one family.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub ttl: u8,
    /// IPv4 identification and DF bit of the inner header (unused for IPv6).
    pub ipv4_id: u16,
    pub dont_fragment: bool,
    /// Whether the inner UDP checksum is filled in (false: zero, allowed for IPv4 and seen from
    /// Map-Servers forwarding Map-Requests).
    pub udp_checksum: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ecm {
    /// S: LISP-SEC information follows.
    pub security: bool,
    /// D: sent by a DDT Map-Resolver.
    pub ddt: bool,
    /// E: forwarded by a Map-Server to an ETR.
    pub to_etr: bool,
    /// M: sent to a Map-Server.
    pub to_ms: bool,
    pub inner: EcmInner,
    /// The encapsulated control message, as bytes (parse with [`Ecm::message`]).
    pub message: Vec<u8>,
}

const UDP_HEADER: usize = 8;

impl Ecm {
    fn ip_header_len(&self) -> usize {
        if self.inner.src.is_ipv4() {
            20
        } else {
            40
        }
    }

    pub fn buffer_len(&self) -> usize {
        4 + self.ip_header_len() + UDP_HEADER + self.message.len()
    }

    /// The encapsulated control message.
    pub fn message(&self) -> Result<Message> {
        Message::parse(&self.message)
    }

    pub fn parse(bytes: &[u8]) -> Result<Ecm> {
        let mut r = Reader::new(bytes);
        let b0 = r.u8("ECM header")?;
        let _reserved = r.bytes(3, "ECM header")?;
        let ip = r.rest();
        let version = ip.first().ok_or(Error::Truncated("ECM inner header"))? >> 4;
        let (src, dst, ttl, proto, payload, ipv4_id, dont_fragment) = match version {
            4 => {
                let mut ir = Reader::new(ip);
                let vihl = ir.u8("ECM inner IPv4 header")?;
                let ihl = usize::from(vihl & 0x0f) * 4;
                if ihl < 20 {
                    return Err(Error::Ipv4HeaderLength);
                }
                let hdr = Reader::new(ip).bytes(ihl, "ECM inner IPv4 header")?;
                let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
                if total < ihl || total > ip.len() {
                    return Err(Error::IpLength);
                }
                let src = IpAddr::V4(Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]));
                let dst = IpAddr::V4(Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]));
                let id = u16::from_be_bytes([hdr[4], hdr[5]]);
                (
                    src,
                    dst,
                    hdr[8],
                    hdr[9],
                    &ip[ihl..total],
                    id,
                    hdr[6] & 0x40 != 0,
                )
            }
            6 => {
                let hdr = Reader::new(ip).bytes(40, "ECM inner IPv6 header")?;
                let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
                if 40 + plen > ip.len() {
                    return Err(Error::IpLength);
                }
                let mut s = [0u8; 16];
                s.copy_from_slice(&hdr[8..24]);
                let mut d = [0u8; 16];
                d.copy_from_slice(&hdr[24..40]);
                let (src, dst) = (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)));
                (src, dst, hdr[7], hdr[6], &ip[40..40 + plen], 0, false)
            }
            v => return Err(Error::IpVersion(v)),
        };
        if proto != 17 {
            return Err(Error::NotUdp(proto));
        }
        let mut ur = Reader::new(payload);
        let src_port = ur.u16("ECM inner UDP header")?;
        let dst_port = ur.u16("ECM inner UDP header")?;
        let ulen = usize::from(ur.u16("ECM inner UDP header")?);
        let check = ur.u16("ECM inner UDP header")?;
        if ulen < UDP_HEADER || ulen > payload.len() {
            return Err(Error::UdpLength);
        }
        Ok(Ecm {
            security: b0 & 0x08 != 0,
            ddt: b0 & 0x04 != 0,
            to_etr: b0 & 0x02 != 0,
            to_ms: b0 & 0x01 != 0,
            inner: EcmInner {
                src,
                dst,
                src_port,
                dst_port,
                ttl,
                ipv4_id,
                dont_fragment,
                udp_checksum: check != 0 || src.is_ipv6(),
            },
            message: payload[UDP_HEADER..ulen].to_vec(),
        })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let udp_len = UDP_HEADER + self.message.len();
        let udp_len16 = u16::try_from(udp_len).map_err(|_| Error::TooLong("ECM message"))?;
        let mut w = Writer::new(buf);
        let b0 = ((MessageType::EncapsulatedControl as u8) << 4)
            | (u8::from(self.security) << 3)
            | (u8::from(self.ddt) << 2)
            | (u8::from(self.to_etr) << 1)
            | u8::from(self.to_ms);
        w.u8(b0, "ECM header")?;
        w.bytes(&[0, 0, 0], "ECM header")?;
        match (self.inner.src, self.inner.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total =
                    u16::try_from(20 + udp_len).map_err(|_| Error::TooLong("ECM message"))?;
                let mut h = [0u8; 20];
                h[0] = 0x45;
                h[2..4].copy_from_slice(&total.to_be_bytes());
                h[4..6].copy_from_slice(&self.inner.ipv4_id.to_be_bytes());
                h[6] = if self.inner.dont_fragment { 0x40 } else { 0 };
                h[8] = self.inner.ttl;
                h[9] = 17;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                let c = checksum::checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                w.bytes(&h, "ECM inner IPv4 header")?;
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut h = [0u8; 40];
                h[0] = 0x60;
                h[4..6].copy_from_slice(&udp_len16.to_be_bytes());
                h[6] = 17;
                h[7] = self.inner.ttl;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                w.bytes(&h, "ECM inner IPv6 header")?;
            }
            _ => return Err(Error::IpVersion(0)),
        }
        let udp_start = w.position();
        w.u16(self.inner.src_port, "ECM inner UDP header")?;
        w.u16(self.inner.dst_port, "ECM inner UDP header")?;
        w.u16(udp_len16, "ECM inner UDP header")?;
        w.u16(0, "ECM inner UDP header")?;
        w.bytes(&self.message, "ECM message")?;
        let end = finish(&w);
        // IPv6 requires the checksum; IPv4 may leave it zero.
        if self.inner.udp_checksum || self.inner.src.is_ipv6() {
            let c = checksum::udp(self.inner.src, self.inner.dst, &buf[udp_start..end]);
            buf[udp_start + 6..udp_start + 8].copy_from_slice(&c.to_be_bytes());
        }
        Ok(end)
    }
}
