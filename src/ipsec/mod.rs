//! IPsec toward cloud xTRs (issue #7): strongSwan drives IKEv2 and ESP; pxtr tells it what to
//! set up over VICI ([`vici`]) — the connection per configured peer, tunnelling our RLOC to
//! the peer's RLOC ranges, and its pre-shared key or certificates ([`creds`]) — follows its SA
//! events, and routes the peers' RLOC ranges into the tunnel ([`kernel`]).

pub mod creds;
pub mod kernel;
pub mod vici;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam::channel::Sender;
use ipnet::IpNet;

use crate::config::{Ipsec, IpsecAuth, IpsecMode, IpsecPeer};
use crate::dpdk::StopFlag;
use kernel::Tunnels;
use vici::{Client, Section};

/// How often a peer without a child SA is initiated again (and a peer that could not be
/// loaded is loaded again).
const RETRY: Duration = Duration::from_secs(5);

/// Why a peer is not set up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("{0}")]
    Kernel(#[from] kernel::Error),
    #[error("IPsec peer {peer}: {what} {source}")]
    Credential {
        peer: String,
        /// Which file: "certificate", "private_key", "ca_certificate".
        what: &'static str,
        source: creds::Error,
    },
    #[error("IPsec peer {peer}: {source}")]
    Vici { peer: String, source: vici::Error },
}

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
    /// Child SAs of peer `.0` were rekeyed: (old unique id, new unique id). The new SA
    /// replaces the old one without a `child-updown` for either.
    ChildRekey(usize, Vec<(String, String)>),
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
    if name == "child-rekey" {
        // child-sas = { <name> = { old = { uniqueid = .. } new = { uniqueid = .. } } }
        let pairs: Vec<(String, String)> = ike
            .sub("child-sas")
            .map(|c| {
                c.entries
                    .iter()
                    .filter_map(|(_, v)| match v {
                        vici::Value::Section(s) => Some((
                            s.sub("old")?.str("uniqueid")?,
                            s.sub("new")?.str("uniqueid")?,
                        )),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Some(SaEvent::ChildRekey(index, pairs));
    }
    match (name, up) {
        ("child-updown", true) => Some(SaEvent::ChildUp(index, children)),
        ("child-updown", false) => Some(SaEvent::ChildDown(index, children)),
        ("ike-updown", false) => Some(SaEvent::IkeDown(index)),
        _ => None,
    }
}

/// What the manager knows of each peer, and what it told the control core.
struct Peers {
    /// Loaded into the charon we are connected to (key or certificates, and connection).
    loaded: Vec<bool>,
    /// The last error loading each peer, logged once.
    load_error: Vec<Option<String>>,
    /// The child SAs up per peer (charon's unique ids): a peer is up while it has one (both
    /// sides initiating can leave two for a moment, and the one charon then deletes must not
    /// take the peer down).
    children: Vec<HashSet<String>>,
    /// What was last reported on the channel.
    reported: Vec<bool>,
}

impl Peers {
    fn new(n: usize) -> Peers {
        Peers {
            loaded: vec![false; n],
            load_error: vec![None; n],
            children: vec![HashSet::new(); n],
            reported: vec![false; n],
        }
    }

    /// Reports the peers whose state changed: a peer is up while it has a child SA and its
    /// RLOC ranges are routed into the tunnel.
    fn report(&mut self, peers: &[IpsecPeer], tunnels: &Tunnels, tx: &Sender<SaChange>) {
        for (i, p) in peers.iter().enumerate() {
            let up = !self.children[i].is_empty() && tunnels.ready(i);
            if up != self.reported[i] {
                self.reported[i] = up;
                let change = if up {
                    SaChange::Up(i)
                } else {
                    SaChange::Down(i)
                };
                tracing::info!(?change, peer = %p.name, "IPsec SA");
                let _ = tx.send(change);
            }
        }
    }
}

/// Loads the peers not loaded yet into charon; errors are logged once each and the peer stays
/// down (not initiated) until a later try succeeds.
fn load_missing(
    c: &mut Client,
    ipsec: &Ipsec,
    st: &mut Peers,
    local_ts: Option<IpNet>,
    mode: IpsecMode,
) {
    for (i, p) in ipsec.peers.iter().enumerate() {
        if st.loaded[i] {
            continue;
        }
        let ts = local_ts
            .or_else(|| p.local_address.map(IpNet::from))
            .unwrap_or_else(|| IpNet::from(IpAddr::from([0, 0, 0, 0])));
        match load_peer(c, p, i, ts, mode) {
            Ok(()) => {
                tracing::info!(peer = %p.name, auth = %p.auth, "IPsec connection loaded");
                st.loaded[i] = true;
                st.load_error[i] = None;
            }
            Err(e) => {
                let msg = e.to_string();
                if st.load_error[i].as_deref() != Some(&msg) {
                    tracing::error!(peer = %p.name, error = %msg, "IPsec peer not loaded: it stays down; retrying every 5 s");
                    st.load_error[i] = Some(msg);
                }
            }
        }
    }
}

/// Loads one peer: its pre-shared key, or its certificate, private key and CA certificate;
/// then its connection.
fn load_peer(
    c: &mut Client,
    p: &IpsecPeer,
    index: usize,
    local_ts: IpNet,
    mode: IpsecMode,
) -> Result<(), Error> {
    let vici = |source| Error::Vici {
        peer: p.name.clone(),
        source,
    };
    let creds = match p.auth {
        IpsecAuth::Psk => {
            c.call("load-shared", load_shared(p)).map_err(vici)?;
            None
        }
        IpsecAuth::Pubkey => {
            let creds = peer_credentials(p)?;
            c.call("load-cert", load_cert(&creds.certificate, false))
                .map_err(vici)?;
            c.call("load-cert", load_cert(&creds.ca_certificate, true))
                .map_err(vici)?;
            c.call("load-key", load_key(&creds.private_key))
                .map_err(vici)?;
            Some(creds)
        }
    };
    c.call(
        "load-conn",
        load_conn(p, index, local_ts, mode, creds.as_ref()),
    )
    .map_err(vici)?;
    Ok(())
}

/// Runs until `stop`: connects to charon's VICI socket (again after losing it), loads every
/// peer's credentials and connection, sets the tunnels' kernel side up (`tunnels`), and
/// reports on `tx` when a peer comes up or goes down. Losing charon reports every peer down.
/// When it returns, `tunnels` is dropped: the routes and interfaces pxtr made are removed.
///
/// `local_ts` is what our side of each child SA covers: the subnet of the RLOC port our RLOC is
/// on. strongSwan 5.9's userspace ESP (kernel-libipsec) installs the route into its TUN only
/// from a host address inside the local traffic selector, and the host's address on the RLOC
/// port's subnet is one; our RLOC itself belongs to pxtr, not to the host.
pub fn manage(
    ipsec: Ipsec,
    mut tunnels: Tunnels,
    local_ts: Option<IpNet>,
    stop: StopFlag,
    tx: Sender<SaChange>,
) {
    let path = PathBuf::from(&ipsec.vici_socket);
    let mode = tunnels.mode();
    let peers = &ipsec.peers;
    let mut st = Peers::new(peers.len());
    let mut warned = false;
    while !stop.is_stopped() {
        tunnels.poll(peers);
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
        tracing::info!(socket = %path.display(), %mode, "connected to strongSwan");
        tunnels.charon_restarted();
        tunnels.poll(peers);
        if tunnels.tun_missing() {
            tracing::warn!(
                dev = kernel::LIBIPSEC_TUN,
                "ipsec.mode is libipsec but charon made no TUN: load its kernel-libipsec plugin \
                 (before kernel-netlink); the peers stay down until the TUN is there"
            );
        }
        st.loaded.iter_mut().for_each(|l| *l = false);
        load_missing(&mut c, &ipsec, &mut st, local_ts, mode);
        for ev in ["child-updown", "ike-updown", "child-rekey"] {
            if let Err(e) = c.register(ev) {
                tracing::error!(%e, event = ev, "cannot follow strongSwan's SA events");
            }
        }
        // Peers without a child SA are initiated again every few seconds (a first try can
        // fail, e.g. before the host's tunnel routes exist).
        let mut next_try = Instant::now() + RETRY;
        loop {
            if stop.is_stopped() {
                return;
            }
            if Instant::now() >= next_try {
                next_try = Instant::now() + RETRY;
                load_missing(&mut c, &ipsec, &mut st, local_ts, mode);
                for (i, p) in peers.iter().enumerate() {
                    if st.loaded[i] && st.children[i].is_empty() {
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
            tunnels.poll(peers);
            match c.next_event() {
                Ok(Some((name, msg))) => {
                    if let Some(ev) = sa_event(&name, &msg, peers) {
                        tracing::debug!(?ev, "IPsec SA event");
                        match ev {
                            SaEvent::ChildUp(i, ids) => st.children[i].extend(ids),
                            SaEvent::ChildDown(i, ids) => {
                                for id in ids {
                                    st.children[i].remove(&id);
                                }
                            }
                            SaEvent::IkeDown(i) => st.children[i].clear(),
                            SaEvent::ChildRekey(i, pairs) => {
                                for (old, new) in pairs {
                                    st.children[i].remove(&old);
                                    st.children[i].insert(new);
                                }
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%e, "lost strongSwan's VICI connection: IPsec peers down");
                    st.children.iter_mut().for_each(HashSet::clear);
                    st.report(peers, &tunnels, &tx);
                    break;
                }
            }
            st.report(peers, &tunnels, &tx);
        }
    }
}

/// A peer's X.509 credentials, read from its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCredentials {
    pub certificate: Vec<u8>,
    pub private_key: creds::PrivateKey,
    pub ca_certificate: Vec<u8>,
}

/// Reads `peer`'s certificate, private key and CA certificate (`auth = "pubkey"`); an error
/// names the peer and the file.
pub fn peer_credentials(peer: &IpsecPeer) -> Result<PeerCredentials, Error> {
    let err = |what, source| Error::Credential {
        peer: peer.name.clone(),
        what,
        source,
    };
    Ok(PeerCredentials {
        certificate: creds::read_certificate(Path::new(&peer.certificate))
            .map_err(|e| err("certificate", e))?,
        private_key: creds::read_private_key(Path::new(&peer.private_key))
            .map_err(|e| err("private_key", e))?,
        ca_certificate: creds::read_certificate(Path::new(&peer.ca_certificate))
            .map_err(|e| err("ca_certificate", e))?,
    })
}

/// The `load-cert` message: an X.509 certificate (PEM or DER), a CA's when `ca` (charon then
/// trusts it as an authority).
pub fn load_cert(data: &[u8], ca: bool) -> Section {
    Section::new()
        .kv("type", "X509")
        .kv("flag", if ca { "CA" } else { "NONE" })
        .kv("data", data)
}

/// The `load-key` message: a private key (PEM or DER) and its type.
pub fn load_key(key: &creds::PrivateKey) -> Section {
    Section::new()
        .kv("type", key.kind.as_vici())
        .kv("data", &key.data)
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
///
/// With a pre-shared key both identities are the IKE addresses. With certificates (`creds`)
/// ours is `local_id`, else the subject of our certificate, which goes along as data; the
/// peer's is `remote_id`, else any identity its certificate proves — a certificate that must
/// chain up to the peer's CA (`cacerts`), not to any CA charon knows.
pub fn load_conn(
    peer: &IpsecPeer,
    index: usize,
    local_ts: IpNet,
    mode: IpsecMode,
    creds: Option<&PeerCredentials>,
) -> Section {
    let local = peer
        .local_address
        .map(|a| a.to_string())
        .unwrap_or_default();
    let remote = peer
        .remote_address
        .map(|a| a.to_string())
        .unwrap_or_default();
    let (local_auth, remote_auth) = match (peer.auth, creds) {
        (IpsecAuth::Pubkey, Some(c)) => {
            let mut l = Section::new()
                .kv("auth", "pubkey")
                .list("certs", [&c.certificate]);
            if !peer.local_id.is_empty() {
                l = l.kv("id", &peer.local_id);
            }
            let mut r = Section::new()
                .kv("auth", "pubkey")
                .list("cacerts", [&c.ca_certificate]);
            if !peer.remote_id.is_empty() {
                r = r.kv("id", &peer.remote_id);
            }
            (l, r)
        }
        (auth, _) => (
            Section::new().kv("auth", auth.as_str()).kv("id", &local),
            Section::new().kv("auth", auth.as_str()).kv("id", &remote),
        ),
    };
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
        // A rekey names the old and the new child SA.
        let rekey = Section::new().section(
            "cloud",
            Section::new().section(
                "child-sas",
                Section::new().section(
                    "cloud-8",
                    Section::new()
                        .section("old", Section::new().kv("uniqueid", "7"))
                        .section("new", Section::new().kv("uniqueid", "8")),
                ),
            ),
        );
        assert_eq!(
            sa_event("child-rekey", &rekey, &peers),
            Some(SaEvent::ChildRekey(1, vec![("7".into(), "8".into())]))
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
            None,
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
            None,
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

    fn creds() -> PeerCredentials {
        PeerCredentials {
            certificate: b"-----BEGIN CERTIFICATE-----\nours\n".to_vec(),
            private_key: creds::PrivateKey {
                kind: creds::KeyType::Rsa,
                data: b"key bytes".to_vec(),
            },
            ca_certificate: b"ca bytes".to_vec(),
        }
    }

    #[test]
    fn certificates_and_keys_go_to_charon_as_data() {
        let c = creds();
        let m = load_cert(&c.ca_certificate, true);
        assert_eq!(m.str("type").as_deref(), Some("X509"));
        assert_eq!(m.str("flag").as_deref(), Some("CA"));
        assert_eq!(m.get("data"), Some(&vici::Value::Str(b"ca bytes".to_vec())));
        assert_eq!(
            load_cert(&c.certificate, false).str("flag").as_deref(),
            Some("NONE")
        );
        let k = load_key(&c.private_key);
        assert_eq!(k.str("type").as_deref(), Some("rsa"));
        assert_eq!(
            k.get("data"),
            Some(&vici::Value::Str(b"key bytes".to_vec()))
        );
        let e = load_key(&creds::PrivateKey {
            kind: creds::KeyType::Ecdsa,
            data: vec![],
        });
        assert_eq!(e.str("type").as_deref(), Some("ecdsa"));
    }

    #[test]
    fn pubkey_connections_carry_the_certificate_and_pin_the_peers_ca() {
        let mut p = IpsecPeer {
            auth: IpsecAuth::Pubkey,
            psk: String::new(),
            ..peer()
        };
        let c = creds();
        let conn = |p: &IpsecPeer| {
            load_conn(
                p,
                0,
                "198.51.100.0/24".parse().unwrap(),
                IpsecMode::Libipsec,
                Some(&c),
            )
        };
        let m = conn(&p);
        let local = m.sub("cloud").unwrap().sub("local").unwrap();
        let remote = m.sub("cloud").unwrap().sub("remote").unwrap();
        assert_eq!(local.str("auth").as_deref(), Some("pubkey"));
        assert_eq!(
            local.get("certs"),
            Some(&vici::Value::List(vec![c.certificate.clone()])),
            "the certificate itself, not its file name"
        );
        // No identities configured: ours is the certificate's subject, the peer's whatever its
        // certificate (from its CA) proves.
        assert_eq!(local.get("id"), None);
        assert_eq!(remote.get("id"), None);
        assert_eq!(remote.str("auth").as_deref(), Some("pubkey"));
        assert_eq!(
            remote.get("cacerts"),
            Some(&vici::Value::List(vec![c.ca_certificate.clone()]))
        );
        p.local_id = "CN=pxtr-1".into();
        p.remote_id = "CN=xtr-1".into();
        let m = conn(&p);
        let cloud = m.sub("cloud").unwrap();
        assert_eq!(
            cloud.sub("local").unwrap().str("id").as_deref(),
            Some("CN=pxtr-1")
        );
        assert_eq!(
            cloud.sub("remote").unwrap().str("id").as_deref(),
            Some("CN=xtr-1")
        );
    }

    #[test]
    fn unreadable_credentials_name_the_peer_and_the_file() {
        let dir = std::env::temp_dir().join(format!("pxtr-peer-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, b"not a certificate").unwrap();
        let p = IpsecPeer {
            auth: IpsecAuth::Pubkey,
            certificate: cert.display().to_string(),
            private_key: dir.join("absent.key").display().to_string(),
            ca_certificate: cert.display().to_string(),
            ..peer()
        };
        let e = peer_credentials(&p).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Credential {
                    what: "certificate",
                    ..
                }
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("IPsec peer cloud: certificate ") && msg.contains("cert.pem"),
            "{msg}"
        );
        let good = "-----BEGIN CERTIFICATE-----\nMAIwAA==\n-----END CERTIFICATE-----\n";
        std::fs::write(&cert, good).unwrap();
        let msg = peer_credentials(&p).unwrap_err().to_string();
        assert!(
            msg.contains("IPsec peer cloud: private_key")
                && msg.contains("absent.key: cannot read"),
            "{msg}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
