//! Semantic checks: everything serde cannot see. Each problem is reported, not just the first.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::error::Issue;
use super::model::{Config, EidPrefix, MissPolicy, PortRole, Role, StaticMapping};

/// DPDK's RTE_MAX_LCORE on Debian's build.
pub const MAX_LCORE: u32 = 128;
/// Largest burst the data plane is built for.
pub const MAX_BURST: u16 = 64;
/// Largest 24-bit LISP instance ID.
pub const MAX_IID: u32 = (1 << 24) - 1;
/// DPDK's headroom in front of every packet (RTE_PKTMBUF_HEADROOM).
const MBUF_HEADROOM: u32 = 128;
/// Ethernet header, one VLAN tag and the FCS.
const L2_OVERHEAD: u32 = 14 + 4 + 4;

struct Checker {
    issues: Vec<Issue>,
}

impl Checker {
    fn bad(&mut self, path: impl Into<String>, value: Option<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, value, message));
    }

    fn missing(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue::new(path, None, message));
    }

    fn range<T: PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        path: &str,
        v: T,
        lo: T,
        hi: T,
        what: &str,
    ) {
        if v < lo || v > hi {
            self.bad(
                path,
                Some(v.to_string()),
                format!("{what} must be from {lo} to {hi}"),
            );
        }
    }

    fn iid(&mut self, path: &str, iid: u32) {
        if iid > MAX_IID {
            self.bad(
                path,
                Some(iid.to_string()),
                format!("instance-ID is 24 bits: at most {MAX_IID}"),
            );
        }
    }

    fn eid_prefix(&mut self, path: &str, p: &IpNet) {
        if p.trunc() != *p {
            self.bad(
                path,
                Some(format!("{p:?}").trim_matches('"').to_owned()),
                format!(
                    "host bits are set in an EID prefix: did you mean {}?",
                    p.trunc()
                ),
            );
        }
    }

    fn key(&mut self, path: &str, key: &str) {
        if key.is_empty() {
            self.missing(path, "required: the shared authentication key");
        } else if key.len() < 8 {
            self.bad(
                path,
                Some("(hidden)".into()),
                "the key is shorter than 8 characters: use a longer one",
            );
        }
    }
}

fn unique<'a>(c: &mut Checker, items: impl Iterator<Item = (String, &'a str)>, what: &str) {
    let mut seen: HashMap<&str, String> = HashMap::new();
    for (path, name) in items {
        if name.is_empty() {
            c.missing(path, format!("required: a name for this {what}"));
            continue;
        }
        if let Some(first) = seen.get(name) {
            c.bad(
                path,
                Some(format!("{name:?}")),
                format!("duplicate {what} name (first used at {first})"),
            );
        } else {
            seen.insert(name, path);
        }
    }
}

/// Returns every semantic problem of `cfg`.
pub fn validate(cfg: &Config) -> Vec<Issue> {
    let mut c = Checker { issues: Vec::new() };
    let role = cfg.appliance.role;
    if role.is_none() {
        c.missing(
            "appliance.role",
            "required: one of \"pxtr\", \"xtr\", \"ms-mr\"",
        );
    }
    if cfg.appliance.name.trim().is_empty() {
        c.missing("appliance.name", "required: a name for logs and metrics");
    }
    check_eal_and_mempool(&mut c, cfg);
    check_ports(&mut c, cfg, role);
    check_lcores(&mut c, cfg);
    check_dataplane(&mut c, cfg);
    check_lisp(&mut c, cfg, role);
    check_map_server(&mut c, cfg, role);
    check_ipsec(&mut c, cfg);
    if cfg.control.socket.is_empty() {
        c.missing("control.socket", "required: path of the control socket");
    }
    if !cfg.control.metrics_listen.is_empty()
        && cfg
            .control
            .metrics_listen
            .parse::<std::net::SocketAddr>()
            .is_err()
    {
        c.bad(
            "control.metrics_listen",
            Some(format!("{:?}", cfg.control.metrics_listen)),
            "expected an address and TCP port (\"127.0.0.1:9742\", \"[::1]:9742\"), or \"\" for no metrics endpoint",
        );
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&cfg.control.log_level) {
        c.bad(
            "control.log_level",
            Some(format!("{:?}", cfg.control.log_level)),
            format!("not a log filter ({e}); expected e.g. \"info\" or \"pxtr=debug,info\""),
        );
    }
    c.issues
}

fn check_eal_and_mempool(c: &mut Checker, cfg: &Config) {
    let e = &cfg.eal;
    c.range("eal.memory_mb", e.memory_mb, 64, 1 << 20, "memory");
    if e.file_prefix.is_empty() || e.file_prefix.contains('/') {
        c.bad(
            "eal.file_prefix",
            Some(format!("{:?}", e.file_prefix)),
            "expected a non-empty name without '/'",
        );
    }
    for (i, a) in e.extra_args.iter().enumerate() {
        if let Some(owned) = owned_eal_option(a) {
            c.bad(format!("eal.extra_args[{i}]"), Some(format!("{a:?}")), format!(
                "pxtr sets {owned} itself from the rest of the file (lcores, ports, eal.memory_mb, eal.hugepages, eal.file_prefix, eal.in_memory)"));
        }
    }
    let m = &cfg.mempool;
    c.range("mempool.mbufs", m.mbufs, 255, 16 << 20, "the pool size");
    if m.cache > 512 || u64::from(m.cache) * 3 > u64::from(m.mbufs) * 2 {
        c.bad(
            "mempool.cache",
            Some(m.cache.to_string()),
            format!(
                "the per-lcore cache must be at most 512 and at most 2/3 of mempool.mbufs ({})",
                m.mbufs
            ),
        );
    }
    for (i, p) in cfg.ports.iter().enumerate() {
        let need = MBUF_HEADROOM + u32::from(p.mtu) + L2_OVERHEAD;
        if u32::from(m.data_room) < need {
            c.bad("mempool.data_room", Some(m.data_room.to_string()), format!(
                "ports[{i}] ({}) has MTU {}: each buffer needs at least {need} bytes (headroom {MBUF_HEADROOM} + MTU + {L2_OVERHEAD})",
                p.name, p.mtu));
            break;
        }
    }
    // Descriptor rings and per-lcore caches hold mbufs too: the pool must cover them all.
    let lcores = cfg.lcores.workers.len() as u64 + 1;
    let tx_queues = lcores; // one per worker and one for the control core, on every port
    let held: u64 = cfg
        .ports
        .iter()
        .map(|p| {
            // net_tap pairs its queues: as many RX queues as TX queues.
            let rx = if p.device.starts_with("net_tap") {
                u64::from(p.rx_queues).max(tx_queues)
            } else {
                u64::from(p.rx_queues)
            };
            rx * u64::from(p.rx_descriptors) + tx_queues * u64::from(p.tx_descriptors)
        })
        .sum::<u64>()
        + lcores * (u64::from(m.cache) + u64::from(cfg.dataplane.burst))
        // Each worker's punt ring and hold queue can be full at once (a flood).
        + cfg.lcores.workers.len() as u64
            * (u64::from(cfg.dataplane.punt_ring_size)
                + if cfg.dataplane.miss_policy == MissPolicy::Queue {
                    u64::from(cfg.dataplane.hold_packets)
                } else {
                    0
                });
    if held > u64::from(m.mbufs) {
        c.bad("mempool.mbufs", Some(m.mbufs.to_string()), format!(
            "the ports' descriptor rings, the lcores' caches and the workers' punt rings and hold queues can hold {held} mbufs at once: raise mempool.mbufs above that (with room for packets in flight) or lower the descriptor counts, dataplane.punt_ring_size or dataplane.hold_packets"));
    }
    // Each mbuf costs its data room plus ~256 bytes of header and mempool overhead.
    let pool_mib = (u64::from(m.mbufs) * (u64::from(m.data_room) + 256)) >> 20;
    if pool_mib + 32 > u64::from(e.memory_mb) && e.memory_mb >= 64 {
        c.bad("eal.memory_mb", Some(e.memory_mb.to_string()), format!(
            "the packet pool ({} mbufs of {} bytes) needs about {} MiB plus 32 MiB for EAL: raise eal.memory_mb or lower mempool.mbufs",
            m.mbufs, m.data_room, pool_mib));
    }
}

/// EAL options pxtr derives from the file, as the option `arg` starts with (attached values
/// like "-l0-3" or "--lcores=..." included), or None.
fn owned_eal_option(arg: &str) -> Option<&'static str> {
    const LONG: &[&str] = &[
        "--lcores",
        "--main-lcore",
        "--allow",
        "--block",
        "--vdev",
        "--no-huge",
        "--file-prefix",
        "--in-memory",
        "--socket-mem",
        "--no-shconf",
        "--proc-type",
        "--no-pci",
        "--legacy-mem",
    ];
    const SHORT: &[&str] = &["-l", "-c", "-a", "-b", "-m", "-s", "-S"];
    if arg.starts_with("--") {
        let name = arg.split('=').next().unwrap_or(arg);
        LONG.iter().find(|o| **o == name).copied()
    } else {
        SHORT.iter().find(|o| arg.starts_with(**o)).copied()
    }
}

fn check_ports(c: &mut Checker, cfg: &Config, role: Option<Role>) {
    unique(
        c,
        cfg.ports
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("ports[{i}].name"), p.name.as_str())),
        "port",
    );
    let mut devices: HashMap<String, usize> = HashMap::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let at = |k: &str| format!("ports[{i}].{k}");
        let dev_name = p.device.split(',').next().unwrap_or("").trim().to_owned();
        if p.device.trim().is_empty() {
            c.missing(
                at("device"),
                "required: a PCI address (0000:03:00.0) or a DPDK vdev (net_tap0,iface=pxtr0)",
            );
        } else if !p.is_pci() && !dev_name.starts_with("net_") {
            c.bad(at("device"), Some(format!("{:?}", p.device)),
                "expected a PCI address like 0000:03:00.0 or a DPDK network vdev like net_tap0,iface=pxtr0 or net_af_packet0,iface=eth1");
        } else if p.is_pci() && dev_name.len() != 12 {
            c.bad(
                at("device"),
                Some(format!("{:?}", p.device)),
                format!(
                "write the PCI address with its domain, as DPDK names the port: 0000:{dev_name}"),
            );
        } else if let Some(first) = devices.insert(dev_name.clone(), i) {
            c.bad(
                at("device"),
                Some(format!("{:?}", p.device)),
                format!("device {dev_name} is already used by ports[{first}]"),
            );
        }
        if p.role.is_none() {
            c.missing(
                at("role"),
                "required: \"eid\" (hosts' side) or \"rloc\" (underlay side)",
            );
        }
        c.range(&at("rx_queues"), p.rx_queues, 1, 64, "receive queues");
        c.range(
            &at("rx_descriptors"),
            p.rx_descriptors,
            64,
            16384,
            "receive descriptors",
        );
        c.range(
            &at("tx_descriptors"),
            p.tx_descriptors,
            64,
            16384,
            "transmit descriptors",
        );
        c.range(&at("mtu"), p.mtu, 576, 9600, "MTU");
        c.iid(&at("iid"), p.iid);
        let mut v4 = 0;
        let mut v6 = 0;
        for (j, a) in p.addresses.iter().enumerate() {
            match a {
                IpNet::V4(_) => v4 += 1,
                IpNet::V6(_) => v6 += 1,
            }
            if a.addr().is_unspecified() || a.addr().is_multicast() {
                c.bad(
                    format!("ports[{i}].addresses[{j}]"),
                    Some(a.to_string()),
                    "expected a unicast interface address with prefix length, e.g. 10.1.1.5/24",
                );
            } else if let IpNet::V4(n) = a {
                if n.prefix_len() < 31 && (n.addr() == n.network() || n.addr() == n.broadcast()) {
                    c.bad(
                        format!("ports[{i}].addresses[{j}]"),
                        Some(a.to_string()),
                        "this is the subnet's network or broadcast address, not a host address",
                    );
                }
            }
            if a.addr().is_ipv6() && p.mtu < 1280 {
                c.bad(
                    at("mtu"),
                    Some(p.mtu.to_string()),
                    "a port with an IPv6 address needs an MTU of at least 1280",
                );
            }
        }
        // IPv6 EIDs: a 1280-byte packet (the IPv6 minimum MTU, RFC 8200) must fit the RLOC
        // side after the outer headers, or the Packet Too Big we would send announces less than
        // 1280, which IPv6 hosts ignore.
        // IPv6 EIDs: an EID port with an IPv6 address, or IPv6 EID-prefixes in the LISP
        // sections (local, dynamic, static).
        let ipv6_eids = cfg.ports.iter().any(|e| {
            e.role == Some(PortRole::Eid) && e.addresses.iter().any(|a| a.addr().is_ipv6())
        }) || cfg
            .lisp
            .database_mappings
            .iter()
            .any(|m| m.prefix.addr().is_ipv6())
            || cfg
                .lisp
                .dynamic_eids
                .iter()
                .any(|d| d.prefix.is_some_and(|p| p.addr().is_ipv6()))
            || cfg
                .lisp
                .static_mappings
                .iter()
                .any(|m| m.prefix.addr().is_ipv6());
        if p.role == Some(PortRole::Rloc) && ipv6_eids {
            let outer = if v6 > 0 { 56 } else { 36 };
            if u32::from(p.mtu) < 1280 + outer {
                c.bad(
                    at("mtu"),
                    Some(p.mtu.to_string()),
                    format!(
                        "IPv6 EIDs need at least {} on an RLOC port: 1280 bytes (the IPv6 minimum \
                         MTU) plus {outer} bytes of LISP outer headers",
                        1280 + outer
                    ),
                );
            }
        }
        if v4 > 1 || v6 > 1 {
            c.bad(
                at("addresses"),
                None,
                "at most one IPv4 and one IPv6 address per port",
            );
        }
        if let Some(gw) = p.gateway {
            if p.addresses.iter().any(|a| a.addr() == gw) {
                c.bad(
                    at("gateway"),
                    Some(gw.to_string()),
                    "the gateway is this port's own address",
                );
            } else if !p.addresses.iter().any(|a| a.contains(&gw)) {
                c.bad(
                    at("gateway"),
                    Some(gw.to_string()),
                    "the gateway is not inside any of this port's addresses' subnets",
                );
            }
        }
        for (j, k) in p.kernel_addresses.iter().enumerate() {
            let field = format!("ports[{i}].kernel_addresses[{j}]");
            if super::model::tap_iface(&p.device).is_none() {
                c.bad(
                    field,
                    Some(k.to_string()),
                    "only for net_tap devices with iface= (the kernel side pxtr sets up)",
                );
            } else if p.addresses.iter().any(|a| a.addr() == k.addr()) {
                c.bad(
                    field,
                    Some(k.to_string()),
                    "this is the port's own address (pxtr's); the kernel side needs another",
                );
            } else if !p
                .addresses
                .iter()
                .any(|a| a.trunc() == k.trunc() && a.prefix_len() == k.prefix_len())
            {
                c.bad(
                    field,
                    Some(k.to_string()),
                    "not on the subnet of any of this port's addresses",
                );
            }
        }
        for (j, a) in p.answer_arp_for.iter().enumerate() {
            let field = format!("ports[{i}].answer_arp_for[{j}]");
            if p.role != Some(PortRole::Eid) {
                c.bad(
                    field,
                    Some(a.to_string()),
                    "only eid ports answer ARP for other addresses",
                );
            } else if a.is_multicast() || a.is_unspecified() || a.is_loopback() {
                c.bad(field, Some(a.to_string()), "expected a unicast address");
            } else if p.addresses.iter().any(|n| n.addr() == *a) {
                c.bad(
                    field,
                    Some(a.to_string()),
                    "this is the port's own address (answered anyway)",
                );
            }
        }
        let mut seen_neighbors = HashSet::new();
        for (j, n) in p.neighbors.iter().enumerate() {
            let nat = format!("ports[{i}].neighbors[{j}]");
            if n.mac_bytes().map_or(true, |m| m[0] & 1 == 1 || m == [0; 6]) {
                c.bad(
                    format!("{nat}.mac"),
                    Some(n.mac.clone()),
                    "expected a unicast MAC address as six hex octets, e.g. \"02:00:5e:10:00:01\"",
                );
            }
            if !p.addresses.iter().any(|a| a.contains(&n.ip))
                || p.addresses.iter().any(|a| a.addr() == n.ip)
            {
                c.bad(
                    format!("{nat}.ip"),
                    Some(n.ip.to_string()),
                    "a neighbour must be another host inside one of this port's subnets",
                );
            }
            if !seen_neighbors.insert(n.ip) {
                c.bad(
                    format!("{nat}.ip"),
                    Some(n.ip.to_string()),
                    "listed twice on this port",
                );
            }
        }
        if role != Some(Role::MsMr) && p.addresses.is_empty() {
            c.missing(at("addresses"), "required: the appliance's address on this port (e.g. [\"10.1.1.5/24\"]): ARP, ICMP and LISP control use it");
        }
    }
    let has = |r: PortRole| cfg.ports.iter().any(|p| p.role == Some(r));
    match role {
        Some(Role::Pxtr) | Some(Role::Xtr) => {
            if !has(PortRole::Eid) {
                c.missing(
                    "ports",
                    format!(
                        "role {} needs a port with role = \"eid\"",
                        role.map(|r| r.to_string()).unwrap_or_default()
                    ),
                );
            }
            if !has(PortRole::Rloc) {
                c.missing(
                    "ports",
                    format!(
                        "role {} needs a port with role = \"rloc\"",
                        role.map(|r| r.to_string()).unwrap_or_default()
                    ),
                );
            }
        }
        _ => {}
    }
}

fn check_lcores(c: &mut Checker, cfg: &Config) {
    let l = &cfg.lcores;
    if l.control >= MAX_LCORE {
        c.bad(
            "lcores.control",
            Some(l.control.to_string()),
            format!("lcore ids are below {MAX_LCORE}"),
        );
    }
    if let Some(cpu) = l.control_cpu {
        if cpu >= 1024 {
            c.bad(
                "lcores.control_cpu",
                Some(cpu.to_string()),
                "expected a CPU number below 1024",
            );
        }
    }
    let mut used: HashMap<u32, String> = HashMap::new();
    used.insert(l.control, "lcores.control".into());
    let mut served: HashMap<(String, u16), usize> = HashMap::new();
    for (i, w) in l.workers.iter().enumerate() {
        let at = |k: &str| format!("lcores.workers[{i}].{k}");
        match w.lcore {
            None => c.missing(at("lcore"), "required: the lcore id this worker runs on"),
            Some(id) if id >= MAX_LCORE => c.bad(
                at("lcore"),
                Some(id.to_string()),
                format!("lcore ids are below {MAX_LCORE}"),
            ),
            Some(id) => {
                if let Some(first) = used.get(&id) {
                    c.bad(
                        at("lcore"),
                        Some(id.to_string()),
                        format!("lcore {id} is already taken by {first}"),
                    );
                } else {
                    used.insert(id, format!("lcores.workers[{i}]"));
                }
            }
        }
        if let Some(cpu) = w.cpu {
            if cpu >= 1024 {
                c.bad(
                    at("cpu"),
                    Some(cpu.to_string()),
                    "expected a CPU number below 1024",
                );
            }
        }
        match cfg.ports.iter().find(|p| p.name == w.port) {
            None => c.bad(
                at("port"),
                Some(format!("{:?}", w.port)),
                format!(
                    "no port has this name (ports: {})",
                    cfg.ports
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(p) => {
                if w.queue >= p.rx_queues {
                    c.bad(
                        at("queue"),
                        Some(w.queue.to_string()),
                        format!(
                            "port {} has {} receive queue(s): queue must be below {}",
                            p.name, p.rx_queues, p.rx_queues
                        ),
                    );
                } else if let Some(first) = served.insert((p.name.clone(), w.queue), i) {
                    c.bad(
                        at("queue"),
                        Some(w.queue.to_string()),
                        format!(
                            "queue {} of port {} is already polled by lcores.workers[{first}]",
                            w.queue, p.name
                        ),
                    );
                }
            }
        }
    }
    for p in &cfg.ports {
        for q in 0..p.rx_queues.min(64) {
            if !served.contains_key(&(p.name.clone(), q)) {
                c.missing("lcores.workers", format!("no worker polls queue {q} of port {}: add {{ lcore = N, port = \"{}\", queue = {q} }}", p.name, p.name));
            }
        }
    }
}

fn check_dataplane(c: &mut Checker, cfg: &Config) {
    let d = &cfg.dataplane;
    // Vector receive paths (ixgbe, i40e, ice, ...) return nothing for bursts below 4.
    c.range("dataplane.burst", d.burst, 4, MAX_BURST, "the burst size");
    c.range(
        "dataplane.idle_max_sleep_us",
        d.idle_max_sleep_us,
        1,
        100_000,
        "the longest idle sleep",
    );
    c.range(
        "dataplane.punt_ring_size",
        d.punt_ring_size,
        64,
        65536,
        "the punt ring size",
    );
    c.range(
        "dataplane.hold_packets",
        d.hold_packets,
        1,
        65536,
        "packets held per worker",
    );
    c.range(
        "dataplane.hold_timeout_ms",
        d.hold_timeout_ms,
        1,
        60_000,
        "the hold timeout",
    );
    c.range(
        "dataplane.miss_reports_per_sec",
        d.miss_reports_per_sec,
        1,
        100_000,
        "miss reports per second",
    );
}

fn check_eid_prefixes(c: &mut Checker, base: &str, list: &[EidPrefix]) {
    let mut seen: HashSet<(u32, IpNet)> = HashSet::new();
    for (i, e) in list.iter().enumerate() {
        let at = format!("{base}[{i}]");
        c.iid(&format!("{at}.iid"), e.iid);
        c.eid_prefix(&format!("{at}.prefix"), &e.prefix);
        if e.priority == 255 {
            c.bad(
                format!("{at}.priority"),
                Some("255".into()),
                "priority 255 means \"do not use for unicast\": choose 0-254",
            );
        }
        if !seen.insert((e.iid, e.prefix.trunc())) {
            c.bad(
                format!("{at}.prefix"),
                Some(e.prefix.to_string()),
                format!("duplicate of another entry in instance {}", e.iid),
            );
        }
    }
}

fn check_static_mappings(c: &mut Checker, list: &[StaticMapping]) {
    let mut seen: HashSet<(u32, IpNet)> = HashSet::new();
    for (i, m) in list.iter().enumerate() {
        let at = format!("lisp.static_mappings[{i}]");
        c.iid(&format!("{at}.iid"), m.iid);
        c.eid_prefix(&format!("{at}.prefix"), &m.prefix);
        if !seen.insert((m.iid, m.prefix.trunc())) {
            c.bad(
                format!("{at}.prefix"),
                Some(m.prefix.to_string()),
                format!("duplicate of another static mapping in instance {}", m.iid),
            );
        }
        if m.rlocs.len() > crate::mapcache::MAX_LOCATORS {
            c.bad(
                format!("{at}.rlocs"),
                Some(m.rlocs.len().to_string()),
                format!("at most {} locators", crate::mapcache::MAX_LOCATORS),
            );
        }
        if !m.rlocs.is_empty() && m.action.is_some() {
            c.bad(
                format!("{at}.action"),
                m.action.map(|a| a.to_string()),
                "an action is for entries without rlocs (negative entries)",
            );
        }
        for (j, r) in m.rlocs.iter().enumerate() {
            if r.address.is_unspecified() || r.address.is_multicast() || r.address.is_loopback() {
                c.bad(
                    format!("{at}.rlocs[{j}].address"),
                    Some(r.address.to_string()),
                    "an RLOC must be a routable unicast address",
                );
            }
        }
    }
}

fn check_lisp(c: &mut Checker, cfg: &Config, role: Option<Role>) {
    let l = &cfg.lisp;
    let data_role = matches!(role, Some(Role::Pxtr) | Some(Role::Xtr));
    if data_role && l.rlocs.is_empty() {
        c.missing(
            "lisp.rlocs",
            "required for this role: the appliance's RLOC address(es)",
        );
    }
    for (i, r) in l.rlocs.iter().enumerate() {
        if r.is_unspecified() || r.is_multicast() || r.is_loopback() {
            c.bad(
                format!("lisp.rlocs[{i}]"),
                Some(r.to_string()),
                "an RLOC must be a routable unicast address",
            );
        }
    }
    check_eid_prefixes(c, "lisp.database_mappings", &l.database_mappings);
    check_static_mappings(c, &l.static_mappings);
    unique(
        c,
        l.dynamic_eids
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("lisp.dynamic_eids[{i}].name"), d.name.as_str())),
        "dynamic-EID range",
    );
    for (i, d) in l.dynamic_eids.iter().enumerate() {
        let at = |k: &str| format!("lisp.dynamic_eids[{i}].{k}");
        c.iid(&at("iid"), d.iid);
        match &d.prefix {
            None => c.missing(
                at("prefix"),
                "required: the range hosts are detected in, e.g. \"10.1.1.0/24\"",
            ),
            Some(p) => c.eid_prefix(&at("prefix"), p),
        }
        match cfg.ports.iter().find(|p| p.name == d.port) {
            None => c.bad(
                at("port"),
                Some(format!("{:?}", d.port)),
                "expected the name of an eid port (the server-mobility interface)",
            ),
            Some(p) if p.role != Some(PortRole::Eid) => c.bad(
                at("port"),
                Some(format!("{:?}", d.port)),
                format!(
                    "port {} has role rloc: hosts are detected on an eid port",
                    p.name
                ),
            ),
            Some(_) => {}
        }
    }
    for (i, m) in l.map_servers.iter().enumerate() {
        let at = |k: &str| format!("lisp.map_servers[{i}].{k}");
        if m.address.is_none() {
            c.missing(at("address"), "required: the Map-Server's address");
        }
        c.key(&at("key"), &m.key);
    }
    let embedded = cfg.map_server.enabled;
    if data_role && !embedded && l.map_resolvers.is_empty() {
        c.missing("lisp.map_resolvers", "required: at least one Map-Resolver (or enable the embedded one with map_server.enabled = true)");
    }
    let registers = !l.database_mappings.is_empty() || !l.dynamic_eids.is_empty();
    if data_role && registers && !embedded && l.map_servers.is_empty() {
        c.missing("lisp.map_servers", "required: local EIDs (database_mappings or dynamic_eids) are registered with at least one Map-Server");
    }
    check_addr_list(c, "lisp.map_resolvers", &l.map_resolvers);
    check_addr_list(c, "lisp.petrs", &l.petrs);
    c.range(
        "lisp.map_cache_capacity",
        l.map_cache_capacity,
        16,
        100_000_000,
        "map-cache capacity",
    );
}

fn check_addr_list(c: &mut Checker, base: &str, list: &[IpAddr]) {
    let mut seen = HashSet::new();
    for (i, a) in list.iter().enumerate() {
        if a.is_unspecified() || a.is_multicast() {
            c.bad(
                format!("{base}[{i}]"),
                Some(a.to_string()),
                "expected a unicast address",
            );
        } else if !seen.insert(*a) {
            c.bad(format!("{base}[{i}]"), Some(a.to_string()), "listed twice");
        }
    }
}

fn check_map_server(c: &mut Checker, cfg: &Config, role: Option<Role>) {
    let ms = &cfg.map_server;
    if role == Some(Role::MsMr) && !ms.enabled {
        c.bad(
            "map_server.enabled",
            Some("false".into()),
            "role ms-mr runs the Map-Server: set map_server.enabled = true",
        );
    }
    if ms.listen_port == 0 {
        c.bad(
            "map_server.listen_port",
            Some("0".into()),
            "expected a UDP port (4342, LISP control)",
        );
    }
    for (i, a) in ms.listen.iter().enumerate() {
        if a.is_multicast() {
            c.bad(
                format!("map_server.listen[{i}]"),
                Some(a.to_string()),
                "expected a unicast address of this host (or 0.0.0.0 / ::)",
            );
        }
    }
    if ms.enabled && ms.sites.is_empty() {
        c.missing(
            "map_server.sites",
            "the embedded Map-Server needs at least one site (name, key, eid_prefixes)",
        );
    }
    c.range(
        "map_server.registration_timeout_s",
        ms.registration_timeout_s,
        30,
        86400,
        "the registration timeout",
    );
    unique(
        c,
        ms.sites
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("map_server.sites[{i}].name"), s.name.as_str())),
        "site",
    );
    let mut owner: HashMap<(u32, IpNet), String> = HashMap::new();
    for (i, s) in ms.sites.iter().enumerate() {
        let at = format!("map_server.sites[{i}]");
        c.key(&format!("{at}.key"), &s.key);
        if s.eid_prefixes.is_empty() {
            c.missing(
                format!("{at}.eid_prefixes"),
                "a site needs at least one EID prefix it may register",
            );
        }
        for (j, p) in s.eid_prefixes.iter().enumerate() {
            let pat = format!("{at}.eid_prefixes[{j}]");
            c.iid(&format!("{pat}.iid"), p.iid);
            c.eid_prefix(&format!("{pat}.prefix"), &p.prefix);
            if let Some(first) = owner.insert((p.iid, p.prefix.trunc()), s.name.clone()) {
                c.bad(
                    format!("{pat}.prefix"),
                    Some(p.prefix.to_string()),
                    format!("already configured for site {first}"),
                );
            }
        }
    }
}

fn check_ipsec(c: &mut Checker, cfg: &Config) {
    let ip = &cfg.ipsec;
    if !ip.peers.is_empty() && ip.vici_socket.is_empty() {
        c.missing(
            "ipsec.vici_socket",
            "required: strongSwan's VICI socket path",
        );
    }
    unique(
        c,
        ip.peers
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("ipsec.peers[{i}].name"), p.name.as_str())),
        "IPsec peer",
    );
    for (i, p) in ip.peers.iter().enumerate() {
        let at = |k: &str| format!("ipsec.peers[{i}].{k}");
        if p.local_address.is_none() {
            c.missing(at("local_address"), "required: our IKE address");
        }
        if p.remote_address.is_none() {
            c.missing(at("remote_address"), "required: the peer's IKE address");
        }
        if let (Some(l), Some(r)) = (p.local_address, p.remote_address) {
            if l.is_ipv4() != r.is_ipv4() {
                c.bad(
                    at("remote_address"),
                    Some(r.to_string()),
                    "local and remote addresses must be of the same family",
                );
            }
        }
        if p.remote_rlocs.is_empty() {
            c.missing(
                at("remote_rlocs"),
                "required: the peer's RLOC range(s) routed into the tunnel",
            );
        }
        match p.auth {
            super::model::IpsecAuth::Psk => {
                if p.psk.len() < 16 {
                    c.bad(
                        at("psk"),
                        Some("(hidden)".into()),
                        "auth = \"psk\" needs a pre-shared key of at least 16 characters",
                    );
                }
            }
            super::model::IpsecAuth::Pubkey => {
                // The files are read here too, so that `pxtr check-config` on the appliance
                // finds a missing, unreadable, encrypted or mistaken file before charon does.
                for (k, v) in [
                    ("certificate", &p.certificate),
                    ("private_key", &p.private_key),
                    ("ca_certificate", &p.ca_certificate),
                ] {
                    if v.is_empty() {
                        c.missing(at(k), "required with auth = \"pubkey\": a file path");
                        continue;
                    }
                    let file = std::path::Path::new(v);
                    let read = if k == "private_key" {
                        crate::ipsec::creds::read_private_key(file).map(|_| ())
                    } else {
                        crate::ipsec::creds::read_certificate(file).map(|_| ())
                    };
                    if let Err(e) = read {
                        c.bad(at(k), Some(format!("{v:?}")), e.to_string());
                    }
                }
            }
        }
        if p.auth != super::model::IpsecAuth::Pubkey {
            for (k, v) in [("local_id", &p.local_id), ("remote_id", &p.remote_id)] {
                if !v.is_empty() {
                    c.bad(
                        at(k),
                        Some(format!("{v:?}")),
                        "only with auth = \"pubkey\" (with a pre-shared key the identities are the IKE addresses)",
                    );
                }
            }
        }
        if let Some(r) = p.remote_address {
            if let Some(n) = p.remote_rlocs.iter().find(|n| n.contains(&r)) {
                c.bad(
                    at("remote_rlocs"),
                    Some(n.to_string()),
                    format!(
                        "holds remote_address {r}: pxtr routes remote_rlocs into the tunnel, which \
                         would carry IKE itself (use RLOCs apart from the IKE addresses)"
                    ),
                );
            }
        }
        if p.ike_proposals.is_empty() || p.esp_proposals.is_empty() {
            c.missing(at("ike_proposals"), "at least one IKE and one ESP proposal");
        }
    }
}
