//! The appliance configuration: typed structs (serde), loaded from TOML with `PXTR_*`
//! environment overrides (the `config` crate), and validated so that every problem is reported
//! at once with its field path, the bad value, what is expected and the file's line.

mod diff;
mod error;
mod load;
mod model;
mod validate;

use std::fmt::Write as _;

pub use diff::{diff, Change, Diff, LIVE};
pub use error::{ConfigError, Issue};
pub use load::{control_socket, load_file, load_str, ENV_PREFIX};
pub use model::*;
pub use validate::{MAX_BURST, MAX_IID, MAX_LCORE};

/// The embedded default: a lab on virtual devices that runs anywhere DPDK does (no NIC, no
/// hugepages). `pxtr run` without `--config` uses it.
pub const EMBEDDED_LAB: &str = include_str!("../../examples/lab.toml");

impl Config {
    /// The role; validation guarantees it is set in a loaded config.
    pub fn role(&self) -> Role {
        self.appliance.role.unwrap_or(Role::Pxtr)
    }

    /// TX queues each port gets: one per worker (each worker may send on every port) plus one for
    /// the control core.
    pub fn tx_queues_per_port(&self) -> u16 {
        u16::try_from(self.lcores.workers.len() + 1).unwrap_or(u16::MAX)
    }

    /// The EAL arguments this configuration implies.
    pub fn eal_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        // --lcores maps each lcore to its CPU, so labs may put several lcores on one CPU.
        let mut map = vec![format!(
            "{}@{}",
            self.lcores.control,
            self.lcores.control_cpu.unwrap_or(self.lcores.control)
        )];
        for w in &self.lcores.workers {
            if let Some(l) = w.lcore {
                map.push(format!("{l}@{}", w.cpu.unwrap_or(l)));
            }
        }
        args.push("--lcores".into());
        args.push(map.join(","));
        args.push("--main-lcore".into());
        args.push(self.lcores.control.to_string());
        args.push("-m".into());
        args.push(self.eal.memory_mb.to_string());
        if !self.eal.hugepages {
            args.push("--no-huge".into());
        }
        if self.eal.in_memory && self.eal.hugepages {
            args.push("--in-memory".into());
        } else if self.eal.in_memory {
            // --no-huge implies legacy memory, which --in-memory refuses; --no-shconf likewise
            // keeps no shared runtime files.
            args.push("--no-shconf".into());
        } else {
            args.push("--file-prefix".into());
            args.push(self.eal.file_prefix.clone());
        }
        let pci: Vec<&PortSection> = self.ports.iter().filter(|p| p.is_pci()).collect();
        if pci.is_empty() {
            args.push("--no-pci".into());
        }
        for p in &self.ports {
            args.push(if p.is_pci() { "-a" } else { "--vdev" }.into());
            args.push(p.device.clone());
        }
        args.extend(self.eal.extra_args.iter().cloned());
        args
    }

    /// A few lines saying what the configuration sets up (for `check-config`).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "appliance {} (role {})",
            self.appliance.name,
            self.role()
        );
        let _ = writeln!(
            s,
            "eal: {} MiB {}, lcores control {} + {} worker(s)",
            self.eal.memory_mb,
            if self.eal.hugepages {
                "hugepages"
            } else {
                "no hugepages"
            },
            self.lcores.control,
            self.lcores.workers.len()
        );
        for p in &self.ports {
            let addrs: Vec<String> = p.addresses.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                s,
                "port {} ({}): {} rx queue(s), mtu {}, {}{}",
                p.name,
                p.role.map(|r| r.to_string()).unwrap_or_default(),
                p.rx_queues,
                p.mtu,
                p.device,
                if addrs.is_empty() {
                    String::new()
                } else {
                    format!(", address {}", addrs.join(" "))
                }
            );
        }
        for w in &self.lcores.workers {
            let _ = writeln!(
                s,
                "worker lcore {}: port {} queue {}",
                w.lcore.unwrap_or(0),
                w.port,
                w.queue
            );
        }
        let l = &self.lisp;
        let _ = writeln!(
            s,
            "lisp: {} rloc(s), {} database-mapping(s), {} dynamic-EID range(s), {} map-server(s), {} map-resolver(s), {} PETR(s)",
            l.rlocs.len(),
            l.database_mappings.len(),
            l.dynamic_eids.len(),
            l.map_servers.len(),
            l.map_resolvers.len(),
            l.petrs.len()
        );
        if self.map_server.enabled {
            let _ = writeln!(
                s,
                "map-server/map-resolver: {} site(s)",
                self.map_server.sites.len()
            );
        }
        if !self.ipsec.peers.is_empty() {
            let _ = writeln!(
                s,
                "ipsec: {} peer(s), mode {:?}",
                self.ipsec.peers.len(),
                self.ipsec.mode
            );
        }
        s
    }
}
