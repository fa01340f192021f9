//! LISP addresses: an AFI (RFC 9301 / IANA address family numbers) and the address, including
//! the LISP Canonical Address Format (LCAF, RFC 8060) Instance-ID type.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::field::{Reader, Writer};
use super::{Error, Result};

/// Address family identifiers LISP uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Afi {
    None = 0,
    Ipv4 = 1,
    Ipv6 = 2,
    DistinguishedName = 17,
    Lcaf = 16387,
    Mac = 16389,
}

/// LCAF types pxtr knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LcafType {
    InstanceId = 2,
}

/// Deepest LCAF nesting accepted (an Instance-ID around a plain address).
const LCAF_HEADER_LEN: usize = 6;

/// A LISP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// AFI 0: no address (e.g. a Map-Request without a source EID).
    None,
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// AFI 16389: a 48-bit MAC address (layer-2 EIDs).
    Mac([u8; 6]),
    /// AFI 17: a distinguished name (NUL-terminated on the wire; kept without the NUL).
    DistinguishedName(Vec<u8>),
    /// LCAF type 2: an address in an instance (virtual network). `mask_len` is the IID
    /// mask-length (0: the whole 32-bit IID is significant). The inner address is never
    /// itself an LCAF.
    InstanceId {
        iid: u32,
        mask_len: u8,
        address: Box<Address>,
    },
    /// Any other LCAF type, carried opaquely so it can be skipped or forwarded unchanged.
    Lcaf {
        lcaf_type: u8,
        flags: u8,
        rsvd2: u8,
        payload: Vec<u8>,
    },
}

impl Address {
    /// The AFI this address is encoded with.
    pub fn afi(&self) -> Afi {
        match self {
            Address::None => Afi::None,
            Address::Ipv4(_) => Afi::Ipv4,
            Address::Ipv6(_) => Afi::Ipv6,
            Address::Mac(_) => Afi::Mac,
            Address::DistinguishedName(_) => Afi::DistinguishedName,
            Address::InstanceId { .. } | Address::Lcaf { .. } => Afi::Lcaf,
        }
    }

    /// The longest meaningful mask length for this address family (for EID prefixes).
    pub fn max_mask_len(&self) -> u8 {
        match self {
            Address::None | Address::Lcaf { .. } => 0,
            Address::DistinguishedName(n) => u8::try_from(n.len() * 8).unwrap_or(u8::MAX),
            Address::Ipv4(_) => 32,
            Address::Ipv6(_) => 128,
            Address::Mac(_) => 48,
            Address::InstanceId { address, .. } => address.max_mask_len(),
        }
    }

    /// The IP address, looking through an Instance-ID.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ipv4(a) => Some(IpAddr::V4(*a)),
            Address::Ipv6(a) => Some(IpAddr::V6(*a)),
            Address::InstanceId { address, .. } => address.ip(),
            _ => None,
        }
    }

    /// The instance-ID (0 when the address has none).
    pub fn iid(&self) -> u32 {
        match self {
            Address::InstanceId { iid, .. } => *iid,
            _ => 0,
        }
    }

    /// Wraps `inner` in an Instance-ID LCAF, or returns it as is for IID 0.
    pub fn with_iid(iid: u32, inner: Address) -> Address {
        if iid == 0 {
            inner
        } else {
            Address::InstanceId {
                iid,
                mask_len: 0,
                address: Box::new(inner),
            }
        }
    }

    /// Encoded length, AFI included.
    pub fn buffer_len(&self) -> usize {
        2 + match self {
            Address::None => 0,
            Address::Ipv4(_) => 4,
            Address::Ipv6(_) => 16,
            Address::Mac(_) => 6,
            Address::DistinguishedName(n) => n.len() + 1,
            Address::InstanceId { address, .. } => LCAF_HEADER_LEN + 4 + address.buffer_len(),
            Address::Lcaf { payload, .. } => LCAF_HEADER_LEN + payload.len(),
        }
    }

    /// Parses an AFI and the address that follows.
    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Address> {
        Self::parse_nested(r, false)
    }

    fn parse_nested(r: &mut Reader<'_>, inside_lcaf: bool) -> Result<Address> {
        let afi = r.u16("address family")?;
        Ok(match afi {
            0 => Address::None,
            1 => Address::Ipv4(Ipv4Addr::from(r.array::<4>("IPv4 address")?)),
            2 => Address::Ipv6(Ipv6Addr::from(r.array::<16>("IPv6 address")?)),
            16389 => Address::Mac(r.array::<6>("MAC address")?),
            17 => {
                let rest = r.rest();
                let end = rest
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or(Error::Truncated("distinguished name"))?;
                let name = r.bytes(end + 1, "distinguished name")?;
                Address::DistinguishedName(name[..end].to_vec())
            }
            16387 => {
                let _rsvd1 = r.u8("LCAF header")?;
                let flags = r.u8("LCAF header")?;
                let lcaf_type = r.u8("LCAF header")?;
                // An Instance-ID inside an LCAF is refused (depth stays one); any other LCAF
                // type inside an Instance-ID is carried opaquely.
                if inside_lcaf && lcaf_type == LcafType::InstanceId as u8 {
                    return Err(Error::NestedLcaf);
                }
                let rsvd2 = r.u8("LCAF header")?;
                let length = r.u16("LCAF length")?;
                let body = r.bytes(usize::from(length), "LCAF body")?;
                if lcaf_type == LcafType::InstanceId as u8 {
                    let mut br = Reader::new(body);
                    let iid = br.u32("instance-ID")?;
                    let address = Self::parse_nested(&mut br, true)?;
                    if br.remaining() != 0 {
                        return Err(Error::LcafLength {
                            length,
                            content: br.position(),
                        });
                    }
                    Address::InstanceId {
                        iid,
                        mask_len: rsvd2,
                        address: Box::new(address),
                    }
                } else {
                    Address::Lcaf {
                        lcaf_type,
                        flags,
                        rsvd2,
                        payload: body.to_vec(),
                    }
                }
            }
            other => return Err(Error::BadAfi(other)),
        })
    }

    /// Writes the AFI and the address.
    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u16(self.afi() as u16, "address family")?;
        match self {
            Address::None => Ok(()),
            Address::Ipv4(a) => w.bytes(&a.octets(), "IPv4 address"),
            Address::Ipv6(a) => w.bytes(&a.octets(), "IPv6 address"),
            Address::Mac(m) => w.bytes(m, "MAC address"),
            Address::DistinguishedName(n) => {
                if n.contains(&0) {
                    return Err(Error::BadAfi(Afi::DistinguishedName as u16));
                }
                w.bytes(n, "distinguished name")?;
                w.u8(0, "distinguished name")
            }
            Address::InstanceId {
                iid,
                mask_len,
                address,
            } => {
                if matches!(**address, Address::InstanceId { .. }) {
                    return Err(Error::NestedLcaf);
                }
                let length =
                    u16::try_from(4 + address.buffer_len()).map_err(|_| Error::TooLong("LCAF"))?;
                w.u8(0, "LCAF header")?;
                w.u8(0, "LCAF header")?;
                w.u8(LcafType::InstanceId as u8, "LCAF header")?;
                w.u8(*mask_len, "LCAF header")?;
                w.u16(length, "LCAF length")?;
                w.u32(*iid, "instance-ID")?;
                address.emit(w)
            }
            Address::Lcaf {
                lcaf_type,
                flags,
                rsvd2,
                payload,
            } => {
                // Type 2 is the Instance-ID, which has its own variant: opaque bytes under that
                // type would parse back as something else.
                if *lcaf_type == LcafType::InstanceId as u8 {
                    return Err(Error::UnsupportedLcaf(*lcaf_type));
                }
                let length = u16::try_from(payload.len()).map_err(|_| Error::TooLong("LCAF"))?;
                w.u8(0, "LCAF header")?;
                w.u8(*flags, "LCAF header")?;
                w.u8(*lcaf_type, "LCAF header")?;
                w.u8(*rsvd2, "LCAF header")?;
                w.u16(length, "LCAF length")?;
                w.bytes(payload, "LCAF body")
            }
        }
    }

    /// Checks that `mask_len` fits this address as an EID prefix.
    pub(crate) fn check_mask(&self, mask_len: u8) -> Result<()> {
        match self {
            // Opaque LCAFs and names carry their own structure: the record is kept (so one such
            // record does not cost the whole message) and whoever uses it decides.
            Address::Lcaf { .. } | Address::DistinguishedName(_) => Ok(()),
            Address::InstanceId { address, .. }
                if matches!(
                    **address,
                    Address::Lcaf { .. } | Address::DistinguishedName(_)
                ) =>
            {
                Ok(())
            }
            _ if mask_len > self.max_mask_len() => Err(Error::MaskLength {
                mask_len,
                max: self.max_mask_len(),
            }),
            _ => Ok(()),
        }
    }
}

impl From<IpAddr> for Address {
    fn from(a: IpAddr) -> Address {
        match a {
            IpAddr::V4(a) => Address::Ipv4(a),
            IpAddr::V6(a) => Address::Ipv6(a),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::None => f.write_str("(none)"),
            Address::Ipv4(a) => write!(f, "{a}"),
            Address::Ipv6(a) => write!(f, "{a}"),
            Address::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            Address::DistinguishedName(n) => write!(f, "'{}'", String::from_utf8_lossy(n)),
            Address::InstanceId { iid, address, .. } => write!(f, "[{iid}]{address}"),
            Address::Lcaf { lcaf_type, .. } => write!(f, "(LCAF type {lcaf_type})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(a: &Address) -> Vec<u8> {
        let mut buf = vec![0u8; a.buffer_len()];
        let mut w = Writer::new(&mut buf);
        a.emit(&mut w).unwrap();
        assert_eq!(w.position(), buf.len());
        let mut r = Reader::new(&buf);
        assert_eq!(&Address::parse(&mut r).unwrap(), a);
        assert_eq!(r.remaining(), 0);
        buf
    }

    #[test]
    fn instance_id_lcaf_bytes() {
        // RFC 8060 section 4.1: AFI 16387, rsvd, flags, type 2, IID mask-len, length, IID, AFI, address.
        let a = Address::with_iid(0x00abcdef, Address::Ipv4(Ipv4Addr::new(10, 1, 1, 0)));
        let bytes = round_trip(&a);
        assert_eq!(
            bytes,
            [0x40, 0x03, 0, 0, 2, 0, 0, 10, 0x00, 0xab, 0xcd, 0xef, 0, 1, 10, 1, 1, 0]
        );
    }

    #[test]
    fn plain_addresses() {
        round_trip(&Address::None);
        round_trip(&Address::Ipv6("2001:db8::1".parse().unwrap()));
        round_trip(&Address::Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            round_trip(&Address::DistinguishedName(b"xtr-1".to_vec())),
            b"\x00\x11xtr-1\x00"
        );
        round_trip(&Address::InstanceId {
            iid: 5,
            mask_len: 0,
            address: Box::new(Address::Lcaf {
                lcaf_type: 12,
                flags: 0,
                rsvd2: 0,
                payload: vec![1, 2],
            }),
        });
        round_trip(&Address::Lcaf {
            lcaf_type: 11,
            flags: 0,
            rsvd2: 0,
            payload: vec![1, 2, 3],
        });
    }

    #[test]
    fn malformed() {
        let parse = |b: &[u8]| Address::parse(&mut Reader::new(b));
        assert_eq!(parse(&[0, 18, 1]), Err(Error::BadAfi(18)));
        assert_eq!(
            parse(&[0, 17, b'a', b'b']),
            Err(Error::Truncated("distinguished name"))
        );
        assert_eq!(parse(&[0, 1, 10, 0]), Err(Error::Truncated("IPv4 address")));
        assert_eq!(
            parse(&[0x40, 0x03, 0, 0, 2, 0, 0, 10, 0, 0]),
            Err(Error::Truncated("LCAF body"))
        );
        // An Instance-ID inside an Instance-ID.
        let nested = [
            0x40, 0x03, 0, 0, 2, 0, 0, 16, 0, 0, 0, 1, 0x40, 0x03, 0, 0, 2, 0, 0, 6, 0, 0, 0, 2, 0,
            0,
        ];
        assert_eq!(parse(&nested), Err(Error::NestedLcaf));
        // LCAF length longer than its content.
        let long = [
            0x40, 0x03, 0, 0, 2, 0, 0, 11, 0, 0, 0, 1, 0, 1, 10, 0, 0, 1, 0xff,
        ];
        assert!(matches!(parse(&long), Err(Error::LcafLength { .. })));
    }
}
