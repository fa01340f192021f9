//! Live reload (SIGHUP, `pxtr ctl reload`): the control core re-reads its configuration
//! file, validates it as `pxtr check-config` does, and applies what changed without stopping
//! anything. A file that does not load changes nothing and says why; a change that needs a
//! restart ([`crate::config::diff`]) is refused whole, naming the keys. Otherwise:
//!
//! - static mappings are installed, replaced or removed in the map-cache;
//! - dynamic-EID ranges and PETRs reach the workers as a new plan, published through a
//!   queue per worker and adopted between two bursts (pointer swaps: the workers neither
//!   allocate nor wait); the old plan is kept here until every worker let go of it, so it is
//!   freed on this core;
//! - the control-plane machines are reconfigured in place (Map-Resolvers, Map-Servers and
//!   keys, database mappings, dynamic-EID ranges, Map-Server sites and keys), keeping the
//!   resolutions, registrations and detected hosts that are still valid;
//! - IPsec peers are handed to the IPsec manager thread, which unloads removed and changed
//!   ones from strongSwan (SAs terminated, routes and interfaces removed) and loads added and
//!   changed ones; unchanged peers keep their SAs. The control core makes the RLOC ranges of
//!   new peers unreachable until their SA is up, and lets go of those of removed peers;
//! - the log filter and the statistics interval change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::config::{self, Config, StaticMapping};
use crate::dataplane::PreparedPlan;
use crate::mapcache::Mapping;

use super::{static_mapping, Running};

/// Sets the log filter (tracing's syntax); Err says why it could not.
pub type LogFilterHook = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What a reload needs besides the running state.
#[derive(Clone, Default)]
pub struct ReloadSource {
    /// The file `pxtr run --config` read (None: the embedded lab, nothing to re-read).
    pub path: Option<PathBuf>,
    /// Changes the log filter; None when `RUST_LOG` decides it (it overrides the file).
    pub log_filter: Option<LogFilterHook>,
}

impl std::fmt::Debug for ReloadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadSource")
            .field("path", &self.path)
            .field("log_filter", &self.log_filter.is_some())
            .finish()
    }
}

/// Re-reads the file and applies it to `running`, replacing `cfg` on success. The answer
/// lists what changed per key; the error says why nothing was applied.
pub(super) fn reload(
    src: &ReloadSource,
    cfg: &mut Config,
    running: &mut Running,
    now_ms: u64,
) -> Result<Value, String> {
    let Some(path) = src.path.as_deref() else {
        running.control.stats.reloads_refused += 1;
        return Err(
            "no configuration file to re-read: pxtr run started with the embedded lab \
                    config (start it with --config FILE to reload)"
                .into(),
        );
    };
    let new = match config::load_file(path) {
        Ok(c) => c,
        Err(e) => {
            running.control.stats.reloads_invalid += 1;
            return Err(format!("{e}\nnothing was changed"));
        }
    };
    let d = config::diff(cfg, &new);
    if !d.restart.is_empty() {
        running.control.stats.reloads_refused += 1;
        return Err(format!(
            "{}: not applied, these keys need a restart: {}; nothing was changed",
            path.display(),
            d.restart.join(", ")
        ));
    }
    if d.changed("ipsec.peers") && running.ipsec_peers.is_none() && !new.ipsec.peers.is_empty() {
        running.control.stats.reloads_refused += 1;
        return Err(format!(
            "{}: not applied: ipsec.peers: pxtr started without IPsec peers, so it runs no \
             IPsec manager (and has not chosen ipsec.mode); the first peers need a restart; \
             nothing was changed",
            path.display()
        ));
    }
    let mut notes = Vec::new();
    if d.changed("ipsec.peers") {
        if let Some(tx) = &running.ipsec_peers {
            let diff = crate::ipsec::peer_diff(&cfg.ipsec.peers, &new.ipsec.peers);
            running
                .control
                .reconfigure_ipsec(super::ipsec_ranges(&new.ipsec.peers), &diff, now_ms);
            if tx.send(new.ipsec.peers.clone()).is_err() {
                notes.push("ipsec.peers: the IPsec manager thread is gone".into());
            }
            tracing::info!(added = ?diff.added, removed = ?diff.removed, changed = ?diff.changed, "reload: IPsec peers");
        }
    }
    if d.changed("lisp.static_mappings") {
        let (installed, removed, failed) = apply_static(
            &cfg.lisp.static_mappings,
            &new.lisp.static_mappings,
            running,
            now_ms,
        );
        if failed > 0 {
            notes.push(format!(
                "{failed} static mapping(s) not installed (map-cache full)"
            ));
        }
        tracing::info!(installed, removed, failed, "reload: static mappings");
    }
    if d.changed("lisp.dynamic_eids") || d.changed("lisp.petrs") {
        publish_plan(&new, running);
    }
    let r = running.control.reconfigure(&new, now_ms);
    if d.changed("control.log_level") {
        match &src.log_filter {
            Some(set) => {
                if let Err(e) = set(&new.control.log_level) {
                    notes.push(format!("control.log_level: {e}"));
                }
            }
            None => {
                notes.push("control.log_level: RUST_LOG is set and decides the log filter".into())
            }
        }
    }
    for c in &d.live {
        tracing::info!(
            key = c.key,
            added = c.added,
            removed = c.removed,
            changed = c.changed,
            "reload: applied"
        );
    }
    if r != Default::default() {
        tracing::info!(
            registrations_removed = r.registrations_removed,
            prefixes_withdrawn = r.prefixes_withdrawn,
            hosts_withdrawn = r.hosts_withdrawn,
            hosts_changed = r.hosts_changed,
            "reload: control-plane state adjusted"
        );
    }
    for n in &notes {
        tracing::warn!("reload: {n}");
    }
    running.control.stats.reloads_ok += 1;
    *cfg = new;
    Ok(json!({
        "file": path.display().to_string(),
        "applied": d.live.iter().map(|c| json!({
            "key": c.key,
            "added": c.added,
            "removed": c.removed,
            "changed": c.changed,
        })).collect::<Vec<_>>(),
        "registrations_removed": r.registrations_removed,
        "prefixes_withdrawn": r.prefixes_withdrawn,
        "hosts_withdrawn": r.hosts_withdrawn,
        "hosts_changed": r.hosts_changed,
        "notes": notes,
    }))
}

/// [`reload`] for SIGHUP: the outcome goes to the log.
pub(super) fn on_sighup(src: &ReloadSource, cfg: &mut Config, running: &mut Running, now_ms: u64) {
    let file = src
        .path
        .as_deref()
        .map_or_else(|| "-".into(), |p: &Path| p.display().to_string());
    tracing::info!(%file, "SIGHUP: reloading the configuration");
    match reload(src, cfg, running, now_ms) {
        Ok(v) if v["applied"].as_array().is_some_and(|a| a.is_empty()) => {
            tracing::info!(%file, "reload: nothing changed")
        }
        Ok(_) => tracing::info!(%file, "reload: done"),
        Err(e) => tracing::error!("reload refused: {e}"),
    }
}

/// Static mappings: removed ones leave the map-cache, new and changed ones are installed
/// (a replacement is one atomic update for the workers). Returns (installed, removed, failed).
fn apply_static(
    old: &[StaticMapping],
    new: &[StaticMapping],
    running: &mut Running,
    now_ms: u64,
) -> (usize, usize, usize) {
    let key = |m: &StaticMapping| (m.iid, m.prefix.trunc());
    let cache = &mut running.control.cache;
    let mut removed = 0;
    for m in old {
        if !new.iter().any(|n| key(n) == key(m)) {
            cache.remove(m.iid, m.prefix.trunc());
            removed += 1;
            tracing::info!(iid = m.iid, prefix = %m.prefix, "static mapping removed");
        }
    }
    let (mut installed, mut failed) = (0, 0);
    for m in new {
        if old.iter().any(|o| o == m) {
            continue;
        }
        let mapping: Mapping = static_mapping(m);
        match cache.insert(m.iid, m.prefix.trunc(), mapping, now_ms) {
            Ok(_) => {
                installed += 1;
                tracing::info!(iid = m.iid, prefix = %m.prefix, rlocs = m.rlocs.len(), "static mapping installed");
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(iid = m.iid, prefix = %m.prefix, %e, "static mapping not installed");
            }
        }
    }
    (installed, removed, failed)
}

/// Builds the plan of `cfg` over the running ports and hands it to every worker and to the
/// control core; the one it replaces waits in `retired` until the workers let go of it.
fn publish_plan(cfg: &Config, running: &mut Running) {
    let ports: Vec<(u16, [u8; 6])> = running
        .control
        .plan
        .ports
        .iter()
        .map(|p| (p.dpdk_port, p.mac))
        .collect();
    let prepared = PreparedPlan::new(Arc::new(super::plan(cfg, &ports)));
    prepared.publish(&running.plans);
    running.control.plan = Arc::clone(prepared.plan());
    let old = std::mem::replace(&mut running.plan, prepared);
    running.retired.push(old);
    tracing::info!(
        workers = running.plans.len(),
        "reload: new data-plane plan published"
    );
}

/// Frees the plans no worker holds any more (on this core, not on the workers).
pub(super) fn reap(running: &mut Running) {
    running.retired.retain(|p| !p.is_unshared());
}
