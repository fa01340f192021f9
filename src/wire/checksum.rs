//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::IpAddr;

/// Ones'-complement sum of `data` folded into 32 bits (not yet complemented).
#[inline]
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        if acc > 0xffff_0000 {
            acc = fold(acc);
        }
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds a 32-bit accumulator to 16 bits.
#[inline]
pub fn fold(mut acc: u32) -> u32 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// The checksum of `data` (complemented folded sum).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !(fold(sum(0, data)) as u16)
}

/// Sum of the UDP/TCP pseudo-header for `len` bytes of protocol `proto`.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    let mut acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum(sum(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => sum(sum(0, &s.octets()), &d.octets()),
        (IpAddr::V4(s), IpAddr::V6(d)) => sum(sum(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V4(d)) => sum(sum(0, &s.octets()), &d.octets()),
    };
    acc = acc.wrapping_add(u32::from(proto));
    acc = acc.wrapping_add(len >> 16).wrapping_add(len & 0xffff);
    acc
}

/// UDP checksum over the pseudo-header and `udp` (header with a zero checksum field, and
/// payload). A computed zero is sent as 0xffff (RFC 768).
pub fn udp(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let c = !(fold(sum(pseudo_header(src, dst, 17, udp.len() as u32), udp)) as u16);
    if c == 0 {
        0xffff
    } else {
        c
    }
}

/// Updates checksum `old_check` for a 16-bit field changing from `old` to `new` (RFC 1624 eq. 3).
#[inline]
pub fn update16(old_check: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!old_check) + u32::from(!old) + u32::from(new);
    !(fold(acc) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn incremental_matches_full() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 10, 0, 0, 1, 10, 0,
            0, 2,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
        // TTL 0x40 -> 0x3f in the TTL/protocol word.
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] = 0x3f;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let c2 = update16(c, old, new);
        hdr[10..12].copy_from_slice(&c2.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }
}
