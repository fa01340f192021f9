//! What the metrics endpoint exports ([`crate::ctl::metrics`]): the workers' counters by reason,
//! their per-burst latency, the ports' counters, the tables' sizes, the control core's and
//! control plane's counters, Map-Server registrations and the IPsec peers' state.

use crate::config::Config;
use crate::ctl::metrics::Exposition;
use crate::dataplane::Reason;

use super::Running;

/// The exposition of `running` now.
pub(super) fn exposition(cfg: &Config, running: &Running, now_ms: u64) -> String {
    let mut e = Exposition::default();
    let name = cfg.appliance.name.as_str();
    let role = cfg.role().to_string();
    e.family(
        "pxtr_info",
        "gauge",
        "The appliance: name, role and version (always 1).",
    )
    .sample(
        "pxtr_info",
        &[
            ("name", name),
            ("role", &role),
            ("version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
    e.family(
        "pxtr_uptime_seconds",
        "gauge",
        "Seconds since the control core started.",
    )
    .sample("pxtr_uptime_seconds", &[], now_ms as f64 / 1000.0);

    for (i, (join, c)) in running.workers.iter().enumerate() {
        let s = c.snapshot();
        let lcore = join.lcore().to_string();
        let w = &cfg.lcores.workers[i];
        let queue = w.queue.to_string();
        let labels = [
            ("lcore", lcore.as_str()),
            ("port", w.port.as_str()),
            ("queue", queue.as_str()),
        ];
        e.family(
            "pxtr_worker_packets_total",
            "counter",
            "Packets a worker handled, by reason (rx, tx, encap, decap, punt_*, drop_*, ...).",
        );
        e.family(
            "pxtr_worker_bytes_total",
            "counter",
            "Bytes a worker received (direction rx) and sent (direction tx).",
        );
        for r in Reason::ALL {
            let n = s.counts.get(*r) as f64;
            match *r {
                Reason::RxBytes | Reason::TxBytes => {
                    let dir = if *r == Reason::RxBytes { "rx" } else { "tx" };
                    e.sample(
                        "pxtr_worker_bytes_total",
                        &[labels[0], labels[1], labels[2], ("direction", dir)],
                        n,
                    );
                }
                _ => {
                    e.sample(
                        "pxtr_worker_packets_total",
                        &[labels[0], labels[1], labels[2], ("reason", r.name())],
                        n,
                    );
                }
            }
        }
        e.family(
            "pxtr_worker_bursts_total",
            "counter",
            "Non-empty receive bursts a worker processed.",
        )
        .sample("pxtr_worker_bursts_total", &labels, s.bursts as f64);
        e.family(
            "pxtr_worker_idle_sleeps_total",
            "counter",
            "Times a worker slept after empty polls (adaptive idle).",
        )
        .sample(
            "pxtr_worker_idle_sleeps_total",
            &labels,
            s.idle_sleeps as f64,
        );
        let lat = c.latency();
        e.family(
            "pxtr_worker_burst_latency_seconds",
            "summary",
            "Processing time of a burst, receive to transmit.",
        );
        for q in [0.5, 0.99, 0.999] {
            let qs = q.to_string();
            e.sample(
                "pxtr_worker_burst_latency_seconds",
                &[labels[0], labels[1], labels[2], ("quantile", &qs)],
                lat.value_at_quantile(q) as f64 / 1e9,
            );
        }
        e.sample(
            "pxtr_worker_burst_latency_seconds_sum",
            &labels,
            lat.mean() * lat.len() as f64 / 1e9,
        );
        e.sample(
            "pxtr_worker_burst_latency_seconds_count",
            &labels,
            lat.len() as f64,
        );
    }

    for (name, port) in &running.ports {
        let Ok(s) = port.stats() else { continue };
        let l = [("port", name.as_str())];
        for (metric, help, v) in [
            (
                "pxtr_port_rx_packets_total",
                "Packets the NIC received.",
                s.rx_packets,
            ),
            (
                "pxtr_port_tx_packets_total",
                "Packets the NIC sent.",
                s.tx_packets,
            ),
            (
                "pxtr_port_rx_missed_total",
                "Packets the NIC dropped for want of receive descriptors.",
                s.rx_missed,
            ),
            (
                "pxtr_port_rx_errors_total",
                "Erroneous packets received.",
                s.rx_errors,
            ),
            (
                "pxtr_port_tx_errors_total",
                "Packets that failed to transmit.",
                s.tx_errors,
            ),
            (
                "pxtr_port_rx_nombuf_total",
                "Receive failures for want of packet buffers.",
                s.rx_nombuf,
            ),
        ] {
            e.family(metric, "counter", help)
                .sample(metric, &l, v as f64);
        }
    }

    let c = &running.control;
    for (metric, help, v) in [
        (
            "pxtr_map_cache_entries",
            "Map-cache entries.",
            c.cache.len() as f64,
        ),
        (
            "pxtr_map_cache_capacity",
            "Map-cache entries at most.",
            c.cache.capacity() as f64,
        ),
        (
            "pxtr_neighbors",
            "Neighbour table entries.",
            c.neighbors.len() as f64,
        ),
    ] {
        e.family(metric, "gauge", help).sample(metric, &[], v);
    }
    let cs = &c.stats;
    e.family(
        "pxtr_control_total",
        "counter",
        "What the control core handled, by counter (punts, misses, icmp_sent, stalls, ...).",
    );
    for (k, v) in cs.counters() {
        e.sample("pxtr_control_total", &[("counter", k)], v as f64);
    }
    e.family(
        "pxtr_control_longest_stall_seconds",
        "gauge",
        "The longest pause of the control loop so far.",
    )
    .sample(
        "pxtr_control_longest_stall_seconds",
        &[],
        cs.longest_stall_ms as f64 / 1000.0,
    );
    e.family(
        "pxtr_control_plane_total",
        "counter",
        "The LISP control plane's counters (ITR, ETR, Map-Server, hosts), by counter.",
    );
    for (k, v) in c.plane.counters() {
        e.sample("pxtr_control_plane_total", &[("counter", k)], v as f64);
    }
    if let Some(ms) = c.plane.map_server.as_ref() {
        e.family(
            "pxtr_map_server_registrations",
            "gauge",
            "EID prefixes registered with the embedded Map-Server.",
        )
        .sample(
            "pxtr_map_server_registrations",
            &[],
            ms.registration_count() as f64,
        );
    }
    if let Some(itr) = c.plane.itr.as_ref() {
        e.family(
            "pxtr_itr_pending_resolutions",
            "gauge",
            "EIDs being resolved (Map-Requests outstanding).",
        )
        .sample("pxtr_itr_pending_resolutions", &[], itr.pending() as f64);
    }
    for p in &cfg.ipsec.peers {
        let s = c.ipsec_state(&p.name);
        let l = [("peer", p.name.as_str())];
        e.family(
            "pxtr_ipsec_peer_up",
            "gauge",
            "1 while a child SA to the IPsec peer is up and its RLOCs are reachable.",
        )
        .sample(
            "pxtr_ipsec_peer_up",
            &l,
            if s.is_some_and(|s| s.up) { 1.0 } else { 0.0 },
        );
        e.family(
            "pxtr_ipsec_peer_changes_total",
            "counter",
            "Up/down changes of the IPsec peer.",
        )
        .sample(
            "pxtr_ipsec_peer_changes_total",
            &l,
            s.map_or(0, |s| s.changes) as f64,
        );
    }
    if let Some(ctl) = running.ctl.as_ref() {
        let (answered, dropped) = ctl.counts();
        e.family(
            "pxtr_ctl_requests_total",
            "counter",
            "pxtr ctl requests, answered or dropped (timeout, broken).",
        )
        .sample(
            "pxtr_ctl_requests_total",
            &[("outcome", "answered")],
            answered as f64,
        )
        .sample(
            "pxtr_ctl_requests_total",
            &[("outcome", "dropped")],
            dropped as f64,
        );
    }
    e.finish()
}
