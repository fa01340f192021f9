//! Raw bindings to the system DPDK, generated at build time by bindgen from `wrapper.h`.
//!
//! `static inline` DPDK functions (rte_eth_rx_burst, rte_pktmbuf_alloc, rte_rdtsc, ...) are
//! reached through C wrappers that bindgen generates and build.rs compiles; they carry the same
//! names with a `__extern` suffix. Nothing here is safe to call without reading DPDK's rules:
//! pxtr's `src/dpdk/` is the only user.
#![no_std]
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all, clippy::pedantic)]
#![allow(unsafe_op_in_unsafe_fn, improper_ctypes)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
