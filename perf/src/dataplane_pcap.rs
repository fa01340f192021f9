//! Test traffic for the data-plane benchmark (perf/dataplane.sh, perf/README.md): classic pcap
//! files (Ethernet, microsecond timestamps) that DPDK's net_pcap PMD replays.
//!
//! dataplane-pcap --out DIR [--eid-mac MAC] [--rloc-mac MAC]
//!
//! - `encap-*.pcap`: EID-side traffic the appliance encapsulates: 10.1.1.10 -> 10.2.0.1 (`-1`)
//!   or to 100,000 distinct /32s 10.64.0.0 + i (`-100k`, one packet each, shuffled), UDP to
//!   port 9 from a source port (49152..) that changes every packet;
//! - `decap-*.pcap`: the same inner packets LISP-encapsulated as they reach our RLOC
//!   (198.51.100.1 -> 192.0.2.1, UDP 4341, I bit set, instance-id 0);
//! - `*-64-*`: 64-byte frames (without FCS; for decap, the inner packet is the one of a 64-byte
//!   frame, 50 bytes of IP); `*-imix-*`: 7:4:1 of 64, 594 and 1514-byte frames, interleaved.
//!
//! The bytes are written here rather than with `pxtr::wire`, so that the reference traffic does
//! not depend on the code it measures. Output is the same on every run (fixed-seed shuffle,
//! fixed timestamps).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::exit;

/// net_pcap's MAC for the first pcap port (`02:70:63:61:70:<index>`, rte_eth_pcap.c).
const DEFAULT_EID_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
/// ... and for the second.
const DEFAULT_RLOC_MAC: [u8; 6] = [0x02, 0x70, 0x63, 0x61, 0x70, 0x01];
/// The EID-side host.
const EID_HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The RLOC-side next hop.
const RLOC_PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

const INNER_SRC: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 10);
const SINGLE_DST: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
const MANY_DST_BASE: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 0);
const MANY_DST: u32 = 100_000;
/// Packets in the single-destination files (each its own source port).
const SINGLE_PACKETS: u32 = 1024;
const DST_PORT: u16 = 9;
/// The remote ITR and our RLOC.
const OUTER_SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const OUTER_DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const LISP_DATA_PORT: u16 = 4341;
const TTL: u8 = 64;

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
const LISP_LEN: usize = 8;
const OUTER_LEN: usize = IP_LEN + UDP_LEN + LISP_LEN;

/// Frame sizes without FCS. The large IMIX frame is 1514 bytes (a 1500-byte IP packet), the
/// largest an Ethernet port with the standard MTU carries; "1518" in IMIX definitions counts
/// the FCS.
const SMALL: usize = 64;
const MEDIUM: usize = 594;
const LARGE: usize = 1514;
/// 7 small, 4 medium, 1 large, spread out.
const IMIX_PATTERN: [usize; 12] = [
    SMALL, MEDIUM, SMALL, SMALL, MEDIUM, SMALL, LARGE, SMALL, MEDIUM, SMALL, MEDIUM, SMALL,
];

/// Seconds of the first timestamp (any fixed value: files are the same on every run).
const TS_BASE: u32 = 1_700_000_000;

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Internet checksum of `data` (even length here).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header with its checksum.
fn ipv4_header(total_len: usize, id: u16, df: bool, src: Ipv4Addr, dst: Ipv4Addr) -> [u8; 20] {
    let mut h = [0u8; IP_LEN];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&u16::try_from(total_len).expect("IP length").to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    if df {
        h[6] = 0x40;
    }
    h[8] = TTL;
    h[9] = 17;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn udp_header(sport: u16, dport: u16, len: usize) -> [u8; 8] {
    let mut u = [0u8; UDP_LEN];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&u16::try_from(len).expect("UDP length").to_be_bytes());
    // Checksum 0: none (IPv4).
    u
}

/// One inner flow: the packet's addresses and ports, and the frame size it would have on the
/// EID side.
#[derive(Clone, Copy)]
struct Inner {
    dst: Ipv4Addr,
    sport: u16,
    frame_len: usize,
    id: u16,
}

impl Inner {
    /// The inner IPv4/UDP packet.
    fn ip_packet(&self) -> Vec<u8> {
        let ip_len = self.frame_len - ETH_LEN;
        let mut p = Vec::with_capacity(ip_len);
        p.extend_from_slice(&ipv4_header(ip_len, self.id, false, INNER_SRC, self.dst));
        p.extend_from_slice(&udp_header(self.sport, DST_PORT, ip_len - IP_LEN));
        // Payload: a recognisable pattern.
        p.extend((0..ip_len - IP_LEN - UDP_LEN).map(|i| (i as u8) ^ 0xa5));
        p
    }

    /// A hash of the 5-tuple (FNV-1a), as a receiver's flow hash would be.
    fn flow_hash(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        let bytes = INNER_SRC
            .octets()
            .into_iter()
            .chain(self.dst.octets())
            .chain([17])
            .chain(self.sport.to_be_bytes())
            .chain(DST_PORT.to_be_bytes());
        for b in bytes {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h
    }
}

fn ethernet(dst: [u8; 6], src: [u8; 6]) -> [u8; 14] {
    let mut e = [0u8; ETH_LEN];
    e[0..6].copy_from_slice(&dst);
    e[6..12].copy_from_slice(&src);
    e[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    e
}

/// The EID-side frame.
fn encap_frame(inner: &Inner, eid_mac: [u8; 6]) -> Vec<u8> {
    let mut f = ethernet(eid_mac, EID_HOST_MAC).to_vec();
    f.extend_from_slice(&inner.ip_packet());
    debug_assert_eq!(f.len(), inner.frame_len);
    f
}

/// The RLOC-side frame: outer IPv4 (DF) + UDP 4341 + LISP data header + inner packet.
fn decap_frame(inner: &Inner, rloc_mac: [u8; 6]) -> Vec<u8> {
    let ip = inner.ip_packet();
    let mut f = ethernet(rloc_mac, RLOC_PEER_MAC).to_vec();
    f.extend_from_slice(&ipv4_header(
        OUTER_LEN + ip.len(),
        0,
        true,
        OUTER_SRC,
        OUTER_DST,
    ));
    let sport = 0xc000 | (inner.flow_hash() & 0x3fff) as u16;
    f.extend_from_slice(&udp_header(
        sport,
        LISP_DATA_PORT,
        UDP_LEN + LISP_LEN + ip.len(),
    ));
    // Flags: I (instance-id present) only; no nonce, no map-version; instance-id 0 in the
    // high 24 bits of the second word, locator-status bits 0.
    f.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&ip);
    f
}

fn write_pcap(path: &Path, frames: impl Iterator<Item = Vec<u8>>) -> std::io::Result<usize> {
    let mut w = BufWriter::new(File::create(path)?);
    // Global header: magic (microseconds), version 2.4, zone 0, sigfigs 0, snaplen, Ethernet.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?;
    w.write_all(&0u32.to_le_bytes())?;
    w.write_all(&65535u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    let mut n = 0usize;
    for f in frames {
        // One microsecond apart.
        let ts_sec = TS_BASE + (n / 1_000_000) as u32;
        let ts_usec = (n % 1_000_000) as u32;
        let len = u32::try_from(f.len()).expect("frame length");
        w.write_all(&ts_sec.to_le_bytes())?;
        w.write_all(&ts_usec.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&f)?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// Source ports from the dynamic range (49152..), a new one every packet so packets are different
/// flows (they wrap after 16,384; in the 100k files every packet still has its own destination).
/// Ports below it would make tshark decode the payload as whatever protocol owns that port.
fn sport(i: u32) -> u16 {
    49152 + (i % 16384) as u16
}

/// One destination, 64-byte frames.
fn single(n: u32) -> Vec<Inner> {
    (0..n)
        .map(|i| Inner {
            dst: SINGLE_DST,
            sport: sport(i),
            frame_len: SMALL,
            id: i as u16,
        })
        .collect()
}

/// One packet to each of `MANY_DST` /32s in a fixed random order; frame sizes from `sizes`
/// in turn.
fn many(sizes: &[usize]) -> Vec<Inner> {
    let base = u32::from(MANY_DST_BASE);
    let mut dsts: Vec<u32> = (0..MANY_DST).map(|i| base + i).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in (1..dsts.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        dsts.swap(i, j);
    }
    dsts.iter()
        .enumerate()
        .map(|(i, &d)| Inner {
            dst: Ipv4Addr::from(d),
            sport: sport(i as u32),
            frame_len: sizes[i % sizes.len()],
            id: i as u16,
        })
        .collect()
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn usage(msg: &str) -> ! {
    eprintln!("dataplane-pcap: {msg}");
    eprintln!("usage: dataplane-pcap --out DIR [--eid-mac MAC] [--rloc-mac MAC]");
    exit(2);
}

fn main() {
    let mut out: Option<PathBuf> = None;
    let mut eid_mac = DEFAULT_EID_MAC;
    let mut rloc_mac = DEFAULT_RLOC_MAC;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value())),
            "--eid-mac" => {
                let v = value();
                eid_mac = parse_mac(&v).unwrap_or_else(|| usage(&format!("bad MAC {v}")));
            }
            "--rloc-mac" => {
                let v = value();
                rloc_mac = parse_mac(&v).unwrap_or_else(|| usage(&format!("bad MAC {v}")));
            }
            "-h" | "--help" => usage("help"),
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    let out = out.unwrap_or_else(|| usage("--out DIR is required"));
    if let Err(e) = std::fs::create_dir_all(&out) {
        usage(&format!("{}: {e}", out.display()));
    }

    let sets: [(&str, Vec<Inner>); 3] = [
        ("64-1", single(SINGLE_PACKETS)),
        ("64-100k", many(&[SMALL])),
        ("imix-100k", many(&IMIX_PATTERN)),
    ];
    for (name, inners) in &sets {
        for (kind, build) in [
            ("encap", encap_frame as fn(&Inner, [u8; 6]) -> Vec<u8>),
            ("decap", decap_frame),
        ] {
            let mac = if kind == "encap" { eid_mac } else { rloc_mac };
            let path = out.join(format!("{kind}-{name}.pcap"));
            match write_pcap(&path, inners.iter().map(|i| build(i, mac))) {
                Ok(n) => println!("{}: {n} packets", path.display()),
                Err(e) => {
                    eprintln!("dataplane-pcap: {}: {e}", path.display());
                    exit(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let i = single(1)[0];
        assert_eq!(encap_frame(&i, DEFAULT_EID_MAC).len(), 64);
        assert_eq!(decap_frame(&i, DEFAULT_RLOC_MAC).len(), 64 + OUTER_LEN);
    }

    #[test]
    fn header_checksums_verify() {
        let i = many(&IMIX_PATTERN)[6];
        let f = decap_frame(&i, DEFAULT_RLOC_MAC);
        assert_eq!(checksum(&f[14..34]), 0);
        assert_eq!(checksum(&f[14 + OUTER_LEN..34 + OUTER_LEN]), 0);
    }

    #[test]
    fn destinations_distinct() {
        let mut d: Vec<u32> = many(&[SMALL]).iter().map(|i| u32::from(i.dst)).collect();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), MANY_DST as usize);
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:70:63:61:70:01"), Some(DEFAULT_RLOC_MAC));
        assert_eq!(parse_mac("02:70:63:61:70"), None);
        assert_eq!(parse_mac("02:70:63:61:70:01:02"), None);
    }
}
