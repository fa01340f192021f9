//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::IpAddr;

/// Ones'-complement sum of `data` (as 16-bit big-endian words, an odd last byte padded with
/// zero) added to `acc`, folded into 32 bits (not yet folded to 16 nor complemented): only its
/// value modulo 0xffff is meaningful. Eight bytes per step: the two big-endian 32-bit halves of
/// each 64-bit word are congruent to the sum of their 16-bit words modulo 0xffff.
#[inline]
pub fn sum(acc: u32, data: &[u8]) -> u32 {
    let mut a = u64::from(acc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // At most 2^33 per step: no overflow for any packet (2^31 steps).
        a += (w >> 32) + (w & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    while let [x, y, tail @ ..] = rest {
        a += u64::from(u16::from_be_bytes([*x, *y]));
        rest = tail;
    }
    if let [last] = rest {
        a += u64::from(*last) << 8;
    }
    while a >> 32 != 0 {
        a = (a & 0xffff_ffff) + (a >> 32);
    }
    a as u32
}

/// Folds a 32-bit accumulator to 16 bits. Two fixed steps, no loop: the first leaves at most
/// 0x1_fffe, the second at most 0xffff.
#[inline(always)]
pub fn fold(acc: u32) -> u32 {
    let acc = (acc & 0xffff) + (acc >> 16);
    (acc & 0xffff) + (acc >> 16)
}

/// Whether a 20-byte IPv4 header (no options) has a right checksum: its sum folds to 0xffff.
/// Three loads instead of [`sum`]'s loop.
#[inline(always)]
pub fn ipv4_header20_ok(h: &[u8; 20]) -> bool {
    let w = |o: usize| {
        u64::from_be_bytes([
            h[o],
            h[o + 1],
            h[o + 2],
            h[o + 3],
            h[o + 4],
            h[o + 5],
            h[o + 6],
            h[o + 7],
        ])
    };
    let a = w(0);
    let b = w(8);
    let c = u64::from(u32::from_be_bytes([h[16], h[17], h[18], h[19]]));
    let s = (a >> 32) + (a & 0xffff_ffff) + (b >> 32) + (b & 0xffff_ffff) + c;
    // At most 5 * 2^32: two folds to 32 bits, then to 16.
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    fold(s as u32) == 0xffff
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
    fn header20_agrees_with_checksum() {
        let mut h: [u8; 20] = [
            0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 0x40, 1, 0, 0, 10, 1, 1, 10, 10, 2, 0, 7,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(ipv4_header20_ok(&h));
        for i in 0..20 {
            let mut bad = h;
            bad[i] ^= 0x10;
            assert!(!ipv4_header20_ok(&bad), "byte {i} flipped");
        }
        // All-ones words (the largest sums) still fold right.
        let mut ones = [0xffu8; 20];
        ones[10] = 0;
        ones[11] = 0;
        let c = checksum(&ones);
        ones[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(ipv4_header20_ok(&ones), checksum(&ones) == 0);
    }

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
