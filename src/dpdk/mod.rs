//! The safe layer over `dpdk-sys`, and its only user.
//!
//! Ownership model:
//! - [`Eal`] is a cheap handle; DPDK is cleaned up when the last handle (held by every pool,
//!   port and ring) goes away, so nothing outlives the memory it lives in.
//! - [`Mbuf`] owns one packet buffer and frees it on drop.
//! - A [`Port`] hands out each [`RxQueue`] and [`TxQueue`] once, and bursts take `&mut self`,
//!   so exactly one lcore polls a queue, as DPDK requires.
//! - [`launch`] runs a closure on a pinned worker lcore; [`LcoreJoin::join`] waits for it.

mod cycles;
mod eal;
mod error;
mod lcore;
mod lpm;
mod mbuf;
mod memory;
mod mempool;
mod port;
mod ring;

pub use cycles::{tsc, tsc_hz};
pub use eal::{Eal, EalInfo};
pub use error::DpdkError;
pub use lcore::{launch, LcoreJoin, StopFlag};
pub use lpm::{Lpm4, Lpm6};
pub use mbuf::Mbuf;
pub use memory::{prefetch, AtomicTable, ZeroableAtomic};
pub use mempool::{Mempool, MempoolConfig};
pub use port::{
    format_mac, LinkStatus, OffloadCaps, Port, PortConfig, PortInfo, PortStats, RxQueue, TxOutcome,
    TxQueue,
};
pub use ring::{mbuf_ring, RingConsumer, RingProducer};

/// Largest burst the safe layer's users size their arrays for.
pub const MAX_BURST: usize = 64;
