use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use arrayvec::ArrayVec;
use dpdk_sys as sys;

use super::eal::Eal;
use super::error::{from_rte_errno, DpdkError};
use super::mbuf::Mbuf;

struct RingInner {
    ptr: NonNull<sys::rte_ring>,
    _eal: Eal,
}

// SAFETY: the ring is single-producer/single-consumer; the producer and consumer halves are
// each !Clone and used through &mut self, so at most one thread enqueues and one dequeues.
unsafe impl Send for RingInner {}
// SAFETY: as above; shared access only reads counters.
unsafe impl Sync for RingInner {}

impl Drop for RingInner {
    fn drop(&mut self) {
        // Free what is still queued, then the ring. Both halves are gone (they hold the Arc).
        let mut buf: ArrayVec<Mbuf, 64> = ArrayVec::new();
        while dequeue(self.ptr, &mut buf) > 0 {
            buf.clear();
        }
        // SAFETY: no half is left to use the ring.
        unsafe { sys::rte_ring_free(self.ptr.as_ptr()) };
    }
}

fn dequeue<const N: usize>(ring: NonNull<sys::rte_ring>, out: &mut ArrayVec<Mbuf, N>) -> usize {
    let room = out.remaining_capacity();
    if room == 0 {
        return 0;
    }
    let start = out.len();
    // SAFETY: single consumer (see RingConsumer); the spare capacity is `room` pointer slots
    // (Mbuf is repr(transparent)), DPDK writes n owned mbufs there and only those are kept.
    unsafe {
        let slots = out.as_mut_ptr().add(start) as *mut *mut std::ffi::c_void;
        let n =
            sys::rte_ring_sc_dequeue_burst(ring.as_ptr(), slots, room as u32, std::ptr::null_mut())
                as usize;
        out.set_len(start + n);
        n
    }
}

/// The sending half of an mbuf ring (one thread).
pub struct RingProducer {
    inner: Arc<RingInner>,
}

/// The receiving half of an mbuf ring (one thread).
pub struct RingConsumer {
    inner: Arc<RingInner>,
}

/// A lock-free single-producer/single-consumer ring of mbufs (`rte_ring`, SP/SC), e.g. a
/// worker's punt ring to the control core. `size` is rounded to a power of two; the ring holds
/// one less than that.
pub fn mbuf_ring(
    eal: &Eal,
    name: &str,
    size: u32,
) -> Result<(RingProducer, RingConsumer), DpdkError> {
    let cname = CString::new(name)
        .map_err(|_| DpdkError::InvalidArgument(format!("ring name {name:?} has a NUL byte")))?;
    let count = size.max(2).checked_next_power_of_two().ok_or_else(|| {
        DpdkError::InvalidArgument(format!("ring {name}: size {size} is too large"))
    })?;
    let flags = sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ;
    // SAFETY: valid C string; EAL is up.
    let ptr = unsafe { sys::rte_ring_create(cname.as_ptr(), count, sys::SOCKET_ID_ANY, flags) };
    let ptr = NonNull::new(ptr).ok_or_else(|| from_rte_errno("rte_ring_create"))?;
    let inner = Arc::new(RingInner {
        ptr,
        _eal: eal.clone(),
    });
    Ok((
        RingProducer {
            inner: inner.clone(),
        },
        RingConsumer { inner },
    ))
}

impl RingProducer {
    /// Moves as many mbufs as fit from the front of `pkts` into the ring; the rest stay in
    /// `pkts`. Returns how many were enqueued. Never blocks.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&mut self, pkts: &mut ArrayVec<Mbuf, N>) -> usize {
        let n = pkts.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: single producer (&mut self on the only producer); the first `done` mbufs
        // now belong to the ring, the rest are shifted down without being dropped.
        unsafe {
            let base = pkts.as_mut_ptr();
            let done = sys::rte_ring_sp_enqueue_burst(
                self.inner.ptr.as_ptr(),
                base as *const *mut std::ffi::c_void,
                n as u32,
                std::ptr::null_mut(),
            ) as usize;
            std::ptr::copy(base.add(done), base, n - done);
            pkts.set_len(n - done);
            done
        }
    }

    /// Free slots.
    pub fn free_count(&self) -> u32 {
        // SAFETY: reads the ring's indices.
        unsafe { sys::rte_ring_free_count(self.inner.ptr.as_ptr()) }
    }
}

impl RingConsumer {
    /// Dequeues into the spare capacity of `out`; returns how many arrived. Never blocks.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&mut self, out: &mut ArrayVec<Mbuf, N>) -> usize {
        dequeue(self.inner.ptr, out)
    }

    /// Entries waiting.
    pub fn count(&self) -> u32 {
        // SAFETY: reads the ring's indices.
        unsafe { sys::rte_ring_count(self.inner.ptr.as_ptr()) }
    }
}
