//! `pxtr run`: brings EAL, the packet pool, the ports and the worker lcores up from a config,
//! runs the control loop on the main lcore until SIGINT/SIGTERM (or a set duration), then stops
//! workers and ports and checks that every mbuf came back.

mod control;
mod ctl;
mod metrics;
mod reload;
pub mod tap;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;

use crate::config::{Config, MobilityMode, PortRole, Role, StaticAction, StaticMapping};
use crate::dataplane::{Functions, Pipeline, Plan, PortPlan, PreparedPlan, Reason, WorkerCounters};
use crate::dpdk::{
    self, mbuf_ring, DpdkError, Eal, LcoreJoin, Mempool, MempoolConfig, Port, PortConfig, StopFlag,
};
use crate::mapcache::{
    map_cache, neighbor_table, Locator, MapCacheConfig, MapCacheError, MapCacheWriter, Mapping,
    NegativeAction, Neighbor, NeighborWriter,
};

pub use control::ControlStats;
pub use reload::{LogFilterHook, ReloadSource};
pub use worker::WorkerReport;

/// Why the appliance could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("DPDK: {0}")]
    Dpdk(#[from] DpdkError),
    #[error("port {port} ({device}): {source}")]
    Port {
        port: String,
        device: String,
        #[source]
        source: DpdkError,
    },
    #[error("port {port}: cannot set up the kernel side of tap {iface}: {reason}")]
    KernelSide {
        port: String,
        iface: String,
        reason: String,
    },
    #[error("{0}")]
    Ctl(#[from] crate::ctl::ServerError),
    #[error("control.metrics_listen {addr}: cannot listen: {source}")]
    Metrics {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("worker on lcore {lcore}: {source}")]
    Worker {
        lcore: u32,
        #[source]
        source: DpdkError,
    },
    #[error("{0}")]
    Tables(#[from] MapCacheError),
    #[error("map_server.listen: cannot take LISP control messages on {addr}: {source}")]
    ControlSocket {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start thread {name}: {source}")]
    Thread {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Ipsec(#[from] crate::ipsec::kernel::Error),
    #[error("cannot install the {signal} handler: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop by itself after this long (labs, demos, tests); None runs until a signal.
    pub duration: Option<Duration>,
    /// Where SIGHUP and `pxtr ctl reload` re-read the configuration from.
    pub reload: ReloadSource,
}

/// What a run did, reported when it ends.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub workers: Vec<WorkerReport>,
    /// Mbufs still out of the pool after everything stopped (0 is the only good answer).
    pub mbufs_leaked: u32,
    pub mbufs_total: u32,
    /// What the control core handled.
    pub control: ControlStats,
}

// Field order is drop order: workers are joined before the ports they poll are closed.
struct Running {
    workers: Vec<(LcoreJoin<WorkerReport>, Arc<WorkerCounters>)>,
    control: control::Control,
    ports: Vec<(String, Port)>,
    stop: StopFlag,
    /// The thread that drives strongSwan (when IPsec peers are configured), and where a
    /// reload sends it the new list of peers.
    ipsec: Option<std::thread::JoinHandle<()>>,
    ipsec_peers: Option<crossbeam::channel::Sender<Vec<crate::config::IpsecPeer>>>,
    /// `pxtr ctl`'s socket (served by the control loop).
    ctl: Option<crate::ctl::Server>,
    /// The Prometheus endpoint (served by the control loop).
    metrics: Option<crate::ctl::metrics::MetricsServer>,
    /// The plan the workers run (or are about to take), each worker's queue of new plans,
    /// and replaced plans some worker may still hold (freed here once none does).
    plan: PreparedPlan,
    plans: Vec<Arc<ArrayQueue<PreparedPlan>>>,
    retired: Vec<PreparedPlan>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // On every way out (a failed start included) workers are told to stop before their
        // handles are dropped, since dropping a handle waits for its lcore.
        self.stop.stop();
    }
}

/// Runs the appliance described by `cfg` until a signal or `opts.duration`.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<RunReport, AppError> {
    let stop = StopFlag::new();
    let reload = Arc::new(AtomicBool::new(false));
    for (sig, name) in [
        (signal_hook::consts::SIGINT, "SIGINT"),
        (signal_hook::consts::SIGTERM, "SIGTERM"),
    ] {
        // A second signal while shutting down exits at once (exit code 130).
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.as_atomic().clone())
            .map_err(|source| AppError::Signal {
                signal: name,
                source,
            })?;
        signal_hook::flag::register(sig, stop.as_atomic().clone()).map_err(|source| {
            AppError::Signal {
                signal: name,
                source,
            }
        })?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone()).map_err(|source| {
        AppError::Signal {
            signal: "SIGHUP",
            source,
        }
    })?;

    // The ESP this host gives the IPsec tunnels, before anything starts: probed for mode =
    // "auto"; mode = "xfrm" on a kernel that cannot do it stops here, with the reason.
    let tunnels = if cfg.ipsec.peers.is_empty() {
        None
    } else {
        Some(crate::ipsec::kernel::Tunnels::prepare(
            &cfg.ipsec,
            crate::ipsec::kernel::Ip::host(),
        )?)
    };

    let eal_args = cfg.eal_args();
    tracing::info!(appliance = %cfg.appliance.name, role = %cfg.role(), args = %eal_args.join(" "), "starting DPDK EAL");
    let eal = Eal::init(&eal_args)?;
    let pool = Mempool::new(
        &eal,
        "pxtr_mbufs",
        MempoolConfig {
            mbufs: cfg.mempool.mbufs,
            cache: cfg.mempool.cache,
            data_room: cfg.mempool.data_room,
            socket: None,
        },
    )?;
    let mbufs_total = pool.size();
    let (report, control) = {
        let mut running = start(cfg, &eal, &pool, &stop, tunnels)?;
        control_loop(cfg.clone(), opts, &stop, &reload, &mut running);
        let r = shutdown(&stop, &mut running);
        (r, running.control.stats.clone())
    };
    // Ports are closed and workers joined: every mbuf must be back.
    let leaked = pool.in_use();
    if leaked == 0 {
        tracing::info!(mbufs = mbufs_total, "all mbufs back in the pool");
    } else {
        tracing::error!(
            leaked,
            total = mbufs_total,
            "mbufs not returned to the pool"
        );
    }
    Ok(RunReport {
        workers: report?,
        mbufs_leaked: leaked,
        mbufs_total,
        control,
    })
}

fn start(
    cfg: &Config,
    eal: &Eal,
    pool: &Mempool,
    stop: &StopFlag,
    tunnels: Option<crate::ipsec::kernel::Tunnels>,
) -> Result<Running, AppError> {
    let tx_queues = cfg.tx_queues_per_port();
    let mut ports = Vec::new();
    for p in &cfg.ports {
        let pc = PortConfig {
            rx_queues: p.rx_queues,
            tx_queues,
            rx_descriptors: p.rx_descriptors,
            tx_descriptors: p.tx_descriptors,
            mtu: Some(p.mtu),
            promiscuous: p.promiscuous(),
            rss: true,
        };
        let port = Port::open(eal, &p.device, &pc, pool).map_err(|source| AppError::Port {
            port: p.name.clone(),
            device: p.device.clone(),
            source,
        })?;
        if let Some(iface) = crate::app::tap::tap_iface(&p.device) {
            crate::app::tap::configure(iface, port.info().mac, &p.kernel_addresses).map_err(
                |reason| AppError::KernelSide {
                    port: p.name.clone(),
                    iface: iface.to_string(),
                    reason,
                },
            )?;
            tracing::info!(port = %p.name, %iface, addresses = ?p.kernel_addresses, "kernel side of the tap set up");
        }
        match port.link() {
            Ok(l) => {
                tracing::info!(port = %p.name, role = ?p.role.unwrap_or(PortRole::Eid), up = l.up, speed_mbps = l.speed_mbps, "link")
            }
            Err(e) => tracing::warn!(port = %p.name, error = %e, "link state unknown"),
        }
        ports.push((p.name.clone(), port));
    }
    let port_ids: Vec<(u16, [u8; 6])> = ports.iter().map(|(_, p)| (p.id(), p.info().mac)).collect();
    let prepared = PreparedPlan::new(Arc::new(plan(cfg, &port_ids)));
    let plan = Arc::clone(prepared.plan());
    let readers = cfg.lcores.workers.len().max(1);
    let cache = map_cache(MapCacheConfig {
        capacity: cfg.lisp.map_cache_capacity,
        max_readers: readers,
        ..MapCacheConfig::default()
    })?;
    let mut cache = cache;
    let mut neighbors = neighbor_table(NEIGHBORS, readers)?;
    install_static(cfg, &port_ids, &mut cache, &mut neighbors)?;
    let worker_count = cfg.lcores.workers.len();
    // The control core owns the last TX queue of every port.
    let control_txs: Vec<_> = ports
        .iter_mut()
        .map(|(_, p)| {
            p.take_tx_queue(worker_count as u16)
                .expect("tx_queues_per_port reserves one for the control core")
        })
        .collect();
    let mut jobs = Vec::new();
    let mut punt_rings = Vec::new();
    let mut event_queues = Vec::new();
    let mut plan_queues = Vec::new();
    for (i, w) in cfg.lcores.workers.iter().enumerate() {
        let lcore = w.lcore.unwrap_or_default();
        let in_port = ports
            .iter()
            .position(|(n, _)| *n == w.port)
            .expect("validated: every worker names a configured port");
        let mut rxs = vec![ports[in_port]
            .1
            .take_rx_queue(w.queue)
            .expect("validated: each (port, queue) has one worker")];
        // Queues the driver added beyond the configured ones (net_tap pairs RX with TX
        // queues) go to the port's workers in turn.
        let port_cfg = &cfg.ports[in_port];
        let of_port: Vec<usize> = cfg
            .lcores
            .workers
            .iter()
            .enumerate()
            .filter(|(_, o)| o.port == w.port)
            .map(|(j, _)| j)
            .collect();
        let nth = of_port.iter().position(|j| *j == i).unwrap_or(0);
        let total = ports[in_port].1.info().rx_queues;
        for extra in port_cfg.rx_queues..total {
            if usize::from(extra - port_cfg.rx_queues) % of_port.len().max(1) == nth {
                if let Some(q) = ports[in_port].1.take_rx_queue(extra) {
                    rxs.push(q);
                }
            }
        }
        // Each worker owns TX queue i on every port.
        let txs: Vec<_> = ports
            .iter_mut()
            .map(|(_, p)| {
                p.take_tx_queue(i as u16)
                    .expect("tx_queues_per_port covers every worker")
            })
            .collect();
        let (producer, consumer) =
            mbuf_ring(eal, &format!("pxtr_punt_{i}"), cfg.dataplane.punt_ring_size)?;
        let events = Arc::new(ArrayQueue::new(EVENT_QUEUE));
        punt_rings.push(consumer);
        event_queues.push(events.clone());
        let counters = Arc::new(WorkerCounters::default());
        let plans = Arc::new(ArrayQueue::new(PLAN_QUEUE));
        plan_queues.push(plans.clone());
        jobs.push((
            lcore,
            w,
            worker::Worker {
                lcore,
                in_port,
                rxs,
                txs,
                pipeline: Pipeline::with_prepared(
                    prepared.clone(),
                    cache.reader()?,
                    neighbors.reader()?,
                ),
                punts: producer,
                events,
                counters,
                stop: stop.clone(),
                burst: usize::from(cfg.dataplane.burst),
                idle: cfg.dataplane.idle,
                idle_max_sleep: Duration::from_micros(u64::from(cfg.dataplane.idle_max_sleep_us)),
                plans: Some(plans),
            },
        ));
    }
    let mut running = Running {
        control: control::Control::new(
            plan.clone(),
            crate::control::node::ControlPlane::new(cfg, &plan, crate::control::Nonces::random()),
            pool.clone(),
            cache,
            neighbors,
            punt_rings,
            event_queues,
            control_txs,
        ),
        ports,
        workers: Vec::new(),
        stop: stop.clone(),
        ipsec: None,
        ipsec_peers: None,
        ctl: None,
        metrics: None,
        plan: prepared,
        plans: plan_queues,
        retired: Vec::new(),
    };
    if !cfg.control.metrics_listen.is_empty() {
        // Validated: an address and port.
        let addr: std::net::SocketAddr =
            cfg.control
                .metrics_listen
                .parse()
                .map_err(|_| AppError::Metrics {
                    addr: cfg.control.metrics_listen.clone(),
                    source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
                })?;
        let m =
            crate::ctl::metrics::MetricsServer::bind(addr).map_err(|source| AppError::Metrics {
                addr: cfg.control.metrics_listen.clone(),
                source,
            })?;
        tracing::info!(addr = %m.addr, "metrics at http://{}/metrics", m.addr);
        running.metrics = Some(m);
    }
    if !cfg.control.socket.is_empty() {
        let server = crate::ctl::Server::bind(std::path::Path::new(&cfg.control.socket))?;
        tracing::info!(socket = %cfg.control.socket, "pxtr ctl answers here");
        running.ctl = Some(server);
    }
    if running.ports.is_empty() && cfg.map_server.enabled {
        // No DPDK port (role ms-mr): the Map-Server/Map-Resolver listens on kernel sockets.
        let addrs = if cfg.map_server.listen.is_empty() {
            vec![std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)]
        } else {
            cfg.map_server.listen.clone()
        };
        for a in addrs {
            let addr = std::net::SocketAddr::new(a, cfg.map_server.listen_port);
            running
                .control
                .listen_udp(addr)
                .map_err(|source| AppError::ControlSocket { addr, source })?;
            tracing::info!(%addr, "Map-Server/Map-Resolver listening (kernel UDP)");
        }
    }
    if let Some(tunnels) = tunnels {
        let (tx, rx) = crossbeam::channel::unbounded();
        let (peers_tx, peers_rx) = crossbeam::channel::unbounded();
        running
            .control
            .follow_ipsec(rx, ipsec_ranges(&cfg.ipsec.peers), 0);
        running.ipsec_peers = Some(peers_tx);
        let (ipsec, st) = (cfg.ipsec.clone(), stop.clone());
        // Our side of the tunnel: the subnet of the RLOC port our RLOC is on (the host's
        // address there is inside it), else the RLOC alone.
        let local_ts = cfg.lisp.rlocs.first().map(|r| {
            cfg.ports
                .iter()
                .flat_map(|p| p.addresses.iter())
                .find(|n| n.contains(r))
                .map_or(ipnet::IpNet::from(*r), |n| n.trunc())
        });
        let h = std::thread::Builder::new()
            .name("pxtr-ipsec".into())
            .spawn(move || crate::ipsec::manage(ipsec, tunnels, local_ts, st, tx, peers_rx))
            .map_err(|source| AppError::Thread {
                name: "pxtr-ipsec",
                source,
            })?;
        running.ipsec = Some(h);
    }
    running.control.static_neighbors = cfg
        .ports
        .iter()
        .flat_map(|p| p.neighbors.iter().map(|n| n.ip))
        .collect();
    for (lcore, w, job) in jobs {
        let counters = job.counters.clone();
        let handle = dpdk::launch(eal, lcore, move || job.run())
            .map_err(|source| AppError::Worker { lcore, source })?;
        tracing::info!(lcore, port = %w.port, queue = w.queue, "worker started");
        running.workers.push((handle, counters));
    }
    if running.workers.is_empty() {
        tracing::info!(
            "no worker lcores configured (role {}): control core only",
            cfg.role()
        );
    }
    Ok(running)
}

/// Each IPsec peer's name and RLOC ranges, what the control core follows.
fn ipsec_ranges(peers: &[crate::config::IpsecPeer]) -> Vec<(String, Vec<ipnet::IpNet>)> {
    peers
        .iter()
        .map(|p| (p.name.clone(), p.remote_rlocs.clone()))
        .collect()
}

/// Installs `lisp.static_mappings` and `ports[].neighbors` (validated before). `ports` are
/// the configured ports' DPDK ids and MACs, in config order.
pub fn install_static(
    cfg: &Config,
    ports: &[(u16, [u8; 6])],
    cache: &mut MapCacheWriter,
    neighbors: &mut NeighborWriter,
) -> Result<(), AppError> {
    for m in &cfg.lisp.static_mappings {
        cache.insert(m.iid, m.prefix, static_mapping(m), 0)?;
        tracing::info!(iid = m.iid, prefix = %m.prefix, rlocs = m.rlocs.len(), "static mapping");
    }
    for (p, (port, _)) in cfg.ports.iter().zip(ports) {
        for n in &p.neighbors {
            let mac = n.mac_bytes().expect("validated: a MAC address");
            neighbors.insert(n.ip, Neighbor { mac, port: *port })?;
            tracing::info!(port = %p.name, ip = %n.ip, mac = %n.mac, "static neighbour");
        }
    }
    Ok(())
}

/// The map-cache entry of a static mapping.
fn static_mapping(m: &StaticMapping) -> Mapping {
    let mut mapping = Mapping::default();
    for r in &m.rlocs {
        mapping.locators.push(Locator {
            address: r.address,
            priority: r.priority,
            weight: r.weight,
            reachable: true,
        });
    }
    mapping.action = match m.action.unwrap_or(StaticAction::NativeForward) {
        StaticAction::NativeForward => NegativeAction::NativelyForward,
        StaticAction::Drop => NegativeAction::Drop,
        StaticAction::SendMapRequest => NegativeAction::SendMapRequest,
    };
    mapping
}

/// Plans waiting for a worker (a newer one replaces one not taken yet).
const PLAN_QUEUE: usize = 2;
/// Neighbour-table capacity (hosts on the EID subnets and next hops).
const NEIGHBORS: u32 = 65_536;
/// Each worker's queue of reports to the control core.
const EVENT_QUEUE: usize = 4096;

/// The data-plane view of a (validated) configuration and its ports' DPDK ids and MACs, in
/// config order: what `pxtr run` gives its workers, and what tests build pipelines from.
pub fn plan(cfg: &Config, ports: &[(u16, [u8; 6])]) -> Plan {
    let role = cfg.role();
    let functions = match role {
        Role::Pxtr => Functions {
            itr: true,
            etr: true,
            pitr: true,
            petr: true,
        },
        Role::Xtr => Functions {
            itr: true,
            etr: true,
            pitr: false,
            petr: false,
        },
        Role::MsMr => Functions {
            itr: false,
            etr: false,
            pitr: false,
            petr: false,
        },
    };
    Plan {
        ports: cfg
            .ports
            .iter()
            .zip(ports)
            .map(|(p, (dpdk_port, mac))| PortPlan {
                name: p.name.clone(),
                role: p.role.unwrap_or(PortRole::Eid),
                dpdk_port: *dpdk_port,
                mac: *mac,
                addresses: p.addresses.clone(),
                mtu: p.mtu,
                gateway: p.gateway,
                iid: p.iid,
                dynamic_eids: cfg
                    .lisp
                    .dynamic_eids
                    .iter()
                    .filter(|d| d.port == p.name)
                    .filter_map(|d| d.prefix)
                    .collect(),
                extended: cfg
                    .lisp
                    .dynamic_eids
                    .iter()
                    .filter(|d| d.port == p.name && d.mode == MobilityMode::ExtendedSubnet)
                    .filter_map(|d| d.prefix)
                    .collect(),
            })
            .collect(),
        rlocs: cfg.lisp.rlocs.clone(),
        petrs: cfg.lisp.petrs.clone(),
        functions,
        fragment: cfg.dataplane.fragment,
        miss_policy: cfg.dataplane.miss_policy,
        hold_capacity: cfg.dataplane.hold_packets as usize,
        hold_timeout_ms: u64::from(cfg.dataplane.hold_timeout_ms),
        miss_interval_ms: 1000,
        miss_reports_per_sec: cfg.dataplane.miss_reports_per_sec,
    }
}

fn control_loop(
    mut cfg: Config,
    opts: &RunOptions,
    stop: &StopFlag,
    reload: &AtomicBool,
    running: &mut Running,
) {
    let started = Instant::now();
    let stats_interval =
        |cfg: &Config| Duration::from_secs(u64::from(cfg.control.stats_interval_s));
    let mut interval = stats_interval(&cfg);
    let mut next_stats = started + interval;
    tracing::info!("running; Ctrl-C or SIGTERM stops");
    let mut last_pass = Instant::now();
    let mut rates = ctl::Rates::default();
    while !stop.is_stopped() {
        // The workers never wait for this loop, so a stall costs signalling (resolutions,
        // registrations, ARP answers, probes) but not the forwarding of cached flows; it is
        // said, since timers that fire late afterwards otherwise look like lost peers.
        let gap = last_pass.elapsed();
        last_pass = Instant::now();
        if gap >= Duration::from_millis(control::STALL_MS) {
            let ms = gap.as_millis() as u64;
            let st = &mut running.control.stats;
            st.stalls += 1;
            st.longest_stall_ms = st.longest_stall_ms.max(ms);
            tracing::warn!(
                stalled_ms = ms,
                "the control core did not run for {ms} ms; the workers forwarded from the map-cache meanwhile"
            );
        }
        let now_ms = started.elapsed().as_millis() as u64;
        let mut busy = running.control.poll(now_ms);
        rates.sample(running);
        if let Some(mut server) = running.ctl.take() {
            busy |= server.poll(|req| match req {
                crate::ctl::Request::Reload => {
                    tracing::info!("pxtr ctl reload: reloading the configuration");
                    let r = reload::reload(&opts.reload, &mut cfg, running, now_ms);
                    if let Err(e) = &r {
                        tracing::error!("reload refused: {e}");
                    }
                    r
                }
                _ => ctl::answer(&cfg, running, &rates, req, now_ms),
            });
            running.ctl = Some(server);
        }
        if let Some(mut m) = running.metrics.take() {
            busy |= m.poll(|| metrics::exposition(&cfg, running, now_ms));
            running.metrics = Some(m);
        }
        reload::reap(running);
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
        let now = Instant::now();
        if opts.duration.is_some_and(|d| now - started >= d) {
            tracing::info!("run duration reached");
            break;
        }
        if reload.swap(false, Ordering::AcqRel) {
            reload::on_sighup(&opts.reload, &mut cfg, running, now_ms);
        }
        if stats_interval(&cfg) != interval {
            interval = stats_interval(&cfg);
            next_stats = now + interval;
        }
        if !interval.is_zero() && now >= next_stats {
            next_stats = now + interval;
            log_stats(running);
        }
        for (join, _) in &running.workers {
            if join.is_finished() {
                tracing::error!(
                    lcore = join.lcore(),
                    "a worker stopped on its own: shutting down"
                );
                stop.stop();
            }
        }
    }
}

fn log_stats(running: &Running) {
    for (join, c) in &running.workers {
        let s = c.snapshot();
        let counts: Vec<String> = s
            .counts
            .nonzero()
            .map(|(r, n)| format!("{}={n}", r.name()))
            .collect();
        tracing::info!(
            lcore = join.lcore(),
            bursts = s.bursts,
            drops = s.counts.drops(),
            counts = %counts.join(" "),
            "worker"
        );
    }
    let cs = &running.control.stats;
    let counts: Vec<String> = cs
        .counters()
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    tracing::info!(
        map_cache = running.control.cache.len(),
        neighbors = running.control.neighbors.len(),
        counters = %counts.join(" "),
        "control"
    );
    let plane: Vec<String> = running
        .control
        .plane
        .counters()
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    if !plane.is_empty() {
        tracing::info!(counters = %plane.join(" "), "control plane");
    }
    for (name, port) in &running.ports {
        if let Ok(s) = port.stats() {
            tracing::info!(port = %name, rx = s.rx_packets, tx = s.tx_packets, rx_missed = s.rx_missed,
                rx_errors = s.rx_errors, tx_errors = s.tx_errors, rx_nombuf = s.rx_nombuf, "port");
        }
    }
}

fn shutdown(stop: &StopFlag, running: &mut Running) -> Result<Vec<WorkerReport>, AppError> {
    tracing::info!("stopping workers");
    stop.stop();
    if let Some(h) = running.ipsec.take() {
        let _ = h.join();
    }
    let mut reports = Vec::new();
    let mut first_err = None;
    for (join, _) in running.workers.drain(..) {
        let lcore = join.lcore();
        match join.join() {
            Ok(r) => {
                tracing::info!(
                    lcore,
                    rx = r.counters.counts.get(Reason::Rx),
                    tx = r.counters.counts.get(Reason::Tx),
                    drops = r.counters.counts.drops(),
                    "worker stopped"
                );
                reports.push(r);
            }
            Err(source) => {
                tracing::error!(lcore, error = %source, "worker failed");
                first_err.get_or_insert(AppError::Worker { lcore, source });
            }
        }
    }
    log_stats(running);
    for (name, port) in running.ports.drain(..) {
        // Workers are joined, so this drops the last handle: drain, stop, close.
        drop(port);
        tracing::info!(port = %name, "port closed");
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(reports),
    }
}
