//! The appliance configuration as typed structs.
//!
//! Every struct takes defaults for missing keys and rejects unknown ones, so that a file is read
//! whole and [`super::validate`] can report every problem at once (a required key left out is
//! reported there, by its path, rather than by the deserializer one at a time).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A string-valued enum whose errors list the accepted values.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vm])* $var),+
        }

        impl $name {
            /// The accepted spellings.
            pub const NAMES: &'static [&'static str] = &[$($s),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$var => $s),+
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                match s.as_str() {
                    $($s => Ok(Self::$var),)+
                    _ => Err(format!(
                        "unknown value {s:?}: expected one of {}",
                        Self::NAMES.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }

        impl From<$name> for &'static str {
            fn from(v: $name) -> &'static str {
                v.as_str()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// What this appliance is.
    Role {
        /// The enterprise PxTR: off-path on the server subnet, proxy-ARP, ITR/ETR, PITR/PETR
        /// and, optionally, the embedded Map-Server/Map-Resolver.
        Pxtr = "pxtr",
        /// A site xTR (e.g. the cloud side): in path, default gateway of its EID subnet, ITR/ETR.
        Xtr = "xtr",
        /// Map-Server/Map-Resolver only.
        MsMr = "ms-mr",
    }
}

string_enum! {
    /// Which side of the LISP boundary a port faces.
    PortRole {
        /// Hosts (EIDs): traffic here is encapsulated; decapsulated traffic leaves here.
        Eid = "eid",
        /// The underlay (RLOCs): LISP-encapsulated traffic in and out.
        Rloc = "rloc",
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub appliance: Appliance,
    pub eal: Eal,
    pub mempool: MempoolSection,
    pub ports: Vec<PortSection>,
    pub lcores: Lcores,
    pub dataplane: Dataplane,
    pub lisp: Lisp,
    pub map_server: MapServer,
    pub ipsec: Ipsec,
    pub control: Control,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Appliance {
    /// Name in logs, metrics and the control socket.
    pub name: String,
    /// Required: pxtr, xtr or ms-mr.
    pub role: Option<Role>,
}

impl Default for Appliance {
    fn default() -> Self {
        Appliance {
            name: "pxtr".into(),
            role: None,
        }
    }
}

/// DPDK Environment Abstraction Layer. pxtr derives the lcore list, the device allow-list and
/// the vdevs from the rest of the file; these keys cover memory and the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Eal {
    /// Use hugepages (production). false runs on ordinary memory (`--no-huge`): labs and tests.
    pub hugepages: bool,
    /// Memory EAL reserves, in MiB (`-m`).
    pub memory_mb: u32,
    /// Prefix of EAL's runtime files; two appliances on one host need different ones.
    pub file_prefix: String,
    /// Keep no shared runtime files (`--in-memory`): containers, several instances, tests.
    pub in_memory: bool,
    /// Arguments appended verbatim (e.g. ["--log-level=pmd.net.ixgbe:debug"]).
    pub extra_args: Vec<String>,
}

impl Default for Eal {
    fn default() -> Self {
        Eal {
            hugepages: true,
            memory_mb: 1024,
            file_prefix: "pxtr".into(),
            in_memory: false,
            extra_args: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MempoolSection {
    /// Packet buffers in the pool (2^n - 1 is best).
    pub mbufs: u32,
    /// Per-lcore cache.
    pub cache: u32,
    /// Bytes per buffer including DPDK's 128-byte headroom; must hold the largest frame.
    pub data_room: u16,
}

impl Default for MempoolSection {
    fn default() -> Self {
        MempoolSection {
            mbufs: 16383,
            cache: 256,
            data_room: 2176,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortSection {
    /// Name other sections refer to (e.g. "eid0").
    pub name: String,
    /// A PCI address ("0000:03:00.0", with optional ",key=value" devargs) or a DPDK virtual
    /// device ("net_tap0,iface=pxtr-eid", "net_af_packet0,iface=veth1", "net_ring0", ...).
    pub device: String,
    /// Required: eid or rloc.
    pub role: Option<PortRole>,
    /// Receive queues; each needs one worker in [lcores].
    pub rx_queues: u16,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    pub mtu: u16,
    /// Receive every frame (default: on for eid ports, which proxy-ARP for other hosts' MACs
    /// are not needed for, but EID detection listens to all ARP).
    pub promiscuous: Option<bool>,
    /// The appliance's own IPv4 and/or IPv6 address on this port, with prefix length.
    pub addresses: Vec<IpNet>,
    /// Next hop for destinations off this port's subnets: the underlay router (rloc ports),
    /// or the enterprise gateway toward routed sites (eid ports).
    pub gateway: Option<IpAddr>,
    /// Static neighbours on this port (IP → MAC), e.g. a gateway that does not answer ARP.
    pub neighbors: Vec<StaticNeighbor>,
    /// Instance-ID of the EID traffic on this port (eid ports; 24 bits).
    pub iid: u32,
    /// Addresses the appliance answers ARP/ND for on this eid port with its own MAC, besides
    /// remote EIDs: at the cloud site, the enterprise gateway address that moved hosts keep
    /// sending to (across-subnet mode).
    pub answer_arp_for: Vec<IpAddr>,
    /// net_tap ports with `iface=`: addresses (with prefix length) pxtr gives the host
    /// kernel's side of the tap when the port starts, e.g. the port's gateway when the kernel
    /// routes this port's traffic into an IPsec tunnel.
    pub kernel_addresses: Vec<IpNet>,
}

impl Default for PortSection {
    fn default() -> Self {
        PortSection {
            name: String::new(),
            device: String::new(),
            role: None,
            rx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            mtu: 1500,
            promiscuous: None,
            addresses: Vec::new(),
            gateway: None,
            neighbors: Vec::new(),
            iid: 0,
            answer_arp_for: Vec::new(),
            kernel_addresses: Vec::new(),
        }
    }
}

impl PortSection {
    /// Promiscuous mode in force: as configured, else on for eid ports.
    pub fn promiscuous(&self) -> bool {
        self.promiscuous.unwrap_or(self.role == Some(PortRole::Eid))
    }

    /// Whether `device` names a PCI device (else it is a vdev).
    pub fn is_pci(&self) -> bool {
        is_pci_address(self.device.split(',').next().unwrap_or(""))
    }
}

/// "0000:03:00.0" or "03:00.0".
pub fn is_pci_address(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let (bdf, domain_ok) = match s.split_once(':') {
        Some((d, rest)) if d.len() == 4 => (rest, hex(d, 4)),
        _ => (s, true),
    };
    let Some((bus, devfn)) = bdf.split_once(':') else {
        return false;
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    domain_ok
        && hex(bus, 2)
        && hex(dev, 2)
        && func.len() == 1
        && matches!(func.as_bytes()[0], b'0'..=b'7')
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lcores {
    /// The control lcore (EAL's main lcore): signalling, ARP, IPsec, management.
    pub control: u32,
    /// CPU the control lcore runs on (default: the same number as the lcore).
    pub control_cpu: Option<u32>,
    /// One worker per (port, RX queue).
    pub workers: Vec<Worker>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Worker {
    /// Required: the lcore id (distinct from the control lcore and other workers).
    pub lcore: Option<u32>,
    /// CPU to pin the lcore to (default: the same number as the lcore). Several lcores may share
    /// a CPU in labs; give production workers CPUs of their own (isolcpus).
    pub cpu: Option<u32>,
    /// Port name whose queue this worker polls.
    pub port: String,
    /// RX queue index on that port.
    pub queue: u16,
}

string_enum! {
    /// What a worker does when a burst comes back empty.
    IdlePolicy {
        /// Spin: lowest latency, one CPU per worker at 100%.
        Poll = "poll",
        /// Back off (pause, then sleep up to `idle_max_sleep_us`) while idle: labs, small VMs.
        Adaptive = "adaptive",
    }
}

string_enum! {
    /// How the hosts of a dynamic-EID range move between sites.
    #[derive(Default)]
    MobilityMode {
        /// To a site on another subnet, no LAN extension (cold moves: disaster recovery, cloud
        /// bursting): hosts are detected from ARP/ND; remote ones are answered for with our MAC
        /// (proxy-ARP); a host that leaves is announced with our MAC (gratuitous ARP).
        #[default]
        AcrossSubnet = "across-subnet",
        /// Within a subnet stretched between sites by a LAN extension, the same gateway address
        /// on both sides: ARP and ND stay between the hosts (no proxy-ARP); a host is detected
        /// from the packets it routes through us (ARP crosses the extension, so it proves
        /// nothing about where the host is); a host that leaves is withdrawn quietly.
        ExtendedSubnet = "extended-subnet",
    }
}

string_enum! {
    /// What happens to the first packets toward an EID not yet in the map-cache.
    MissPolicy {
        Drop = "drop",
        /// Hold them (a few per destination) until the Map-Reply arrives.
        Queue = "queue",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dataplane {
    /// Packets per RX/TX burst (1..=64).
    pub burst: u16,
    pub idle: IdlePolicy,
    /// Longest sleep of the adaptive idle policy, in microseconds.
    pub idle_max_sleep_us: u32,
    /// Size of each worker's punt ring to the control core.
    pub punt_ring_size: u32,
    pub miss_policy: MissPolicy,
    /// Split DF-clear IPv4 packets too big for the path into fragments (true), or drop them.
    pub fragment: bool,
    /// Packets each worker holds while their destinations are resolved (miss_policy queue).
    pub hold_packets: u32,
    /// How long a held packet waits for its mapping before it is dropped, in milliseconds.
    pub hold_timeout_ms: u32,
    /// Most map-cache miss reports (each a Map-Request) per second per worker; a destination
    /// is reported at most once a second (RFC 9301 section 5.3).
    pub miss_reports_per_sec: u32,
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            burst: 32,
            idle: IdlePolicy::Poll,
            idle_max_sleep_us: 100,
            punt_ring_size: 1024,
            miss_policy: MissPolicy::Drop,
            fragment: true,
            hold_packets: 256,
            hold_timeout_ms: 1000,
            miss_reports_per_sec: 100,
        }
    }
}

/// Authentication of Map-Register / Map-Notify: what deployments call "key-id 1/2", on the
/// wire RFC 9301's Algorithm ID (sent with Key ID 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum KeyId {
    /// 1: HMAC-SHA-1-96, what many deployed xTRs speak.
    HmacSha1_96,
    /// 2: HMAC-SHA-256-128, the default.
    #[default]
    HmacSha256_128,
}

impl TryFrom<u16> for KeyId {
    type Error = String;
    fn try_from(v: u16) -> Result<Self, String> {
        match v {
            1 => Ok(KeyId::HmacSha1_96),
            2 => Ok(KeyId::HmacSha256_128),
            _ => Err(format!(
                "key_id {v} is not supported: expected 1 (HMAC-SHA-1-96) or 2 (HMAC-SHA-256-128)"
            )),
        }
    }
}

impl From<KeyId> for u16 {
    fn from(k: KeyId) -> u16 {
        match k {
            KeyId::HmacSha1_96 => 1,
            KeyId::HmacSha256_128 => 2,
        }
    }
}

/// An EID prefix in an instance (IID, 24 bits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EidPrefix {
    #[serde(default)]
    pub iid: u32,
    pub prefix: IpNet,
    /// Locator priority and weight advertised for our RLOCs (database-mapping).
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default = "default_weight")]
    pub weight: u8,
}

fn default_priority() -> u8 {
    1
}
fn default_weight() -> u8 {
    100
}

/// A static ARP / ND entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticNeighbor {
    pub ip: IpAddr,
    /// "02:00:5e:10:00:01".
    pub mac: String,
}

impl StaticNeighbor {
    /// The MAC as bytes, `None` unless six colon-separated hex octets.
    pub fn mac_bytes(&self) -> Option<[u8; 6]> {
        let mut out = [0u8; 6];
        let mut parts = self.mac.split(':');
        for b in &mut out {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *b = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(out)
    }
}

string_enum! {
    /// What a static mapping without locators does (a negative map-cache entry).
    StaticAction {
        NativeForward = "native-forward",
        Drop = "drop",
        SendMapRequest = "send-map-request",
    }
}

/// A locator of a static mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticLocator {
    pub address: IpAddr,
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default = "default_weight")]
    pub weight: u8,
}

/// A map-cache entry that never expires (`map-cache` in IOS-XE terms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMapping {
    #[serde(default)]
    pub iid: u32,
    pub prefix: IpNet,
    /// Up to 8 locators; none makes a negative entry with `action`.
    #[serde(default)]
    pub rlocs: Vec<StaticLocator>,
    /// For an entry without locators (default: native-forward).
    #[serde(default)]
    pub action: Option<StaticAction>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicEid {
    /// Name in logs and `pxtr ctl show dynamic-eid`.
    pub name: String,
    pub iid: u32,
    /// Range in which hosts are detected (ARP, ND, ICMP probes) and registered as /32 or /128.
    pub prefix: Option<IpNet>,
    /// The eid port on whose subnet hosts are detected (the server-mobility interface).
    pub port: String,
    /// across-subnet (default) or extended-subnet.
    pub mode: MobilityMode,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapServerPeer {
    /// Required: the Map-Server's address.
    pub address: Option<IpAddr>,
    pub key_id: KeyId,
    /// Required: the shared key for this Map-Server.
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lisp {
    /// Our RLOCs (addresses the underlay reaches us at).
    pub rlocs: Vec<IpAddr>,
    /// Local EID prefixes (ETR database-mapping).
    pub database_mappings: Vec<EidPrefix>,
    /// Ranges in which local hosts are detected.
    pub dynamic_eids: Vec<DynamicEid>,
    /// Map-Servers we register with.
    pub map_servers: Vec<MapServerPeer>,
    /// Map-Resolvers we send Map-Requests to (in order, with failover).
    pub map_resolvers: Vec<IpAddr>,
    /// Proxy ETRs for traffic to non-LISP destinations (use-petr).
    pub petrs: Vec<IpAddr>,
    /// Map-cache capacity (entries); least recently used are evicted beyond it.
    pub map_cache_capacity: u32,
    /// Map-cache entries installed at start that never expire.
    pub static_mappings: Vec<StaticMapping>,
}

impl Default for Lisp {
    fn default() -> Self {
        Lisp {
            rlocs: Vec::new(),
            database_mappings: Vec::new(),
            dynamic_eids: Vec::new(),
            map_servers: Vec::new(),
            map_resolvers: Vec::new(),
            petrs: Vec::new(),
            map_cache_capacity: 1_000_000,
            static_mappings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitePrefix {
    #[serde(default)]
    pub iid: u32,
    pub prefix: IpNet,
    /// Accept registrations of more-specific prefixes inside this one (dynamic EIDs).
    #[serde(default)]
    pub accept_more_specifics: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Site {
    pub name: String,
    pub key_id: KeyId,
    pub key: String,
    pub eid_prefixes: Vec<SitePrefix>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapServer {
    /// Run the embedded Map-Server and Map-Resolver.
    pub enabled: bool,
    /// Seconds a registration lives without refresh (RFC 9301: 3 minutes).
    pub registration_timeout_s: u32,
    pub sites: Vec<Site>,
    /// Without DPDK ports (role ms-mr): the host addresses to take LISP control messages on
    /// through kernel UDP sockets (empty: 0.0.0.0, every IPv4 address of the host). List the
    /// addresses ETRs register to on a host with several, so answers leave from them.
    pub listen: Vec<IpAddr>,
    /// The UDP port of those sockets.
    pub listen_port: u16,
}

impl Default for MapServer {
    fn default() -> Self {
        MapServer {
            enabled: false,
            registration_timeout_s: 180,
            sites: Vec::new(),
            listen: Vec::new(),
            listen_port: crate::wire::LISP_CONTROL_PORT,
        }
    }
}

string_enum! {
    /// How ESP is provided for the tunnel to IPsec peers.
    IpsecMode {
        /// Kernel xfrm interface where the kernel has ESP, else strongSwan's kernel-libipsec TUN.
        Auto = "auto",
        /// Kernel ESP through an xfrm interface.
        Xfrm = "xfrm",
        /// strongSwan's userspace ESP (kernel-libipsec, TUN `ipsec0`).
        Libipsec = "libipsec",
    }
}

string_enum! {
    /// How IKE authenticates the peer.
    IpsecAuth {
        Psk = "psk",
        Pubkey = "pubkey",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ipsec {
    pub mode: IpsecMode,
    /// strongSwan's VICI socket.
    pub vici_socket: String,
    pub peers: Vec<IpsecPeer>,
}

impl Default for Ipsec {
    fn default() -> Self {
        Ipsec {
            mode: IpsecMode::Auto,
            vici_socket: "/var/run/charon.vici".into(),
            peers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpsecPeer {
    pub name: String,
    /// Required: our IKE address.
    pub local_address: Option<IpAddr>,
    /// Required: the peer's IKE address.
    pub remote_address: Option<IpAddr>,
    /// The peer's RLOC ranges, routed into the tunnel; while no SA is up they are unreachable.
    pub remote_rlocs: Vec<IpNet>,
    pub auth: IpsecAuth,
    /// Pre-shared key (auth = "psk").
    pub psk: String,
    /// Our certificate, its private key, and the CA certificate the peer's certificate must
    /// chain up to (auth = "pubkey"): PEM or DER files; relative paths are relative to the
    /// configuration file's folder.
    pub certificate: String,
    pub private_key: String,
    pub ca_certificate: String,
    /// Our IKE identity with auth = "pubkey" (e.g. "CN=pxtr-1" or an address in the
    /// certificate's subjectAltName); empty: the certificate's subject.
    pub local_id: String,
    /// The identity the peer must prove with auth = "pubkey"; empty: any identity in a
    /// certificate issued by `ca_certificate`.
    pub remote_id: String,
    pub ike_proposals: Vec<String>,
    pub esp_proposals: Vec<String>,
}

impl Default for IpsecPeer {
    fn default() -> Self {
        IpsecPeer {
            name: String::new(),
            local_address: None,
            remote_address: None,
            remote_rlocs: Vec::new(),
            auth: IpsecAuth::Psk,
            psk: String::new(),
            certificate: String::new(),
            private_key: String::new(),
            ca_certificate: String::new(),
            local_id: String::new(),
            remote_id: String::new(),
            ike_proposals: vec!["aes256gcm16-prfsha384-ecp384".into()],
            esp_proposals: vec!["aes256gcm16-ecp384".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Control {
    /// Log filter (tracing's syntax: "info", "pxtr=debug,info", ...); RUST_LOG overrides it.
    pub log_level: String,
    /// Unix socket of `pxtr ctl`.
    pub socket: String,
    /// Seconds between the statistics lines in the log (0: never).
    pub stats_interval_s: u32,
    /// Address and TCP port of the Prometheus metrics endpoint (`GET /metrics`); "" turns it
    /// off.
    pub metrics_listen: String,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            log_level: "info".into(),
            socket: "/run/pxtr/pxtr.sock".into(),
            stats_interval_s: 10,
            metrics_listen: "127.0.0.1:9742".into(),
        }
    }
}

/// The `iface=` of a net_tap device string ("net_tap0,iface=px-rloc,mac=..."), if it has one.
pub fn tap_iface(device: &str) -> Option<&str> {
    let mut parts = device.split(',');
    let name = parts.next()?;
    if !name.starts_with("net_tap") {
        return None;
    }
    parts
        .find_map(|kv| kv.strip_prefix("iface="))
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_addresses() {
        for ok in ["0000:03:00.0", "03:00.1", "0000:af:1f.7"] {
            assert!(is_pci_address(ok), "{ok}");
        }
        for bad in [
            "net_ring0",
            "0000:03:00.8",
            "03:00",
            "eth0",
            "0000:3:00.0",
            "",
        ] {
            assert!(!is_pci_address(bad), "{bad}");
        }
    }

    #[test]
    fn string_enums_list_what_they_accept() {
        assert_eq!(Role::try_from("ms-mr".to_owned()), Ok(Role::MsMr));
        let err = PortRole::try_from("core".to_owned()).unwrap_err();
        assert_eq!(
            err,
            "unknown value \"core\": expected one of \"eid\", \"rloc\""
        );
        assert_eq!(KeyId::try_from(1), Ok(KeyId::HmacSha1_96));
        assert!(KeyId::try_from(0).is_err());
    }
}
