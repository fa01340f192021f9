//! Wireshark's LISP dissector (the real tshark) reads what pxtr writes: one packet of each kind,
//! no malformed or expert-error marks, and the values we put in are the values it shows.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use common::pcap;
use pxtr::wire::auth::{self, Algorithm};
use pxtr::wire::checksum;
use pxtr::wire::control::{
    Action, Ecm, EcmInner, EidRecord, Locator, MapNotify, MapRegister, MapReply, MapRequest,
    MappingRecord, Message, NotifyKind, Registration,
};
use pxtr::wire::encap::{self, EncapParams, Outer};
use pxtr::wire::{Address, DataRepr};

fn ipv4_udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
    ];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let c = checksum::checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    let c = checksum::udp(IpAddr::V4(src.into()), IpAddr::V4(dst.into()), &p[20..]);
    p[26..28].copy_from_slice(&c.to_be_bytes());
    p
}

fn control(msg: &[u8]) -> Vec<u8> {
    pcap::ethernet(&ipv4_udp(
        [192, 0, 2, 1],
        [198, 51, 100, 1],
        61001,
        4342,
        msg,
    ))
}

fn v4(a: [u8; 4]) -> Address {
    Address::Ipv4(Ipv4Addr::from(a))
}

fn icmp_echo() -> Vec<u8> {
    let mut p = vec![
        0x45, 0, 0, 28, 0, 9, 0, 0, 64, 1, 0, 0, 10, 1, 1, 10, 10, 2, 0, 10, 8, 0, 0, 0, 0, 1, 0, 1,
    ];
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let c = checksum::checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

fn data(outer: Outer, header: DataRepr) -> Vec<u8> {
    let mut pkt = vec![0u8; outer.header_len()];
    pkt.extend_from_slice(&icmp_echo());
    let n = encap::encapsulate(
        &mut pkt,
        &EncapParams {
            outer,
            flow_hash: 0x1234,
            header,
            ipv4_id: 1,
            ipv6_zero_checksum: false,
        },
    )
    .expect("encapsulate");
    pkt.truncate(n);
    pcap::ethernet(&pkt)
}

fn request(smr: bool, probe: bool, nonce: u64) -> MapRequest {
    MapRequest {
        smr,
        probe,
        ..MapRequest::new(
            nonce,
            v4([10, 1, 1, 10]),
            vec![v4([192, 0, 2, 1])],
            vec![EidRecord {
                mask_len: 32,
                eid: v4([10, 2, 0, 10]),
            }],
        )
    }
}

fn mapping() -> MappingRecord {
    MappingRecord {
        ttl: 1440,
        action: Action::NoAction,
        authoritative: true,
        map_version: 0,
        eid: Address::with_iid(0x123, v4([10, 2, 0, 0])),
        mask_len: 16,
        locators: vec![
            Locator::new(v4([203, 0, 113, 1]), 1, 70),
            Locator::new(v4([203, 0, 113, 2]), 2, 30),
        ],
    }
}

fn registration(nonce: u64) -> Registration {
    Registration {
        nonce,
        key_id: 0,
        algorithm_id: 0,
        auth_data: vec![],
        records: vec![mapping()],
        xtr_id: None,
    }
}

/// Every value of every field named `key`, anywhere in a packet's JSON.
fn collect(v: &serde_json::Value, out: &mut HashMap<String, Vec<String>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                match child {
                    serde_json::Value::String(s) => {
                        out.entry(k.clone()).or_default().push(s.clone())
                    }
                    serde_json::Value::Array(items) if items.iter().all(|i| i.is_string()) => {
                        for i in items {
                            out.entry(k.clone())
                                .or_default()
                                .push(i.as_str().unwrap_or_default().to_owned());
                        }
                    }
                    _ => {}
                }
                collect(child, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

#[test]
fn tshark_decodes_every_kind_of_packet() {
    let key = b"tshark-key";
    let mut frames: Vec<(&str, Vec<u8>)> = Vec::new();
    let o4 = Outer::V4 {
        src: Ipv4Addr::new(192, 0, 2, 1),
        dst: Ipv4Addr::new(203, 0, 113, 1),
    };
    let o6 = Outer::V6 {
        src: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        dst: "2001:db8::2".parse().unwrap(),
    };
    frames.push((
        "data: IID and nonce, IPv4 outer",
        data(
            o4,
            DataRepr {
                nonce: Some(0xabcdef),
                iid: Some(0x123),
                ..DataRepr::default()
            },
        ),
    ));
    frames.push(("data: no flags, IPv4 outer", data(o4, DataRepr::default())));
    frames.push((
        "data: IID, IPv6 outer",
        data(
            o6,
            DataRepr {
                iid: Some(77),
                lsb: Some(3),
                ..DataRepr::default()
            },
        ),
    ));
    frames.push((
        "Map-Request",
        control(
            &Message::MapRequest(request(false, false, 0x1111))
                .to_vec()
                .unwrap(),
        ),
    ));
    frames.push((
        "SMR",
        control(
            &Message::MapRequest(request(true, false, 0x2222))
                .to_vec()
                .unwrap(),
        ),
    ));
    frames.push((
        "RLOC-probe",
        control(
            &Message::MapRequest(request(false, true, 0x3333))
                .to_vec()
                .unwrap(),
        ),
    ));
    let ecm = Message::Ecm(Ecm {
        security: false,
        ddt: false,
        to_etr: false,
        to_ms: false,
        inner: EcmInner {
            src: IpAddr::V4(Ipv4Addr::new(10, 1, 1, 10)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 2, 0, 10)),
            src_port: 61002,
            dst_port: 4342,
            ttl: 64,
            ipv4_id: 0,
            dont_fragment: false,
            udp_checksum: true,
        },
        message: Message::MapRequest(request(false, false, 0x4444))
            .to_vec()
            .unwrap(),
    });
    frames.push(("ECM", control(&ecm.to_vec().unwrap())));
    let reply = Message::MapReply(MapReply {
        probe: false,
        echo_nonce_capable: false,
        security: false,
        nonce: 0x5555,
        records: vec![mapping()],
    });
    frames.push(("Map-Reply", control(&reply.to_vec().unwrap())));
    let negative = Message::MapReply(MapReply {
        probe: false,
        echo_nonce_capable: false,
        security: false,
        nonce: 0x6666,
        records: vec![MappingRecord {
            ttl: 15,
            action: Action::NativelyForward,
            authoritative: false,
            locators: vec![],
            eid: v4([10, 3, 0, 0]),
            mask_len: 16,
            map_version: 0,
        }],
    });
    frames.push(("negative Map-Reply", control(&negative.to_vec().unwrap())));
    for (name, alg) in [
        ("Map-Register key-id 1", Algorithm::HmacSha1_96),
        ("Map-Register key-id 2", Algorithm::HmacSha256_128),
    ] {
        let reg = Message::MapRegister(MapRegister {
            proxy_reply: true,
            security: false,
            rtr: false,
            want_map_notify: true,
            registration: registration(0x7777),
        });
        frames.push((name, control(&auth::emit_signed(&reg, alg, key).unwrap())));
    }
    let notify = Message::MapNotify(MapNotify {
        kind: NotifyKind::Notify,
        rtr: false,
        registration: registration(0x8888),
    });
    frames.push((
        "Map-Notify",
        control(&auth::emit_signed(&notify, Algorithm::HmacSha256_128, key).unwrap()),
    ));
    let ack = Message::MapNotify(MapNotify {
        kind: NotifyKind::Ack,
        rtr: false,
        registration: registration(0x8888),
    });
    frames.push((
        "Map-Notify-Ack",
        control(&auth::emit_signed(&ack, Algorithm::HmacSha256_128, key).unwrap()),
    ));

    let dir = std::env::temp_dir().join(format!("pxtr-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pxtr-lisp.pcap");
    std::fs::write(
        &file,
        pcap::write(&frames.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>()),
    )
    .unwrap();
    let out = Command::new("tshark")
        .args([
            "-r",
            file.to_str().unwrap(),
            "-T",
            "json",
            "--no-duplicate-keys",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
        ])
        .output()
        .expect("tshark is installed by ci/setup.sh");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("tshark JSON");
    let packets = json.as_array().expect("array of packets");
    assert_eq!(packets.len(), frames.len());

    let mut fields = Vec::new();
    for (p, (name, _)) in packets.iter().zip(&frames) {
        let layers = &p["_source"]["layers"];
        assert!(
            layers.get("lisp").is_some() || layers.get("lisp-data").is_some(),
            "{name}: tshark saw no LISP: {layers}"
        );
        let mut f = HashMap::new();
        collect(layers, &mut f);
        let text = layers.to_string();
        assert!(
            !text.contains("_ws.malformed"),
            "{name}: malformed: {layers:#}"
        );
        for sev in f.get("_ws.expert.severity").into_iter().flatten() {
            // 4194304 is "Note"/"Chat"-level noise below warnings; anything from warning up fails.
            let level: u64 = sev.parse().unwrap_or(0);
            assert!(
                level < 6291456,
                "{name}: expert info of severity {sev}: {layers:#}"
            );
        }
        fields.push((name.to_string(), f));
    }
    let get =
        |i: usize, k: &str| -> Vec<String> { fields[i].1.get(k).cloned().unwrap_or_default() };
    // Data packets.
    assert_eq!(get(0, "lisp-data.iid"), ["291"], "{:?}", fields[0]);
    assert_eq!(get(0, "lisp-data.nonce"), ["11259375"]);
    assert!(get(1, "lisp-data.iid").is_empty());
    assert_eq!(get(2, "lisp-data.iid"), ["77"]);
    assert_eq!(get(2, "lisp-data.lsb8"), ["0x03"], "{:?}", fields[2]);
    // Control messages: type, nonce and flags.
    assert_eq!(get(3, "lisp.type"), ["1"]);
    assert_eq!(get(3, "lisp.nonce"), ["0x0000000000001111"]);
    assert_eq!(get(4, "lisp.mreq.flags.smr"), ["1"]);
    assert_eq!(get(5, "lisp.mreq.flags.probe"), ["1"]);
    assert_eq!(get(6, "lisp.type"), ["8", "1"], "ECM around a Map-Request");
    assert_eq!(get(6, "lisp.mreq.record.prefix.ipv4"), ["10.2.0.10"]);
    // Map-Reply: record, IID, locators.
    assert_eq!(get(7, "lisp.type"), ["2"]);
    assert_eq!(get(7, "lisp.records"), ["1"]);
    assert_eq!(get(7, "lisp.mapping.ttl"), ["1440"]);
    assert_eq!(get(7, "lisp.mapping.loccnt"), ["2"]);
    assert_eq!(get(7, "lisp.mapping.eid.masklen"), ["16"]);
    assert_eq!(get(7, "lisp.lcaf.iid"), ["291"]);
    assert_eq!(get(7, "lisp.lcaf.iid.ipv4"), ["10.2.0.0"]);
    assert_eq!(get(7, "lisp.loc.priority"), ["1", "2"]);
    assert_eq!(get(7, "lisp.loc.weight"), ["70", "30"]);
    assert_eq!(get(8, "lisp.mapping.loccnt"), ["0"]);
    assert_eq!(get(8, "lisp.mapping.act"), ["1"]);
    assert_eq!(get(8, "lisp.mapping.ttl"), ["15"]);
    // Registrations and their authentication.
    assert_eq!(get(9, "lisp.type"), ["3"]);
    assert_eq!(get(9, "lisp.keyid"), ["0x0001"]);
    assert_eq!(get(9, "lisp.authlen"), ["20"]);
    assert_eq!(get(10, "lisp.keyid"), ["0x0002"]);
    assert_eq!(get(10, "lisp.authlen"), ["32"]);
    assert_eq!(get(10, "lisp.mreg.flags.wmn"), ["1"]);
    assert_eq!(get(11, "lisp.type"), ["4"]);
    assert_eq!(get(12, "lisp.type"), ["5"]);
    std::fs::remove_dir_all(&dir).ok();
}
