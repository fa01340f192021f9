use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use arrayvec::ArrayVec;
use dpdk_sys as sys;

use super::eal::Eal;
use super::error::{check, from_rte_errno, DpdkError};
use super::mbuf::Mbuf;

/// Sizes of a packet-buffer pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Number of mbufs (DPDK works best with 2^n - 1).
    pub mbufs: u32,
    /// Per-lcore cache size (0 disables; at most 512 and at most mbufs / 1.5).
    pub cache: u32,
    /// Data room per mbuf, headroom included (2176 holds a 1500-byte frame plus 128 headroom
    /// plus LISP encapsulation).
    pub data_room: u16,
    /// NUMA socket to allocate on, or `None` for any.
    pub socket: Option<u32>,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            mbufs: 8191,
            cache: 256,
            data_room: sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            socket: None,
        }
    }
}

/// A pool of packet buffers (`rte_pktmbuf_pool_create`). Clones share the pool.
///
/// The pool is freed when the last clone drops, unless mbufs from it are still in use: then it is
/// left allocated (and a warning logged), because freeing it would leave them dangling.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<MempoolInner>,
}

struct MempoolInner {
    ptr: NonNull<sys::rte_mempool>,
    name: String,
    size: u32,
    eal: Option<Eal>,
}

// SAFETY: the default mempool ops (ring_mp_mc) are safe for concurrent get/put from any thread;
// the pointer itself is only freed in Drop, when no clone is left.
unsafe impl Send for MempoolInner {}
// SAFETY: as above; every method takes &self and DPDK serialises internally.
unsafe impl Sync for MempoolInner {}

impl Mempool {
    /// Creates a packet-buffer pool named `name` (unique in the process).
    pub fn new(eal: &Eal, name: &str, cfg: MempoolConfig) -> Result<Mempool, DpdkError> {
        if cfg.mbufs == 0 {
            return Err(DpdkError::InvalidArgument(format!(
                "mempool {name}: mbufs must be at least 1"
            )));
        }
        if cfg.cache > sys::RTE_MEMPOOL_CACHE_MAX_SIZE
            || cfg.cache as u64 * 3 > cfg.mbufs as u64 * 2
        {
            return Err(DpdkError::InvalidArgument(format!(
                "mempool {name}: cache {} must be at most {} and at most 2/3 of mbufs ({})",
                cfg.cache,
                sys::RTE_MEMPOOL_CACHE_MAX_SIZE,
                cfg.mbufs
            )));
        }
        if u32::from(cfg.data_room) < sys::RTE_PKTMBUF_HEADROOM + 64 {
            return Err(DpdkError::InvalidArgument(format!(
                "mempool {name}: data room {} leaves no space after the {}-byte headroom",
                cfg.data_room,
                sys::RTE_PKTMBUF_HEADROOM
            )));
        }
        let cname = CString::new(name).map_err(|_| {
            DpdkError::InvalidArgument(format!("mempool name {name:?} has a NUL byte"))
        })?;
        let socket = cfg.socket.map_or(sys::SOCKET_ID_ANY, |s| s as i32);
        // SAFETY: EAL is up (we hold an Eal); cname is a valid C string for the call.
        let ptr = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                cfg.mbufs,
                cfg.cache,
                0,
                cfg.data_room,
                socket,
            )
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| from_rte_errno("rte_pktmbuf_pool_create"))?;
        tracing::debug!(
            pool = name,
            mbufs = cfg.mbufs,
            cache = cfg.cache,
            data_room = cfg.data_room,
            "mempool created"
        );
        Ok(Mempool {
            inner: Arc::new(MempoolInner {
                ptr,
                name: name.to_owned(),
                size: cfg.mbufs,
                eal: Some(eal.clone()),
            }),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of mbufs the pool holds.
    pub fn size(&self) -> u32 {
        self.inner.size
    }

    /// Mbufs currently handed out (per-lcore caches count as available).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool pointer is valid while self lives.
        unsafe { sys::rte_mempool_in_use_count(self.inner.ptr.as_ptr()) }
    }

    /// Mbufs available for allocation.
    pub fn available(&self) -> u32 {
        // SAFETY: as above.
        unsafe { sys::rte_mempool_avail_count(self.inner.ptr.as_ptr()) }
    }

    /// Allocates one mbuf (reset, empty), or `None` if the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid; the returned mbuf is ours alone.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.inner.ptr.as_ptr()) };
        // SAFETY: a non-null pointer from rte_pktmbuf_alloc is a fresh, owned mbuf.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Allocates an mbuf holding a copy of `bytes`, or `None` if the pool is exhausted or the
    /// bytes do not fit one segment.
    pub fn alloc_from(&self, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        let len = u16::try_from(bytes.len()).ok()?;
        m.append(len)?.copy_from_slice(bytes);
        Some(m)
    }

    /// Fills `out` up to `n` more mbufs, all or nothing. Returns false (and leaves `out` as it
    /// was) if the pool cannot supply them or `out` has no room.
    pub fn alloc_bulk<const N: usize>(&self, out: &mut ArrayVec<Mbuf, N>, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        if n > out.remaining_capacity() {
            return false;
        }
        let start = out.len();
        // SAFETY: `Mbuf` is repr(transparent) over a non-null rte_mbuf pointer, so the spare
        // capacity of `out` is n writable `*mut rte_mbuf` slots. On success all n are written
        // with owned mbufs before we extend the length; on failure nothing is written.
        unsafe {
            let slots = out.as_mut_ptr().add(start) as *mut *mut sys::rte_mbuf;
            let ret = sys::rte_pktmbuf_alloc_bulk(self.inner.ptr.as_ptr(), slots, n as u32);
            if check("rte_pktmbuf_alloc_bulk", ret).is_err() {
                return false;
            }
            out.set_len(start + n);
        }
        true
    }

    /// The raw pool, for the port layer.
    pub(super) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.ptr.as_ptr()
    }
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("size", &self.inner.size)
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Drop for MempoolInner {
    fn drop(&mut self) {
        // SAFETY: pointer valid until freed below.
        let in_use = unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) };
        if in_use != 0 {
            tracing::warn!(pool = %self.name, in_use, "mempool dropped with mbufs still in use: leaving it allocated");
            // Keep EAL alive too: its memory backs those mbufs.
            std::mem::forget(self.eal.take());
            return;
        }
        // SAFETY: no mbuf of this pool is in use and no clone of the handle is left.
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) };
    }
}
