//! pxtr: a LISP Proxy Tunnel Router appliance on DPDK.
//!
//! Layers (see docs/architecture.md): `dpdk` is the only code that touches DPDK; `config` loads
//! and validates the appliance configuration; `app` brings the appliance up from a config.

pub mod app;
pub mod config;
pub mod control;
pub mod ctl;
pub mod dataplane;
pub mod dpdk;
pub mod ipsec;
pub mod mapcache;
pub mod wire;
