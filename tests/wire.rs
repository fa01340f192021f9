//! LISP wire formats: byte-exact vectors laid out from RFC 9300/9301's figures, emit/parse
//! round trips for every message and option, property tests (Repr -> emit -> parse is the
//! identity; parsing arbitrary bytes never panics), authentication, and encap/decap rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use pxtr::wire::auth::{self, Algorithm};
use pxtr::wire::control::{
    Action, Ecm, EcmInner, EidRecord, Locator, MapNotify, MapRegister, MapReply, MapRequest,
    MappingRecord, Message, NotifyKind, Registration, XtrId,
};
use pxtr::wire::encap::{self, EncapParams, Outer};
use pxtr::wire::{Address, DataRepr, Error};

fn v4(a: [u8; 4]) -> Address {
    Address::Ipv4(Ipv4Addr::from(a))
}

fn round_trip(m: &Message) -> Vec<u8> {
    let bytes = m.to_vec().expect("emit");
    assert_eq!(bytes.len(), m.buffer_len());
    assert_eq!(&Message::parse(&bytes).expect("parse"), m);
    bytes
}

fn record(eid: Address, mask_len: u8, locs: Vec<Locator>) -> MappingRecord {
    MappingRecord {
        ttl: 1440,
        action: Action::NoAction,
        authoritative: true,
        map_version: 0,
        eid,
        mask_len,
        locators: locs,
    }
}

#[test]
fn map_request_smr_bytes() {
    // Type=1, S (SMR) and A set, IRC 0, one record; nonce; source EID 10.1.1.10; ITR-RLOC
    // 192.0.2.1; record 10.2.0.0/16.
    let m = Message::MapRequest(MapRequest {
        authoritative: true,
        smr: true,
        ..MapRequest::new(
            0x0102030405060708,
            v4([10, 1, 1, 10]),
            vec![v4([192, 0, 2, 1])],
            vec![EidRecord {
                mask_len: 16,
                eid: v4([10, 2, 0, 0]),
            }],
        )
    });
    let expected: Vec<u8> = [
        &[0x19, 0x00, 0x00, 0x01][..], // type 1 | A | S ; IRC 0 ; 1 record
        &[1, 2, 3, 4, 5, 6, 7, 8],     // nonce
        &[0, 1, 10, 1, 1, 10],         // source EID
        &[0, 1, 192, 0, 2, 1],         // ITR-RLOC
        &[0, 16, 0, 1, 10, 2, 0, 0],   // reserved, mask-len, AFI, prefix
    ]
    .concat();
    assert_eq!(round_trip(&m), expected);
}

#[test]
fn map_request_probe_smr_invoked_pitr_bits() {
    let mut r = MapRequest {
        authoritative: false,
        probe: true,
        smr: false,
        pitr: true,
        smr_invoked: true,
        reserved_r: true,
        local_xtr: true,
        dont_map_reply: true,
        nonce: 7,
        source_eid: Address::None,
        itr_rlocs: vec![
            v4([192, 0, 2, 1]),
            Address::Ipv6("2001:db8::1".parse().unwrap()),
        ],
        records: vec![EidRecord {
            mask_len: 32,
            eid: v4([10, 2, 0, 7]),
        }],
        map_reply: Some(record(
            v4([10, 1, 0, 0]),
            16,
            vec![Locator::new(v4([192, 0, 2, 1]), 1, 100)],
        )),
        xtr_id: Some(XtrId {
            xtr_id: [0xab; 16],
            site_id: 42,
        }),
    };
    let bytes = round_trip(&Message::MapRequest(r.clone()));
    // A=0 M=1 P=1 S=0 | p s R I | reserved | L D | IRC=1
    assert_eq!(bytes[0], 0x16);
    assert_eq!(bytes[1], 0xf0);
    assert_eq!(bytes[2], 0x61);
    r.itr_rlocs.clear();
    assert_eq!(Message::MapRequest(r).to_vec(), Err(Error::NoItrRloc));
}

#[test]
fn negative_map_reply_bytes() {
    // A negative Map-Reply: no locators, action send-map-request, TTL 15 minutes.
    let m = Message::MapReply(MapReply {
        probe: false,
        echo_nonce_capable: false,
        security: false,
        nonce: 0xaabbccddeeff0011,
        records: vec![MappingRecord {
            ttl: 15,
            action: Action::SendMapRequest,
            authoritative: false,
            map_version: 0,
            eid: v4([10, 3, 0, 0]),
            mask_len: 16,
            locators: vec![],
        }],
    });
    let expected: Vec<u8> = [
        &[0x20, 0, 0, 1][..],
        &[0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11],
        &[0, 0, 0, 15],       // record TTL
        &[0, 16, 0x40, 0x00], // locator count 0, mask-len 16, ACT=2 A=0
        &[0x00, 0x00, 0, 1],  // map-version 0, AFI 1
        &[10, 3, 0, 0],
    ]
    .concat();
    assert_eq!(round_trip(&m), expected);
}

#[test]
fn positive_map_reply_with_iid_and_locator_flags() {
    let mut l = Locator::new(v4([203, 0, 113, 1]), 1, 50);
    l.local = true;
    l.probed = true;
    let m = Message::MapReply(MapReply {
        probe: true,
        echo_nonce_capable: true,
        security: false,
        nonce: 1,
        records: vec![MappingRecord {
            map_version: 0xabc,
            ..record(
                Address::with_iid(7, v4([10, 1, 1, 0])),
                24,
                vec![l, Locator::new(v4([203, 0, 113, 2]), 255, 0)],
            )
        }],
    });
    let bytes = round_trip(&m);
    assert_eq!(bytes[0], 0x2c);
    // Locator flags of the first locator: L p R.
    let first_loc = 12 + 10 + 18;
    assert_eq!(
        &bytes[first_loc..first_loc + 6],
        &[1, 50, 255, 0, 0x00, 0x07]
    );
}

fn registration(records: Vec<MappingRecord>, xtr: bool) -> Registration {
    Registration {
        nonce: 0x1122334455667788,
        key_id: 3,
        algorithm_id: 0,
        auth_data: vec![],
        records,
        xtr_id: xtr.then_some(XtrId {
            xtr_id: [7; 16],
            site_id: 9,
        }),
    }
}

#[test]
fn map_register_header_bits_and_signing() {
    for (alg, alg_id, len) in [
        (Algorithm::HmacSha1_96, 1u8, 20usize),
        (Algorithm::HmacSha256_128, 2, 32),
    ] {
        let m = Message::MapRegister(MapRegister {
            proxy_reply: true,
            security: false,
            rtr: false,
            want_map_notify: true,
            registration: registration(
                vec![record(
                    v4([10, 1, 1, 0]),
                    24,
                    vec![Locator::new(v4([192, 0, 2, 1]), 1, 100)],
                )],
                true,
            ),
        });
        let bytes = auth::emit_signed(&m, alg, b"site-key").unwrap();
        // Type 3 | P | I ; M in the last bit of the third byte.
        assert_eq!(&bytes[..4], &[0x3a, 0x00, 0x01, 0x01]);
        assert_eq!(bytes[12], 3, "key-id kept");
        assert_eq!(auth::key_id(&bytes), Ok(3));
        assert_eq!(bytes[13], alg_id, "algorithm-id");
        assert_eq!(usize::from(u16::from_be_bytes([bytes[14], bytes[15]])), len);
        assert_eq!(auth::verify(&bytes, b"site-key"), Ok(alg));
        assert_eq!(auth::verify(&bytes, b"other-key"), Err(Error::AuthFailed));
        // Any changed bit, in the records or the xTR-ID, fails.
        for at in [20 + len, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert_eq!(
                auth::verify(&bad, b"site-key"),
                Err(Error::AuthFailed),
                "bit at {at}"
            );
        }
        let Message::MapRegister(parsed) = Message::parse(&bytes).unwrap() else {
            panic!()
        };
        assert!(parsed.proxy_reply && parsed.want_map_notify);
        assert_eq!(
            parsed.registration.xtr_id,
            Some(XtrId {
                xtr_id: [7; 16],
                site_id: 9
            })
        );
    }
}

#[test]
fn truncated_hmac_is_accepted_and_wrong_lengths_are_not() {
    // SHA-1-96 proper: 12 bytes on the wire.
    let m = Message::MapNotify(MapNotify {
        kind: NotifyKind::Notify,
        rtr: false,
        registration: Registration {
            key_id: 0,
            algorithm_id: 1,
            auth_data: vec![0; 12],
            ..registration(vec![record(v4([10, 1, 1, 0]), 24, vec![])], false)
        },
    });
    let mut bytes = m.to_vec().unwrap();
    assert_eq!(
        auth::verify(&bytes, b"k"),
        Err(Error::AuthFailed),
        "a zero MAC does not verify"
    );
    auth::sign(&mut bytes, b"k").unwrap();
    assert_eq!(
        auth::verify(&bytes, b"k"),
        Ok(Algorithm::HmacSha1_96),
        "12-byte HMAC-SHA-1-96"
    );
    assert_eq!(auth::verify(&bytes, b"j"), Err(Error::AuthFailed));
    let full = auth::emit_signed(&m, Algorithm::HmacSha1_96, b"k").unwrap();
    assert_eq!(full.len(), bytes.len() + 8);
    assert_eq!(
        auth::verify(&full, b"k"),
        Ok(Algorithm::HmacSha1_96),
        "20-byte form"
    );
    bytes[14..16].copy_from_slice(&13u16.to_be_bytes());
    assert!(matches!(
        auth::verify(&bytes, b"k"),
        Err(Error::AuthLength { .. }) | Err(Error::Truncated(_))
    ));
    let mut unauth = m.to_vec().unwrap();
    unauth[13] = 0;
    assert_eq!(auth::verify(&unauth, b"k"), Err(Error::NotAuthenticated));
    unauth[13] = 3;
    assert_eq!(
        auth::verify(&unauth, b"k"),
        Err(Error::UnsupportedAlgorithm(3))
    );
    // A peer using key 1 of its keys with HMAC-SHA-1-96 (lispers.net's key rollover): 0x0101.
    let mut rollover = m.clone();
    if let Message::MapNotify(n) = &mut rollover {
        n.registration.key_id = 1;
    }
    let signed = auth::emit_signed(&rollover, Algorithm::HmacSha1_96, b"k1").unwrap();
    assert_eq!(&signed[12..14], &[1, 1]);
    assert_eq!(auth::key_id(&signed), Ok(1));
    assert_eq!(auth::verify(&signed, b"k1"), Ok(Algorithm::HmacSha1_96));
}

#[test]
fn map_notify_and_ack_round_trip() {
    for kind in [NotifyKind::Notify, NotifyKind::Ack] {
        let m = Message::MapNotify(MapNotify {
            kind,
            rtr: true,
            registration: registration(
                vec![record(
                    v4([10, 1, 1, 7]),
                    32,
                    vec![Locator::new(v4([203, 0, 113, 1]), 1, 100)],
                )],
                true,
            ),
        });
        let bytes = round_trip(&m);
        assert_eq!(
            bytes[0] >> 4,
            if kind == NotifyKind::Notify { 4 } else { 5 }
        );
        assert_eq!(bytes[0] & 0x0c, 0x0c, "I and R");
    }
}

#[test]
fn ecm_ipv4_and_ipv6_round_trip() {
    let inner_req = Message::MapRequest(MapRequest::new(
        99,
        v4([10, 1, 1, 10]),
        vec![v4([192, 0, 2, 1])],
        vec![EidRecord {
            mask_len: 32,
            eid: v4([10, 2, 0, 10]),
        }],
    ));
    for (src, dst) in [
        (
            IpAddr::V4(Ipv4Addr::new(10, 1, 1, 10)),
            IpAddr::V4(Ipv4Addr::new(10, 2, 0, 10)),
        ),
        (
            IpAddr::V6("2001:db8:1::10".parse().unwrap()),
            IpAddr::V6("2001:db8:2::10".parse().unwrap()),
        ),
    ] {
        let ecm = Message::Ecm(Ecm {
            security: false,
            ddt: false,
            to_etr: src.is_ipv6(),
            to_ms: false,
            inner: EcmInner {
                src,
                dst,
                src_port: 61000,
                dst_port: 4342,
                ttl: 64,
                ipv4_id: 0,
                dont_fragment: false,
                udp_checksum: true,
            },
            message: inner_req.to_vec().unwrap(),
        });
        let bytes = round_trip(&ecm);
        let Message::Ecm(e) = Message::parse(&bytes).unwrap() else {
            panic!()
        };
        assert_eq!(e.message().unwrap(), inner_req);
        // The inner UDP checksum verifies (sum over pseudo-header and datagram is all ones).
        let ip_len = if src.is_ipv4() { 20 } else { 40 };
        let udp = &bytes[4 + ip_len..];
        let acc = pxtr::wire::checksum::pseudo_header(src, dst, 17, udp.len() as u32);
        assert_eq!(
            pxtr::wire::checksum::fold(pxtr::wire::checksum::sum(acc, udp)),
            0xffff
        );
    }
}

#[test]
fn addresses_in_records_mac_and_unknown_lcaf() {
    // A MAC EID (layer 2) and a locator carried as an unknown LCAF (kept opaque).
    let mut loc = Locator::new(
        Address::Lcaf {
            lcaf_type: 10,
            flags: 0,
            rsvd2: 0,
            payload: vec![0, 1, 2, 3, 0, 0],
        },
        1,
        1,
    );
    loc.reachable = false;
    let m = Message::MapReply(MapReply {
        probe: false,
        echo_nonce_capable: false,
        security: false,
        nonce: 5,
        records: vec![record(Address::Mac([2, 0, 0, 0, 0, 9]), 48, vec![loc])],
    });
    round_trip(&m);
    // Records whose EID pxtr cannot use (an unknown LCAF such as an (S,G) source/dest, a
    // distinguished name, an unknown LCAF inside an Instance-ID) are kept, so the other
    // records of the message still count; the one thing refused is an opaque type 2.
    let mut bytes = m.to_vec().unwrap();
    let kept = Message::MapReply(MapReply {
        probe: false,
        echo_nonce_capable: false,
        security: false,
        nonce: 6,
        records: vec![
            record(
                Address::Lcaf {
                    lcaf_type: 12,
                    flags: 0,
                    rsvd2: 0,
                    payload: vec![0; 8],
                },
                0,
                vec![],
            ),
            record(
                Address::DistinguishedName(b"site-a.example".to_vec()),
                0,
                vec![],
            ),
            record(
                Address::InstanceId {
                    iid: 9,
                    mask_len: 0,
                    address: Box::new(Address::Lcaf {
                        lcaf_type: 12,
                        flags: 0,
                        rsvd2: 0,
                        payload: vec![1; 4],
                    }),
                },
                0,
                vec![],
            ),
            record(
                v4([10, 9, 0, 0]),
                16,
                vec![Locator::new(v4([192, 0, 2, 9]), 1, 1)],
            ),
        ],
    });
    let kept_bytes = round_trip(&kept);
    // tshark's dissector and ours agree on the distinguished name layout: AFI 17, NUL-terminated.
    assert!(kept_bytes.windows(15).any(|w| w == b"site-a.example\0"));
    let opaque_iid = Address::Lcaf {
        lcaf_type: 2,
        flags: 0,
        rsvd2: 0,
        payload: vec![],
    };
    assert_eq!(
        Message::MapReply(MapReply {
            records: vec![record(opaque_iid, 0, vec![])],
            ..match Message::parse(&bytes).unwrap() {
                Message::MapReply(r) => r,
                _ => unreachable!(),
            }
        })
        .to_vec(),
        Err(Error::UnsupportedLcaf(2))
    );
    // A mask longer than the address.
    bytes[12 + 5] = 49;
    assert_eq!(
        Message::parse(&bytes),
        Err(Error::MaskLength {
            mask_len: 49,
            max: 48
        })
    );
}

#[test]
fn each_malformed_case_has_its_own_error() {
    let reply = Message::MapReply(MapReply {
        probe: false,
        echo_nonce_capable: false,
        security: false,
        nonce: 1,
        records: vec![record(
            v4([10, 1, 1, 0]),
            24,
            vec![Locator::new(v4([192, 0, 2, 1]), 1, 1)],
        )],
    })
    .to_vec()
    .unwrap();
    assert_eq!(Message::parse(&[]), Err(Error::Truncated("message type")));
    assert_eq!(Message::parse(&[0x70, 0, 0, 0]), Err(Error::UnknownType(7)));
    assert_eq!(Message::parse(&reply[..10]), Err(Error::Truncated("nonce")));
    let mut more_records = reply.clone();
    more_records[3] = 2;
    assert_eq!(
        Message::parse(&more_records),
        Err(Error::RecordCountOverrun("Map-Reply"))
    );
    let mut more_locators = reply.clone();
    more_locators[12 + 4] = 3;
    assert_eq!(
        Message::parse(&more_locators),
        Err(Error::LocatorCountOverrun)
    );
    let mut bad_afi = reply.clone();
    bad_afi[12 + 10..12 + 12].copy_from_slice(&18u16.to_be_bytes());
    assert_eq!(Message::parse(&bad_afi), Err(Error::BadAfi(18)));
    let req = MapRequest::new(1, Address::None, vec![v4([192, 0, 2, 1])], vec![]);
    let mut bytes = Message::MapRequest(req).to_vec().unwrap();
    bytes[2] |= 0x1f;
    assert_eq!(Message::parse(&bytes), Err(Error::ItrRlocCountOverrun));
}

// ---- data plane: encapsulation and decapsulation ----

fn inner_ipv4(ttl: u8, tos: u8, df: bool, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![
        0x45,
        tos,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        if df { 0x40 } else { 0 },
        0,
        ttl,
        17,
        0,
        0,
        10,
        1,
        1,
        10,
        10,
        2,
        0,
        10,
    ];
    let c = pxtr::wire::checksum::checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn inner_ipv6(hop: u8, tc: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60 | (tc >> 4), tc << 4, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(17);
    p.push(hop);
    p.extend_from_slice(&"2001:db8:1::10".parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(&"2001:db8:2::10".parse::<Ipv6Addr>().unwrap().octets());
    p.extend_from_slice(payload);
    p
}

fn encap_with(outer: Outer, inner: &[u8], header: DataRepr) -> Vec<u8> {
    let mut pkt = vec![0u8; outer.header_len()];
    pkt.extend_from_slice(inner);
    let n = encap::encapsulate(
        &mut pkt,
        &EncapParams {
            outer,
            flow_hash: 0xdead_beef,
            header,
            ipv4_id: 7,
            ipv6_zero_checksum: false,
        },
    )
    .unwrap();
    pkt.truncate(n);
    pkt
}

const OUTER4: Outer = Outer::V4 {
    src: Ipv4Addr::new(192, 0, 2, 1),
    dst: Ipv4Addr::new(203, 0, 113, 1),
};

#[test]
fn ipv4_outer_headers() {
    let inner = inner_ipv4(64, 0xb8 | 0x02, true, b"hello");
    let hdr = DataRepr {
        nonce: Some(0xabcdef),
        iid: Some(5),
        ..DataRepr::default()
    };
    let pkt = encap_with(OUTER4, &inner, hdr);
    assert_eq!(pkt.len(), 36 + inner.len());
    assert_eq!(
        pxtr::wire::checksum::checksum(&pkt[..20]),
        0,
        "outer IPv4 checksum"
    );
    assert_eq!(pkt[1], 0xba, "DSCP and ECN copied to the outer header");
    assert_eq!(pkt[8], 63, "outer TTL = decremented inner TTL");
    assert_eq!(pkt[6] & 0x40, 0x40, "DF set on the outer header");
    assert_eq!(
        &pkt[22..24],
        &4341u16.to_be_bytes(),
        "destination port 4341"
    );
    assert!(
        u16::from_be_bytes([pkt[20], pkt[21]]) >= 49152,
        "source port from the flow hash"
    );
    assert_eq!(&pkt[26..28], &[0, 0], "zero UDP checksum over IPv4");
    assert_eq!(pkt[36 + 8], 63, "inner TTL decremented");
    assert_eq!(
        pxtr::wire::checksum::checksum(&pkt[36..56]),
        0,
        "inner checksum kept right"
    );

    let mut rx = pkt.clone();
    let d = encap::decapsulate(&mut rx, true).unwrap();
    assert_eq!(d.header, hdr);
    assert_eq!(d.inner_offset, 36);
    assert_eq!(&rx[36..36 + d.inner_len], &pkt[36..]);
    assert_eq!(d.outer_dst, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)));
}

#[test]
fn ipv6_outer_headers_and_checksum() {
    let outer = Outer::V6 {
        src: "2001:db8:ff::1".parse().unwrap(),
        dst: "2001:db8:ff::2".parse().unwrap(),
    };
    let inner = inner_ipv4(10, 0x01, false, &[1, 2, 3]);
    let pkt = encap_with(outer, &inner, DataRepr::default());
    assert_eq!(pkt[0] >> 4, 6);
    assert_eq!(
        ((pkt[0] & 0x0f) << 4) | (pkt[1] >> 4),
        0x01,
        "traffic class copied"
    );
    assert_eq!(pkt[7], 9, "hop limit");
    assert_ne!(&pkt[46..48], &[0, 0], "IPv6 outer UDP checksum is computed");
    let mut rx = pkt.clone();
    encap::decapsulate(&mut rx, true).expect("checksum verifies");
    let mut bad = pkt.clone();
    *bad.last_mut().unwrap() ^= 0xff;
    assert_eq!(encap::decapsulate(&mut bad, true), Err(Error::UdpChecksum));
    // Zero-checksum mode (RFC 6935) is accepted on receive.
    let mut z = vec![0u8; 56];
    z.extend_from_slice(&inner);
    let n = encap::encapsulate(
        &mut z,
        &EncapParams {
            outer,
            flow_hash: 1,
            header: DataRepr::default(),
            ipv4_id: 0,
            ipv6_zero_checksum: true,
        },
    )
    .unwrap();
    assert_eq!(&z[46..48], &[0, 0]);
    encap::decapsulate(&mut z[..n], true).expect("zero checksum accepted");
}

#[test]
fn ttl_expiry_and_ipv6_inner() {
    let mut pkt = vec![0u8; 36];
    pkt.extend_from_slice(&inner_ipv4(1, 0, false, b"x"));
    let p = EncapParams {
        outer: OUTER4,
        flow_hash: 0,
        header: DataRepr::default(),
        ipv4_id: 0,
        ipv6_zero_checksum: false,
    };
    assert_eq!(encap::encapsulate(&mut pkt, &p), Err(Error::TtlExpired));
    // A header that cannot be emitted fails before the packet is changed.
    let mut ok_ttl = vec![0u8; 36];
    ok_ttl.extend_from_slice(&inner_ipv4(9, 0, false, b"x"));
    let before = ok_ttl.clone();
    let bad = EncapParams {
        header: DataRepr {
            iid: Some(1 << 24),
            ..DataRepr::default()
        },
        ..p
    };
    assert_eq!(
        encap::encapsulate(&mut ok_ttl, &bad),
        Err(Error::IidTooLarge(1 << 24))
    );
    assert_eq!(ok_ttl, before, "nothing changed");
    let inner6 = inner_ipv6(2, 0x2a, b"abc");
    let out = encap_with(OUTER4, &inner6, DataRepr::default());
    assert_eq!(out[8], 1);
    assert_eq!(out[1], 0x2a);
    assert_eq!(
        out[6] & 0x40,
        0x40,
        "DF set: ETRs do not reassemble, the ITR handles the MTU"
    );
}

#[test]
fn decap_applies_rfc6040_and_ttl_rules() {
    // (inner ECN, outer ECN) -> inner ECN after decap, or drop.
    let table = [
        (0, 0, Some(0)),
        (0, 2, Some(0)),
        (0, 1, Some(0)),
        (0, 3, None),
        (2, 0, Some(2)),
        (2, 2, Some(2)),
        (2, 1, Some(1)),
        (2, 3, Some(3)),
        (1, 0, Some(1)),
        (1, 2, Some(1)),
        (1, 1, Some(1)),
        (1, 3, Some(3)),
        (3, 0, Some(3)),
        (3, 2, Some(3)),
        (3, 1, Some(3)),
        (3, 3, Some(3)),
    ];
    for (inner_ecn, outer_ecn, want) in table {
        assert_eq!(
            encap::ecn_decap(inner_ecn, outer_ecn),
            want,
            "inner {inner_ecn} outer {outer_ecn}"
        );
        let mut pkt = encap_with(
            OUTER4,
            &inner_ipv4(64, 0x20 | inner_ecn, false, b"p"),
            DataRepr::default(),
        );
        // The network marks the outer header, and a router lowers the outer TTL.
        pkt[1] = (pkt[1] & !3) | outer_ecn;
        pkt[8] = 30;
        pkt[10..12].copy_from_slice(&[0, 0]);
        let c = pxtr::wire::checksum::checksum(&pkt[..20]);
        pkt[10..12].copy_from_slice(&c.to_be_bytes());
        match (encap::decapsulate(&mut pkt, true), want) {
            (Err(Error::EcnDrop), None) => {}
            (Ok(d), Some(ecn)) => {
                let inner = &pkt[d.inner_offset..d.inner_offset + d.inner_len];
                assert_eq!(inner[1], 0x20 | ecn, "DSCP kept, ECN combined");
                assert_eq!(inner[8], 30, "inner TTL lowered to the outer TTL");
                assert_eq!(
                    pxtr::wire::checksum::checksum(&inner[..20]),
                    0,
                    "inner checksum updated"
                );
            }
            (other, want) => {
                panic!("inner {inner_ecn} outer {outer_ecn}: got {other:?}, want {want:?}")
            }
        }
    }
}

#[test]
fn decap_rejects_what_is_not_lisp_data() {
    let good = encap_with(OUTER4, &inner_ipv4(64, 0, false, b"z"), DataRepr::default());
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(Mutation, Error)> = vec![
        (Box::new(|p| p[10] ^= 1), Error::Ipv4Checksum),
        (Box::new(|p| p.truncate(30)), Error::IpLength),
        (Box::new(|p| p[0] = 0x75), Error::IpVersion(7)),
        (
            Box::new(|p| {
                p[6] = 0x20;
                fix(p)
            }),
            Error::Fragment,
        ),
        (
            Box::new(|p| {
                p[9] = 6;
                fix(p)
            }),
            Error::NotUdp(6),
        ),
        (
            Box::new(|p| p[22..24].copy_from_slice(&4342u16.to_be_bytes())),
            Error::NotLispPort(4342),
        ),
        (Box::new(|p| p[25] ^= 1), Error::UdpLength),
        (Box::new(|p| p[26] = 1), Error::UdpChecksum),
        (Box::new(|p| p[28] = 0x90), Error::NonceAndVersion),
    ];
    fn fix(p: &mut [u8]) {
        p[10..12].copy_from_slice(&[0, 0]);
        let c = pxtr::wire::checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    for (i, (mutate, want)) in cases.into_iter().enumerate() {
        let mut p = good.clone();
        mutate(&mut p);
        assert_eq!(encap::decapsulate(&mut p, true), Err(want), "case {i}");
    }
}

// ---- property tests ----

fn arb_simple_address() -> impl Strategy<Value = Address> {
    prop_oneof![
        proptest::collection::vec(1u8..=255, 0..20).prop_map(Address::DistinguishedName),
        any::<[u8; 4]>().prop_map(|a| Address::Ipv4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| Address::Ipv6(Ipv6Addr::from(a))),
        any::<[u8; 6]>().prop_map(Address::Mac),
    ]
}

fn arb_address() -> impl Strategy<Value = Address> {
    prop_oneof![
        3 => arb_simple_address(),
        1 => (any::<u32>(), any::<u8>(), arb_simple_address())
            .prop_map(|(iid, mask_len, a)| Address::InstanceId { iid, mask_len, address: Box::new(a) }),
    ]
}

fn arb_eid() -> impl Strategy<Value = (Address, u8)> {
    arb_address().prop_flat_map(|a| {
        let max = a.max_mask_len();
        (Just(a), 0..=max)
    })
}

fn arb_locator() -> impl Strategy<Value = Locator> {
    (
        any::<[u8; 4]>(),
        any::<(bool, bool, bool)>(),
        prop_oneof![
            arb_address(),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(|payload| Address::Lcaf {
                lcaf_type: 12,
                flags: 0,
                rsvd2: 0,
                payload
            })
        ],
    )
        .prop_map(|(pw, (local, probed, reachable), address)| Locator {
            priority: pw[0],
            weight: pw[1],
            m_priority: pw[2],
            m_weight: pw[3],
            local,
            probed,
            reachable,
            address,
        })
}

fn arb_record() -> impl Strategy<Value = MappingRecord> {
    (
        any::<u32>(),
        0u8..8,
        any::<bool>(),
        0u16..4096,
        arb_eid(),
        proptest::collection::vec(arb_locator(), 0..4),
    )
        .prop_map(
            |(ttl, act, authoritative, map_version, (eid, mask_len), locators)| MappingRecord {
                ttl,
                action: Action::from_bits(act),
                authoritative,
                map_version,
                eid,
                mask_len,
                locators,
            },
        )
}

fn arb_xtr() -> impl Strategy<Value = Option<XtrId>> {
    proptest::option::of(
        (any::<[u8; 16]>(), any::<u64>()).prop_map(|(xtr_id, site_id)| XtrId { xtr_id, site_id }),
    )
}

fn arb_registration() -> impl Strategy<Value = Registration> {
    (
        any::<u64>(),
        any::<u16>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(arb_record(), 0..3),
        arb_xtr(),
    )
        .prop_map(
            |(nonce, ids, auth_data, records, xtr_id): (u64, u16, _, _, _)| Registration {
                nonce,
                key_id: (ids >> 8) as u8,
                algorithm_id: ids as u8,
                auth_data,
                records,
                xtr_id,
            },
        )
}

fn arb_message() -> impl Strategy<Value = Message> {
    let request = (
        any::<[bool; 8]>(),
        any::<u64>(),
        prop_oneof![Just(Address::None), arb_address()],
        proptest::collection::vec(arb_address(), 1..4),
        proptest::collection::vec(
            arb_eid().prop_map(|(eid, mask_len)| EidRecord { mask_len, eid }),
            0..3,
        ),
        proptest::option::of(arb_record()),
        arb_xtr(),
    )
        .prop_map(
            |(b, nonce, source_eid, itr_rlocs, records, map_reply, xtr_id)| {
                Message::MapRequest(MapRequest {
                    authoritative: b[0],
                    probe: b[1],
                    smr: b[2],
                    pitr: b[3],
                    smr_invoked: b[4],
                    reserved_r: b[5],
                    local_xtr: b[6],
                    dont_map_reply: b[7],
                    nonce,
                    source_eid,
                    itr_rlocs,
                    records,
                    map_reply,
                    xtr_id,
                })
            },
        );
    let reply = (
        any::<[bool; 3]>(),
        any::<u64>(),
        proptest::collection::vec(arb_record(), 0..3),
    )
        .prop_map(|(b, nonce, records)| {
            Message::MapReply(MapReply {
                probe: b[0],
                echo_nonce_capable: b[1],
                security: b[2],
                nonce,
                records,
            })
        });
    let register = (any::<[bool; 4]>(), arb_registration()).prop_map(|(b, registration)| {
        Message::MapRegister(MapRegister {
            proxy_reply: b[0],
            security: b[1],
            rtr: b[2],
            want_map_notify: b[3],
            registration,
        })
    });
    let notify =
        (any::<bool>(), any::<bool>(), arb_registration()).prop_map(|(ack, rtr, registration)| {
            Message::MapNotify(MapNotify {
                kind: if ack {
                    NotifyKind::Ack
                } else {
                    NotifyKind::Notify
                },
                rtr,
                registration,
            })
        });
    prop_oneof![request, reply, register, notify]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The checksum against RFC 1071's definition, 16 bits at a time, on any length.
    #[test]
    fn checksum_matches_the_rfc_1071_definition(
        data in proptest::collection::vec(any::<u8>(), 0..1600),
        acc in any::<u16>(),
    ) {
        let mut s = u32::from(acc);
        for c in data.chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            s = (s & 0xffff) + (s >> 16);
        }
        let want = !(((s & 0xffff) + (s >> 16)) as u16);
        let got = !(pxtr::wire::checksum::fold(pxtr::wire::checksum::sum(u32::from(acc), &data)) as u16);
        // 0x0000 and 0xffff are the same ones'-complement number.
        prop_assert!(got == want || (got, want) == (0, 0xffff) || (got, want) == (0xffff, 0), "{got:#x} {want:#x}");
    }

    #[test]
    fn repr_emit_parse_is_identity(m in arb_message()) {
        let bytes = m.to_vec().expect("emit");
        prop_assert_eq!(bytes.len(), m.buffer_len());
        prop_assert_eq!(Message::parse(&bytes).expect("parse"), m);
    }

    #[test]
    fn ecm_wrapping_is_identity(m in arb_message(), v6 in any::<bool>(), ports in any::<(u16, u16)>()) {
        let (src, dst) = if v6 {
            (IpAddr::V6("2001:db8::1".parse().unwrap()), IpAddr::V6("2001:db8::2".parse().unwrap()))
        } else {
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)))
        };
        let ecm = Message::Ecm(Ecm {
            security: false, ddt: v6, to_etr: false, to_ms: true,
            inner: EcmInner { src, dst, src_port: ports.0, dst_port: ports.1, ttl: 32, ipv4_id: if v6 { 0 } else { 3 }, dont_fragment: !v6, udp_checksum: true },
            message: m.to_vec().unwrap(),
        });
        let bytes = ecm.to_vec().unwrap();
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &ecm);
        let Message::Ecm(e) = parsed else { unreachable!() };
        prop_assert_eq!(e.message().unwrap(), m);
    }

    #[test]
    fn data_header_emit_parse_is_identity(nonce in proptest::option::of(0u32..1 << 24), echo in any::<bool>(),
            iid in proptest::option::of(0u32..1 << 24), lsb in proptest::option::of(any::<u32>())) {
        let lsb = match (iid, lsb) { (Some(_), Some(l)) => Some(l & 0xff), (_, l) => l };
        let r = DataRepr { nonce, echo_nonce: echo, map_version: None, iid, lsb };
        let mut b = [0u8; 8];
        r.emit(&mut b).unwrap();
        prop_assert_eq!(DataRepr::parse(&pxtr::wire::DataHeader::new_checked(&b[..]).unwrap()).unwrap(), r);
    }

    /// The fast decapsulation agrees with the general one: same verdict where it answers, same
    /// bytes after, and it answers for the common case (IPv4 in IPv4, zero UDP checksum).
    #[test]
    fn fast_decap_agrees_with_decapsulate(inner_len in 20usize..120, iid in proptest::option::of(0u32..1 << 24),
            lsb in proptest::option::of(any::<u32>()),
            tos in any::<u8>(), outer_tos in any::<u8>(), ttl in 2u8..=255, outer_ttl in 0u8..=255,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3)) {
        let mut inner = vec![0u8; inner_len];
        inner[0] = 0x45;
        inner[1] = tos;
        inner[2..4].copy_from_slice(&(inner_len as u16).to_be_bytes());
        inner[8] = ttl;
        inner[9] = 17;
        inner[12..16].copy_from_slice(&[10, 1, 1, 10]);
        inner[16..20].copy_from_slice(&[10, 2, 0, 7]);
        let c = pxtr::wire::checksum::checksum(&inner[..20]);
        inner[10..12].copy_from_slice(&c.to_be_bytes());
        let params = EncapParams {
            outer: Outer::new("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()).unwrap(),
            flow_hash: 7,
            header: DataRepr { iid, lsb: lsb.map(|l| if iid.is_some() { l & 0xff } else { l }), ..DataRepr::default() },
            ipv4_id: 1,
            ipv6_zero_checksum: true,
        };
        let mut buf = vec![0u8; 36 + inner_len];
        buf[36..].copy_from_slice(&inner);
        let n = encap::encapsulate(&mut buf, &params).unwrap();
        buf.truncate(n);
        // Outer TTL and ECN as drawn (header checksum recomputed), then random damage.
        buf[8] = outer_ttl;
        buf[1] = outer_tos;
        buf[10] = 0;
        buf[11] = 0;
        let c = pxtr::wire::checksum::checksum(&buf[..20]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
        let clean = flips.is_empty();
        for (at, x) in flips {
            let len = buf.len();
            buf[at % len] ^= x;
        }
        let mut general = buf.clone();
        let mut fast = buf.clone();
        let g = encap::decapsulate(&mut general, true);
        match encap::decapsulate_v4(&mut fast) {
            Some(f) => {
                let g = g.expect("the fast path accepted what the general one rejects");
                prop_assert_eq!(f.inner_offset, g.inner_offset);
                prop_assert_eq!(f.inner_len, g.inner_len);
                prop_assert_eq!(g.inner_version, 4);
                prop_assert_eq!(f.iid, g.header.iid);
                prop_assert_eq!(f.lsb, g.header.lsb);
                prop_assert_eq!(&fast, &general);
            }
            None => {
                prop_assert_eq!(&fast, &buf, "the fast path changed a packet it refused");
                // The undamaged common case is always the fast path's, unless ECN says drop.
                prop_assert!(!(clean && g.is_ok()), "fast path refused a clean packet");
            }
        }
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Message::parse(&bytes);
        let _ = auth::verify(&bytes, b"key");
        let mut b = bytes.clone();
        let _ = encap::decapsulate(&mut b, true);
    }

    #[test]
    fn parsing_mutated_messages_never_panics(m in arb_message(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = m.to_vec().unwrap();
        for (at, x) in flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        let _ = Message::parse(&bytes);
        let _ = Message::parse(&bytes[..bytes.len() / 2]);
    }
}
