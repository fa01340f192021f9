//! The control core's answers to `pxtr ctl` (see [`crate::ctl`]): JSON documents built from
//! what the control core holds — the map-cache and neighbour tables it writes, the control
//! plane's machines, the workers' counters, the IPsec peers' state.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};

use crate::config::Config;
use crate::ctl::{Request, MAX_LISTED};
use crate::dataplane::{Counts, Reason};
use crate::mapcache::NegativeAction;

use super::Running;

/// The workers' counters sampled about once a second, for rates.
#[derive(Default)]
pub(super) struct Rates {
    /// (when, each worker's counts): the two latest samples.
    samples: Vec<(Instant, Vec<Counts>)>,
}

impl Rates {
    /// Takes a sample when the last one is a second old.
    pub fn sample(&mut self, running: &Running) {
        let now = Instant::now();
        if self
            .samples
            .last()
            .is_some_and(|(t, _)| now.duration_since(*t).as_millis() < 1000)
        {
            return;
        }
        let counts = running
            .workers
            .iter()
            .map(|(_, c)| c.snapshot().counts)
            .collect();
        self.samples.push((now, counts));
        if self.samples.len() > 2 {
            self.samples.remove(0);
        }
    }

    /// Per second for worker `w` and `reason` between the two latest samples.
    fn per_sec(&self, w: usize, reason: Reason) -> Option<f64> {
        let [(t0, a), (t1, b)] = self.samples.as_slice() else {
            return None;
        };
        let dt = t1.duration_since(*t0).as_secs_f64();
        let (a, b) = (a.get(w)?, b.get(w)?);
        (dt > 0.0).then(|| b.get(reason).saturating_sub(a.get(reason)) as f64 / dt)
    }
}

fn secs(ms: u64) -> u64 {
    ms / 1000
}

fn action(a: NegativeAction) -> &'static str {
    match a {
        NegativeAction::NativelyForward => "natively-forward",
        NegativeAction::Drop => "drop",
        NegativeAction::SendMapRequest => "send-map-request",
    }
}

/// One locator as `pxtr ctl` shows it.
fn locator(address: String, priority: u8, weight: u8, up: bool) -> Value {
    json!({
        "address": address,
        "priority": priority,
        "weight": weight,
        "state": if up { "up" } else { "down" },
    })
}

fn locators(ls: &[crate::mapcache::Locator]) -> Value {
    Value::Array(
        ls.iter()
            .map(|l| locator(l.address.to_string(), l.priority, l.weight, l.reachable))
            .collect(),
    )
}

/// The first `n` items of `items` in `key` order, and how many there were: one pass, holding
/// at most 2n items (a million map-cache entries are not copied and sorted on the control core).
fn first_in_order<T, K: Ord>(
    items: impl Iterator<Item = T>,
    n: usize,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, usize) {
    let mut rows = Vec::new();
    let mut total = 0;
    for item in items {
        total += 1;
        rows.push(item);
        if rows.len() >= 2 * n.max(1) {
            rows.select_nth_unstable_by_key(n.max(1) - 1, &key);
            rows.truncate(n);
        }
    }
    rows.sort_by_key(&key);
    rows.truncate(n);
    (rows, total)
}

/// Answers `req`. `now_ms` is the control core's clock (the one the tables were written with).
pub(super) fn answer(
    cfg: &Config,
    running: &mut Running,
    rates: &Rates,
    req: &Request,
    now_ms: u64,
) -> Result<Value, String> {
    let plane_port = |i: usize| {
        running
            .control
            .plan
            .ports
            .get(i)
            .map_or_else(|| format!("#{i}"), |p| p.name.clone())
    };
    match req {
        Request::ShowMapCache { filter } => {
            let c = &running.control.cache;
            let (rows, total) = first_in_order(
                c.entries()
                    .filter(|e| crate::control::prefix_overlaps(*filter, &e.prefix)),
                MAX_LISTED,
                |e| (e.iid, e.prefix.addr(), e.prefix.prefix_len()),
            );
            let entries: Vec<Value> = rows
                .iter()
                .map(|e| {
                    json!({
                        "iid": e.iid,
                        "prefix": e.prefix.to_string(),
                        "uptime_s": secs(now_ms.saturating_sub(e.installed_ms)),
                        "expires_in_s": e.expires_ms.map(|x| secs(x.saturating_sub(now_ms))),
                        "hits": e.usage.hits,
                        "action": e.mapping.locators.is_empty().then(|| action(e.mapping.action)),
                        "locators": locators(&e.mapping.locators),
                    })
                })
                .collect();
            Ok(json!({
                "entries": c.len(),
                "matching": total,
                "listed": entries.len(),
                "capacity": c.capacity(),
                "map_cache": entries,
            }))
        }
        Request::ShowSite => {
            let Some(ms) = running.control.plane.map_server.as_ref() else {
                return Err("no Map-Server here (map_server.enabled is false)".into());
            };
            let mut by_site: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
            for r in ms.registrations() {
                let listed = by_site.entry(r.site).or_default();
                if listed.len() >= MAX_LISTED {
                    continue;
                }
                listed.push(json!({
                    "iid": r.iid,
                    "prefix": r.prefix.to_string(),
                    "registrant": format!("{}:{}", r.registrant, r.registrant_port),
                    "xtr_id": r.xtr_id.map(|x| x.xtr_id.iter().map(|b| format!("{b:02x}")).collect::<String>()),
                    "site_id": r.xtr_id.map(|x| x.site_id),
                    "locators": Value::Array(r.locators.iter().map(|l| locator(l.address.to_string(), l.priority, l.weight, l.reachable)).collect()),
                    "ttl_min": r.ttl_min,
                    "proxy_reply": r.proxy_reply,
                    "uptime_s": secs(now_ms.saturating_sub(r.first_registered_ms)),
                    "last_registered_s": secs(now_ms.saturating_sub(r.last_registered_ms)),
                    "expires_in_s": secs(r.expires_ms.saturating_sub(now_ms)),
                }));
            }
            let sites: Vec<Value> = cfg
                .map_server
                .sites
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "key_id": u16::from(s.key_id),
                        "eid_prefixes": s.eid_prefixes.iter().map(|p| json!({
                            "iid": p.iid,
                            "prefix": p.prefix.to_string(),
                            "accept_more_specifics": p.accept_more_specifics,
                        })).collect::<Vec<_>>(),
                        "registrations": by_site.remove(s.name.as_str()).unwrap_or_default(),
                    })
                })
                .collect();
            Ok(json!({ "registrations": ms.registration_count(), "sites": sites }))
        }
        Request::ShowDatabaseMapping => {
            let plane = &running.control.plane;
            let Some(etr) = plane.etr.as_ref() else {
                return Err("no ETR here (no lisp.map_servers to register with)".into());
            };
            let mappings: Vec<Value> = cfg
                .lisp
                .database_mappings
                .iter()
                .map(|m| {
                    json!({
                        "iid": m.iid,
                        "prefix": m.prefix.to_string(),
                        "priority": m.priority,
                        "weight": m.weight,
                    })
                })
                .collect();
            let mut hosts: Vec<_> = etr.hosts().collect();
            hosts.sort_by_key(|&(iid, ip, _)| (iid, ip));
            let hosts: Vec<Value> = hosts
                .into_iter()
                .map(|(iid, ip, since)| {
                    json!({ "iid": iid, "eid": ip.to_string(), "uptime_s": secs(now_ms.saturating_sub(since)) })
                })
                .collect();
            let servers: Vec<Value> = etr
                .map_servers()
                .map(|(addr, st)| {
                    json!({
                        "address": addr.to_string(),
                        "last_register_s": st.last_register_ms.map(|t| secs(now_ms.saturating_sub(t))),
                        "last_notify_s": st.last_notify_ms.map(|t| secs(now_ms.saturating_sub(t))),
                    })
                })
                .collect();
            Ok(json!({
                "rlocs": plane.rlocs().iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "database_mappings": mappings,
                "dynamic_eids_registered": hosts,
                "map_servers": servers,
            }))
        }
        Request::ShowDynamicEid => {
            let Some(h) = running.control.plane.hosts.as_ref() else {
                return Err("no EID port here: no hosts are detected".into());
            };
            // Dynamic EIDs first, each group in address order; the first MAX_LISTED only.
            let (first, total) =
                first_in_order(h.neighbors(), MAX_LISTED, |x| (x.iid.is_none(), x.ip));
            let rows: Vec<Value> = first
                .into_iter()
                .map(|x| {
                    json!({
                        "iid": x.iid,
                        "ip": x.ip.to_string(),
                        "mac": crate::dpdk::format_mac(&x.mac),
                        "port": plane_port(x.port),
                        "dynamic": x.iid.is_some(),
                        "first_seen_s": secs(now_ms.saturating_sub(x.first_seen_ms)),
                        "last_seen_s": secs(now_ms.saturating_sub(x.last_seen_ms)),
                        "state": match x.state {
                            crate::control::hosts::HostState::Reachable => "reachable".to_string(),
                            crate::control::hosts::HostState::Probing { sent } => format!("probing ({sent} sent)"),
                        },
                    })
                })
                .collect();
            let moved: Vec<Value> = h
                .moved_away()
                .map(|(iid, ip)| json!({ "iid": iid, "ip": ip.to_string() }))
                .collect();
            Ok(json!({ "total": total, "hosts": rows, "moved_away": moved }))
        }
        Request::ShowNeighbors => {
            let names: BTreeMap<u16, String> = running
                .ports
                .iter()
                .map(|(n, p)| (p.id(), n.clone()))
                .collect();
            let statics = &running.control.static_neighbors;
            // In address order (as addresses, not as text), the first MAX_LISTED only.
            let (first, total) = first_in_order(
                running.control.neighbors.entries(),
                MAX_LISTED,
                |(ip, _)| *ip,
            );
            let rows: Vec<Value> = first
                .into_iter()
                .map(|(ip, n)| {
                    json!({
                        "ip": ip.to_string(),
                        "mac": crate::dpdk::format_mac(&n.mac),
                        "port": names.get(&n.port).cloned().unwrap_or_else(|| format!("#{}", n.port)),
                        "static": statics.contains(&ip),
                    })
                })
                .collect();
            Ok(json!({ "total": total, "neighbors": rows }))
        }
        Request::ShowStats => {
            let workers: Vec<Value> = running
                .workers
                .iter()
                .enumerate()
                .map(|(i, (join, c))| {
                    let s = c.snapshot();
                    let w = &cfg.lcores.workers[i];
                    let counts: BTreeMap<&str, Value> = s
                        .counts
                        .nonzero()
                        .map(|(r, n)| {
                            (
                                r.name(),
                                json!({ "count": n, "per_sec": rates.per_sec(i, r).map(|x| x.round() as u64) }),
                            )
                        })
                        .collect();
                    let lat = c.latency();
                    json!({
                        "lcore": join.lcore(),
                        "port": w.port,
                        "queue": w.queue,
                        "bursts": s.bursts,
                        "idle_sleeps": s.idle_sleeps,
                        "drops": s.counts.drops(),
                        "counters": counts,
                        "burst_latency_ns": {
                            "samples": lat.len(),
                            "p50": lat.value_at_quantile(0.5),
                            "p99": lat.value_at_quantile(0.99),
                            "p999": lat.value_at_quantile(0.999),
                        },
                    })
                })
                .collect();
            let plane: BTreeMap<&str, u64> = running
                .control
                .plane
                .counters()
                .into_iter()
                .filter(|(_, v)| *v > 0)
                .collect();
            let cs = &running.control.stats;
            let ports: Vec<Value> = running
                .ports
                .iter()
                .filter_map(|(name, p)| {
                    p.stats().ok().map(|s| {
                        json!({
                            "port": name,
                            "rx": s.rx_packets, "tx": s.tx_packets, "rx_missed": s.rx_missed,
                            "rx_errors": s.rx_errors, "tx_errors": s.tx_errors, "rx_nombuf": s.rx_nombuf,
                        })
                    })
                })
                .collect();
            let mut control: serde_json::Map<String, Value> = cs
                .counters()
                .into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            control.insert("longest_stall_ms".into(), json!(cs.longest_stall_ms));
            control.insert(
                "map_cache_entries".into(),
                json!(running.control.cache.len()),
            );
            control.insert("neighbors".into(), json!(running.control.neighbors.len()));
            Ok(json!({
                "uptime_s": secs(now_ms),
                "workers": workers,
                "ports": ports,
                "control": control,
                "control_plane": plane,
            }))
        }
        Request::ShowIpsec => {
            let peers: Vec<Value> = cfg
                .ipsec
                .peers
                .iter()
                .map(|p| {
                    let s = running.control.ipsec_state(&p.name);
                    json!({
                        "name": p.name,
                        "local_address": p.local_address.map(|a| a.to_string()),
                        "remote_address": p.remote_address.map(|a| a.to_string()),
                        "remote_rlocs": p.remote_rlocs.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                        "auth": p.auth.to_string(),
                        "state": if s.is_some_and(|s| s.up) { "up" } else { "down" },
                        "since_s": s.map(|s| secs(now_ms.saturating_sub(s.since_ms))),
                        "changes": s.map(|s| s.changes),
                    })
                })
                .collect();
            Ok(json!({
                "mode": cfg.ipsec.mode.to_string(),
                "vici_socket": cfg.ipsec.vici_socket,
                "peers": peers,
            }))
        }
        // The control loop answers it (it owns the configuration being replaced).
        Request::Reload => Err("reload is not answered here".into()),
        Request::ClearMapCache { filter } => {
            if running.control.plane.itr.is_none() {
                return Err("no ITR here: the map-cache is not learnt".into());
            }
            let cleared = running.control.clear_map_cache(*filter, now_ms);
            tracing::info!(cleared, filter = ?filter, "map-cache cleared (pxtr ctl)");
            Ok(json!({ "cleared": cleared, "entries": running.control.cache.len() }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::first_in_order;

    #[test]
    fn the_first_n_in_order_of_many() {
        // 100 003 numbers in a scrambled order: the 10 smallest, sorted, and the count.
        let items = (0..100_003u64).map(|i| (i * 7919) % 100_003);
        let (rows, total) = first_in_order(items, 10, |x| *x);
        assert_eq!(rows, (0..10).collect::<Vec<_>>());
        assert_eq!(total, 100_003);
        let (rows, total) = first_in_order([3u8, 1, 2].into_iter(), 10, |x| *x);
        assert_eq!((rows, total), (vec![1, 2, 3], 3));
        assert_eq!(first_in_order([5u8, 4].into_iter(), 0, |x| *x), (vec![], 2));
    }
}
