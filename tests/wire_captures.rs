//! Real packets from Open Overlay Router 1.3.0 (tests/data/, a copy of shared/captures/):
//! every one parses, every Map-Register and Map-Notify verifies with the capture's key and fails
//! with another, and every control message re-emits to the same bytes.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use common::pcap;
use pxtr::wire::auth::{self, Algorithm};
use pxtr::wire::control::{Message, NotifyKind};
use pxtr::wire::encap;
use pxtr::wire::{Address, Error, LISP_CONTROL_PORT, LISP_DATA_PORT};

fn capture() -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/oor-1.3.0-ms-xtr.pcap");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pcap::read(&bytes)
}

#[test]
fn every_oor_packet_parses_verifies_and_round_trips() {
    let frames = capture();
    assert_eq!(frames.len(), 25);
    let (mut registers, mut notifies, mut ecms, mut replies, mut data) = (0, 0, 0, 0, 0);
    for (i, frame) in frames.iter().enumerate() {
        let ip = pcap::ip_of(frame).expect("IP");
        let (sport, dport, payload) = pcap::udp_of(ip).expect("UDP");
        if dport == LISP_CONTROL_PORT || sport == LISP_CONTROL_PORT {
            let msg = Message::parse(payload).unwrap_or_else(|e| panic!("frame {}: {e}", i + 1));
            assert_eq!(
                msg.to_vec().unwrap(),
                payload,
                "frame {} re-emits byte for byte",
                i + 1
            );
            match &msg {
                Message::MapRegister(m) => {
                    registers += 1;
                    assert_eq!((m.registration.key_id, m.registration.algorithm_id), (0, 1));
                    assert_eq!(
                        m.registration.auth_data.len(),
                        20,
                        "OOR sends the whole SHA-1 HMAC"
                    );
                    assert_eq!(
                        auth::verify(payload, b"interop-key"),
                        Ok(Algorithm::HmacSha1_96)
                    );
                    assert_eq!(
                        auth::verify(payload, b"interop-kez"),
                        Err(Error::AuthFailed)
                    );
                    let rec = &m.registration.records[0];
                    assert_eq!(rec.mask_len, 24);
                    assert!(matches!(rec.eid, Address::Ipv4(a) if a.octets()[..2] == [10, 10]));
                }
                Message::MapNotify(m) => {
                    notifies += 1;
                    assert_eq!(m.kind, NotifyKind::Notify);
                    assert_eq!(
                        auth::verify(payload, b"interop-key"),
                        Ok(Algorithm::HmacSha1_96)
                    );
                    assert_eq!(auth::verify(payload, b""), Err(Error::AuthFailed));
                }
                Message::Ecm(e) => {
                    ecms += 1;
                    let Message::MapRequest(req) = e.message().expect("inner message") else {
                        panic!("frame {}: ECM without a Map-Request", i + 1)
                    };
                    assert_eq!(req.records.len(), 1);
                    assert_eq!(req.records[0].mask_len, 32);
                    assert!(!req.itr_rlocs.is_empty());
                    assert_eq!(e.inner.dst_port, LISP_CONTROL_PORT);
                }
                Message::MapReply(r) => {
                    replies += 1;
                    let rec = &r.records[0];
                    assert_eq!(rec.mask_len, 24);
                    assert_eq!(rec.locators.len(), 1);
                    assert!(rec.locators[0].reachable);
                    assert!(
                        matches!(rec.locators[0].address, Address::Ipv4(a) if a.octets()[..3] == [10, 255, 11] || a.octets()[..3] == [10, 255, 12])
                    );
                }
                Message::MapRequest(_) => panic!("frame {}: OOR sends Map-Requests in ECMs", i + 1),
            }
        } else if dport == LISP_DATA_PORT {
            data += 1;
            let mut pkt = ip.to_vec();
            let d = encap::decapsulate(&mut pkt, true)
                .unwrap_or_else(|e| panic!("frame {}: {e}", i + 1));
            assert_eq!(d.src_port, LISP_DATA_PORT, "OOR's fixed source port");
            assert_eq!(
                d.header,
                Default::default(),
                "OOR sets no data-header flags"
            );
            assert_eq!(d.inner_version, 4);
            let inner = &pkt[d.inner_offset..d.inner_offset + d.inner_len];
            assert_eq!(inner[9], 1, "ICMP inside");
            assert!(matches!(d.outer_dst, IpAddr::V4(a) if a.octets()[..2] == [10, 255]));
            assert_ne!(d.outer_src, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        } else {
            panic!("frame {}: unexpected ports {sport} -> {dport}", i + 1);
        }
    }
    assert_eq!((registers, notifies, ecms, replies, data), (6, 6, 4, 2, 7));
}
