//! The pipeline on real DPDK ports (22.11, virtual devices, no hugepages): host frames go in
//! through a `net_ring` port, come out of a `net_pcap` port into a pcap file that tshark must
//! decode as LISP data carrying the expected inner packet; that file's frames then go into a
//! second appliance (the peer ETR) and come out decapsulated, byte for byte the original
//! inner packet. Every mbuf must be back in the pool afterwards.

mod common;

use common::packet::{csum, eth, ipv4_udp};

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arrayvec::ArrayVec;
use ipnet::IpNet;
use pxtr::config::{MissPolicy, PortRole};
use pxtr::dataplane::{Functions, Outputs, Pipeline, Plan, PortPlan, Reason};
use pxtr::dpdk::{Eal, Mbuf, Mempool, MempoolConfig, Port, PortConfig, MAX_BURST};
use pxtr::mapcache::{
    map_cache, neighbor_table, Locator, MapCacheConfig, MapCacheWriter, Mapping, Neighbor,
    NeighborWriter,
};

const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x10, 0x10];
const GW_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfe, 0xfe];
const VM_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xbb, 0xbb];
const IID: u32 = 4100;
const FRAMES: usize = 40;

fn port_plan(name: &str, role: PortRole, port: &Port, addr: &str, gw: Option<&str>) -> PortPlan {
    PortPlan {
        name: name.into(),
        role,
        dpdk_port: port.id(),
        mac: port.info().mac,
        addresses: vec![addr.parse::<IpNet>().unwrap()],
        mtu: 1500,
        gateway: gw.map(|g| g.parse().unwrap()),
        iid: if role == PortRole::Eid { IID } else { 0 },
        dynamic_eids: Vec::new(),
        extended: Vec::new(),
    }
}

fn plan(ports: Vec<PortPlan>, rloc: &str) -> Plan {
    Plan {
        ports,
        rlocs: vec![rloc.parse().unwrap()],
        petrs: vec![],
        functions: Functions {
            itr: true,
            etr: true,
            pitr: false,
            petr: false,
        },
        fragment: true,
        miss_policy: MissPolicy::Drop,
        hold_capacity: 16,
        hold_timeout_ms: 1000,
        miss_interval_ms: 1000,
        miss_reports_per_sec: 100,
    }
}

/// IPv4/UDP from 10.1.1.10 to 10.2.0.(i+1), TTL 64, DF, 30 bytes of payload.
fn inner(i: usize) -> Vec<u8> {
    ipv4_udp(
        Ipv4Addr::new(10, 1, 1, 10),
        Ipv4Addr::new(10, 2, 0, (i + 1) as u8),
        20000 + i as u16,
        80,
        64,
        0,
        true,
        30,
    )
}

fn open(eal: &Eal, pool: &Mempool, dev: &str) -> Port {
    Port::open(
        eal,
        dev,
        &PortConfig {
            rx_descriptors: 256,
            tx_descriptors: 256,
            promiscuous: false,
            rss: false,
            ..PortConfig::default()
        },
        pool,
    )
    .unwrap_or_else(|e| panic!("open {dev}: {e}"))
}

/// Sends `frames` into port `in_index` of `ports` (a ring port, which loops TX back to RX),
/// runs what it receives through `pipeline`, and transmits the outputs on the other ports.
fn pump(
    pool: &Mempool,
    ports: &mut [Port],
    in_index: usize,
    pipeline: &mut Pipeline<Mbuf>,
    frames: &[Vec<u8>],
) {
    let mut txs: Vec<_> = ports
        .iter_mut()
        .map(|p| p.take_tx_queue(0).unwrap())
        .collect();
    let mut rx_in = ports[in_index].take_rx_queue(0).unwrap();
    let mut burst: ArrayVec<Mbuf, MAX_BURST> = ArrayVec::new();
    for chunk in frames.chunks(MAX_BURST) {
        for f in chunk {
            burst.push(pool.alloc_from(f).expect("mbuf"));
        }
        assert_eq!(txs[in_index].tx_burst_or_free(&mut burst).sent, chunk.len());
        assert_eq!(rx_in.rx_burst(&mut burst), chunk.len());
        let mut out = Outputs::new(txs.len());
        pipeline.process(in_index, &mut burst, 0, &mut out);
        assert!(out.tx[in_index].is_empty());
        for (t, q) in out.tx.iter_mut().zip(txs.iter_mut()) {
            assert_eq!(q.tx_burst_or_free(t).dropped, 0);
        }
        assert!(out.punts.is_empty() && out.events.is_empty());
    }
}

fn tshark(file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=;"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs (ci/setup.sh installs it)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split(';').map(str::to_string).collect())
        .collect()
}

fn small_cache() -> MapCacheWriter {
    map_cache(MapCacheConfig {
        capacity: 100,
        max_readers: 1,
        max_iids: 2,
        v4_root_bits: 16,
        v6_root_bits: 16,
        v4_groups: 64,
        v6_groups: 64,
    })
    .unwrap()
}

/// 10.2.0.0/16 in our instance → the peer's RLOC 198.51.100.1.
fn map_to_peer(cache: &mut MapCacheWriter) {
    let mut m = Mapping::default();
    m.locators.push(Locator {
        address: "198.51.100.1".parse().unwrap(),
        priority: 1,
        weight: 100,
        reachable: true,
    });
    m.ttl = Some(Duration::from_secs(60));
    cache
        .insert(IID, "10.2.0.0/16".parse().unwrap(), m, 0)
        .unwrap();
}

fn neighbors(entries: &[(&str, [u8; 6], u16)]) -> NeighborWriter {
    let mut n = neighbor_table(64, 1).unwrap();
    for (ip, mac, port) in entries {
        n.insert(
            ip.parse().unwrap(),
            Neighbor {
                mac: *mac,
                port: *port,
            },
        )
        .unwrap();
    }
    n
}

#[test]
fn encap_and_decap_through_dpdk_ports() {
    let dir = std::env::temp_dir().join(format!("pxtr-dp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, common::pcap::write(&[])).unwrap();
    let encap_pcap = dir.join("encap.pcap");
    let decap_pcap = dir.join("decap.pcap");
    let prefix = format!("pxtr-dp-{}", std::process::id());
    let eal = Eal::init([
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "--file-prefix",
        prefix.as_str(),
        "-m",
        "256",
        "-l",
        "0",
        "--log-level",
        "lib.eal:error",
    ])
    .expect("EAL");
    let pool = Mempool::new(
        &eal,
        "dp_pool",
        MempoolConfig {
            mbufs: 2047,
            cache: 32,
            ..MempoolConfig::default()
        },
    )
    .unwrap();
    let originals: Vec<Vec<u8>> = (0..FRAMES).map(inner).collect();

    // ITR: eid = net_ring (we inject host frames), rloc = net_pcap writing encap.pcap.
    {
        let eid = open(&eal, &pool, "net_ring_itr");
        let rloc = open(
            &eal,
            &pool,
            &format!(
                "net_pcap_itr,rx_pcap={},tx_pcap={}",
                empty.display(),
                encap_pcap.display()
            ),
        );
        let plan = plan(
            vec![
                port_plan("eid0", PortRole::Eid, &eid, "10.1.1.5/24", None),
                port_plan(
                    "rloc0",
                    PortRole::Rloc,
                    &rloc,
                    "192.0.2.1/24",
                    Some("192.0.2.254"),
                ),
            ],
            "192.0.2.1",
        );
        let mut cache = small_cache();
        map_to_peer(&mut cache);
        let n = neighbors(&[("192.0.2.254", GW_MAC, rloc.id())]);
        let eid_mac = eid.info().mac;
        let mut p = Pipeline::new(Arc::new(plan), cache.reader().unwrap(), n.reader().unwrap());
        let frames: Vec<Vec<u8>> = originals
            .iter()
            .map(|i| eth(eid_mac, HOST_MAC, 0x0800, i))
            .collect();
        let mut ports = [eid, rloc];
        pump(&pool, &mut ports, 0, &mut p, &frames);
        assert_eq!(p.counts().get(Reason::Encap), FRAMES as u64);
        drop(p);
        drop(ports); // closes the pcap file
    }
    let rows = tshark(
        &encap_pcap,
        &[
            "eth.dst",
            "lisp-data.iid",
            "ip.src",
            "ip.dst",
            "udp.dstport",
            "ip.ttl",
            "ip.flags.df",
        ],
    );
    assert_eq!(rows.len(), FRAMES, "{rows:?}");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], "02:00:00:00:fe:fe");
        assert_eq!(
            r[1],
            IID.to_string(),
            "LISP data with the instance-ID: {r:?}"
        );
        assert_eq!(
            r[2], "192.0.2.1,10.1.1.10",
            "outer and inner sources: {r:?}"
        );
        assert_eq!(r[3], format!("198.51.100.1,10.2.0.{}", i + 1));
        assert_eq!(r[4].split(',').next(), Some("4341"));
        assert_eq!(r[5], "63,63");
        assert!(
            r[6].starts_with("1") || r[6].starts_with("True"),
            "outer DF: {r:?}"
        );
    }

    // ETR: the peer (RLOC 198.51.100.1) receives those frames on a net_ring rloc port and
    // delivers them on a net_pcap eid port writing decap.pcap.
    let wire = common::pcap::read(&std::fs::read(&encap_pcap).unwrap());
    {
        let rloc = open(&eal, &pool, "net_ring_etr");
        let eid = open(
            &eal,
            &pool,
            &format!(
                "net_pcap_etr,rx_pcap={},tx_pcap={}",
                empty.display(),
                decap_pcap.display()
            ),
        );
        let plan = plan(
            vec![
                port_plan("eid0", PortRole::Eid, &eid, "10.2.0.254/16", None),
                port_plan("rloc0", PortRole::Rloc, &rloc, "198.51.100.1/24", None),
            ],
            "198.51.100.1",
        );
        let cache = small_cache();
        let hosts: Vec<String> = (0..FRAMES).map(|i| format!("10.2.0.{}", i + 1)).collect();
        let entries: Vec<(&str, [u8; 6], u16)> = hosts
            .iter()
            .map(|h| (h.as_str(), VM_MAC, eid.id()))
            .collect();
        let n = neighbors(&entries);
        let mut p = Pipeline::new(Arc::new(plan), cache.reader().unwrap(), n.reader().unwrap());
        let rloc_mac = rloc.info().mac;
        let frames: Vec<Vec<u8>> = wire
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f[0..6].copy_from_slice(&rloc_mac);
                f
            })
            .collect();
        let mut ports = [eid, rloc];
        pump(&pool, &mut ports, 1, &mut p, &frames);
        assert_eq!(p.counts().get(Reason::Decap), FRAMES as u64);
        drop(p);
        drop(ports);
    }
    let out = common::pcap::read(&std::fs::read(&decap_pcap).unwrap());
    assert_eq!(out.len(), FRAMES);
    for (f, orig) in out.iter().zip(&originals) {
        assert_eq!(&f[0..6], &VM_MAC);
        let mut want = orig.clone();
        want[8] = 63;
        want[10] = 0;
        want[11] = 0;
        let c = csum(&want[..20]);
        want[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(&f[14..], &want[..], "the inner packet, TTL 63");
    }
    let rows = tshark(
        &decap_pcap,
        &["lisp-data.iid", "ip.dst", "ip.checksum.status"],
    );
    assert!(
        rows.iter().all(|r| r[0].is_empty()),
        "no LISP left: {rows:?}"
    );
    // A DF-clear packet too big for the RLOC side: fragmented into mbufs from the same pool,
    // each fragment encapsulated.
    let frag_pcap = dir.join("frag.pcap");
    {
        let eid = open(&eal, &pool, "net_ring_frag");
        let rloc = open(
            &eal,
            &pool,
            &format!(
                "net_pcap_frag,rx_pcap={},tx_pcap={}",
                empty.display(),
                frag_pcap.display()
            ),
        );
        let plan = plan(
            vec![
                port_plan("eid0", PortRole::Eid, &eid, "10.1.1.5/24", None),
                port_plan(
                    "rloc0",
                    PortRole::Rloc,
                    &rloc,
                    "192.0.2.1/24",
                    Some("192.0.2.254"),
                ),
            ],
            "192.0.2.1",
        );
        let mut cache = small_cache();
        map_to_peer(&mut cache);
        let n = neighbors(&[("192.0.2.254", GW_MAC, rloc.id())]);
        let mut big = inner(0);
        big.resize(1500, 0xab);
        big[2..4].copy_from_slice(&1500u16.to_be_bytes());
        big[6] = 0; // DF clear
        big[10] = 0;
        big[11] = 0;
        let c = csum(&big[..20]);
        big[10..12].copy_from_slice(&c.to_be_bytes());
        let frame = eth(eid.info().mac, HOST_MAC, 0x0800, &big);
        let mut p = Pipeline::new(Arc::new(plan), cache.reader().unwrap(), n.reader().unwrap());
        let mut ports = [eid, rloc];
        pump(&pool, &mut ports, 0, &mut p, &[frame]);
        assert_eq!(p.counts().get(Reason::Fragmented), 1);
        assert_eq!(p.counts().get(Reason::Encap), 2);
        drop(p);
        drop(ports);
    }
    let rows = tshark(
        &frag_pcap,
        &["lisp-data.iid", "ip.flags.mf", "ip.frag_offset", "ip.len"],
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], IID.to_string());
    // Outer, inner: the outer never fragmented; the inner first fragment has MF set.
    assert!(
        rows[0][1].ends_with(",1") || rows[0][1].ends_with(",True"),
        "{rows:?}"
    );
    assert!(
        rows[1][1].ends_with(",0") || rows[1][1].ends_with(",False"),
        "{rows:?}"
    );
    assert!(
        rows[1][2].ends_with(&format!(",{}", (1500 - 36 - 20) / 8)),
        "the second fragment's offset, in 8-byte units: {rows:?}"
    );
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
    let _ = std::fs::remove_dir_all(&dir);
}
