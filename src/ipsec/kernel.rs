//! The host kernel's side of the tunnels: which ESP the host has (`mode = "auto"`), the XFRM
//! interface of each peer (`mode = "xfrm"`), and the routes of the peers' RLOC ranges into
//! the tunnel — an XFRM interface, or strongSwan's TUN `ipsec0` (`mode = "libipsec"`).
//!
//! All of it goes through iproute2's `ip`, at setup time and when charon (re)appears: never
//! on the packet path. The commands are built by pure functions (unit-tested) and run by
//! [`Ip`]. What pxtr creates it records, and removes when [`Tunnels`] is dropped.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::config::{Ipsec, IpsecMode, IpsecPeer};

/// strongSwan kernel-libipsec's TUN device.
pub const LIBIPSEC_TUN: &str = "ipsec0";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("cannot run `{cmd}`: {reason}")]
    Spawn { cmd: String, reason: String },
    #[error("`{cmd}` failed: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error(
        "ipsec.mode = \"xfrm\", but this kernel cannot do it: {reason}. Use mode = \"libipsec\" \
         (strongSwan's userspace ESP, charon with kernel-libipsec) or \"auto\""
    )]
    NoXfrm { reason: String },
    #[error(
        "IPsec peer {peer}: no route to its remote_address {addr}, so no underlay for its \
         XFRM interface ({reason})"
    )]
    NoUnderlay {
        peer: String,
        addr: IpAddr,
        reason: String,
    },
}

/// Runs `ip`, in the current network namespace or (tests) in a named one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ip {
    netns: Option<String>,
}

impl Ip {
    /// `ip` in pxtr's own network namespace.
    pub fn host() -> Ip {
        Ip { netns: None }
    }

    /// `ip -n <name>`: in network namespace `name` (tests drive a namespace of their own).
    pub fn in_netns(name: &str) -> Ip {
        Ip {
            netns: Some(name.into()),
        }
    }

    /// The whole argument list for `args`.
    pub fn argv(&self, args: &[String]) -> Vec<String> {
        let mut v = Vec::with_capacity(args.len() + 2);
        if let Some(ns) = &self.netns {
            v.push("-n".to_string());
            v.push(ns.clone());
        }
        v.extend(args.iter().cloned());
        v
    }

    /// Runs `ip args`; its stdout, or an error with its stderr.
    pub fn run(&self, args: &[String]) -> Result<String, Error> {
        let argv = self.argv(args);
        let cmd = format!("ip {}", argv.join(" "));
        let out = Command::new("ip")
            .args(&argv)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Spawn {
                cmd: cmd.clone(),
                reason: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(Error::Command {
                cmd,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn strings<const N: usize>(a: [&str; N]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The name of the XFRM interface in slot `slot` ([`Tunnels::slot`]).
pub fn xfrm_name(slot: usize) -> String {
    format!("pxtr-xfrm{slot}")
}

/// `ip link add <name> type xfrm dev <underlay> if_id <if_id>`.
pub fn xfrm_link_add(name: &str, underlay: &str, if_id: u32) -> Vec<String> {
    strings([
        "link",
        "add",
        name,
        "type",
        "xfrm",
        "dev",
        underlay,
        "if_id",
        &if_id.to_string(),
    ])
}

pub fn link_up(name: &str) -> Vec<String> {
    strings(["link", "set", name, "up"])
}

pub fn link_del(name: &str) -> Vec<String> {
    strings(["link", "del", name])
}

pub fn link_show(name: &str) -> Vec<String> {
    strings(["link", "show", name])
}

/// `ip route replace <net> dev <dev>`: an existing route of `net` is replaced, not an error.
pub fn route_replace(net: &IpNet, dev: &str) -> Vec<String> {
    strings(["route", "replace", &net.trunc().to_string(), "dev", dev])
}

pub fn route_del(net: &IpNet, dev: &str) -> Vec<String> {
    strings(["route", "del", &net.trunc().to_string(), "dev", dev])
}

/// `ip route show exact <net> dev <dev>`: prints the route when it exists.
pub fn route_show(net: &IpNet, dev: &str) -> Vec<String> {
    strings([
        "route",
        "show",
        "exact",
        &net.trunc().to_string(),
        "dev",
        dev,
    ])
}

pub fn route_get(addr: IpAddr) -> Vec<String> {
    strings(["route", "get", &addr.to_string()])
}

/// The gateway and device of `ip route get`'s answer ("203.0.113.1 via 198.51.100.254 dev eth1
/// src 198.51.100.1 uid 0").
pub fn parse_route_get(out: &str) -> Option<(Option<IpAddr>, String)> {
    let words: Vec<&str> = out.split_whitespace().collect();
    let after = |k: &str| {
        words
            .iter()
            .position(|w| *w == k)
            .and_then(|i| words.get(i + 1))
    };
    let dev = after("dev")?.to_string();
    let via = after("via").and_then(|v| v.parse().ok());
    Some((via, dev))
}

/// What the probe of the kernel tries, each in a network namespace of its own that goes away
/// with it, and what it lacks when that fails: an XFRM interface, then an ESP SA of each
/// address family the peers use (the kernel loads xfrm_interface, esp4/esp6 and the ciphers
/// on demand where it can). Nothing of it outlives the probe.
pub fn probe_steps(families: &[bool]) -> Vec<(String, Vec<String>)> {
    let mut steps = vec![(
        "no XFRM interfaces (xfrm_interface)".to_string(),
        strings([
            "link",
            "add",
            "pxtr-probe",
            "type",
            "xfrm",
            "dev",
            "lo",
            "if_id",
            "1",
        ]),
    )];
    for v4 in families {
        let (src, dst, what) = if *v4 {
            ("192.0.2.1", "192.0.2.2", "no kernel ESP for IPv4 (esp4)")
        } else {
            (
                "2001:db8::1",
                "2001:db8::2",
                "no kernel ESP for IPv6 (esp6)",
            )
        };
        let (enc, auth) = ("00".repeat(32), "11".repeat(32));
        steps.push((
            what.to_string(),
            strings([
                "xfrm",
                "state",
                "add",
                "src",
                src,
                "dst",
                dst,
                "proto",
                "esp",
                "spi",
                "0x100",
                "mode",
                "tunnel",
                "enc",
                "cbc(aes)",
                &format!("0x{enc}"),
                "auth-trunc",
                "hmac(sha256)",
                &format!("0x{auth}"),
                "128",
            ]),
        ));
    }
    steps
}

/// Whether this kernel can carry the peers' tunnels on XFRM interfaces with kernel ESP: tries
/// it, in throwaway network namespaces (`unshare --net ip ...`), for the address families of
/// the peers' IKE addresses. `Err` says what is missing.
pub fn probe_xfrm(peers: &[IpsecPeer]) -> Result<(), String> {
    let mut families: Vec<bool> = peers
        .iter()
        .filter_map(|p| p.remote_address.map(|a| a.is_ipv4()))
        .collect();
    families.sort_unstable_by(|a, b| b.cmp(a));
    families.dedup();
    if families.is_empty() {
        families.push(true);
    }
    for (lacks, args) in probe_steps(&families) {
        let out = Command::new("unshare")
            .args(["--net", "--", "ip"])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `unshare --net ip` to probe the kernel: {e}"))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if said.starts_with("unshare:") {
                // The probe itself could not run (no CAP_SYS_ADMIN, e.g. in a container): that
                // says nothing of the kernel.
                return Err(format!(
                    "cannot probe the kernel (a throwaway network namespace needs CAP_SYS_ADMIN): {said}"
                ));
            }
            return Err(format!("{lacks}: {said}"));
        }
    }
    Ok(())
}

/// The ESP the host gives the tunnels, for `mode`: `auto` is xfrm when the probe passes, else
/// libipsec (logged, with the reason); `xfrm` on a kernel that cannot is an error.
pub fn resolve_mode(
    mode: IpsecMode,
    peers: &[IpsecPeer],
    probe: impl FnOnce(&[IpsecPeer]) -> Result<(), String>,
) -> Result<IpsecMode, Error> {
    match mode {
        IpsecMode::Libipsec => Ok(IpsecMode::Libipsec),
        IpsecMode::Xfrm => probe(peers)
            .map(|()| IpsecMode::Xfrm)
            .map_err(|reason| Error::NoXfrm { reason }),
        IpsecMode::Auto => match probe(peers) {
            Ok(()) => {
                tracing::info!(
                    "ipsec.mode = \"auto\": the kernel has XFRM interfaces and ESP: using xfrm"
                );
                Ok(IpsecMode::Xfrm)
            }
            Err(reason) => {
                tracing::info!(%reason, "ipsec.mode = \"auto\": using libipsec (strongSwan's userspace ESP, TUN ipsec0)");
                Ok(IpsecMode::Libipsec)
            }
        },
    }
}

/// One route pxtr keeps: a peer's RLOC range (or, in xfrm mode, its pinned IKE address).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    net: IpNet,
    dev: String,
    /// pxtr created it (it was not there as it is), so pxtr removes it.
    ours: bool,
}

/// The kernel side of every peer's tunnel, by peer name: created when it can be, kept,
/// removed when the peer goes (live reload) or on drop.
#[derive(Debug)]
pub struct Tunnels {
    ip: Ip,
    mode: IpsecMode,
    peers: BTreeMap<String, PeerTunnel>,
    /// When [`Tunnels::poll`] may run `ip` again for peers not set up yet.
    next_attempt: Option<Instant>,
}

/// Least time between two setup attempts for peers not set up yet: each runs `ip` commands,
/// and the manager polls after every SA event and every second.
const SETUP_RETRY: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
struct PeerTunnel {
    /// The number of its XFRM interface and `if_id` (stable while the peer is configured).
    slot: usize,
    /// The XFRM interface pxtr created (xfrm mode).
    link: Option<String>,
    routes: Vec<Route>,
    ready: bool,
    /// The last setup error, logged once.
    last_error: Option<String>,
}

impl Tunnels {
    /// Decides the mode (probing the kernel for `auto` and `xfrm`). Nothing is created yet:
    /// [`Tunnels::poll`] does it once it can (the underlay or `ipsec0` may come later).
    pub fn prepare(ipsec: &Ipsec, ip: Ip) -> Result<Tunnels, Error> {
        let mode = resolve_mode(ipsec.mode, &ipsec.peers, probe_xfrm)?;
        Ok(Tunnels::with_mode(mode, ip))
    }

    /// Tunnels in a mode already decided (`xfrm` or `libipsec`).
    pub fn with_mode(mode: IpsecMode, ip: Ip) -> Tunnels {
        Tunnels {
            ip,
            mode,
            peers: BTreeMap::new(),
            next_attempt: None,
        }
    }

    /// `xfrm` or `libipsec`.
    pub fn mode(&self) -> IpsecMode {
        self.mode
    }

    /// The slot of peer `name` (its XFRM interface `pxtr-xfrm<slot>` and `if_id`): the one
    /// it has, else the lowest free one. Peers configured at start get 0, 1, 2... in config
    /// order; a peer added live takes a slot a removed one freed, and no peer's slot moves.
    pub fn slot(&mut self, name: &str) -> usize {
        if let Some(t) = self.peers.get(name) {
            return t.slot;
        }
        let mut used: Vec<usize> = self.peers.values().map(|t| t.slot).collect();
        used.sort_unstable();
        let slot = (0..).find(|i| used.binary_search(i).is_err()).unwrap_or(0);
        self.peers.insert(
            name.to_string(),
            PeerTunnel {
                slot,
                ..PeerTunnel::default()
            },
        );
        slot
    }

    /// Whether peer `name`'s RLOC ranges are routed into its tunnel.
    pub fn ready(&self, name: &str) -> bool {
        self.peers.get(name).is_some_and(|p| p.ready)
    }

    /// charon (re)started: `ipsec0` is a new device and the routes into the old one went with
    /// it; set them up again.
    pub fn charon_restarted(&mut self) {
        // A new charon: set up again at once, whenever the last attempt was.
        self.next_attempt = None;
        if self.mode == IpsecMode::Libipsec {
            for p in self.peers.values_mut() {
                p.ready = false;
            }
        }
    }

    /// In libipsec mode with charon up: whether its TUN is missing while peers wait for it
    /// (charon without kernel-libipsec, or with it after kernel-netlink).
    pub fn tun_missing(&self) -> bool {
        self.mode == IpsecMode::Libipsec
            && !self.peers.values().all(|p| p.ready)
            && self.ip.run(&link_show(LIBIPSEC_TUN)).is_err()
    }

    /// Sets up what is missing for `peers`: in libipsec mode the routes into `ipsec0` once it
    /// exists, in xfrm mode each peer's XFRM interface and routes once the underlay toward
    /// its IKE address is known. Errors are logged (once each) and tried again on a call at
    /// least [`SETUP_RETRY`] later.
    pub fn poll(&mut self, peers: &[IpsecPeer]) {
        if peers.iter().all(|p| self.ready(&p.name)) {
            return;
        }
        let now = Instant::now();
        if self.next_attempt.is_some_and(|t| now < t) {
            return;
        }
        self.next_attempt = Some(now + SETUP_RETRY);
        if self.mode == IpsecMode::Libipsec && self.ip.run(&link_show(LIBIPSEC_TUN)).is_err() {
            return;
        }
        for peer in peers {
            if self.ready(&peer.name) {
                continue;
            }
            self.slot(&peer.name);
            let result = match self.mode {
                IpsecMode::Xfrm => self.setup_xfrm(peer),
                _ => self.setup_routes(peer, LIBIPSEC_TUN),
            };
            let Some(t) = self.peers.get_mut(&peer.name) else {
                continue;
            };
            match result {
                Ok(()) => {
                    t.ready = true;
                    t.last_error = None;
                    tracing::info!(peer = %peer.name, rlocs = ?peer.remote_rlocs,
                        dev = %t.routes.last().map_or("", |r| r.dev.as_str()),
                        "IPsec peer's RLOC ranges routed into the tunnel");
                }
                Err(e) => {
                    let msg = e.to_string();
                    if t.last_error.as_deref() != Some(&msg) {
                        tracing::error!(peer = %peer.name, error = %msg, "IPsec tunnel not set up: the peer stays down; retrying");
                        t.last_error = Some(msg);
                    }
                }
            }
        }
    }

    fn setup_xfrm(&mut self, peer: &IpsecPeer) -> Result<(), Error> {
        let slot = self.slot(&peer.name);
        let name = xfrm_name(slot);
        if self.peers[&peer.name].link.is_none() {
            let addr = peer.remote_address.ok_or_else(|| Error::NoUnderlay {
                peer: peer.name.clone(),
                addr: IpAddr::from([0, 0, 0, 0]),
                reason: "no remote_address".into(),
            })?;
            let (_, underlay) = self
                .ip
                .run(&route_get(addr))
                .map_err(|e| e.to_string())
                .and_then(|out| {
                    parse_route_get(&out).ok_or_else(|| format!("no device in {:?}", out.trim()))
                })
                .map_err(|reason| Error::NoUnderlay {
                    peer: peer.name.clone(),
                    addr,
                    reason,
                })?;
            if self.ip.run(&link_show(&name)).is_ok() {
                // Left by a pxtr that did not stop cleanly: ours by its name.
                tracing::info!(dev = %name, "removing an XFRM interface left from an earlier run");
                self.ip.run(&link_del(&name))?;
            }
            self.ip
                .run(&xfrm_link_add(&name, &underlay, super::xfrm_if_id(slot)))?;
            if let Some(t) = self.peers.get_mut(&peer.name) {
                t.link = Some(name.clone());
            }
            tracing::info!(peer = %peer.name, dev = %name, %underlay, if_id = super::xfrm_if_id(slot), "XFRM interface created");
        }
        self.ip.run(&link_up(&name))?;
        self.setup_routes(peer, &name)
    }

    fn setup_routes(&mut self, peer: &IpsecPeer, dev: &str) -> Result<(), Error> {
        for net in &peer.remote_rlocs {
            let net = net.trunc();
            let known = self
                .peers
                .get(&peer.name)
                .is_some_and(|t| t.routes.iter().any(|r| r.net == net && r.dev == dev));
            if known {
                // Installed before charon restarted: put it back, still ours or not.
                self.ip.run(&route_replace(&net, dev))?;
                continue;
            }
            self.add_route(&peer.name, net, dev)?;
        }
        Ok(())
    }

    fn add_route(&mut self, name: &str, net: IpNet, dev: &str) -> Result<(), Error> {
        // A route someone else made (e.g. the lab script) is used, and left in place at exit.
        let existed = self
            .ip
            .run(&route_show(&net, dev))
            .is_ok_and(|out| !out.trim().is_empty());
        self.ip.run(&route_replace(&net, dev))?;
        if let Some(t) = self.peers.get_mut(name) {
            t.routes.push(Route {
                net,
                dev: dev.to_string(),
                ours: !existed,
            });
        }
        Ok(())
    }

    /// Removes peer `name`'s routes and interface (those pxtr created) and frees its slot:
    /// the peer left the configuration, or changed and is set up anew.
    pub fn remove(&mut self, name: &str) {
        if let Some(mut t) = self.peers.remove(name) {
            self.clear(&mut t);
        }
    }

    fn clear(&self, p: &mut PeerTunnel) {
        for r in p.routes.drain(..).rev() {
            if r.ours {
                match self.ip.run(&route_del(&r.net, &r.dev)) {
                    Ok(_) => tracing::info!(net = %r.net, dev = %r.dev, "route removed"),
                    // Gone with its device (charon stopped, ipsec0 with it).
                    Err(e) => tracing::debug!(%e, "route not removed"),
                }
            }
        }
        if let Some(name) = p.link.take() {
            match self.ip.run(&link_del(&name)) {
                Ok(_) => tracing::info!(dev = %name, "XFRM interface removed"),
                Err(e) => tracing::warn!(%e, "XFRM interface not removed"),
            }
        }
        p.ready = false;
    }

    /// Removes the routes and interfaces pxtr created.
    pub fn teardown(&mut self) {
        for mut p in std::mem::take(&mut self.peers).into_values() {
            self.clear(&mut p);
        }
    }
}

impl Drop for Tunnels {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(remote: &str, rlocs: &[&str]) -> IpsecPeer {
        IpsecPeer {
            name: "cloud".into(),
            remote_address: Some(remote.parse().unwrap()),
            remote_rlocs: rlocs.iter().map(|r| r.parse().unwrap()).collect(),
            ..IpsecPeer::default()
        }
    }

    fn join(v: &[String]) -> String {
        v.join(" ")
    }

    #[test]
    fn xfrm_commands_are_what_iproute2_takes() {
        assert_eq!(xfrm_name(3), "pxtr-xfrm3");
        assert!(xfrm_name(99_999).len() <= 15, "IFNAMSIZ");
        assert_eq!(
            join(&xfrm_link_add(
                "pxtr-xfrm0",
                "eth1",
                super::super::xfrm_if_id(0)
            )),
            format!(
                "link add pxtr-xfrm0 type xfrm dev eth1 if_id {}",
                0x7078_0000u32
            )
        );
        assert_eq!(join(&link_up("pxtr-xfrm0")), "link set pxtr-xfrm0 up");
        assert_eq!(join(&link_del("pxtr-xfrm0")), "link del pxtr-xfrm0");
        let net: IpNet = "203.0.113.7/24".parse().unwrap();
        assert_eq!(
            join(&route_replace(&net, "pxtr-xfrm0")),
            "route replace 203.0.113.0/24 dev pxtr-xfrm0"
        );
        assert_eq!(
            join(&route_del(&net, "ipsec0")),
            "route del 203.0.113.0/24 dev ipsec0"
        );
        assert_eq!(
            join(&route_show(&net, "ipsec0")),
            "route show exact 203.0.113.0/24 dev ipsec0"
        );
        assert_eq!(
            Ip::in_netns("ns1").argv(&link_up("x")),
            vec!["-n", "ns1", "link", "set", "x", "up"]
        );
        assert_eq!(
            Ip::host().argv(&link_up("x")),
            vec!["link", "set", "x", "up"]
        );
    }

    #[test]
    fn slots_stay_with_their_peer_and_freed_ones_are_reused() {
        let mut t = Tunnels::with_mode(IpsecMode::Xfrm, Ip::host());
        assert_eq!((t.slot("a"), t.slot("b"), t.slot("c")), (0, 1, 2));
        assert_eq!(t.slot("b"), 1);
        // Nothing was created for them, so removing runs no command.
        t.remove("b");
        assert_eq!(t.slot("c"), 2, "a peer's slot does not move");
        assert_eq!(t.slot("d"), 1, "the lowest free slot");
        assert_eq!(t.slot("e"), 3);
        assert!(!t.ready("a") && !t.ready("absent"));
    }

    #[test]
    fn route_get_answers_give_gateway_and_device() {
        assert_eq!(
            parse_route_get(
                "203.0.113.1 via 198.51.100.254 dev eth1 src 198.51.100.1 uid 0 \n    cache \n"
            ),
            Some((Some("198.51.100.254".parse().unwrap()), "eth1".into()))
        );
        assert_eq!(
            parse_route_get("10.99.0.2 dev veth0 src 10.99.0.1 uid 0\n    cache\n"),
            Some((None, "veth0".into()))
        );
        assert_eq!(
            parse_route_get("RTNETLINK answers: Network is unreachable"),
            None
        );
    }

    #[test]
    fn the_probe_tries_an_interface_and_esp_per_family() {
        let steps = probe_steps(&[true, false]);
        assert_eq!(steps.len(), 3);
        assert_eq!(
            join(&steps[0].1),
            "link add pxtr-probe type xfrm dev lo if_id 1"
        );
        assert!(steps[0].0.contains("xfrm_interface"));
        let esp4 = join(&steps[1].1);
        assert!(
            esp4.starts_with("xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode tunnel enc cbc(aes) 0x"),
            "{esp4}"
        );
        assert!(esp4.ends_with(&format!(
            "auth-trunc hmac(sha256) 0x{} 128",
            "11".repeat(32)
        )));
        assert!(steps[1].0.contains("esp4"));
        assert!(join(&steps[2].1).contains("src 2001:db8::1 dst 2001:db8::2"));
        assert!(steps[2].0.contains("esp6"));
    }

    #[test]
    fn modes_resolve_from_the_probe() {
        let peers = [peer("203.0.113.1", &["100.64.2.0/24"])];
        let yes = |_: &[IpsecPeer]| Ok(());
        let no = |_: &[IpsecPeer]| Err("no XFRM interfaces".to_string());
        assert_eq!(
            resolve_mode(IpsecMode::Auto, &peers, yes),
            Ok(IpsecMode::Xfrm)
        );
        assert_eq!(
            resolve_mode(IpsecMode::Auto, &peers, no),
            Ok(IpsecMode::Libipsec)
        );
        assert_eq!(
            resolve_mode(IpsecMode::Xfrm, &peers, yes),
            Ok(IpsecMode::Xfrm)
        );
        let e = resolve_mode(IpsecMode::Xfrm, &peers, no).unwrap_err();
        assert_eq!(
            e,
            Error::NoXfrm {
                reason: "no XFRM interfaces".into()
            }
        );
        assert!(e.to_string().contains("mode = \"libipsec\""), "{e}");
        let never = |_: &[IpsecPeer]| -> Result<(), String> { panic!("libipsec needs no probe") };
        assert_eq!(
            resolve_mode(IpsecMode::Libipsec, &peers, never),
            Ok(IpsecMode::Libipsec)
        );
    }
}
