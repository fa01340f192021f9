//! The LISP data header (RFC 9300 section 5.3): 8 bytes after the outer UDP header.
//!
//! ```text
//! |N|L|E|V|I|R|K|K|            Nonce/Map-Version                  |
//! |                 Instance ID/Locator-Status-Bits               |
//! ```

use super::{Error, Result};

/// Length of the LISP data header.
pub const HEADER_LEN: usize = 8;

const N: u8 = 0x80;
const L: u8 = 0x40;
const E: u8 = 0x20;
const V: u8 = 0x10;
const I: u8 = 0x08;
/// The two K bits (RFC 8061 key index): non-zero means an encrypted payload.
const K: u8 = 0x03;

/// A zero-copy view of a LISP data header.
#[derive(Debug, Clone, Copy)]
pub struct DataHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DataHeader<T> {
    /// Wraps a buffer without checking its length (accessors may panic if it is short).
    pub fn new_unchecked(buffer: T) -> DataHeader<T> {
        DataHeader { buffer }
    }

    /// Wraps a buffer that holds at least a whole header.
    pub fn new_checked(buffer: T) -> Result<DataHeader<T>> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated("LISP data header"));
        }
        Ok(DataHeader { buffer })
    }

    #[inline]
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline]
    pub fn flags(&self) -> u8 {
        self.b()[0]
    }

    /// N: the nonce field is present.
    #[inline]
    pub fn nonce_present(&self) -> bool {
        self.flags() & N != 0
    }

    /// L: locator-status-bits are present.
    #[inline]
    pub fn lsb_present(&self) -> bool {
        self.flags() & L != 0
    }

    /// E: the sender asks for its nonce to be echoed.
    #[inline]
    pub fn echo_nonce(&self) -> bool {
        self.flags() & E != 0
    }

    /// V: map-versions instead of a nonce.
    #[inline]
    pub fn map_version_present(&self) -> bool {
        self.flags() & V != 0
    }

    /// I: an instance-ID is present.
    #[inline]
    pub fn iid_present(&self) -> bool {
        self.flags() & I != 0
    }

    /// The 24-bit nonce / map-version field.
    #[inline]
    pub fn nonce_field(&self) -> u32 {
        u32::from_be_bytes([0, self.b()[1], self.b()[2], self.b()[3]])
    }

    /// The second word (instance-ID and LSBs, or LSBs).
    #[inline]
    pub fn second_word(&self) -> u32 {
        u32::from_be_bytes([self.b()[4], self.b()[5], self.b()[6], self.b()[7]])
    }

    /// The instance-ID (0 when the I bit is clear).
    #[inline]
    pub fn iid(&self) -> u32 {
        if self.iid_present() {
            self.second_word() >> 8
        } else {
            0
        }
    }
}

/// A parsed LISP data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataRepr {
    /// 24-bit nonce (N bit).
    pub nonce: Option<u32>,
    /// E: ask for the nonce to be echoed (meaningful with a nonce).
    pub echo_nonce: bool,
    /// 12-bit source and destination map-versions (V bit).
    pub map_version: Option<(u16, u16)>,
    /// 24-bit instance-ID (I bit).
    pub iid: Option<u32>,
    /// Locator-status-bits (L bit): 8 bits with an instance-ID, else 32.
    pub lsb: Option<u32>,
}

impl DataRepr {
    /// Parses a header view.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(h: &DataHeader<T>) -> Result<DataRepr> {
        if h.nonce_present() && h.map_version_present() {
            return Err(Error::NonceAndVersion);
        }
        if h.flags() & K != 0 {
            return Err(Error::EncryptedPayload);
        }
        let field = h.nonce_field();
        let word = h.second_word();
        Ok(DataRepr {
            nonce: h.nonce_present().then_some(field),
            echo_nonce: h.echo_nonce(),
            map_version: h
                .map_version_present()
                .then_some(((field >> 12) as u16, (field & 0xfff) as u16)),
            iid: h.iid_present().then_some(word >> 8),
            lsb: h
                .lsb_present()
                .then_some(if h.iid_present() { word & 0xff } else { word }),
        })
    }

    /// Writes the header into the first 8 bytes of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        if buf.len() < HEADER_LEN {
            return Err(Error::NoRoom("LISP data header"));
        }
        if self.nonce.is_some() && self.map_version.is_some() {
            return Err(Error::NonceAndVersion);
        }
        let mut flags = 0u8;
        let mut field = 0u32;
        if let Some(n) = self.nonce {
            flags |= N;
            field = n & 0x00ff_ffff;
        }
        if self.echo_nonce {
            flags |= E;
        }
        if let Some((s, d)) = self.map_version {
            flags |= V;
            field = (u32::from(s & 0xfff) << 12) | u32::from(d & 0xfff);
        }
        let word = match (self.iid, self.lsb) {
            (Some(iid), _) if iid > 0x00ff_ffff => return Err(Error::IidTooLarge(iid)),
            (Some(iid), lsb) => {
                flags |= I;
                if lsb.is_some() {
                    flags |= L;
                }
                ((iid & 0x00ff_ffff) << 8) | (lsb.unwrap_or(0) & 0xff)
            }
            (None, Some(lsb)) => {
                flags |= L;
                lsb
            }
            (None, None) => 0,
        };
        let f = field.to_be_bytes();
        buf[..HEADER_LEN].copy_from_slice(&[flags, f[1], f[2], f[3], 0, 0, 0, 0]);
        buf[4..8].copy_from_slice(&word.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9300_figure_bits() {
        // N and I set, nonce 0x123456, IID 0xabcdef, no LSBs.
        let r = DataRepr {
            nonce: Some(0x123456),
            iid: Some(0xabcdef),
            ..DataRepr::default()
        };
        let mut b = [0u8; 8];
        r.emit(&mut b).unwrap();
        assert_eq!(b, [0x88, 0x12, 0x34, 0x56, 0xab, 0xcd, 0xef, 0x00]);
        assert_eq!(
            DataRepr::parse(&DataHeader::new_checked(&b[..]).unwrap()).unwrap(),
            r
        );
        // OOR: all flags zero.
        let zero = DataRepr::parse(&DataHeader::new_checked(&[0u8; 8][..]).unwrap()).unwrap();
        assert_eq!(zero, DataRepr::default());
    }

    #[test]
    fn malformed() {
        assert_eq!(
            DataHeader::new_checked(&[0u8; 7][..]).err(),
            Some(Error::Truncated("LISP data header"))
        );
        let both = [0x90, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            DataRepr::parse(&DataHeader::new_checked(&both[..]).unwrap()),
            Err(Error::NonceAndVersion)
        );
    }
}
