use dpdk_sys as sys;

/// The CPU's time-stamp counter (`rte_rdtsc`).
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: reads the TSC register; no memory is touched.
    unsafe { sys::rte_rdtsc() }
}

/// TSC ticks per second as EAL measured them at start-up (0 before EAL init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL stored at init; harmless before init (returns 0).
    unsafe { sys::rte_get_tsc_hz() }
}
