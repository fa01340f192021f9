//! IPsec toward cloud xTRs (issue #7): strongSwan drives IKEv2 and ESP; pxtr tells it what to
//! set up over VICI ([`vici`]) — the connection per configured peer, tunnelling our RLOC to
//! the peer's RLOC ranges, and its pre-shared key — and follows its SA events.

pub mod vici;

use crate::config::{IpsecAuth, IpsecMode, IpsecPeer};
use vici::Section;

/// The `if_id` of the XFRM interface of the `index`-th peer (its SAs and policies carry it,
/// so the kernel routes the peer's RLOC ranges into that interface).
pub fn xfrm_if_id(index: usize) -> u32 {
    0x7078_0000 + index as u32
}

/// The `load-conn` message for `peer` (the `index`-th, configuration validated): IKEv2 between
/// its addresses, one child SA in tunnel mode from our RLOC `local_rloc` to the peer's RLOC
/// ranges, brought up at once and kept up (dead-peer detection restarts it).
pub fn load_conn(
    peer: &IpsecPeer,
    index: usize,
    local_rloc: std::net::IpAddr,
    mode: IpsecMode,
) -> Section {
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
        .list(
            "local_ts",
            [format!(
                "{local_rloc}/{}",
                if local_rloc.is_ipv4() { 32 } else { 128 }
            )],
        )
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
    fn connections_tunnel_our_rloc_to_the_peers_rlocs() {
        let m = load_conn(
            &peer(),
            0,
            "198.51.100.9".parse().unwrap(),
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
        let x = load_conn(&peer(), 2, "198.51.100.9".parse().unwrap(), IpsecMode::Xfrm);
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
