//! The data plane: what a worker lcore does with every burst (issue #5).
//!
//! - [`buf`]: the packet-buffer trait the pipeline is generic over: DPDK mbufs on the
//!   appliance, heap buffers in tests.
//! - [`classify`]: the first look at a frame (forward, decapsulate, punt or drop).
//! - [`pipeline`]: batched map-cache lookups, encapsulation and decapsulation, next hops,
//!   misses (rate-limited reports, hold queue), per-port outputs.
//! - [`icmp`]: the ICMP errors the control core writes over punted packets.
//! - [`counters`]: one counter per [`Reason`], published per burst; burst latency histogram.
//!
//! The worker loop that binds a pipeline to DPDK queues is in `crate::app::worker`.

pub mod buf;
pub mod classify;
pub mod counters;
pub mod icmp;
pub mod pipeline;

pub use buf::{HeapBuf, PacketBuf};
pub use counters::{Counts, Reason, WorkerCounters, WorkerSnapshot};
pub use pipeline::{
    Event, Functions, Outputs, Pipeline, Plan, PortPlan, PreparedPlan, Punt, ARP_ND_PUNTS_PER_SEC,
    MAP_REQUEST_PUNTS_PER_SEC, MAX_OUT,
};
