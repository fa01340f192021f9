//! pxtr's VICI client against a real strongSwan charon (ci/setup.sh installs it), run in a
//! network namespace of the test's own: the daemon answers `version`, takes the pre-shared key
//! and the connection pxtr builds from an `[[ipsec.peers]]` entry, lists that connection back,
//! and confirms the registration of the SA events pxtr follows.

use std::process::Command;
use std::time::{Duration, Instant};

use pxtr::config::{IpsecAuth, IpsecMode, IpsecPeer};
use pxtr::ipsec::vici::{Client, Error, Section, Value};
use pxtr::ipsec::{load_conn, load_shared};

mod common;

use common::charon::{Charon, Netns};

fn client(c: &Charon) -> Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::connect(&c.socket, Duration::from_secs(10)) {
            Ok(client) => return client,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("VICI connect: {e}"),
        }
    }
}

#[test]
fn charon_takes_the_connection_and_key_pxtr_builds() {
    let pid = std::process::id();
    let ns = Netns::new(&format!("pxtr-vici-{pid}"));
    let charon = Charon::start(
        &ns.0,
        &std::env::temp_dir().join(format!("pxtr-vici-{pid}")),
    );
    let mut c = client(&charon);
    let v = c.call("version", Section::new()).expect("version");
    assert_eq!(v.str("daemon").as_deref(), Some("charon"));
    assert!(
        v.str("version").is_some_and(|s| s.starts_with('5')),
        "{v:?}"
    );

    let peer = IpsecPeer {
        name: "cloud-xtr".into(),
        local_address: Some("198.51.100.1".parse().unwrap()),
        remote_address: Some("203.0.113.1".parse().unwrap()),
        remote_rlocs: vec!["203.0.113.0/24".parse().unwrap()],
        auth: IpsecAuth::Psk,
        psk: "hybrid-cloud-ipsec-key".into(),
        ..IpsecPeer::default()
    };
    c.call("load-shared", load_shared(&peer))
        .expect("load-shared");
    c.call(
        "load-conn",
        load_conn(
            &peer,
            0,
            "198.51.100.1/32".parse().unwrap(),
            IpsecMode::Libipsec,
            None,
        ),
    )
    .expect("load-conn");
    let names = c.call("get-conns", Section::new()).expect("get-conns");
    assert_eq!(
        names.get("conns"),
        Some(&Value::List(vec![b"cloud-xtr".to_vec()]))
    );
    // list-conns streams one "list-conn" event per connection before its response.
    c.register("list-conn").expect("list-conn events");
    c.call("list-conns", Section::new().kv("conn", "cloud-xtr"))
        .expect("list-conns");
    let (name, conns) = c.next_event().unwrap().expect("a list-conn event");
    assert_eq!(name, "list-conn");
    let conn = conns
        .sub("cloud-xtr")
        .unwrap_or_else(|| panic!("{conns:?}"));
    assert_eq!(
        conn.get("remote_addrs"),
        Some(&Value::List(vec![b"203.0.113.1".to_vec()]))
    );
    let child = conn
        .sub("children")
        .and_then(|ch| ch.sub("cloud-xtr"))
        .expect("child");
    assert_eq!(
        child.get("remote-ts"),
        Some(&Value::List(vec![b"203.0.113.0/24".to_vec()]))
    );
    // A connection charon cannot take is refused with its reason.
    let bad = Section::new().section(
        "broken",
        Section::new().list("proposals", ["no-such-algorithm"]),
    );
    match c.call("load-conn", bad) {
        Err(Error::Failed { command, message }) => {
            assert_eq!(command, "load-conn");
            assert!(!message.is_empty());
        }
        r => panic!("{r:?}"),
    }
    // The SA events pxtr follows exist.
    c.register("ike-updown").expect("ike-updown");
    c.register("child-updown").expect("child-updown");
    assert_eq!(
        c.register("no-such-event"),
        Err(Error::UnknownEvent("no-such-event".into()))
    );
    assert_eq!(
        c.call("no-such-command", Section::new()),
        Err(Error::UnknownCommand("no-such-command".into()))
    );

    // `pxtr run` with an IPsec peer loads its key and connection into charon by itself (the
    // embedded lab plus one peer; the SA cannot come up: charon's namespace has no network).
    let cfg_path = charon.socket.with_file_name("pxtr.toml");
    let text = format!(
        "{}\n[ipsec]\nvici_socket = \"{}\"\n[[ipsec.peers]]\nname = \"pxtr-peer\"\n\
         local_address = \"192.0.2.1\"\nremote_address = \"203.0.113.1\"\n\
         remote_rlocs = [\"100.64.2.0/24\"]\nauth = \"psk\"\npsk = \"0123456789abcdef-key\"\n\
         ike_proposals = [\"aes256-sha256-modp2048\"]\nesp_proposals = [\"aes256-sha256\"]\n",
        pxtr::config::EMBEDDED_LAB,
        charon.socket.display()
    );
    std::fs::write(&cfg_path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pxtr"))
        .env("RUST_LOG", "info")
        .env("PXTR_CONTROL__SOCKET", cfg_path.with_extension("sock"))
        .env("PXTR_CONTROL__METRICS_LISTEN", "127.0.0.1:0")
        .args(["run", "--duration", "3", "--config"])
        .arg(&cfg_path)
        .output()
        .expect("run pxtr");
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(log.contains("IPsec connection loaded"), "{log}");
    let names = c.call("get-conns", Section::new()).expect("get-conns");
    match names.get("conns") {
        Some(Value::List(l)) => assert!(l.contains(&b"pxtr-peer".to_vec()), "{l:?}"),
        v => panic!("{v:?}"),
    }
}
