use dpdk_sys as sys;

/// The CPU's time-stamp counter (`rte_rdtsc`). On x86-64 the instruction itself, inline (the
/// worker reads it twice per burst; DPDK's inline function reaches Rust only as a call into
/// a C wrapper), elsewhere DPDK's.
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC reads the TSC register; no memory is touched. It is what rte_rdtsc
        // executes on x86-64.
        unsafe { std::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: reads the TSC register; no memory is touched.
        unsafe { sys::rte_rdtsc() }
    }
}

/// TSC ticks per second as EAL measured them at start-up (0 before EAL init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL stored at init; harmless before init (returns 0).
    unsafe { sys::rte_get_tsc_hz() }
}
