//! IPsec toward cloud xTRs (issue #7): strongSwan drives IKEv2 and ESP; pxtr tells it what to
//! set up over VICI ([`vici`]) — the connection per configured peer, tunnelling our RLOC to
//! the peer's RLOC ranges, and its pre-shared key or certificates ([`creds`]) — follows its SA
//! events, and routes the peers' RLOC ranges into the tunnel ([`kernel`]).

pub mod creds;
pub mod kernel;
pub mod vici;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
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

/// What the manager tells the control core of a peer (by its name in `ipsec.peers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaChange {
    /// A child SA is up and the peer's RLOC ranges are routed into the tunnel.
    Up(String),
    /// No child SA is up (or its routes are not there) any more.
    Down(String),
    /// The peer left the configuration (live reload): its connection is unloaded from charon,
    /// its SAs terminated, its routes and interface removed. A `Down` came first if it was up.
    Removed(String),
}

/// What a VICI event (`child-updown`, `ike-updown`) says of one of our peers (by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaEvent {
    /// These child SAs (charon's unique ids) of peer `.0` came up, under IKE SA `.1` (its
    /// unique id).
    ChildUp(String, String, Vec<String>),
    /// These child SAs of peer `.0` went down.
    ChildDown(String, Vec<String>),
    /// IKE SA `.1` of peer `.0` went down, and every child SA under it (not those under
    /// another IKE SA of the peer: a connection set up anew on a reload while its old IKE SA
    /// is still being deleted).
    IkeDown(String, String),
    /// Child SAs of peer `.0` under IKE SA `.1` were rekeyed: (old unique id, new unique id).
    /// The new SA replaces the old one without a `child-updown` for either.
    ChildRekey(String, String, Vec<(String, String)>),
}

/// What a VICI event is about: charon names the IKE SA section after the connection (our
/// peer's name), lists its child SAs under `child-sas` with their `uniqueid`, and adds
/// `up = yes` when they came up. An IKE SA coming up says nothing of the children yet.
pub fn sa_event(name: &str, msg: &Section, peers: &[IpsecPeer]) -> Option<SaEvent> {
    let up = msg.str("up").as_deref() == Some("yes");
    let (peer, ike) = msg.entries.iter().find_map(|(k, v)| match v {
        vici::Value::Section(s) => peers.iter().any(|p| &p.name == k).then(|| (k.clone(), s)),
        _ => None,
    })?;
    let ike_id = ike.str("uniqueid").unwrap_or_default();
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
        return Some(SaEvent::ChildRekey(peer, ike_id, pairs));
    }
    if name == "list-sa" {
        // What charon has now (`list-sas`, asked on every connection): the installed child
        // SAs are up, whether or not we saw them come up.
        let installed: Vec<String> = ike
            .sub("child-sas")
            .map(|c| {
                c.entries
                    .iter()
                    .filter_map(|(k, v)| match v {
                        // Installed, or being rekeyed (child-rekey will swap it for the new
                        // one); not one already replaced (REKEYED: about to go, silently).
                        vici::Value::Section(s)
                            if matches!(
                                s.str("state").as_deref(),
                                Some("INSTALLED" | "REKEYING")
                            ) =>
                        {
                            Some(s.str("uniqueid").unwrap_or_else(|| k.clone()))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        return (!installed.is_empty()).then_some(SaEvent::ChildUp(peer, ike_id, installed));
    }
    match (name, up) {
        ("child-updown", true) => Some(SaEvent::ChildUp(peer, ike_id, children)),
        ("child-updown", false) => Some(SaEvent::ChildDown(peer, children)),
        ("ike-updown", false) => Some(SaEvent::IkeDown(peer, ike_id)),
        _ => None,
    }
}

/// How a new list of peers (live reload) differs from the running one, by peer name: peers
/// added, removed, and changed in any way (addresses, RLOC ranges, authentication, key or
/// credential files, identities, proposals). A changed peer is set up again from scratch;
/// the others are not touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerDiff {
    /// In the new list's order.
    pub added: Vec<String>,
    /// In the old list's order.
    pub removed: Vec<String>,
    /// In the new list's order.
    pub changed: Vec<String>,
}

impl PeerDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Whether `name` is set up anew (added or changed).
    pub fn anew(&self, name: &str) -> bool {
        self.added.iter().chain(&self.changed).any(|n| n == name)
    }
}

/// Compares two (validated: names unique) lists of peers.
pub fn peer_diff(old: &[IpsecPeer], new: &[IpsecPeer]) -> PeerDiff {
    let find = |list: &'_ [IpsecPeer], name: &str| list.iter().find(|p| p.name == name).cloned();
    let mut d = PeerDiff::default();
    for p in new {
        match find(old, &p.name) {
            None => d.added.push(p.name.clone()),
            Some(o) if o != *p => d.changed.push(p.name.clone()),
            Some(_) => {}
        }
    }
    d.removed = old
        .iter()
        .filter(|p| find(new, &p.name).is_none())
        .map(|p| p.name.clone())
        .collect();
    d
}

/// What the manager knows of one peer, and what it told the control core.
#[derive(Debug, Default)]
struct PeerSt {
    /// Loaded into the charon we are connected to (key or certificates, and connection).
    loaded: bool,
    /// Loaded into a charon at some point: unloaded from it when the peer goes (if that
    /// charon is still there).
    ever_loaded: bool,
    /// The last error loading it, logged once.
    load_error: Option<String>,
    /// The child SAs up (charon's unique ids) and the IKE SA each is under: the peer is up
    /// while it has one (both sides initiating can leave two for a moment, and the one charon
    /// then deletes must not take the peer down).
    children: HashMap<String, String>,
    /// What was last reported on the channel.
    reported: bool,
}

/// The peers the manager runs, by name, and what is left to unload from charon.
struct Peers {
    list: Vec<IpsecPeer>,
    st: HashMap<String, PeerSt>,
    /// Peers removed or changed whose connection (and pre-shared key) charon may still have.
    unload: Vec<IpsecPeer>,
    /// Removed peers to report [`SaChange::Removed`] once charon has been told.
    removed: Vec<String>,
}

impl Peers {
    fn new(list: Vec<IpsecPeer>) -> Peers {
        let st = list
            .iter()
            .map(|p| (p.name.clone(), PeerSt::default()))
            .collect();
        Peers {
            list,
            st,
            unload: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// Reports the peers whose state changed: a peer is up while it has a child SA and its
    /// RLOC ranges are routed into the tunnel.
    fn report(&mut self, tunnels: &Tunnels, tx: &Sender<SaChange>) {
        for p in &self.list {
            let Some(st) = self.st.get_mut(&p.name) else {
                continue;
            };
            let up = !st.children.is_empty() && tunnels.ready(&p.name);
            if up != st.reported {
                st.reported = up;
                let change = if up {
                    SaChange::Up(p.name.clone())
                } else {
                    SaChange::Down(p.name.clone())
                };
                tracing::info!(?change, "IPsec SA");
                let _ = tx.send(change);
            }
        }
    }

    fn on_event(&mut self, ev: SaEvent) {
        let (SaEvent::ChildUp(n, ..)
        | SaEvent::ChildDown(n, _)
        | SaEvent::IkeDown(n, _)
        | SaEvent::ChildRekey(n, ..)) = &ev;
        let Some(st) = self.st.get_mut(n) else {
            return;
        };
        match ev {
            SaEvent::ChildUp(_, ike, ids) => {
                st.children
                    .extend(ids.into_iter().map(|id| (id, ike.clone())));
            }
            SaEvent::ChildDown(_, ids) => {
                for id in ids {
                    st.children.remove(&id);
                }
            }
            SaEvent::IkeDown(_, ike) => st.children.retain(|_, i| *i != ike),
            SaEvent::ChildRekey(_, ike, pairs) => {
                for (old, new) in pairs {
                    st.children.remove(&old);
                    st.children.insert(new, ike.clone());
                }
            }
        }
    }

    /// Takes a new list of peers (live reload): removed and changed peers go — reported down
    /// if they were up, their kernel side removed, their connection queued for unloading
    /// ([`Peers::unload_gone`] reports removed ones removed); added and changed ones are
    /// loaded by the next [`load_missing`]. Unchanged peers keep their SAs, routes and state.
    fn update(&mut self, new: Vec<IpsecPeer>, tunnels: &mut Tunnels, tx: &Sender<SaChange>) {
        let d = peer_diff(&self.list, &new);
        if d.is_empty() {
            return;
        }
        tracing::info!(added = ?d.added, removed = ?d.removed, changed = ?d.changed, "IPsec peers reloaded");
        for name in d.removed.iter().chain(&d.changed) {
            let st = self.st.remove(name).unwrap_or_default();
            if st.reported {
                let change = SaChange::Down(name.clone());
                tracing::info!(?change, "IPsec SA");
                let _ = tx.send(change);
            }
            if st.ever_loaded {
                if let Some(old) = self.list.iter().find(|p| &p.name == name) {
                    self.unload.push(old.clone());
                }
            }
            tunnels.remove(name);
        }
        for name in d.added.iter().chain(&d.changed) {
            self.st.insert(name.clone(), PeerSt::default());
        }
        self.removed.extend(d.removed);
        self.list = new;
    }

    /// Unloads from charon what removed and changed peers had there: their IKE SA (and its
    /// child SAs) is terminated, their connection and pre-shared key unloaded. Certificates
    /// and private keys stay loaded (another peer may use the same ones; without a
    /// connection they authenticate nothing, and each connection pins its peer's CA).
    /// Then removed peers are reported [`SaChange::Removed`].
    fn unload_gone(&mut self, c: &mut Client, tx: &Sender<SaChange>) {
        for p in std::mem::take(&mut self.unload) {
            let req = Section::new().kv("ike", &p.name).kv("timeout", "-1");
            if let Err(e) = c.call("terminate", req) {
                tracing::debug!(peer = %p.name, %e, "IPsec terminate");
            }
            match c.call("unload-conn", Section::new().kv("name", &p.name)) {
                Ok(_) => tracing::info!(peer = %p.name, "IPsec connection unloaded"),
                Err(e) => tracing::debug!(peer = %p.name, %e, "IPsec unload-conn"),
            }
            if p.auth == IpsecAuth::Psk {
                let id = Section::new().kv("id", shared_id(&p));
                if let Err(e) = c.call("unload-shared", id) {
                    tracing::debug!(peer = %p.name, %e, "IPsec unload-shared");
                }
            }
        }
        for name in self.removed.drain(..) {
            tracing::info!(peer = %name, "IPsec peer removed");
            let _ = tx.send(SaChange::Removed(name));
        }
    }
}

/// Loads the peers not loaded yet into charon; errors are logged once each and the peer stays
/// down (not initiated) until a later try succeeds.
fn load_missing(
    c: &mut Client,
    peers: &mut Peers,
    tunnels: &mut Tunnels,
    local_ts: Option<IpNet>,
    mode: IpsecMode,
) {
    for p in &peers.list {
        let Some(st) = peers.st.get_mut(&p.name) else {
            continue;
        };
        if st.loaded {
            continue;
        }
        let ts = local_ts
            .or_else(|| p.local_address.map(IpNet::from))
            .unwrap_or_else(|| IpNet::from(IpAddr::from([0, 0, 0, 0])));
        match load_peer(c, p, tunnels.slot(&p.name), ts, mode) {
            Ok(()) => {
                tracing::info!(peer = %p.name, auth = %p.auth, "IPsec connection loaded");
                st.loaded = true;
                st.ever_loaded = true;
                st.load_error = None;
            }
            Err(e) => {
                let msg = e.to_string();
                if st.load_error.as_deref() != Some(&msg) {
                    tracing::error!(peer = %p.name, error = %msg, "IPsec peer not loaded: it stays down; retrying every 5 s");
                    st.load_error = Some(msg);
                }
            }
        }
    }
}

/// Loads one peer: its pre-shared key, or its certificate, private key and CA certificate;
/// then its connection (`slot`: its XFRM interface's number).
fn load_peer(
    c: &mut Client,
    p: &IpsecPeer,
    slot: usize,
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
        load_conn(p, slot, local_ts, mode, creds.as_ref()),
    )
    .map_err(vici)?;
    Ok(())
}

/// Runs until `stop`: connects to charon's VICI socket (again after losing it), loads every
/// peer's credentials and connection, sets the tunnels' kernel side up (`tunnels`), and
/// reports on `tx` when a peer comes up or goes down. Losing charon reports every peer down.
/// A new list of peers on `updates` (live reload) is applied as it comes: removed and changed
/// peers are unloaded and their kernel side removed, added and changed ones loaded; the
/// others keep their SAs. When it returns, `tunnels` is dropped: the routes and interfaces
/// pxtr made are removed.
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
    updates: Receiver<Vec<IpsecPeer>>,
) {
    let path = PathBuf::from(&ipsec.vici_socket);
    let mode = tunnels.mode();
    let mut peers = Peers::new(ipsec.peers);
    let mut warned = false;
    while !stop.is_stopped() {
        if let Some(new) = updates.try_iter().last() {
            peers.update(new, &mut tunnels, &tx);
        }
        tunnels.poll(&peers.list);
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
        tunnels.poll(&peers.list);
        if tunnels.tun_missing() {
            tracing::warn!(
                dev = kernel::LIBIPSEC_TUN,
                "ipsec.mode is libipsec but charon made no TUN: load its kernel-libipsec plugin \
                 (before kernel-netlink); the peers stay down until the TUN is there"
            );
        }
        peers.st.values_mut().for_each(|s| s.loaded = false);
        for ev in ["child-updown", "ike-updown", "child-rekey"] {
            if let Err(e) = c.register(ev) {
                tracing::error!(%e, event = ev, "cannot follow strongSwan's SA events");
            }
        }
        // The SAs charon already has (pxtr restarted, or the VICI connection came back): what
        // the events from now on change. Without this a peer whose SA stayed up would look
        // down until initiated again (which makes a duplicate child SA).
        let listed = c
            .register("list-sa")
            .and_then(|()| c.call("list-sas", Section::new()))
            .and_then(|_| c.unregister("list-sa"));
        if let Err(e) = listed {
            tracing::warn!(%e, "cannot list strongSwan's SAs: peers count as down until their SAs come up");
        }
        peers.unload_gone(&mut c, &tx);
        load_missing(&mut c, &mut peers, &mut tunnels, local_ts, mode);
        // Peers without a child SA are initiated again every few seconds (a first try can
        // fail, e.g. before the host's tunnel routes exist).
        let mut next_try = Instant::now() + RETRY;
        loop {
            if stop.is_stopped() {
                return;
            }
            if let Some(new) = updates.try_iter().last() {
                peers.update(new, &mut tunnels, &tx);
                peers.unload_gone(&mut c, &tx);
                // Added and changed peers are loaded (and so initiated) at once.
                load_missing(&mut c, &mut peers, &mut tunnels, local_ts, mode);
            }
            if Instant::now() >= next_try {
                next_try = Instant::now() + RETRY;
                load_missing(&mut c, &mut peers, &mut tunnels, local_ts, mode);
                for p in &peers.list {
                    let Some(st) = peers.st.get(&p.name) else {
                        continue;
                    };
                    if st.loaded && st.children.is_empty() {
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
            tunnels.poll(&peers.list);
            match c.next_event() {
                Ok(Some((name, msg))) => {
                    if let Some(ev) = sa_event(&name, &msg, &peers.list) {
                        tracing::debug!(?ev, "IPsec SA event");
                        peers.on_event(ev);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%e, "lost strongSwan's VICI connection: IPsec peers down");
                    peers.st.values_mut().for_each(|s| s.children.clear());
                    peers.report(&tunnels, &tx);
                    break;
                }
            }
            peers.report(&tunnels, &tx);
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

/// The `if_id` of the XFRM interface in slot `slot` (each peer has one while it is configured,
/// see [`Tunnels::slot`]; its SAs and policies carry it, so the kernel routes the peer's RLOC
/// ranges into that interface).
pub fn xfrm_if_id(slot: usize) -> u32 {
    0x7078_0000 + slot as u32
}

/// The `load-conn` message for `peer` (configuration validated; `slot`: its XFRM interface's
/// number): IKEv2 between its addresses, one child SA in tunnel mode from `local_ts` (our RLOC, or the subnet of the
/// RLOC port it is on) to the peer's RLOC ranges, brought up at once and kept up (dead-peer
/// detection restarts it).
///
/// With a pre-shared key both identities are the IKE addresses. With certificates (`creds`)
/// ours is `local_id`, else the subject of our certificate, which goes along as data; the
/// peer's is `remote_id`, else any identity its certificate proves — a certificate that must
/// chain up to the peer's CA (`cacerts`), not to any CA charon knows.
pub fn load_conn(
    peer: &IpsecPeer,
    slot: usize,
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
        let id = xfrm_if_id(slot).to_string();
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

/// The id pxtr gives `peer`'s pre-shared key in charon (to unload it by).
pub fn shared_id(peer: &IpsecPeer) -> String {
    format!("pxtr-{}", peer.name)
}

/// The `load-shared` message with `peer`'s pre-shared key, for both IKE identities.
pub fn load_shared(peer: &IpsecPeer) -> Section {
    let ids = [peer.local_address, peer.remote_address]
        .into_iter()
        .flatten()
        .map(|a| a.to_string());
    Section::new()
        .kv("id", shared_id(peer))
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
            Some(SaEvent::ChildUp("cloud".into(), "1".into(), seven.clone()))
        );
        assert_eq!(
            sa_event("child-updown", &ev(false, "cloud"), &peers),
            Some(SaEvent::ChildDown("cloud".into(), seven))
        );
        assert_eq!(
            sa_event("ike-updown", &ev(false, "other"), &peers),
            Some(SaEvent::IkeDown("other".into(), "1".into()))
        );
        // What list-sas streams: installed child SAs (and one being rekeyed) count as up, one
        // already replaced does not.
        let listed = Section::new().section(
            "cloud",
            Section::new().kv("uniqueid", "3").section(
                "child-sas",
                Section::new()
                    .section(
                        "cloud-9",
                        Section::new().kv("uniqueid", "9").kv("state", "INSTALLED"),
                    )
                    .section(
                        "cloud-10",
                        Section::new().kv("uniqueid", "10").kv("state", "REKEYING"),
                    )
                    .section(
                        "cloud-8",
                        Section::new().kv("uniqueid", "8").kv("state", "REKEYED"),
                    ),
            ),
        );
        assert_eq!(
            sa_event("list-sa", &listed, &peers),
            Some(SaEvent::ChildUp(
                "cloud".into(),
                "3".into(),
                vec!["9".to_string(), "10".to_string()]
            ))
        );
        // A rekey names the old and the new child SA.
        let rekey = Section::new().section(
            "cloud",
            Section::new().kv("uniqueid", "3").section(
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
            Some(SaEvent::ChildRekey(
                "cloud".into(),
                "3".into(),
                vec![("7".into(), "8".into())]
            ))
        );
        // IKE up alone is not a tunnel yet; a connection we did not load is not ours.
        assert_eq!(sa_event("ike-updown", &ev(true, "cloud"), &peers), None);
        assert_eq!(
            sa_event("child-updown", &ev(true, "stranger"), &peers),
            None
        );
    }

    #[test]
    fn peers_are_told_apart_by_name_and_any_change_sets_one_up_anew() {
        let named = |n: &str| IpsecPeer {
            name: n.into(),
            ..peer()
        };
        let old = vec![named("a"), named("b"), named("c"), named("d")];
        assert!(peer_diff(&old, &old).is_empty());
        // Reordered only: nothing to do.
        let mut reordered = old.clone();
        reordered.reverse();
        assert!(peer_diff(&old, &reordered).is_empty());
        let mut new = vec![named("e"), named("a"), named("b"), named("c")];
        new[2].remote_rlocs.push("198.18.0.0/24".parse().unwrap());
        new[3].psk = "another-key-0123".into();
        let d = peer_diff(&old, &new);
        assert_eq!(
            d,
            PeerDiff {
                added: vec!["e".into()],
                removed: vec!["d".into()],
                changed: vec!["b".into(), "c".into()],
            }
        );
        assert!(d.anew("e") && d.anew("b") && !d.anew("a") && !d.anew("d"));
        // Every field counts: proposals, auth, addresses, identities, files.
        for edit in [
            (|p: &mut IpsecPeer| p.esp_proposals = vec!["aes128-sha256".into()])
                as fn(&mut IpsecPeer),
            |p| p.ike_proposals = vec!["aes128-sha256-modp2048".into()],
            |p| p.local_address = Some("198.51.100.2".parse().unwrap()),
            |p| p.remote_address = Some("203.0.113.2".parse().unwrap()),
            |p| p.auth = IpsecAuth::Pubkey,
            |p| p.certificate = "other.pem".into(),
            |p| p.remote_id = "CN=other".into(),
        ] {
            let mut n = old.clone();
            edit(&mut n[0]);
            assert_eq!(peer_diff(&old, &n).changed, vec!["a".to_string()]);
        }
    }

    #[test]
    fn a_reloaded_list_reports_gone_peers_and_keeps_the_others_state() {
        let named = |n: &str| IpsecPeer {
            name: n.into(),
            ..peer()
        };
        let mut peers = Peers::new(vec![named("a"), named("b"), named("c")]);
        let mut tunnels = Tunnels::with_mode(IpsecMode::Libipsec, kernel::Ip::host());
        for (n, st) in &mut peers.st {
            st.children.insert(format!("{n}-1"), "1".into());
            st.reported = true;
            st.ever_loaded = true;
            st.loaded = true;
        }
        let (tx, rx) = crossbeam::channel::unbounded();
        let mut b = named("b");
        b.psk = "a-new-key-for-b-0".into();
        peers.update(vec![named("a"), b, named("d")], &mut tunnels, &tx);
        let got: Vec<SaChange> = rx.try_iter().collect();
        assert_eq!(
            got,
            vec![SaChange::Down("c".into()), SaChange::Down("b".into())]
        );
        // "c" is reported removed once charon has been told.
        assert_eq!(peers.removed, vec!["c".to_string()]);
        // "a" untouched; "b" (changed) and "d" (added) start over; "c" and the old "b" are
        // to be unloaded from charon.
        assert!(peers.st["a"].loaded && peers.st["a"].reported);
        assert!(!peers.st["b"].loaded && peers.st["b"].children.is_empty());
        assert!(!peers.st["d"].loaded);
        assert!(!peers.st.contains_key("c"));
        let unload: Vec<(&str, &str)> = peers
            .unload
            .iter()
            .map(|p| (p.name.as_str(), p.psk.as_str()))
            .collect();
        assert_eq!(
            unload,
            vec![("c", "0123456789abcdef"), ("b", "0123456789abcdef")]
        );
        // Events of a peer that went are ignored.
        peers.on_event(SaEvent::ChildUp("c".into(), "2".into(), vec!["c-2".into()]));
        assert!(!peers.st.contains_key("c"));
        // The old IKE SA of "b" going down after "b" came up anew leaves the new one alone.
        peers.on_event(SaEvent::ChildUp("b".into(), "5".into(), vec!["b-6".into()]));
        peers.on_event(SaEvent::IkeDown("b".into(), "1".into()));
        assert_eq!(peers.st["b"].children.len(), 1);
        peers.on_event(SaEvent::IkeDown("b".into(), "5".into()));
        assert!(peers.st["b"].children.is_empty());
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
