//! Large zeroed tables of atomics for lock-free lookup structures (the map-cache), outside
//! DPDK's heap: anonymous memory mapped once, zero-filled and committed lazily by the kernel,
//! backed by transparent hugepages where the kernel allows (`madvise(MADV_HUGEPAGE)`), never
//! moved or freed while the table lives.
//!
//! Why here: allocating zeroed atomics without touching every page, and asking for hugepages,
//! both need `unsafe`/libc, which this crate keeps to `src/dpdk/`. The safe API is
//! [`AtomicTable`]: a fixed power-of-two number of slots, indexed modulo that length, so a
//! lookup is one masked load without a bounds check and can never go out of range.

use std::ops::Deref;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Atomic types whose all-zero bit pattern is a valid value (the integer 0).
pub trait ZeroableAtomic: Sync + Send + sealed::Sealed {}
impl ZeroableAtomic for AtomicU32 {}
impl ZeroableAtomic for AtomicU64 {}
mod sealed {
    pub trait Sealed {}
    impl Sealed for std::sync::atomic::AtomicU32 {}
    impl Sealed for std::sync::atomic::AtomicU64 {}
}

/// A fixed array of `len` (a power of two) zero-initialised atomics in its own mapping.
pub struct AtomicTable<T: ZeroableAtomic> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    mask: usize,
    bytes: usize,
    huge: bool,
}

// SAFETY: the table owns its mapping exclusively and only hands out `&T` where `T: Sync`
// (atomics), so sharing or sending the handle is sharing `&[T]`.
unsafe impl<T: ZeroableAtomic> Send for AtomicTable<T> {}
// SAFETY: as above; every access through `&self` is an atomic operation on `T`.
unsafe impl<T: ZeroableAtomic> Sync for AtomicTable<T> {}

/// Below this, hugepages are not worth asking for (one 2 MiB page).
const HUGE_MIN: usize = 2 << 20;

impl<T: ZeroableAtomic> AtomicTable<T> {
    /// At least `min_len` slots (rounded up to a power of two, at least 1), all zero. Memory is
    /// reserved, not committed: pages appear when first written. `hugepages` asks the kernel
    /// for transparent hugepages (fewer TLB misses on random lookups; effective when
    /// /sys/kernel/mm/transparent_hugepage/enabled is `always` or `madvise`). `None` when the
    /// mapping fails.
    pub fn zeroed(min_len: usize, hugepages: bool) -> Option<Self> {
        let len = min_len.max(1).checked_next_power_of_two()?;
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let want_huge = hugepages && bytes >= HUGE_MIN;
        // A hugepage-backed table starts on a 2 MiB boundary, so every 2 MiB of it can be one
        // hugepage (mmap only aligns to 4 KiB): map 2 MiB more, then unmap the slack.
        let slack = if want_huge { HUGE_MIN } else { 0 };
        let map_bytes = bytes.checked_add(slack)?;
        // SAFETY: an anonymous private mapping with no address hint: it aliases nothing; the
        // result is checked against MAP_FAILED before use.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let head = (HUGE_MIN - (raw as usize) % HUGE_MIN) % HUGE_MIN;
        let head = if want_huge { head } else { 0 };
        let tail = slack - head;
        let p = raw.cast::<u8>().wrapping_add(head).cast::<libc::c_void>();
        // SAFETY: both ranges lie inside the mapping just made, are page-aligned (the mapping
        // and HUGE_MIN are multiples of the page size) and nothing refers to them yet.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap(p.cast::<u8>().wrapping_add(bytes).cast(), tail);
            }
        }
        let ptr = std::ptr::NonNull::new(p.cast::<T>())?;
        let mut huge = false;
        if want_huge {
            // SAFETY: advice on the mapping made above, exactly its range; it changes no
            // contents (anonymous memory stays zero-filled), only the page size backing it.
            huge = unsafe { libc::madvise(p, bytes, libc::MADV_HUGEPAGE) } == 0;
        }
        Some(AtomicTable {
            ptr,
            len,
            mask: len - 1,
            bytes,
            huge,
        })
    }

    /// Slot `i modulo len`: always in range, no bounds check.
    #[inline(always)]
    pub fn at(&self, i: usize) -> &T {
        // SAFETY: `i & mask < len` because `len` is a power of two and `mask = len - 1`; the
        // mapping holds `len` initialised (zero-filled) `T`s and lives as long as `self`.
        unsafe { &*self.ptr.as_ptr().add(i & self.mask) }
    }

    /// Hints the CPU to start loading slot `i modulo len` into the cache (a lookup about to
    /// read it). See [`prefetch`].
    #[inline(always)]
    pub fn prefetch(&self, i: usize) {
        prefetch(self.ptr.as_ptr().wrapping_add(i & self.mask));
    }

    /// Bytes reserved (virtual; committed lazily).
    pub fn reserved_bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the kernel accepted the hugepage advice.
    pub fn hugepages(&self) -> bool {
        self.huge
    }
}

impl<T: ZeroableAtomic> Deref for AtomicTable<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` zero-initialised `T`s (zero is a valid value of every
        // `ZeroableAtomic`) in a mapping owned by `self`, aligned to a page.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroableAtomic> Drop for AtomicTable<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `zeroed`; `&mut self` means no reference
        // into it is alive.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.bytes);
        }
    }
}

impl<T: ZeroableAtomic> std::fmt::Debug for AtomicTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicTable")
            .field("len", &self.len)
            .field("hugepages", &self.huge)
            .finish()
    }
}

/// Hints the CPU to start loading the cache line at `p` (something about to be read). Never
/// faults, even on an unmapped address, and changes nothing visible; a no-op where the
/// architecture has no stable prefetch instruction.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint with no architectural effect; it never faults and never
    // dereferences `p` as far as the program can tell.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
