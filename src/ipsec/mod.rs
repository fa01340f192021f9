//! IPsec toward cloud xTRs (issue #7): strongSwan drives IKEv2 and ESP; pxtr tells it what to
//! set up over VICI ([`vici`]) — the connection per configured peer, tunnelling our RLOC to
//! the peer's RLOC ranges, and its pre-shared key — and follows its SA events.

pub mod vici;

use std::net::IpAddr;

use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;

use crossbeam::channel::Sender;

use crate::config::{Ipsec, IpsecAuth, IpsecMode, IpsecPeer};
use crate::dpdk::StopFlag;
use vici::{Client, Section};

/// How often a peer without a child SA is initiated again.
const RETRY: Duration = Duration::from_secs(5);

/// An SA to the peer of this index (in `ipsec.peers`) came up or went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaChange {
    Up(usize),
    Down(usize),
}

/// What a VICI event (`child-updown`, `ike-updown`) says of one of our peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaEvent {
    /// These child SAs (charon's unique ids) of peer `.0` came up.
    ChildUp(usize, Vec<String>),
    /// These child SAs of peer `.0` went down.
    ChildDown(usize, Vec<String>),
    /// The IKE SA of peer `.0` went down, and every child SA with it.
    IkeDown(usize),
}

/// What a VICI event is about: charon names the IKE SA section after the connection (our
/// peer's name), lists its child SAs under `child-sas` with their `uniqueid`, and adds
/// `up = yes` when they came up. An IKE SA coming up says nothing of the children yet.
pub fn sa_event(name: &str, msg: &Section, peers: &[IpsecPeer]) -> Option<SaEvent> {
    let up = msg.str("up").as_deref() == Some("yes");
    let (index, ike) = msg.entries.iter().find_map(|(k, v)| match v {
        vici::Value::Section(s) => peers.iter().position(|p| &p.name == k).map(|i| (i, s)),
        _ => None,
    })?;
    let children: Vec<String> = ike
        .sub("child-sas")
        .map(|c| {
            c.entries
                .iter()
                .filter_map(|(k, v)| match v {
                    vici::Value::Section(s) => Some(s.str("uniqueid").unwrap_or_else(|| k.clone())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match (name, up) {
        ("child-updown", true) => Some(SaEvent::ChildUp(index, children)),
        ("child-updown", false) => Some(SaEvent::ChildDown(index, children)),
        ("ike-updown", false) => Some(SaEvent::IkeDown(index)),
        _ => None,
    }
}

/// Runs until `stop`: connects to charon's VICI socket (again after losing it), loads every
/// peer's key and connection, and reports SA changes on `tx`. Losing charon reports every
/// peer down.
///
/// `local_ts` is what our side of each child SA covers: the subnet of the RLOC port our RLOC is
/// on. strongSwan 5.9's userspace ESP (kernel-libipsec) installs the route into its TUN only
/// from a host address inside the local traffic selector, and the host's address on the RLOC
/// port's subnet is one; our RLOC itself belongs to pxtr, not to the host.
pub fn manage(ipsec: Ipsec, local_ts: Option<IpNet>, stop: StopFlag, tx: Sender<SaChange>) {
    let path = PathBuf::from(&ipsec.vici_socket);
    let mode = match ipsec.mode {
        // Userspace ESP works on any kernel; an XFRM interface needs kernel ESP (issue #7
        // decides per host).
        IpsecMode::Auto => IpsecMode::Libipsec,
        m => m,
    };
    let mut warned = false;
    while !stop.is_stopped() {
        let mut c = match Client::connect(&path, Duration::from_secs(1)) {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    tracing::warn!(%e, "strongSwan not reachable over VICI yet: IPsec peers stay unreachable; retrying");
                    warned = true;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        warned = false;
        tracing::info!(socket = %path.display(), "connected to strongSwan");
        for (i, p) in ipsec.peers.iter().enumerate() {
            if p.auth == IpsecAuth::Psk {
                if let Err(e) = c.call("load-shared", load_shared(p)) {
                    tracing::error!(peer = %p.name, %e, "IPsec key not loaded");
                }
            }
            let ts = local_ts
                .or_else(|| p.local_address.map(IpNet::from))
                .unwrap_or_else(|| IpNet::from(IpAddr::from([0, 0, 0, 0])));
            match c.call("load-conn", load_conn(p, i, ts, mode)) {
                Ok(_) => tracing::info!(peer = %p.name, "IPsec connection loaded"),
                Err(e) => tracing::error!(peer = %p.name, %e, "IPsec connection not loaded"),
            }
        }
        for ev in ["child-updown", "ike-updown"] {
            if let Err(e) = c.register(ev) {
                tracing::error!(%e, event = ev, "cannot follow strongSwan's SA events");
            }
        }
        // Which peers have a child SA up; those without one are initiated again every few
        // seconds (a first try can fail, e.g. before the host's tunnel routes exist).
        // The child SAs up per peer: a peer is up while it has one (both sides initiating can
        // leave two for a moment, and the one charon then deletes must not take the peer down).
        let mut children: Vec<std::collections::HashSet<String>> =
            vec![Default::default(); ipsec.peers.len()];
        let mut next_try = std::time::Instant::now() + RETRY;
        loop {
            if stop.is_stopped() {
                return;
            }
            if std::time::Instant::now() >= next_try {
                next_try = std::time::Instant::now() + RETRY;
                for (i, p) in ipsec.peers.iter().enumerate() {
                    if children[i].is_empty() {
                        let req = Section::new()
                            .kv("child", &p.name)
                            .kv("ike", &p.name)
                            .kv("timeout", "-1");
                        if let Err(e) = c.call("initiate", req) {
                            tracing::debug!(peer = %p.name, %e, "IPsec initiate");
                        }
                    }
                }
            }
            match c.next_event() {
                Ok(Some((name, msg))) => {
                    if let Some(ev) = sa_event(&name, &msg, &ipsec.peers) {
                        tracing::debug!(?ev, "IPsec SA event");
                        let i = match &ev {
                            SaEvent::ChildUp(i, _)
                            | SaEvent::ChildDown(i, _)
                            | SaEvent::IkeDown(i) => *i,
                        };
                        let was = !children[i].is_empty();
                        match ev {
                            SaEvent::ChildUp(_, ids) => children[i].extend(ids),
                            SaEvent::ChildDown(_, ids) => {
                                for id in ids {
                                    children[i].remove(&id);
                                }
                            }
                            SaEvent::IkeDown(_) => children[i].clear(),
                        }
                        let now = !children[i].is_empty();
                        if now != was {
                            let change = if now {
                                SaChange::Up(i)
                            } else {
                                SaChange::Down(i)
                            };
                            tracing::info!(?change, peer = %ipsec.peers[i].name, "IPsec SA");
                            let _ = tx.send(change);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%e, "lost strongSwan's VICI connection: IPsec peers down");
                    for i in 0..ipsec.peers.len() {
                        let _ = tx.send(SaChange::Down(i));
                    }
                    break;
                }
            }
        }
    }
}

/// The `if_id` of the XFRM interface of the `index`-th peer (its SAs and policies carry it,
/// so the kernel routes the peer's RLOC ranges into that interface).
pub fn xfrm_if_id(index: usize) -> u32 {
    0x7078_0000 + index as u32
}

/// The `load-conn` message for `peer` (the `index`-th, configuration validated): IKEv2 between
/// its addresses, one child SA in tunnel mode from `local_ts` (our RLOC, or the subnet of the
/// RLOC port it is on) to the peer's RLOC ranges, brought up at once and kept up (dead-peer
/// detection restarts it).
pub fn load_conn(peer: &IpsecPeer, index: usize, local_ts: IpNet, mode: IpsecMode) -> Section {
    let local = peer
        .local_address
        .map(|a| a.to_string())
        .unwrap_or_default();
    let remote = peer
        .remote_address
        .map(|a| a.to_string())
        .unwrap_or_default();
    let auth = match peer.auth {
        IpsecAuth::Psk => "psk",
        IpsecAuth::Pubkey => "pubkey",
    };
    let mut local_auth = Section::new().kv("auth", auth).kv("id", &local);
    if peer.auth == IpsecAuth::Pubkey {
        local_auth = local_auth.list("certs", [&peer.certificate]);
    }
    let remote_auth = Section::new().kv("auth", auth).kv("id", &remote);
    let ike = if peer.ike_proposals.is_empty() {
        vec!["default".to_string()]
    } else {
        peer.ike_proposals.clone()
    };
    let esp = if peer.esp_proposals.is_empty() {
        vec!["default".to_string()]
    } else {
        peer.esp_proposals.clone()
    };
    let mut child = Section::new()
        .list("local_ts", [local_ts.trunc().to_string()])
        .list("remote_ts", peer.remote_rlocs.iter().map(|n| n.to_string()))
        .kv("mode", "tunnel")
        .list("esp_proposals", esp)
        .kv("start_action", "start")
        .kv("dpd_action", "restart")
        .kv("close_action", "start");
    if mode == IpsecMode::Xfrm {
        let id = xfrm_if_id(index).to_string();
        child = child.kv("if_id_in", &id).kv("if_id_out", &id);
    }
    Section::new().section(
        &peer.name,
        Section::new()
            .kv("version", "2")
            .list("local_addrs", [&local])
            .list("remote_addrs", [&remote])
            .list("proposals", ike)
            .kv("dpd_delay", "10s")
            .kv("keyingtries", "0")
            .section("local", local_auth)
            .section("remote", remote_auth)
            .section("children", Section::new().section(&peer.name, child)),
    )
}

/// The `load-shared` message with `peer`'s pre-shared key, for both IKE identities.
pub fn load_shared(peer: &IpsecPeer) -> Section {
    let ids = [peer.local_address, peer.remote_address]
        .into_iter()
        .flatten()
        .map(|a| a.to_string());
    Section::new()
        .kv("id", format!("pxtr-{}", peer.name))
        .kv("type", "IKE")
        .kv("data", &peer.psk)
        .list("owners", ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> IpsecPeer {
        IpsecPeer {
            name: "cloud".into(),
            local_address: Some("198.51.100.1".parse().unwrap()),
            remote_address: Some("203.0.113.1".parse().unwrap()),
            remote_rlocs: vec!["203.0.113.0/24".parse().unwrap()],
            auth: IpsecAuth::Psk,
            psk: "0123456789abcdef".into(),
            ..IpsecPeer::default()
        }
    }

    #[test]
    fn sa_events_name_the_peer_and_the_state() {
        let peers = vec![
            IpsecPeer {
                name: "other".into(),
                ..peer()
            },
            peer(),
        ];
        // As charon sends them: the IKE SA named after the connection, its child SAs keyed by
        // name and unique id.
        let ev = |up: bool, conn: &str| {
            let ike = Section::new().kv("uniqueid", "1").section(
                "child-sas",
                Section::new().section(&format!("{conn}-7"), Section::new().kv("uniqueid", "7")),
            );
            let m = Section::new();
            let m = if up { m.kv("up", "yes") } else { m };
            m.section(conn, ike)
        };
        let seven = vec!["7".to_string()];
        assert_eq!(
            sa_event("child-updown", &ev(true, "cloud"), &peers),
            Some(SaEvent::ChildUp(1, seven.clone()))
        );
        assert_eq!(
            sa_event("child-updown", &ev(false, "cloud"), &peers),
            Some(SaEvent::ChildDown(1, seven))
        );
        assert_eq!(
            sa_event("ike-updown", &ev(false, "other"), &peers),
            Some(SaEvent::IkeDown(0))
        );
        // IKE up alone is not a tunnel yet; a connection we did not load is not ours.
        assert_eq!(sa_event("ike-updown", &ev(true, "cloud"), &peers), None);
        assert_eq!(
            sa_event("child-updown", &ev(true, "stranger"), &peers),
            None
        );
    }

    #[test]
    fn connections_tunnel_our_rloc_to_the_peers_rlocs() {
        let m = load_conn(
            &peer(),
            0,
            "198.51.100.9/32".parse().unwrap(),
            IpsecMode::Libipsec,
        );
        let c = m.sub("cloud").unwrap();
        assert_eq!(c.str("version").as_deref(), Some("2"));
        assert_eq!(c.sub("local").unwrap().str("auth").as_deref(), Some("psk"));
        assert_eq!(
            c.sub("remote").unwrap().str("id").as_deref(),
            Some("203.0.113.1")
        );
        let child = c.sub("children").unwrap().sub("cloud").unwrap();
        assert_eq!(
            child.get("local_ts"),
            Some(&vici::Value::List(vec![b"198.51.100.9/32".to_vec()]))
        );
        assert_eq!(
            child.get("remote_ts"),
            Some(&vici::Value::List(vec![b"203.0.113.0/24".to_vec()]))
        );
        assert_eq!(child.str("mode").as_deref(), Some("tunnel"));
        assert!(
            child.get("if_id_in").is_none(),
            "libipsec: no XFRM interface"
        );
        let x = load_conn(
            &peer(),
            2,
            "198.51.100.9/32".parse().unwrap(),
            IpsecMode::Xfrm,
        );
        let child = x
            .sub("cloud")
            .unwrap()
            .sub("children")
            .unwrap()
            .sub("cloud")
            .unwrap();
        assert_eq!(child.str("if_id_in"), Some(xfrm_if_id(2).to_string()));
        let s = load_shared(&peer());
        assert_eq!(s.str("data").as_deref(), Some("0123456789abcdef"));
        assert_eq!(
            s.get("owners"),
            Some(&vici::Value::List(vec![
                b"198.51.100.1".to_vec(),
                b"203.0.113.1".to_vec()
            ]))
        );
    }
}
