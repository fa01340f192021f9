use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrayvec::ArrayVec;
use dpdk_sys as sys;

use super::eal::Eal;
use super::error::{check, strerror, DpdkError};
use super::mbuf::Mbuf;
use super::mempool::Mempool;

/// How to bring a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive queues (one worker polls each).
    pub rx_queues: u16,
    /// Transmit queues (workers and the control core each own some).
    pub tx_queues: u16,
    /// Descriptors per receive queue (adjusted to what the device allows).
    pub rx_descriptors: u16,
    /// Descriptors per transmit queue (adjusted to what the device allows).
    pub tx_descriptors: u16,
    /// MTU to set, or `None` for DPDK's default (1500).
    pub mtu: Option<u16>,
    /// Receive frames for any MAC (needed on the server subnet for proxy-ARP and EID detection).
    pub promiscuous: bool,
    /// Spread flows over receive queues and stamp mbufs with the RSS hash where the device can.
    pub rss: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            mtu: None,
            promiscuous: true,
            rss: true,
        }
    }
}

/// Checksum and hash offloads, as the device offers them or as pxtr enabled them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffloadCaps {
    pub rx_ipv4_checksum: bool,
    pub rx_udp_checksum: bool,
    pub rx_tcp_checksum: bool,
    pub rx_rss_hash: bool,
    pub tx_ipv4_checksum: bool,
    pub tx_udp_checksum: bool,
    pub tx_tcp_checksum: bool,
    pub tx_outer_ipv4_checksum: bool,
    pub tx_outer_udp_checksum: bool,
    pub tx_multi_segs: bool,
}

impl OffloadCaps {
    fn from_masks(rx: u64, tx: u64) -> OffloadCaps {
        let has = |mask: u64, bit: &u64| mask & *bit != 0;
        // SAFETY: the pxtr_ETH_* statics are immutable constants defined in shim.c.
        unsafe {
            OffloadCaps {
                rx_ipv4_checksum: has(rx, &sys::pxtr_ETH_RX_OFFLOAD_IPV4_CKSUM),
                rx_udp_checksum: has(rx, &sys::pxtr_ETH_RX_OFFLOAD_UDP_CKSUM),
                rx_tcp_checksum: has(rx, &sys::pxtr_ETH_RX_OFFLOAD_TCP_CKSUM),
                rx_rss_hash: has(rx, &sys::pxtr_ETH_RX_OFFLOAD_RSS_HASH),
                tx_ipv4_checksum: has(tx, &sys::pxtr_ETH_TX_OFFLOAD_IPV4_CKSUM),
                tx_udp_checksum: has(tx, &sys::pxtr_ETH_TX_OFFLOAD_UDP_CKSUM),
                tx_tcp_checksum: has(tx, &sys::pxtr_ETH_TX_OFFLOAD_TCP_CKSUM),
                tx_outer_ipv4_checksum: has(tx, &sys::pxtr_ETH_TX_OFFLOAD_OUTER_IPV4_CKSUM),
                tx_outer_udp_checksum: has(tx, &sys::pxtr_ETH_TX_OFFLOAD_OUTER_UDP_CKSUM),
                tx_multi_segs: has(tx, &sys::pxtr_ETH_TX_OFFLOAD_MULTI_SEGS),
            }
        }
    }
}

/// What a started port is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// DPDK port id.
    pub id: u16,
    /// DPDK device name (PCI address or vdev name).
    pub name: String,
    /// Driver (PMD) name, e.g. "net_ring", "net_ixgbe".
    pub driver: String,
    /// The port's MAC address.
    pub mac: [u8; 6],
    /// MTU in force.
    pub mtu: u16,
    /// NUMA socket of the device, if known.
    pub socket: Option<u32>,
    /// Receive queues configured.
    pub rx_queues: u16,
    /// Transmit queues configured.
    pub tx_queues: u16,
    /// Receive / transmit descriptors per queue after the device's adjustment.
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Whether RSS is active.
    pub rss: bool,
    /// Offloads the device offers.
    pub capabilities: OffloadCaps,
    /// Offloads pxtr enabled.
    pub enabled: OffloadCaps,
    /// Whether promiscuous mode is on.
    pub promiscuous: bool,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    pub up: bool,
    /// Speed in Mbit/s (0 when unknown).
    pub speed_mbps: u32,
    pub full_duplex: bool,
    pub autoneg: bool,
}

/// Device counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the device because no descriptor was free (RX queue full).
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

struct PortInner {
    id: u16,
    name: String,
    rx_queues: u16,
    started: AtomicBool,
    // Kept alive until the port is closed: its RX descriptors hold mbufs of this pool.
    _pool: Mempool,
    _eal: Eal,
}

impl PortInner {
    fn stop(&self) -> Result<(), DpdkError> {
        if self.started.swap(false, Ordering::SeqCst) {
            // SAFETY: valid port id; stopping a started port.
            check("rte_eth_dev_stop", unsafe {
                sys::rte_eth_dev_stop(self.id)
            })?;
            tracing::debug!(port = %self.name, "port stopped");
        }
        Ok(())
    }
}

/// Drivers that refuse different RX and TX queue counts.
fn symmetric_queues(driver: &str) -> bool {
    driver == "net_tap"
}

/// Most packets drained from one RX queue at shutdown (a net_null device never runs dry).
const DRAIN_LIMIT: usize = 65536;

impl Drop for PortInner {
    fn drop(&mut self) {
        // Software devices (net_ring, memif, ...) keep queued mbufs in memory the close does not
        // free: receive and free what is waiting. No queue handle is left, so nobody else polls.
        let mut buf: ArrayVec<Mbuf, 64> = ArrayVec::new();
        for q in 0..self.rx_queues {
            let mut drained = 0;
            while drained < DRAIN_LIMIT {
                let slots = buf.as_mut_ptr() as *mut *mut sys::rte_mbuf;
                // SAFETY: the port is started and no RxQueue exists (each holds an Arc of this),
                // so this thread is the queue's only poller; the n mbufs DPDK writes are owned.
                let n = unsafe {
                    let n = usize::from(sys::rte_eth_rx_burst(self.id, q, slots, 64));
                    buf.set_len(n);
                    n
                };
                buf.clear();
                if n == 0 {
                    break;
                }
                drained += n;
            }
        }
        if let Err(e) = self.stop() {
            tracing::warn!(port = %self.name, error = %e, "stopping port");
        }
        // SAFETY: no queue handle is left (each holds an Arc of this); closing releases the
        // descriptors' mbufs back to the pool, which we still hold.
        let ret = unsafe { sys::rte_eth_dev_close(self.id) };
        if ret < 0 {
            tracing::warn!(port = %self.name, error = %strerror(-ret), "closing port");
        }
    }
}

/// A configured and started Ethernet port. Its queues are taken out once each and moved to
/// the lcore that polls them; the port stops and closes when the `Port` and all its queues are
/// dropped.
pub struct Port {
    inner: Arc<PortInner>,
    info: PortInfo,
    rx: Vec<Option<RxQueue>>,
    tx: Vec<Option<TxQueue>>,
}

/// Names of the ports DPDK has now, for error messages.
fn present_ports() -> String {
    let mut names = Vec::new();
    for id in 0..sys::RTE_MAX_ETHPORTS as u16 {
        // SAFETY: any id may be asked about.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            continue;
        }
        names.push(port_name(id).unwrap_or_else(|| format!("#{id}")));
    }
    names.join(", ")
}

fn port_name(id: u16) -> Option<String> {
    let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes, as the call requires.
    let ret = unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if ret != 0 {
        return None;
    }
    // SAFETY: DPDK wrote a NUL-terminated string into buf.
    Some(
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

fn port_by_name(name: &CStr) -> Option<u16> {
    let mut id = 0u16;
    // SAFETY: name is a valid C string, id a valid out pointer.
    (unsafe { sys::rte_eth_dev_get_port_by_name(name.as_ptr(), &mut id) } == 0).then_some(id)
}

impl Port {
    /// Finds the port for `device` — a PCI address ("0000:03:00.0") or a vdev string
    /// ("net_tap0,iface=pxtr0") — probing (hot-plugging) it if EAL does not have it yet, then
    /// configures and starts it with receive queues fed from `pool`.
    pub fn open(
        eal: &Eal,
        device: &str,
        cfg: &PortConfig,
        pool: &Mempool,
    ) -> Result<Port, DpdkError> {
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
            return Err(DpdkError::InvalidArgument(format!(
                "port {device}: needs at least one RX and one TX queue (got {} and {})",
                cfg.rx_queues, cfg.tx_queues
            )));
        }
        let name = device.split(',').next().unwrap_or(device).trim();
        let cname = CString::new(name)
            .map_err(|_| DpdkError::InvalidArgument(format!("device {device:?} has a NUL byte")))?;
        let id = match port_by_name(&cname) {
            Some(id) => id,
            None => {
                let cdev = CString::new(device).map_err(|_| {
                    DpdkError::InvalidArgument(format!("device {device:?} has a NUL byte"))
                })?;
                // SAFETY: cdev is a valid C string; probing runs on the main lcore at start-up.
                check("rte_dev_probe", unsafe {
                    sys::rte_dev_probe(cdev.as_ptr())
                })
                .map_err(|e| match e {
                    DpdkError::Call { errno, message, .. } => DpdkError::Call {
                        call: "rte_dev_probe",
                        errno,
                        message: format!(
                            "no driver could attach device {device:?} ({message}); DPDK's log above says why"
                        ),
                    },
                    other => other,
                })?;
                port_by_name(&cname).ok_or_else(|| DpdkError::NoSuchPort {
                    device: device.to_owned(),
                    present: present_ports(),
                })?
            }
        };
        Self::configure(eal, id, name, cfg, pool)
    }

    fn configure(
        eal: &Eal,
        id: u16,
        name: &str,
        cfg: &PortConfig,
        pool: &Mempool,
    ) -> Result<Port, DpdkError> {
        let mut dev = sys::rte_eth_dev_info::default();
        // SAFETY: valid port id, dev is a valid out pointer.
        check("rte_eth_dev_info_get", unsafe {
            sys::rte_eth_dev_info_get(id, &mut dev)
        })?;
        let driver = if dev.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name is a static NUL-terminated string of the PMD.
            unsafe { CStr::from_ptr(dev.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        // Some drivers pair their queues: net_tap refuses RX and TX counts that differ. Such a
        // port gets as many RX queues as TX queues; the caller polls the surplus ones
        // (`PortInfo::rx_queues` says how many there are).
        let mut cfg = cfg.clone();
        if symmetric_queues(&driver) {
            let n = cfg.rx_queues.max(cfg.tx_queues);
            if cfg.rx_queues != n {
                tracing::info!(port = %name, %driver, rx = cfg.rx_queues, tx = cfg.tx_queues,
                    "driver needs as many RX as TX queues: {n} of each");
            }
            cfg.rx_queues = n;
            cfg.tx_queues = n;
        }
        let cfg = &cfg;
        if cfg.rx_queues > dev.max_rx_queues || cfg.tx_queues > dev.max_tx_queues {
            return Err(DpdkError::InvalidArgument(format!(
                "port {name} ({driver}): asked for {} RX / {} TX queues, the device has at most {} / {}",
                cfg.rx_queues, cfg.tx_queues, dev.max_rx_queues, dev.max_tx_queues
            )));
        }
        if let Some(mtu) = cfg.mtu {
            if mtu < dev.min_mtu || mtu > dev.max_mtu {
                return Err(DpdkError::InvalidArgument(format!(
                    "port {name} ({driver}): MTU {mtu} is outside the device's range {}..={}",
                    dev.min_mtu, dev.max_mtu
                )));
            }
        }
        let capabilities = OffloadCaps::from_masks(dev.rx_offload_capa, dev.tx_offload_capa);
        let mut conf = sys::rte_eth_conf::default();
        // SAFETY: reading constant statics from shim.c.
        let wanted_rss =
            unsafe { sys::pxtr_ETH_RSS_IP | sys::pxtr_ETH_RSS_UDP | sys::pxtr_ETH_RSS_TCP };
        let rss_hf = wanted_rss & dev.flow_type_rss_offloads;
        let rss = cfg.rss && rss_hf != 0;
        if rss {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        let enabled = OffloadCaps {
            rx_ipv4_checksum: capabilities.rx_ipv4_checksum,
            rx_udp_checksum: capabilities.rx_udp_checksum,
            // pxtr checks and fills IPv4 and UDP checksums only (outer headers); asking for
            // more would push some PMDs off their vector paths for nothing.
            rx_tcp_checksum: false,
            rx_rss_hash: rss && capabilities.rx_rss_hash,
            tx_ipv4_checksum: capabilities.tx_ipv4_checksum,
            tx_udp_checksum: capabilities.tx_udp_checksum,
            tx_tcp_checksum: false,
            tx_outer_ipv4_checksum: false,
            tx_outer_udp_checksum: false,
            tx_multi_segs: capabilities.tx_multi_segs,
        };
        // SAFETY: reading constant statics from shim.c.
        unsafe {
            let bit = |on: bool, b: u64| if on { b } else { 0 };
            conf.rxmode.offloads =
                bit(
                    enabled.rx_ipv4_checksum,
                    sys::pxtr_ETH_RX_OFFLOAD_IPV4_CKSUM,
                ) | bit(enabled.rx_udp_checksum, sys::pxtr_ETH_RX_OFFLOAD_UDP_CKSUM)
                    | bit(enabled.rx_tcp_checksum, sys::pxtr_ETH_RX_OFFLOAD_TCP_CKSUM)
                    | bit(enabled.rx_rss_hash, sys::pxtr_ETH_RX_OFFLOAD_RSS_HASH);
            conf.txmode.offloads =
                bit(
                    enabled.tx_ipv4_checksum,
                    sys::pxtr_ETH_TX_OFFLOAD_IPV4_CKSUM,
                ) | bit(enabled.tx_udp_checksum, sys::pxtr_ETH_TX_OFFLOAD_UDP_CKSUM)
                    | bit(enabled.tx_tcp_checksum, sys::pxtr_ETH_TX_OFFLOAD_TCP_CKSUM)
                    | bit(enabled.tx_multi_segs, sys::pxtr_ETH_TX_OFFLOAD_MULTI_SEGS);
        }
        if let Some(mtu) = cfg.mtu {
            conf.rxmode.mtu = u32::from(mtu);
        }
        // SAFETY: valid port id, conf fully initialised; the port is not started.
        check("rte_eth_dev_configure", unsafe {
            sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf)
        })?;
        let (mut nrx, mut ntx) = (cfg.rx_descriptors, cfg.tx_descriptors);
        // SAFETY: valid port id and out pointers.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nrx, &mut ntx)
        })?;
        // SAFETY: valid port id.
        let socket_raw = unsafe { sys::rte_eth_dev_socket_id(id) };
        let socket = u32::try_from(socket_raw).ok();
        let socket_arg = socket.unwrap_or(sys::SOCKET_ID_ANY as u32);
        for q in 0..cfg.rx_queues {
            // SAFETY: configured port, queue index in range, NULL selects the default rxconf,
            // pool outlives the port (PortInner holds it).
            check("rte_eth_rx_queue_setup", unsafe {
                sys::rte_eth_rx_queue_setup(id, q, nrx, socket_arg, std::ptr::null(), pool.as_ptr())
            })?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: configured port, queue index in range, NULL selects the default txconf
            // (port-level offloads apply to every queue).
            check("rte_eth_tx_queue_setup", unsafe {
                sys::rte_eth_tx_queue_setup(id, q, ntx, socket_arg, std::ptr::null())
            })?;
        }
        // SAFETY: all queues set up.
        check("rte_eth_dev_start", unsafe { sys::rte_eth_dev_start(id) })?;
        let inner = Arc::new(PortInner {
            id,
            name: name.to_owned(),
            rx_queues: cfg.rx_queues,
            started: AtomicBool::new(true),
            _pool: pool.clone(),
            _eal: eal.clone(),
        });
        // SAFETY (both calls): started port.
        let ret = if cfg.promiscuous {
            unsafe { sys::rte_eth_promiscuous_enable(id) }
        } else {
            unsafe { sys::rte_eth_promiscuous_disable(id) }
        };
        match ret {
            0 => {}
            e if -e == libc::ENOTSUP => tracing::warn!(port = name, driver = %driver,
                wanted = cfg.promiscuous, "device cannot change promiscuous mode"),
            e => check("rte_eth_promiscuous_enable/disable", e).map(|_| ())?,
        }
        // SAFETY: started port.
        let promiscuous = unsafe { sys::rte_eth_promiscuous_get(id) } == 1;
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: valid port id and out pointer.
        check("rte_eth_macaddr_get", unsafe {
            sys::rte_eth_macaddr_get(id, &mut mac)
        })?;
        let mut mtu = 0u16;
        // SAFETY: valid port id and out pointer.
        check("rte_eth_dev_get_mtu", unsafe {
            sys::rte_eth_dev_get_mtu(id, &mut mtu)
        })?;
        let info = PortInfo {
            id,
            name: name.to_owned(),
            driver,
            mac: mac.addr_bytes,
            mtu,
            socket,
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
            rx_descriptors: nrx,
            tx_descriptors: ntx,
            rss,
            capabilities,
            enabled,
            promiscuous,
        };
        tracing::info!(port = name, id, driver = %info.driver, mac = %format_mac(&info.mac), mtu,
            rx_queues = cfg.rx_queues, tx_queues = cfg.tx_queues, rss, promiscuous, "port started");
        let rx = (0..cfg.rx_queues)
            .map(|queue| {
                Some(RxQueue {
                    port: inner.clone(),
                    queue,
                })
            })
            .collect();
        let tx = (0..cfg.tx_queues)
            .map(|queue| {
                Some(TxQueue {
                    port: inner.clone(),
                    queue,
                })
            })
            .collect();
        Ok(Port {
            inner,
            info,
            rx,
            tx,
        })
    }

    /// What the port is.
    pub fn info(&self) -> &PortInfo {
        &self.info
    }

    /// DPDK port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// Takes receive queue `queue` (once).
    pub fn take_rx_queue(&mut self, queue: u16) -> Option<RxQueue> {
        self.rx.get_mut(usize::from(queue))?.take()
    }

    /// Takes transmit queue `queue` (once).
    pub fn take_tx_queue(&mut self, queue: u16) -> Option<TxQueue> {
        self.tx.get_mut(usize::from(queue))?.take()
    }

    /// Current link state (does not wait for autonegotiation).
    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid port id and out pointer.
        check("rte_eth_link_get_nowait", unsafe {
            sys::rte_eth_link_get_nowait(self.inner.id, &mut link)
        })?;
        Ok(LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: if link.link_speed == sys::RTE_ETH_SPEED_NUM_UNKNOWN {
                0
            } else {
                link.link_speed
            },
            full_duplex: link.link_duplex() != 0,
            autoneg: link.link_autoneg() != 0,
        })
    }

    /// Device counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid port id and out pointer.
        check("rte_eth_stats_get", unsafe {
            sys::rte_eth_stats_get(self.inner.id, &mut s)
        })?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }
}

/// Formats a MAC address as aa:bb:cc:dd:ee:ff.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One receive queue of a port, polled by exactly one lcore.
pub struct RxQueue {
    port: Arc<PortInner>,
    queue: u16,
}

impl RxQueue {
    /// Port id and queue index.
    pub fn id(&self) -> (u16, u16) {
        (self.port.id, self.queue)
    }

    /// Receives into the free capacity of `out` (never allocates); returns how many arrived.
    #[inline(always)]
    pub fn rx_burst<const N: usize>(&mut self, out: &mut ArrayVec<Mbuf, N>) -> usize {
        self.rx_burst_upto(out, N)
    }

    /// Receives at most `max` packets into the free capacity of `out`.
    #[inline(always)]
    pub fn rx_burst_upto<const N: usize>(
        &mut self,
        out: &mut ArrayVec<Mbuf, N>,
        max: usize,
    ) -> usize {
        let room = out.remaining_capacity().min(max).min(usize::from(u16::MAX));
        if room == 0 {
            return 0;
        }
        let start = out.len();
        // SAFETY: Mbuf is repr(transparent) over a non-null mbuf pointer, so the spare
        // capacity is `room` writable pointer slots; DPDK fills the first n with owned mbufs,
        // and only those become part of `out`. &mut self: one poller per queue.
        unsafe {
            let slots = out.as_mut_ptr().add(start) as *mut *mut sys::rte_mbuf;
            let n = sys::rte_eth_rx_burst(self.port.id, self.queue, slots, room as u16);
            out.set_len(start + usize::from(n));
            usize::from(n)
        }
    }
}

/// What a transmit with free-on-failure did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxOutcome {
    /// Handed to the device.
    pub sent: usize,
    /// Freed because the device queue was full.
    pub dropped: usize,
}

/// One transmit queue of a port, used by exactly one lcore.
pub struct TxQueue {
    port: Arc<PortInner>,
    queue: u16,
}

impl TxQueue {
    /// Port id and queue index.
    pub fn id(&self) -> (u16, u16) {
        (self.port.id, self.queue)
    }

    /// Transmits from the front of `pkts`; what the device did not take stays in `pkts`, in
    /// order, for the caller to retry or drop. Returns how many were sent.
    #[inline(always)]
    pub fn tx_burst<const N: usize>(&mut self, pkts: &mut ArrayVec<Mbuf, N>) -> usize {
        let n = pkts.len().min(usize::from(u16::MAX));
        if n == 0 {
            return 0;
        }
        // SAFETY: pkts holds n owned mbufs laid out as mbuf pointers (repr(transparent)).
        // The device takes ownership of the first `sent`; we move the rest to the front and
        // shorten the vector without dropping, so each mbuf has exactly one owner.
        unsafe {
            let base = pkts.as_mut_ptr();
            let sent = usize::from(sys::rte_eth_tx_burst(
                self.port.id,
                self.queue,
                base as *mut *mut sys::rte_mbuf,
                n as u16,
            ));
            let left = pkts.len() - sent;
            std::ptr::copy(base.add(sent), base, left);
            pkts.set_len(left);
            sent
        }
    }

    /// Transmits all of `pkts`, freeing what the device could not take.
    #[inline(always)]
    pub fn tx_burst_or_free<const N: usize>(&mut self, pkts: &mut ArrayVec<Mbuf, N>) -> TxOutcome {
        let sent = self.tx_burst(pkts);
        let dropped = pkts.len();
        pkts.clear();
        TxOutcome { sent, dropped }
    }

    /// Transmits one packet; gives it back if the queue is full.
    pub fn tx_one(&mut self, pkt: Mbuf) -> Result<(), Mbuf> {
        let mut raw = pkt.into_raw().as_ptr();
        // SAFETY: raw is an owned mbuf; on success the device owns it, otherwise we take it back.
        let sent = unsafe { sys::rte_eth_tx_burst(self.port.id, self.queue, &mut raw, 1) };
        if sent == 1 {
            Ok(())
        } else {
            // SAFETY: not sent, so still ours; raw came from a NonNull.
            Err(unsafe { Mbuf::from_raw(std::ptr::NonNull::new_unchecked(raw)) })
        }
    }
}
