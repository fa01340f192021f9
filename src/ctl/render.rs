//! Human tables for `pxtr ctl` answers, in the spirit of IOS-XE's `show lisp ...`: one table
//! per answer, columns aligned, durations as hh:mm:ss (d + hh:mm:ss past a day).

use serde_json::Value;

use super::Request;

/// hh:mm:ss, or "1d02h" past a day; "never" for none.
pub fn duration(s: Option<u64>) -> String {
    match s {
        None => "never".into(),
        Some(s) if s >= 86_400 => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
        Some(s) => format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60),
    }
}

/// Columns aligned on the widest cell; the header underlined.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out += &line(w.iter().map(|n| "-".repeat(*n)).collect());
    for r in rows {
        out += &line(r.clone());
    }
    out
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn secs(v: &Value) -> Option<u64> {
    v.as_u64()
}

fn locators(v: &Value) -> String {
    let ls: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| {
                    format!(
                        "{} {} {}/{}",
                        s(&l["address"]),
                        s(&l["state"]),
                        s(&l["priority"]),
                        s(&l["weight"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ls.join(", ")
}

fn rows(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], |a| a.as_slice())
}

/// The answer to `req` as text.
pub fn render(req: &Request, d: &Value) -> String {
    match req {
        Request::ShowMapCache { .. } => {
            let rows: Vec<Vec<String>> = rows(&d["map_cache"])
                .iter()
                .map(|e| {
                    vec![
                        s(&e["iid"]),
                        s(&e["prefix"]),
                        duration(secs(&e["uptime_s"])),
                        duration(secs(&e["expires_in_s"])),
                        s(&e["hits"]),
                        match e["action"].as_str() {
                            Some(a) => format!("negative: {a}"),
                            None => locators(&e["locators"]),
                        },
                    ]
                })
                .collect();
            let mut out = format!(
                "LISP map-cache: {} entries (capacity {}), {} matching, {} listed\n\n",
                s(&d["entries"]),
                s(&d["capacity"]),
                s(&d["matching"]),
                s(&d["listed"])
            );
            out += &table(
                &[
                    "IID",
                    "EID prefix",
                    "Uptime",
                    "Expires",
                    "Hits",
                    "Locators (address state pri/wgt)",
                ],
                &rows,
            );
            out
        }
        Request::ShowSite => {
            let mut out = format!(
                "LISP Map-Server: {} registrations\n",
                s(&d["registrations"])
            );
            for site in rows(&d["sites"]) {
                let prefixes: Vec<String> = rows(&site["eid_prefixes"])
                    .iter()
                    .map(|p| {
                        format!(
                            "{} (iid {}){}",
                            s(&p["prefix"]),
                            s(&p["iid"]),
                            if p["accept_more_specifics"] == Value::Bool(true) {
                                " accept-more-specifics"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect();
                out += &format!(
                    "\nSite {} (key-id {}): {}\n",
                    s(&site["name"]),
                    s(&site["key_id"]),
                    prefixes.join(", ")
                );
                let rows: Vec<Vec<String>> = rows(&site["registrations"])
                    .iter()
                    .map(|r| {
                        vec![
                            s(&r["iid"]),
                            s(&r["prefix"]),
                            s(&r["registrant"]),
                            duration(secs(&r["uptime_s"])),
                            format!("{} ago", duration(secs(&r["last_registered_s"]))),
                            duration(secs(&r["expires_in_s"])),
                            locators(&r["locators"]),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    out += "  no registrations\n";
                } else {
                    out += &table(
                        &[
                            "IID",
                            "EID prefix",
                            "Registered by",
                            "Uptime",
                            "Last register",
                            "Expires",
                            "Locators",
                        ],
                        &rows,
                    );
                }
            }
            out
        }
        Request::ShowDatabaseMapping => {
            let rlocs: Vec<String> = rows(&d["rlocs"]).iter().map(s).collect();
            let mut out = format!(
                "LISP ETR, RLOCs {}\n\nConfigured EID prefixes\n",
                rlocs.join(", ")
            );
            let m: Vec<Vec<String>> = rows(&d["database_mappings"])
                .iter()
                .map(|m| {
                    vec![
                        s(&m["iid"]),
                        s(&m["prefix"]),
                        format!("{}/{}", s(&m["priority"]), s(&m["weight"])),
                    ]
                })
                .collect();
            out += &table(&["IID", "EID prefix", "Pri/Wgt"], &m);
            out += "\nDynamic EIDs registered\n";
            let h: Vec<Vec<String>> = rows(&d["dynamic_eids_registered"])
                .iter()
                .map(|h| vec![s(&h["iid"]), s(&h["eid"]), duration(secs(&h["uptime_s"]))])
                .collect();
            out += &table(&["IID", "EID", "Uptime"], &h);
            out += "\nMap-Servers\n";
            let ms: Vec<Vec<String>> = rows(&d["map_servers"])
                .iter()
                .map(|m| {
                    let ago = |v: &Value| match secs(v) {
                        Some(x) => format!("{} ago", duration(Some(x))),
                        None => "never".into(),
                    };
                    vec![
                        s(&m["address"]),
                        ago(&m["last_register_s"]),
                        ago(&m["last_notify_s"]),
                    ]
                })
                .collect();
            out += &table(&["Map-Server", "Last Map-Register", "Last Map-Notify"], &ms);
            out
        }
        Request::ShowDynamicEid => {
            let h: Vec<Vec<String>> = rows(&d["hosts"])
                .iter()
                .map(|h| {
                    vec![
                        if h["dynamic"] == Value::Bool(true) {
                            format!("dynamic (iid {})", s(&h["iid"]))
                        } else {
                            "neighbor".into()
                        },
                        s(&h["ip"]),
                        s(&h["mac"]),
                        s(&h["port"]),
                        duration(secs(&h["first_seen_s"])),
                        format!("{} ago", duration(secs(&h["last_seen_s"]))),
                        s(&h["state"]),
                    ]
                })
                .collect();
            let mut out = table(
                &[
                    "Kind",
                    "Address",
                    "MAC",
                    "Port",
                    "Uptime",
                    "Last seen",
                    "State",
                ],
                &h,
            );
            let moved: Vec<String> = rows(&d["moved_away"])
                .iter()
                .map(|m| format!("{} (iid {})", s(&m["ip"]), s(&m["iid"])))
                .collect();
            if !moved.is_empty() {
                out += &format!(
                    "\nMoved away (answered for with our MAC): {}\n",
                    moved.join(", ")
                );
            }
            out
        }
        Request::ShowNeighbors => {
            let n: Vec<Vec<String>> = rows(&d["neighbors"])
                .iter()
                .map(|n| {
                    vec![
                        s(&n["ip"]),
                        s(&n["mac"]),
                        s(&n["port"]),
                        if n["static"] == Value::Bool(true) {
                            "static".into()
                        } else {
                            "learnt".into()
                        },
                    ]
                })
                .collect();
            table(&["Address", "MAC", "Port", "Kind"], &n)
        }
        Request::ShowStats => {
            let mut out = format!("Uptime {}\n", duration(secs(&d["uptime_s"])));
            for w in rows(&d["workers"]) {
                let l = &w["burst_latency_ns"];
                out += &format!(
                    "\nWorker lcore {} ({} queue {}): {} bursts, {} drops; burst latency p50 {} ns, p99 {} ns, p99.9 {} ns\n",
                    s(&w["lcore"]),
                    s(&w["port"]),
                    s(&w["queue"]),
                    s(&w["bursts"]),
                    s(&w["drops"]),
                    s(&l["p50"]),
                    s(&l["p99"]),
                    s(&l["p999"])
                );
                let rows: Vec<Vec<String>> = w["counters"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| vec![k.clone(), s(&v["count"]), s(&v["per_sec"])])
                            .collect()
                    })
                    .unwrap_or_default();
                out += &table(&["Counter", "Count", "Per second"], &rows);
            }
            out += "\nPorts\n";
            let p: Vec<Vec<String>> = rows(&d["ports"])
                .iter()
                .map(|p| {
                    [
                        "port",
                        "rx",
                        "tx",
                        "rx_missed",
                        "rx_errors",
                        "tx_errors",
                        "rx_nombuf",
                    ]
                    .iter()
                    .map(|k| s(&p[*k]))
                    .collect()
                })
                .collect();
            out += &table(
                &[
                    "Port",
                    "RX",
                    "TX",
                    "RX missed",
                    "RX errors",
                    "TX errors",
                    "RX no mbuf",
                ],
                &p,
            );
            let kv = |v: &Value| -> Vec<Vec<String>> {
                v.as_object()
                    .map(|m| m.iter().map(|(k, v)| vec![k.clone(), s(v)]).collect())
                    .unwrap_or_default()
            };
            out += "\nControl core\n";
            out += &table(&["Counter", "Value"], &kv(&d["control"]));
            out += "\nControl plane (non-zero)\n";
            out += &table(&["Counter", "Value"], &kv(&d["control_plane"]));
            out
        }
        Request::ShowIpsec => {
            let mut out = format!(
                "IPsec: mode {}, strongSwan at {}\n\n",
                s(&d["mode"]),
                s(&d["vici_socket"])
            );
            let p: Vec<Vec<String>> = rows(&d["peers"])
                .iter()
                .map(|p| {
                    vec![
                        s(&p["name"]),
                        format!("{} -> {}", s(&p["local_address"]), s(&p["remote_address"])),
                        rows(&p["remote_rlocs"])
                            .iter()
                            .map(s)
                            .collect::<Vec<_>>()
                            .join(", "),
                        s(&p["auth"]),
                        s(&p["state"]),
                        duration(secs(&p["since_s"])),
                        s(&p["changes"]),
                    ]
                })
                .collect();
            out += &table(
                &[
                    "Peer",
                    "IKE",
                    "Remote RLOCs",
                    "Auth",
                    "State",
                    "For",
                    "Changes",
                ],
                &p,
            );
            out
        }
        Request::ClearMapCache { .. } => format!(
            "{} map-cache entries cleared; {} left\n",
            s(&d["cleared"]),
            s(&d["entries"])
        ),
        Request::Reload => {
            let applied = rows(&d["applied"]);
            let mut out = format!("Reloaded {}\n", s(&d["file"]));
            if applied.is_empty() {
                out += "Nothing changed\n";
            } else {
                let r: Vec<Vec<String>> = applied
                    .iter()
                    .map(|c| {
                        vec![
                            s(&c["key"]),
                            s(&c["added"]),
                            s(&c["removed"]),
                            s(&c["changed"]),
                        ]
                    })
                    .collect();
                out += &table(&["Key", "Added", "Removed", "Changed"], &r);
            }
            for (k, what) in [
                ("registrations_removed", "Map-Server registrations removed"),
                ("prefixes_withdrawn", "database prefixes withdrawn"),
                ("hosts_withdrawn", "dynamic EIDs withdrawn"),
                ("hosts_changed", "detected hosts moved between ranges"),
            ] {
                if d[k].as_u64().is_some_and(|n| n > 0) {
                    out += &format!("{} {what}\n", s(&d[k]));
                }
            }
            for n in rows(&d["notes"]) {
                out += &format!("note: {}\n", n.as_str().unwrap_or_default());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_and_tables() {
        assert_eq!(duration(Some(0)), "00:00:00");
        assert_eq!(duration(Some(3725)), "01:02:05");
        assert_eq!(duration(Some(2 * 86_400 + 3 * 3600)), "2d03h");
        assert_eq!(duration(None), "never");
        let t = table(
            &["A", "Long header"],
            &[vec!["wide cell".into(), "x".into()]],
        );
        assert_eq!(
            t,
            "A          Long header\n---------  -----------\nwide cell  x\n"
        );
    }

    #[test]
    fn a_map_cache_answer_renders_as_a_table() {
        let d = json!({
            "entries": 2, "capacity": 1000, "matching": 2, "listed": 2,
            "map_cache": [
                { "iid": 0, "prefix": "10.1.1.20/32", "uptime_s": 62, "expires_in_s": 86338,
                  "hits": 5, "action": null,
                  "locators": [{ "address": "100.64.2.1", "state": "up", "priority": 1, "weight": 100 }] },
                { "iid": 0, "prefix": "172.20.0.0/16", "uptime_s": 1, "expires_in_s": 899,
                  "hits": 0, "action": "natively-forward", "locators": [] },
            ]
        });
        let text = render(&Request::ShowMapCache { filter: None }, &d);
        assert!(
            text.starts_with("LISP map-cache: 2 entries (capacity 1000)"),
            "{text}"
        );
        let line = text.lines().find(|l| l.contains("10.1.1.20/32")).unwrap();
        assert!(
            line.contains("00:01:02") && line.contains("100.64.2.1 up 1/100"),
            "{line}"
        );
        let neg = text.lines().find(|l| l.contains("172.20.0.0/16")).unwrap();
        assert!(neg.contains("negative: natively-forward"), "{neg}");
    }
}
