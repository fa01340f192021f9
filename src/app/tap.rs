//! The host kernel's side of a DPDK net_tap port (an exception port: the RLOC side toward an
//! IPsec peer, whose ESP the host kernel or strongSwan does).
//!
//! DPDK's net_tap gives the kernel side of the tap the port's own MAC, so the kernel's ARP
//! replies and other frames would look like pxtr's own to pxtr; and the tap appears only when
//! the port starts, so nobody else can configure it before pxtr runs. Right after the port
//! started, pxtr gives the kernel side a MAC of its own, the port's `kernel_addresses`, and
//! brings it up. This runs once at start, through iproute2: not on any packet's path.

use std::process::Command;

use ipnet::IpNet;

pub use crate::config::tap_iface;

/// The kernel side's MAC: the port's, locally administered, with one bit of the fourth byte
/// flipped (never the port's own, never multicast).
pub fn kernel_mac(port: [u8; 6]) -> [u8; 6] {
    let mut m = port;
    m[0] = (m[0] | 0x02) & !0x01;
    m[3] ^= 0x80;
    m
}

/// The `ip` commands that set the kernel side of tap `iface` up.
pub fn commands(iface: &str, port_mac: [u8; 6], addresses: &[IpNet]) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut cmds = vec![s(&[
        "link",
        "set",
        "dev",
        iface,
        "address",
        &crate::dpdk::format_mac(&kernel_mac(port_mac)),
    ])];
    for a in addresses {
        cmds.push(s(&["addr", "replace", &a.to_string(), "dev", iface]));
    }
    cmds.push(s(&["link", "set", "dev", iface, "up"]));
    cmds
}

/// Runs [`commands`]; the first failure is returned with the command and what `ip` said.
pub fn configure(iface: &str, port_mac: [u8; 6], addresses: &[IpNet]) -> Result<(), String> {
    for args in commands(iface, port_mac, addresses) {
        let out = Command::new("ip")
            .args(&args)
            .output()
            .map_err(|e| format!("cannot run `ip {}`: {e}", args.join(" ")))?;
        if !out.status.success() {
            return Err(format!(
                "`ip {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_iface_of_net_tap_devices_only() {
        assert_eq!(
            tap_iface("net_tap0,iface=px-rloc,mac=02:00:00:00:01:02"),
            Some("px-rloc")
        );
        assert_eq!(
            tap_iface("net_tap1,mac=02:00:00:00:01:02,iface=a"),
            Some("a")
        );
        assert_eq!(tap_iface("net_tap0"), None);
        assert_eq!(tap_iface("net_tap0,iface="), None);
        assert_eq!(tap_iface("net_af_packet0,iface=eth1"), None);
        assert_eq!(tap_iface("0000:03:00.0"), None);
    }

    #[test]
    fn the_kernel_side_gets_its_own_unicast_mac_and_the_addresses() {
        for port in [[0x02, 0, 0, 0, 1, 2], [0x01, 0x80, 0xff, 0x80, 0, 0]] {
            let k = kernel_mac(port);
            assert_ne!(k, port);
            assert_eq!(k[0] & 0x01, 0, "unicast");
            assert_eq!(k[0] & 0x02, 0x02, "locally administered");
        }
        let cmds = commands(
            "px-rloc",
            [0x02, 0, 0, 0, 1, 2],
            &["100.64.1.254/24".parse().unwrap()],
        );
        let text: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            text,
            [
                "link set dev px-rloc address 02:00:00:80:01:02",
                "addr replace 100.64.1.254/24 dev px-rloc",
                "link set dev px-rloc up",
            ]
        );
    }
}
