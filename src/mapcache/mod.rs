//! The map-cache (EID-prefix → mapping, per instance-ID, IPv4 and IPv6) and the neighbour
//! table, written by the control core and read by the workers without locks.
//!
//! Model (docs/mapcache.md has the reasons and the measurements):
//! - One writer, [`MapCacheWriter`], owned by the control core. It keeps the authoritative
//!   state (mappings with TTL, version and usage; the LPM rules) on its side and updates the
//!   reader-visible tables in place with atomic stores.
//! - Readers, [`MapCacheReader`], one per worker. A worker takes a [`Snapshot`] once per burst
//!   and resolves the whole burst through it ([`Snapshot::resolve_v4`],
//!   [`Snapshot::resolve_v6`]): plain loads, no lock, no read-modify-write, never waits.
//! - Reclamation is quiescent-state based (like DPDK's `rte_rcu_qsbr`): taking a snapshot
//!   reports that the worker holds nothing from earlier bursts; the writer reuses a removed
//!   group, locator set or entry only after every online reader has reported since.
//! - Longest-prefix match: a multibit trie, 16- or 24-bit root then 8-bit strides, updated in
//!   place (controlled prefix expansion), the DIR-24-8 family of `rte_lpm`.
//! - RLOC selection (RFC 9300): the writer precomputes, per locator set, the reachable
//!   locators of the best priority (never 255) and their cumulative weights; a worker maps
//!   the flow hash onto them, so a flow sticks to one RLOC.
//! - Usage: each reader counts hits per entry in its own array; the control core sums them
//!   ([`MapCacheWriter::collect_usage`]) for the hit counts and the LRU order.
//!
//! Everything here is safe Rust: the tables are arrays of atomics that stay allocated while
//! the cache lives, so a late reader can only see a stale value, never freed memory.

mod cache;
mod chunked;
mod lpm;
mod mapping;
mod neighbor;
mod qsbr;

pub use cache::{
    map_cache, EntryView, InsertOutcome, MapCacheConfig, MapCacheReader, MapCacheWriter,
    MemoryUsage, Packed, Resolution, Snapshot, Usage,
};
pub use mapping::{Locator, Mapping, NegativeAction, MAX_LOCATORS, PRIORITY_UNUSABLE};
pub use neighbor::{neighbor_table, Neighbor, NeighborReader, NeighborSnapshot, NeighborWriter};

/// Errors of the map-cache and the neighbour table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapCacheError {
    /// The configuration cannot be built.
    #[error("map-cache configuration: {0}")]
    InvalidConfig(String),
    /// More instance-IDs than configured.
    #[error("more than {max} instance-IDs in the map-cache")]
    TooManyIids {
        /// The configured maximum.
        max: usize,
    },
    /// More readers than configured.
    #[error("more than {max} map-cache readers")]
    TooManyReaders {
        /// The configured maximum.
        max: usize,
    },
    /// The LPM group pool of a family is exhausted (raise `v4_groups`/`v6_groups`).
    #[error("the {family} map-cache table is full (no LPM group left)")]
    TableFull {
        /// "IPv4" or "IPv6".
        family: &'static str,
    },
    /// The prefix cannot be stored.
    #[error("invalid EID-prefix {0}")]
    InvalidPrefix(ipnet::IpNet),
    /// Every free id waits for a reader to report a quiescent state; retry after
    /// [`MapCacheWriter::reclaim`] once workers moved on.
    #[error("map-cache busy: removed entries still wait for workers to move on")]
    Busy,
    /// The neighbour table is full.
    #[error("the neighbour table is full ({capacity} entries)")]
    NeighborTableFull {
        /// Its capacity.
        capacity: u32,
    },
}
