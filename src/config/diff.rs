//! What changed between the running configuration and a re-read file (live reload, issue #8).
//!
//! Some sections are applied to the running appliance ([`LIVE`]): the control-plane machines
//! are reconfigured in place and the data plane's ranges are republished. Everything else
//! sizes or binds something at start (EAL, the packet pool, ports and their queues, worker
//! lcores, the control socket, the role and the machines it implies) and needs a restart: a
//! reload that changes any of it is refused whole, naming the keys, so that the running
//! appliance never half-matches its file.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Config;

/// The keys applied live; every other key needs a restart.
pub const LIVE: &[&str] = &[
    "lisp.static_mappings",
    "lisp.database_mappings",
    "lisp.dynamic_eids",
    "lisp.map_servers",
    "lisp.map_resolvers",
    "lisp.petrs",
    "map_server.sites",
    "map_server.registration_timeout_s",
    "control.log_level",
    "control.stats_interval_s",
    "ipsec.peers",
];

/// How one live key changed: entries added, removed and changed (a list's entries are told
/// apart by their key: IID and prefix, address, site or peer name; a value that is not a
/// list, or a list only reordered, counts as one change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

/// The differences between two (validated) configurations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Keys whose change needs a restart (paths such as `ports[1].mtu`; a list that grew or
    /// shrank is named whole, e.g. `lcores.workers`).
    pub restart: Vec<String>,
    /// Live keys that changed, in [`LIVE`] order.
    pub live: Vec<Change>,
}

impl Diff {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.restart.is_empty() && self.live.is_empty()
    }

    /// Whether live key `key` (one of [`LIVE`]) changed.
    pub fn changed(&self, key: &str) -> bool {
        self.live.iter().any(|c| c.key == key)
    }
}

/// Compares the running configuration `old` with `new`.
pub fn diff(old: &Config, new: &Config) -> Diff {
    let mut restart = Vec::new();
    let (a, b) = (to_value(old), to_value(new));
    walk("", &a, &b, &mut restart);
    let live = LIVE
        .iter()
        .filter_map(|key| live_change(key, old, new))
        .collect();
    Diff { restart, live }
}

fn to_value(cfg: &Config) -> Value {
    // The config is plain data (strings, numbers, addresses): it always serializes.
    serde_json::to_value(cfg).unwrap_or(Value::Null)
}

/// Collects the paths under `path` where `a` and `b` differ, skipping live keys.
fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    if LIVE.contains(&path) || a == b {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                walk(
                    &join(k),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() && !x.is_empty() => {
            // Lists of tables (ports, workers) are compared entry by entry; lists of values
            // (addresses, EAL arguments) are named whole.
            if x.iter().all(Value::is_object) {
                for (i, (u, v)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}[{i}]"), u, v, out);
                }
            } else {
                out.push(path.to_string());
            }
        }
        _ => out.push(path.to_string()),
    }
}

/// Added, removed and changed entries between two lists whose entries are told apart by `key`;
/// a list whose entries are the same but in another order counts one change (the order of
/// Map-Resolvers and PETRs is a preference).
fn keyed<T: PartialEq, K: Ord>(old: &[T], new: &[T], key: impl Fn(&T) -> K) -> [usize; 3] {
    let a: BTreeMap<K, &T> = old.iter().map(|t| (key(t), t)).collect();
    let b: BTreeMap<K, &T> = new.iter().map(|t| (key(t), t)).collect();
    let added = b.keys().filter(|k| !a.contains_key(*k)).count();
    let removed = a.keys().filter(|k| !b.contains_key(*k)).count();
    let mut changed = a
        .iter()
        .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
        .count();
    if added + removed + changed == 0 && old != new {
        changed = 1;
    }
    [added, removed, changed]
}

fn live_change(key: &'static str, old: &Config, new: &Config) -> Option<Change> {
    let (o, n) = (&old.lisp, &new.lisp);
    let scalar = |same: bool| if same { [0, 0, 0] } else { [0, 0, 1] };
    let [added, removed, changed] = match key {
        "lisp.static_mappings" => keyed(&o.static_mappings, &n.static_mappings, |m| {
            (m.iid, m.prefix.trunc())
        }),
        "lisp.database_mappings" => keyed(&o.database_mappings, &n.database_mappings, |m| {
            (m.iid, m.prefix.trunc())
        }),
        "lisp.dynamic_eids" => keyed(&o.dynamic_eids, &n.dynamic_eids, |d| {
            (d.iid, d.prefix.map(|p| p.trunc()))
        }),
        "lisp.map_servers" => keyed(&o.map_servers, &n.map_servers, |m| m.address),
        "lisp.map_resolvers" => keyed(&o.map_resolvers, &n.map_resolvers, |a| *a),
        "lisp.petrs" => keyed(&o.petrs, &n.petrs, |a| *a),
        "map_server.sites" => keyed(&old.map_server.sites, &new.map_server.sites, |s| {
            s.name.clone()
        }),
        "map_server.registration_timeout_s" => {
            scalar(old.map_server.registration_timeout_s == new.map_server.registration_timeout_s)
        }
        "control.log_level" => scalar(old.control.log_level == new.control.log_level),
        "control.stats_interval_s" => {
            scalar(old.control.stats_interval_s == new.control.stats_interval_s)
        }
        "ipsec.peers" => keyed(&old.ipsec.peers, &new.ipsec.peers, |p| p.name.clone()),
        _ => [0, 0, 0],
    };
    (added + removed + changed > 0).then_some(Change {
        key,
        added,
        removed,
        changed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, StaticLocator, StaticMapping};

    const BASE: &str = r#"
[appliance]
role = "pxtr"
[eal]
hugepages = false
memory_mb = 256
[mempool]
mbufs = 16383
cache = 64
[[ports]]
name = "eid0"
device = "net_ring0"
role = "eid"
addresses = ["10.1.1.1/24"]
[[ports]]
name = "rloc0"
device = "net_ring1"
role = "rloc"
addresses = ["192.0.2.1/24"]
[lcores]
control = 0
[[lcores.workers]]
lcore = 1
port = "eid0"
[[lcores.workers]]
lcore = 2
port = "rloc0"
[lisp]
rlocs = ["192.0.2.1"]
map_resolvers = ["192.0.2.1"]
[[lisp.database_mappings]]
prefix = "10.1.0.0/16"
[[lisp.map_servers]]
address = "192.0.2.1"
key = "key-one-1"
[[lisp.dynamic_eids]]
name = "servers"
prefix = "10.1.1.0/24"
port = "eid0"
[[lisp.static_mappings]]
prefix = "10.9.0.0/16"
rlocs = [{ address = "192.0.2.9" }]
[map_server]
enabled = true
[[map_server.sites]]
name = "a"
key = "key-one-1"
eid_prefixes = [{ prefix = "10.1.0.0/16", accept_more_specifics = true }]
[[map_server.sites]]
name = "b"
key = "key-two-2"
eid_prefixes = [{ prefix = "10.2.0.0/16" }]
"#;

    fn base() -> Config {
        load_str(
            BASE,
            std::path::Path::new("base.toml"),
            Some(Default::default()),
        )
        .unwrap()
    }

    #[test]
    fn the_same_file_changes_nothing() {
        assert!(diff(&base(), &base()).is_empty());
    }

    #[test]
    fn live_sections_are_counted_per_entry() {
        let old = base();
        let mut new = base();
        // One static mapping added, the existing one changed.
        new.lisp.static_mappings[0].rlocs[0].priority = 7;
        new.lisp.static_mappings.push(StaticMapping {
            iid: 0,
            prefix: "10.8.0.0/16".parse().unwrap(),
            rlocs: vec![StaticLocator {
                address: "192.0.2.8".parse().unwrap(),
                priority: 1,
                weight: 100,
            }],
            action: None,
        });
        // A site removed, another's key changed.
        new.map_server.sites.retain(|s| s.name == "a");
        new.map_server.sites[0].key = "key-one-new".into();
        // Map-Resolvers reordered, a PETR added, the log level changed.
        new.lisp.map_resolvers.push("192.0.2.2".parse().unwrap());
        new.lisp.map_resolvers.reverse();
        new.lisp.petrs.push("192.0.2.3".parse().unwrap());
        new.control.log_level = "debug".into();
        let d = diff(&old, &new);
        assert!(d.restart.is_empty(), "{:?}", d.restart);
        let get = |k: &str| d.live.iter().find(|c| c.key == k).copied().unwrap();
        let counts = |c: Change| (c.added, c.removed, c.changed);
        assert_eq!(counts(get("lisp.static_mappings")), (1, 0, 1));
        assert_eq!(counts(get("map_server.sites")), (0, 1, 1));
        assert_eq!(counts(get("lisp.map_resolvers")), (1, 0, 0));
        assert_eq!(counts(get("lisp.petrs")), (1, 0, 0));
        assert_eq!(counts(get("control.log_level")), (0, 0, 1));
        assert!(!d.changed("lisp.database_mappings"));
        assert!(!d.changed("lisp.dynamic_eids"));
        // Only reordered: one change (the order of Map-Resolvers is a preference).
        let mut r = base();
        r.lisp.map_resolvers = vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()];
        let mut r2 = r.clone();
        r2.lisp.map_resolvers.reverse();
        let d = diff(&r, &r2);
        assert_eq!(counts(d.live[0]), (0, 0, 1));
    }

    #[test]
    fn restart_keys_are_named() {
        let old = base();
        let mut new = base();
        new.ports[1].mtu = 9000;
        new.ports[0].addresses = vec!["10.1.2.1/24".parse().unwrap()];
        new.lcores.workers.pop();
        new.eal.memory_mb = 512;
        new.control.socket = "/tmp/other.sock".into();
        new.appliance.role = Some(crate::config::Role::Xtr);
        new.lisp.rlocs = vec!["192.0.2.5".parse().unwrap()];
        new.dataplane.burst = 16;
        // A live change next to them is listed too, but the caller refuses the whole reload.
        new.lisp.petrs.push("192.0.2.3".parse().unwrap());
        let d = diff(&old, &new);
        assert_eq!(
            d.restart,
            vec![
                "appliance.role",
                "control.socket",
                "dataplane.burst",
                "eal.memory_mb",
                "lcores.workers",
                "lisp.rlocs",
                "ports[0].addresses",
                "ports[1].mtu",
            ]
        );
        assert!(d.changed("lisp.petrs"));
    }

    #[test]
    fn ipsec_peers_apply_live_but_mode_and_socket_need_a_restart() {
        let peer = |name: &str| crate::config::IpsecPeer {
            name: name.into(),
            local_address: Some("192.0.2.1".parse().unwrap()),
            remote_address: Some("203.0.113.1".parse().unwrap()),
            remote_rlocs: vec!["203.0.113.0/24".parse().unwrap()],
            psk: "0123456789abcdef".into(),
            ..Default::default()
        };
        let mut old = base();
        old.ipsec.peers = vec![peer("a"), peer("b")];
        let mut new = old.clone();
        new.ipsec.peers[1].remote_rlocs = vec!["198.18.0.0/24".parse().unwrap()];
        new.ipsec.peers.push(peer("c"));
        new.ipsec.peers.remove(0);
        let d = diff(&old, &new);
        assert!(d.restart.is_empty(), "{:?}", d.restart);
        let c = d.live.iter().find(|c| c.key == "ipsec.peers").unwrap();
        assert_eq!((c.added, c.removed, c.changed), (1, 1, 1));
        new.ipsec.mode = crate::config::IpsecMode::Libipsec;
        new.ipsec.vici_socket = "/run/other.vici".into();
        assert_eq!(
            diff(&old, &new).restart,
            vec!["ipsec.mode", "ipsec.vici_socket"]
        );
    }

    #[test]
    fn every_live_key_exists_in_the_config() {
        let v = to_value(&Config::default());
        for key in LIVE {
            let mut at = &v;
            for part in key.split('.') {
                at = at.get(part).unwrap_or_else(|| panic!("{key}"));
            }
        }
    }
}
