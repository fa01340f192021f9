//! IPsec SAs between two strongSwan charons, each in a network namespace of the test's own
//! (joined by a veth pair) with userspace ESP (kernel-libipsec: this kernel has no ESP): pxtr's
//! IPsec manager loads the connection into one side, the test loads the mirror image into the
//! other, and the manager reports the SA up — what makes a peer's RLOCs reachable — once the
//! peer's RLOC range is routed into `ipsec0`. With a pre-shared key, and with certificates made
//! at test time (a wrong CA keeps the peer down). Also: which ESP `mode = "auto"` picks on this
//! host, and what `mode = "xfrm"` says where the kernel cannot do it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};
use pxtr::config::{Ipsec, IpsecAuth, IpsecMode, IpsecPeer};
use pxtr::dpdk::StopFlag;
use pxtr::ipsec::kernel::{Ip, Tunnels};
use pxtr::ipsec::vici::{Client, Section, Value};
use pxtr::ipsec::{
    load_cert, load_conn, load_key, load_shared, manage, peer_credentials, SaChange,
};

mod common;

use common::charon::{Charon, Netns};

fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().expect("ip");
    assert!(ok.success(), "ip {}", args.join(" "));
}

fn ip_out(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn peer(name: &str, local: &str, remote: &str, remote_rloc: &str) -> IpsecPeer {
    IpsecPeer {
        name: name.into(),
        local_address: Some(local.parse().unwrap()),
        remote_address: Some(remote.parse().unwrap()),
        remote_rlocs: vec![remote_rloc.parse().unwrap()],
        auth: IpsecAuth::Psk,
        psk: "a-test-key-for-the-sa-test".into(),
        ike_proposals: vec!["aes256-sha256-modp2048".into()],
        // What Debian's strongswan-charon and libcharon-extra-plugins provide: AES, SHA-2,
        // MODP groups (gmp); no AES-GCM without the openssl plugin.
        esp_proposals: vec!["aes256-sha256".into()],
        ..IpsecPeer::default()
    }
}

/// The enterprise (pxtr's side, namespace `a`, IKE 10.99.0.1, RLOC 192.0.2.1) and the cloud
/// (namespace `b`, IKE 10.99.0.2, RLOC 203.0.113.1), each with its charon.
struct Pair {
    // Field order is drop order: charons before their namespaces.
    enterprise: Charon,
    cloud: Charon,
    ns_a: Netns,
    ns_b: Netns,
    /// The cloud's end of the veth pair.
    vb: String,
    dir: PathBuf,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let pid = std::process::id();
        let (na, nb) = (format!("px{tag}-a-{pid}"), format!("px{tag}-b-{pid}"));
        let (va, vb) = (format!("px{tag}{pid}a"), format!("px{tag}{pid}b"));
        let (ns_a, ns_b) = (Netns::new(&na), Netns::new(&nb));
        let dir = std::env::temp_dir().join(format!("pxtr-ipsec-{tag}-{pid}"));
        let enterprise = Charon::start(&ns_a.0, &dir.join("a"));
        let cloud = Charon::start(&ns_b.0, &dir.join("b"));
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &va, "netns", &na]);
        ip(&["link", "set", &vb, "netns", &nb]);
        for (ns, dev, addr) in [(&na, &va, "10.99.0.1/24"), (&nb, &vb, "10.99.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // Each side's RLOC is an address of its host (charon routes the peer's RLOCs into the
        // tunnel from it).
        ip(&["-n", &na, "addr", "add", "192.0.2.1/32", "dev", "lo"]);
        ip(&["-n", &nb, "addr", "add", "203.0.113.1/32", "dev", "lo"]);
        Pair {
            enterprise,
            cloud,
            ns_a,
            ns_b,
            vb,
            dir,
        }
    }

    /// Loads the cloud side: the mirror image of what pxtr loads, answering only (the
    /// enterprise side initiates). RLOCs apart from the IKE addresses (the RLOC space is what
    /// the tunnel carries; routing the IKE peer's own address into the tunnel would swallow
    /// IKE itself).
    fn load_cloud(&self, to_pxtr: &IpsecPeer) {
        self.load_cloud_ts(to_pxtr, "203.0.113.1/32");
    }

    /// [`Pair::load_cloud`] with another RLOC on the cloud's side of the tunnel.
    fn load_cloud_ts(&self, to_pxtr: &IpsecPeer, local_ts: &str) {
        let mut c =
            Client::connect(&self.cloud.socket, Duration::from_secs(10)).expect("VICI (cloud)");
        let creds = match to_pxtr.auth {
            IpsecAuth::Psk => {
                c.call("load-shared", load_shared(to_pxtr))
                    .expect("key (cloud)");
                None
            }
            IpsecAuth::Pubkey => {
                let creds = peer_credentials(to_pxtr).expect("cloud's credentials");
                c.call("load-cert", load_cert(&creds.certificate, false))
                    .expect("certificate (cloud)");
                c.call("load-cert", load_cert(&creds.ca_certificate, true))
                    .expect("CA (cloud)");
                c.call("load-key", load_key(&creds.private_key))
                    .expect("key (cloud)");
                Some(creds)
            }
        };
        let mut conn = load_conn(
            to_pxtr,
            0,
            local_ts.parse().unwrap(),
            IpsecMode::Libipsec,
            creds.as_ref(),
        );
        set_in_conn(&mut conn, "start_action", "trap");
        c.call("load-conn", conn).expect("connection (cloud)");
    }

    fn logs(&self) -> String {
        format!(
            "enterprise charon:\n{}\ncloud charon:\n{}",
            self.enterprise.log(),
            self.cloud.log()
        )
    }

    fn routes_a(&self) -> String {
        ip_out(&["-n", &self.ns_a.0, "route", "show"])
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// pxtr's manager for the enterprise side, as `pxtr run` starts it, but driving the kernel of
/// the enterprise's namespace.
struct Manager {
    stop: StopFlag,
    thread: Option<std::thread::JoinHandle<()>>,
    rx: Receiver<SaChange>,
    peers: Sender<Vec<IpsecPeer>>,
}

impl Manager {
    fn start(pair: &Pair, peers: Vec<IpsecPeer>) -> Manager {
        let ipsec = Ipsec {
            mode: IpsecMode::Libipsec,
            vici_socket: pair.enterprise.socket.display().to_string(),
            peers,
        };
        let tunnels = Tunnels::with_mode(IpsecMode::Libipsec, Ip::in_netns(&pair.ns_a.0));
        let stop = StopFlag::new();
        let (tx, rx) = crossbeam::channel::unbounded();
        let (peers, updates) = crossbeam::channel::unbounded();
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            manage(
                ipsec,
                tunnels,
                Some("192.0.2.1/32".parse().unwrap()),
                st,
                tx,
                updates,
            )
        });
        Manager {
            stop,
            thread: Some(thread),
            rx,
            peers,
        }
    }

    /// A new list of peers, as a live reload hands it over.
    fn reload(&self, peers: Vec<IpsecPeer>) {
        self.peers.send(peers).expect("the manager runs");
    }

    /// Stops it; panics if its thread did.
    fn stop(mut self) {
        self.stop.stop();
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the manager panicked");
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn the_manager_reports_the_sa_to_the_cloud_xtr_up() {
    let pair = Pair::new("sa");
    pair.load_cloud(&peer("to-pxtr", "10.99.0.2", "10.99.0.1", "192.0.2.1/32"));
    assert!(
        !pair.routes_a().contains("203.0.113.0/24"),
        "{}",
        pair.routes_a()
    );
    let cloud = peer("cloud-xtr", "10.99.0.1", "10.99.0.2", "203.0.113.0/24");
    let m = Manager::start(&pair, vec![cloud.clone()]);
    let got = m.rx.recv_timeout(Duration::from_secs(30));
    assert_eq!(got, Ok(SaChange::Up("cloud-xtr".into())), "{}", pair.logs());
    // Userspace ESP: pxtr routed the peer's RLOC range into strongSwan's TUN itself.
    let routes = pair.routes_a();
    assert!(
        routes
            .lines()
            .any(|l| l.starts_with("203.0.113.0/24 dev ipsec0")),
        "{routes}"
    );
    let before = child_ids(&pair, "cloud-xtr");
    assert_eq!(before.len(), 1, "{before:?}");
    m.stop();
    // ... and removed it when it stopped.
    let routes = pair.routes_a();
    assert!(!routes.contains("203.0.113.0/24"), "{routes}");

    // pxtr restarted while the SA stayed up in charon: the new manager finds it (list-sas)
    // and reports the peer up at once (well before its 5 s re-initiation), with no second
    // child SA.
    let m = Manager::start(&pair, vec![cloud]);
    let got = m.rx.recv_timeout(Duration::from_secs(3));
    assert_eq!(got, Ok(SaChange::Up("cloud-xtr".into())), "{}", pair.logs());
    assert_eq!(child_ids(&pair, "cloud-xtr"), before, "{}", pair.logs());
    m.stop();
}

/// The sections of the `event` events charon streams in answer to `command` (`list-sas`:
/// `list-sa`, `list-conns`: `list-conn`).
fn vici_list(socket: &Path, command: &str, event: &str, req: Section) -> Vec<Section> {
    let mut c = Client::connect(socket, Duration::from_millis(500)).expect("VICI");
    c.register(event).expect("register");
    c.call(command, req).expect(command);
    let mut out = Vec::new();
    // The events came before the answer: they are queued.
    while let Ok(Some((name, msg))) = c.next_event() {
        if name == event {
            out.push(msg);
        }
    }
    out
}

/// The unique ids of the installed child SAs of connection `conn` in the enterprise's charon.
fn child_ids(pair: &Pair, conn: &str) -> Vec<String> {
    let sas = vici_list(
        &pair.enterprise.socket,
        "list-sas",
        "list-sa",
        Section::new().kv("ike", conn),
    );
    let mut ids: Vec<String> = sas
        .iter()
        .filter_map(|m| m.sub(conn)?.sub("child-sas").cloned())
        .flat_map(|children| {
            children.entries.into_iter().filter_map(|(_, v)| match v {
                Value::Section(c) if c.str("state").as_deref() == Some("INSTALLED") => {
                    c.str("uniqueid")
                }
                _ => None,
            })
        })
        .collect();
    ids.sort();
    ids
}

/// The connections loaded into the enterprise's charon.
fn conns(pair: &Pair) -> Vec<String> {
    let mut names: Vec<String> = vici_list(
        &pair.enterprise.socket,
        "list-conns",
        "list-conn",
        Section::new(),
    )
    .into_iter()
    .flat_map(|m| m.entries.into_iter().map(|(k, _)| k))
    .collect();
    names.sort();
    names
}

#[test]
fn peers_added_changed_and_removed_live_leave_the_other_peers_sa_alone() {
    let pair = Pair::new("lv");
    // A second cloud xTR on the cloud's charon: IKE 10.99.0.3, RLOC 198.18.0.1.
    let nb = pair.ns_b.0.clone();
    ip(&["-n", &nb, "addr", "add", "10.99.0.3/24", "dev", &pair.vb]);
    ip(&["-n", &nb, "addr", "add", "198.18.0.1/32", "dev", "lo"]);
    pair.load_cloud(&peer("to-pxtr", "10.99.0.2", "10.99.0.1", "192.0.2.1/32"));
    pair.load_cloud_ts(
        &peer("to-pxtr-2", "10.99.0.3", "10.99.0.1", "192.0.2.1/32"),
        "198.18.0.1/32",
    );
    let first = peer("cloud-xtr", "10.99.0.1", "10.99.0.2", "203.0.113.0/24");
    let second = peer("cloud-2", "10.99.0.1", "10.99.0.3", "198.18.0.0/24");
    let up = |n: &str| Ok(SaChange::Up(n.into()));
    let down = |n: &str| Ok(SaChange::Down(n.into()));
    let wait = Duration::from_secs(30);

    let m = Manager::start(&pair, vec![first.clone()]);
    assert_eq!(m.rx.recv_timeout(wait), up("cloud-xtr"), "{}", pair.logs());
    let ids = child_ids(&pair, "cloud-xtr");
    assert_eq!(ids.len(), 1, "{ids:?}");

    // Added live: it comes up; the first peer reports nothing (every report is checked in
    // order below) and keeps its child SA.
    m.reload(vec![first.clone(), second.clone()]);
    assert_eq!(m.rx.recv_timeout(wait), up("cloud-2"), "{}", pair.logs());
    settles_up(&m.rx, "cloud-2", &|| pair.logs());
    assert!(
        pair.routes_a().contains("198.18.0.0/24 dev ipsec0"),
        "{}",
        pair.routes_a()
    );
    assert_eq!(conns(&pair), vec!["cloud-2", "cloud-xtr"]);

    // Changed live (its RLOC range): set up anew, down then up, with the new route only.
    let mut changed = second.clone();
    changed.remote_rlocs = vec!["198.18.0.0/25".parse().unwrap()];
    m.reload(vec![first.clone(), changed]);
    assert_eq!(m.rx.recv_timeout(wait), down("cloud-2"), "{}", pair.logs());
    assert_eq!(m.rx.recv_timeout(wait), up("cloud-2"), "{}", pair.logs());
    settles_up(&m.rx, "cloud-2", &|| pair.logs());
    let routes = pair.routes_a();
    assert!(routes.contains("198.18.0.0/25 dev ipsec0"), "{routes}");
    assert!(!routes.contains("198.18.0.0/24"), "{routes}");

    // Removed live: reported down and removed; its connection, SAs and route are gone.
    m.reload(vec![first.clone()]);
    assert_eq!(m.rx.recv_timeout(wait), down("cloud-2"), "{}", pair.logs());
    assert_eq!(
        m.rx.recv_timeout(wait),
        Ok(SaChange::Removed("cloud-2".into()))
    );
    assert_eq!(conns(&pair), vec!["cloud-xtr"]);
    assert!(
        !pair.routes_a().contains("198.18.0.0"),
        "{}",
        pair.routes_a()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !child_ids(&pair, "cloud-2").is_empty() {
        assert!(
            Instant::now() < deadline,
            "cloud-2's SA stays:\n{}",
            pair.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Throughout, the first peer's SA stayed: no report, the same child SA.
    assert_eq!(quiet(&m.rx, Duration::from_secs(3), &[]), None);
    assert_eq!(child_ids(&pair, "cloud-xtr"), ids, "{}", pair.logs());
    m.stop();
}

/// Sets `key = value` in `section`, replacing what it had.
fn set(section: &mut Section, key: &str, value: &str) {
    let v = Value::Str(value.as_bytes().to_vec());
    match section.entries.iter_mut().find(|(k, _)| k == key) {
        Some((_, old)) => *old = v,
        None => section.entries.push((key.to_string(), v)),
    }
}

/// Sets `key = value` in the IKE SA of `conn`.
fn set_ike(conn: &mut Section, key: &str, value: &str) {
    for (_, ike) in &mut conn.entries {
        if let Value::Section(ike) = ike {
            set(ike, key, value);
        }
    }
}

/// Sets `key = value` in every child of `conn`.
fn set_in_conn(conn: &mut Section, key: &str, value: &str) {
    for (_, ike) in &mut conn.entries {
        let Value::Section(ike) = ike else { continue };
        for (k, children) in &mut ike.entries {
            let (true, Value::Section(children)) = (k == "children", children) else {
                continue;
            };
            for (_, child) in &mut children.entries {
                if let Value::Section(child) = child {
                    set(child, key, value);
                }
            }
        }
    }
}

#[test]
fn rekeys_keep_the_peer_up_and_a_rekeyed_child_going_down_takes_it_down() {
    let pair = Pair::new("rk");
    // The cloud side rekeys its child SA every 3 s and its IKE SA every 5 s, less a random
    // part (charon's defaults are hours), well before either expires.
    {
        let to_pxtr = peer("to-pxtr", "10.99.0.2", "10.99.0.1", "192.0.2.1/32");
        let mut c = Client::connect(&pair.cloud.socket, Duration::from_secs(10)).expect("VICI");
        c.call("load-shared", load_shared(&to_pxtr)).expect("key");
        let mut conn = load_conn(
            &to_pxtr,
            0,
            "203.0.113.1/32".parse().unwrap(),
            IpsecMode::Libipsec,
            None,
        );
        set_in_conn(&mut conn, "start_action", "trap");
        set_in_conn(&mut conn, "rekey_time", "3s");
        set_in_conn(&mut conn, "life_time", "30s");
        set_ike(&mut conn, "rekey_time", "5s");
        set_ike(&mut conn, "over_time", "30s");
        set_in_conn(&mut conn, "rand_time", "0s");
        set_ike(&mut conn, "rand_time", "0s");
        c.call("load-conn", conn).expect("connection");
    }
    let m = Manager::start(
        &pair,
        vec![peer(
            "cloud-xtr",
            "10.99.0.1",
            "10.99.0.2",
            "203.0.113.0/24",
        )],
    );
    assert_eq!(
        m.rx.recv_timeout(Duration::from_secs(30)),
        Ok(SaChange::Up("cloud-xtr".into())),
        "{}",
        pair.logs()
    );
    // Several child rekeys (each new child SA logs its SPIs) and IKE rekeys: the peer stays up
    // throughout.
    let rekeys = |log: &str| {
        log.matches("established with SPIs").count() >= 4 && log.matches("rekeyed").count() >= 2
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while !rekeys(&pair.enterprise.log()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no rekeys:\n{}",
            pair.logs()
        );
        if let Ok(c) = m.rx.recv_timeout(Duration::from_millis(200)) {
            panic!("{c:?} during rekeys\n{}", pair.logs());
        }
    }
    // The child SA now up is one that replaced another: when it goes down (the cloud closes
    // it), the peer goes down, whatever ids it had before.
    // charon answers "no matching SAs" while an IKE rekey is moving the child to the new IKE
    // SA (seen in CI): ask again until it finds the child.
    let mut c = Client::connect(&pair.cloud.socket, Duration::from_secs(10)).expect("VICI");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let req = Section::new().kv("child", "to-pxtr").kv("timeout", "-1");
        match c.call("terminate", req) {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("terminate: {e:?}; asking again");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("terminate: {e:?}\n{}", pair.logs()),
        }
    }
    assert_eq!(
        m.rx.recv_timeout(Duration::from_secs(10)),
        Ok(SaChange::Down("cloud-xtr".into())),
        "{}",
        pair.logs()
    );
    m.stop();
}

/// Runs openssl; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (ci/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA: `<name>.pem` and `<name>.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN=pxtr test {name}"),
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// An end entity's key (`<name>.key`, PKCS#8 PEM) and certificate (`<name>.pem`) issued by
/// `ca`, with `ip` in its subjectAltName.
fn make_cert(dir: &Path, name: &str, ca: &str, ip: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!("basicConstraints=CA:FALSE\nsubjectAltName=IP:{ip}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn pubkey(p: IpsecPeer, dir: &Path, cert: &str, key: &str, ca: &str) -> IpsecPeer {
    let f = |n: &str| dir.join(n).display().to_string();
    IpsecPeer {
        auth: IpsecAuth::Pubkey,
        psk: String::new(),
        certificate: f(cert),
        private_key: f(key),
        ca_certificate: f(ca),
        ..p
    }
}

/// No report on `rx` for `wait`, other than `allowed`.
/// The reports that come until none has for `quiet_for` (at most `wait` in all).
fn settle(rx: &Receiver<SaChange>, quiet_for: Duration, wait: Duration) -> Vec<SaChange> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(quiet_for) {
            Ok(c) => got.push(c),
            Err(_) => break,
        }
    }
    got
}

/// After a peer was (re)loaded: both sides initiate (start and close actions), so its SAs can
/// churn a moment before they settle. Only `peer` may report, and it must end up.
fn settles_up(rx: &Receiver<SaChange>, peer: &str, logs: &dyn Fn() -> String) {
    let more = settle(rx, Duration::from_secs(2), Duration::from_secs(20));
    assert!(
        more.iter()
            .all(|c| matches!(c, SaChange::Up(n) | SaChange::Down(n) if n == peer)),
        "{more:?}\n{}",
        logs()
    );
    if let Some(last) = more.last() {
        assert_eq!(last, &SaChange::Up(peer.into()), "{more:?}\n{}", logs());
    }
}

fn quiet(rx: &Receiver<SaChange>, wait: Duration, allowed: &[SaChange]) -> Option<SaChange> {
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(c) if allowed.contains(&c) => {}
            Ok(c) => return Some(c),
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn certificates_bring_the_sa_up_and_a_wrong_ca_keeps_the_peer_down() {
    let pair = Pair::new("ce");
    let certs = pair.dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_ca(&certs, "ca");
    make_ca(&certs, "other-ca");
    make_cert(&certs, "enterprise", "ca", "10.99.0.1");
    make_cert(&certs, "cloud", "ca", "10.99.0.2");
    // The cloud's credentials in the other encodings charon takes: DER certificate, PKCS#1
    // DER key.
    openssl(
        &certs,
        &[
            "x509",
            "-in",
            "cloud.pem",
            "-outform",
            "DER",
            "-out",
            "cloud.der",
        ],
    );
    openssl(
        &certs,
        &[
            "rsa",
            "-in",
            "cloud.key",
            "-traditional",
            "-outform",
            "DER",
            "-out",
            "cloud-key.der",
        ],
    );
    std::fs::write(certs.join("garbage.key"), "not a key\n").unwrap();
    pair.load_cloud(&pubkey(
        peer("to-pxtr", "10.99.0.2", "10.99.0.1", "192.0.2.1/32"),
        &certs,
        "cloud.der",
        "cloud-key.der",
        "ca.pem",
    ));
    // A route of the peer's RLOC range into ipsec0 made by someone else (as ci/hybrid-lab.sh
    // does): pxtr uses it and leaves it.
    ip(&[
        "-n",
        &pair.ns_a.0,
        "route",
        "add",
        "203.0.113.0/24",
        "dev",
        "ipsec0",
    ]);

    let cloud_xtr = || peer("cloud-xtr", "10.99.0.1", "10.99.0.2", "203.0.113.0/24");
    // The enterprise trusts another CA than the one that issued the cloud's certificate.
    let m = Manager::start(
        &pair,
        vec![pubkey(
            cloud_xtr(),
            &certs,
            "enterprise.pem",
            "enterprise.key",
            "other-ca.pem",
        )],
    );
    assert_eq!(
        quiet(&m.rx, Duration::from_secs(8), &[]),
        None,
        "{}",
        pair.logs()
    );
    m.stop();
    let log = pair.enterprise.log();
    assert!(
        log.contains("CN=cloud") && log.contains("no trusted RSA public key found"),
        "the enterprise refused the cloud's certificate:\n{log}"
    );
    assert!(
        pair.routes_a().contains("203.0.113.0/24 dev ipsec0"),
        "a route pxtr did not make stays: {}",
        pair.routes_a()
    );

    // The right CA; and a second peer whose key file is garbage: logged, kept down, no panic.
    let broken = IpsecPeer {
        name: "broken".into(),
        ..pubkey(
            peer("broken", "10.99.0.1", "10.99.0.3", "198.18.0.0/24"),
            &certs,
            "enterprise.pem",
            "garbage.key",
            "ca.pem",
        )
    };
    let m = Manager::start(
        &pair,
        vec![
            pubkey(
                cloud_xtr(),
                &certs,
                "enterprise.pem",
                "enterprise.key",
                "ca.pem",
            ),
            broken,
        ],
    );
    let got = m.rx.recv_timeout(Duration::from_secs(30));
    assert_eq!(got, Ok(SaChange::Up("cloud-xtr".into())), "{}", pair.logs());
    assert_eq!(
        quiet(&m.rx, Duration::from_secs(6), &[]),
        None,
        "the broken peer stays down"
    );
    m.stop();
    let log = pair.enterprise.log();
    assert!(
        log.contains("authentication of 'CN=cloud' with RSA_EMSA_PKCS1_SHA2_256 successful"),
        "{log}"
    );
}

/// Whether this kernel can make an XFRM interface: asked of it directly, not through pxtr.
fn kernel_has_xfrm_interfaces() -> bool {
    Command::new("unshare")
        .args([
            "--net", "--", "ip", "link", "add", "x", "type", "xfrm", "dev", "lo", "if_id", "1",
        ])
        .output()
        .expect("unshare")
        .status
        .success()
}

#[test]
fn auto_picks_what_the_kernel_can_do_and_xfrm_says_why_not() {
    let ipsec = |mode| Ipsec {
        mode,
        peers: vec![peer(
            "cloud-xtr",
            "10.99.0.1",
            "10.99.0.2",
            "203.0.113.0/24",
        )],
        ..Ipsec::default()
    };
    let has = kernel_has_xfrm_interfaces();
    let auto = Tunnels::prepare(&ipsec(IpsecMode::Auto), Ip::host()).expect("auto");
    let xfrm = Tunnels::prepare(&ipsec(IpsecMode::Xfrm), Ip::host());
    if has {
        // A full kernel (not this build machine's): xfrm where ESP is there too.
        assert!(auto.mode() == IpsecMode::Xfrm || xfrm.is_err());
        return;
    }
    // This machine: no XFRM interfaces, no ESP.
    assert_eq!(auto.mode(), IpsecMode::Libipsec);
    let e = xfrm
        .expect_err("xfrm on a kernel without XFRM interfaces")
        .to_string();
    assert!(
        e.contains("ipsec.mode = \"xfrm\"")
            && e.contains("no XFRM interfaces")
            && e.contains("mode = \"libipsec\""),
        "{e}"
    );

    // `pxtr run` stops there, before DPDK starts, saying so.
    let dir = std::env::temp_dir().join(format!("pxtr-xfrm-mode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("pxtr.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[ipsec]\nmode = \"xfrm\"\n[[ipsec.peers]]\nname = \"cloud-xtr\"\n\
             local_address = \"10.99.0.1\"\nremote_address = \"10.99.0.2\"\n\
             remote_rlocs = [\"203.0.113.0/24\"]\npsk = \"0123456789abcdef-key\"\n",
            pxtr::config::EMBEDDED_LAB
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pxtr"))
        .env("RUST_LOG", "info")
        .env("PXTR_CONTROL__SOCKET", dir.join("ctl.sock"))
        .env("PXTR_CONTROL__METRICS_LISTEN", "127.0.0.1:0")
        .args(["run", "--duration", "1", "--config"])
        .arg(&cfg)
        .output()
        .expect("run pxtr");
    std::fs::remove_dir_all(&dir).ok();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("ipsec.mode = \"xfrm\", but this kernel cannot do it"),
        "{log}"
    );
    assert!(!log.contains("starting DPDK EAL"), "{log}");
}
