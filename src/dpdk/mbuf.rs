use std::ptr::NonNull;

use dpdk_sys as sys;

use super::error::{check, DpdkError};

/// One owned packet buffer (`rte_mbuf`). Dropping it returns it (and any chained segments) to
/// its pool.
///
/// `data`/`data_mut` cover the first segment; packets the appliance builds or receives at the
/// configured MTU are single-segment, and [`Mbuf::linearize`] makes any other one so.
#[repr(transparent)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is the sole owner of its buffer; moving it to another thread moves that
// ownership. Returning it to the pool from any thread is allowed by the mempool ops.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that nothing else owns or will free.
    #[inline(always)]
    pub(super) unsafe fn from_raw(ptr: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(ptr)
    }

    #[inline(always)]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for as long as self lives.
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: we own the mbuf exclusively; &mut self makes the borrow unique.
        unsafe { self.0.as_mut() }
    }

    /// Bytes of the first segment.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer by DPDK's
        // invariants, and is initialised packet data.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Mutable bytes of the first segment.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in `data`, and we hold the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Length of the whole packet (all segments).
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// Length of the first segment.
    #[inline(always)]
    pub fn data_len(&self) -> u16 {
        self.raw().data_len
    }

    /// Number of chained segments.
    #[inline(always)]
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Whether all bytes are in the first segment.
    #[inline(always)]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Free bytes in front of the data (room for `prepend`).
    #[inline(always)]
    pub fn headroom(&self) -> u16 {
        self.raw().data_off
    }

    /// Free bytes after the data of the last segment (room for `append`).
    #[inline(always)]
    pub fn tailroom(&self) -> u16 {
        // SAFETY: valid owned mbuf.
        unsafe { sys::rte_pktmbuf_tailroom(self.0.as_ptr()) }
    }

    /// Grows the packet by `len` bytes at the front and returns them, or `None` (packet
    /// unchanged) when the headroom is too small. (`rte_pktmbuf_prepend` in Rust: the
    /// fast path calls it per packet.)
    #[inline(always)]
    pub fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        let m = self.raw_mut();
        if len > m.data_off {
            return None;
        }
        m.data_off -= len;
        m.data_len += len;
        m.pkt_len += u32::from(len);
        // SAFETY: the first `len` bytes now start at the new data_off, inside the buffer's
        // headroom (checked above), owned by this mbuf.
        Some(unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(usize::from(m.data_off)),
                usize::from(len),
            )
        })
    }

    /// Grows the packet by `len` bytes at the end of the last segment and returns them, or
    /// `None` (unchanged) when the tailroom is too small.
    #[inline(always)]
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        // SAFETY: valid owned mbuf; DPDK checks the tailroom and returns NULL if short.
        let p = unsafe { sys::rte_pktmbuf_append(self.0.as_ptr(), len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: p points at `len` bytes DPDK just appended (uninitialised packet bytes of a
        // buffer DPDK allocated; u8 has no invalid values). We zero them for determinism.
        let s = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, usize::from(len)) };
        s.fill(0);
        Some(s)
    }

    /// Removes `len` bytes from the front of the packet. False (unchanged) if the first segment
    /// is shorter than `len`. (`rte_pktmbuf_adj` in Rust.)
    #[inline(always)]
    pub fn adj(&mut self, len: u16) -> bool {
        let m = self.raw_mut();
        if len > m.data_len {
            return false;
        }
        m.data_off += len;
        m.data_len -= len;
        m.pkt_len -= u32::from(len);
        true
    }

    /// Moves the start of a one-segment packet `grow` bytes into the headroom and sets its
    /// length to `len` (at most its length plus `grow`) in one step, returning the whole
    /// packet. `None` (unchanged) without the headroom, with `len` too long, or for a chain.
    #[inline(always)]
    pub fn reframe(&mut self, grow: u16, len: u16) -> Option<&mut [u8]> {
        let m = self.raw_mut();
        if m.nb_segs != 1
            || grow > m.data_off
            || u32::from(len) > u32::from(m.data_len) + u32::from(grow)
        {
            return None;
        }
        m.data_off -= grow;
        m.data_len = len;
        m.pkt_len = u32::from(len);
        // SAFETY: the packet now starts at the new data_off, inside the buffer's headroom
        // (checked above), and its `len` bytes are the old data and `grow` bytes of headroom
        // in front of it, all inside the buffer this mbuf owns.
        Some(unsafe {
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(usize::from(m.data_off)),
                usize::from(len),
            )
        })
    }

    /// Removes `len` bytes from the end of the packet. False (unchanged) if the last segment is
    /// shorter than `len`.
    #[inline(always)]
    pub fn trim(&mut self, len: u16) -> bool {
        if self.is_contiguous() {
            let m = self.raw_mut();
            if len > m.data_len {
                return false;
            }
            m.data_len -= len;
            m.pkt_len -= u32::from(len);
            return true;
        }
        // SAFETY: valid owned mbuf; DPDK checks the length.
        unsafe { sys::rte_pktmbuf_trim(self.0.as_ptr(), len) == 0 }
    }

    /// The NIC's RSS hash of the packet, if the port computed one.
    #[inline(always)]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        if m.ol_flags & u64::from(sys::RTE_MBUF_F_RX_RSS_HASH) != 0 {
            // SAFETY: the RX_RSS_HASH flag says the `rss` member of the hash union is valid.
            Some(unsafe { m.__bindgen_anon_2.hash.rss })
        } else {
            None
        }
    }

    /// Stores a 32-bit tag for the next owner (a punted packet's reason, for the control
    /// core) in the mbuf's user field. It shares space with the RSS hash, which is forgotten.
    #[inline(always)]
    pub fn set_user_tag(&mut self, tag: u32) {
        let m = self.raw_mut();
        m.ol_flags &= !u64::from(sys::RTE_MBUF_F_RX_RSS_HASH);
        m.__bindgen_anon_2.hash.usr = tag;
    }

    /// The tag of [`Mbuf::set_user_tag`] (meaningless on an mbuf nobody tagged).
    #[inline(always)]
    pub fn user_tag(&self) -> u32 {
        // SAFETY: every member of the hash union is plain integers; reading `usr` reads the
        // 32 bits whatever member wrote them.
        unsafe { self.raw().__bindgen_anon_2.hash.usr }
    }

    /// Hints the CPU to load the first cache line of the packet data (headers about to be
    /// parsed). Never faults, changes nothing visible; a no-op off x86-64.
    #[inline(always)]
    pub fn prefetch_data(&self) {
        let m = self.raw();
        super::prefetch((m.buf_addr as *const u8).wrapping_add(usize::from(m.data_off)));
    }

    /// A new, empty mbuf from the pool this one came from (fragments of this packet), or
    /// `None` when the pool is exhausted.
    pub fn alloc_sibling(&self) -> Option<Mbuf> {
        // SAFETY: `pool` is the pool this mbuf was allocated from; it stays alive while any of
        // its mbufs is out (Mempool is not freed with mbufs in use), and this one is.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.raw().pool) };
        // SAFETY: a non-null pointer from rte_pktmbuf_alloc is a fresh, owned mbuf.
        NonNull::new(m).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Offload flags (`RTE_MBUF_F_*`): RX results or TX requests.
    #[inline(always)]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// Whether the NIC checked the IPv4 header checksum and found it bad.
    #[inline(always)]
    pub fn rx_ip_checksum_bad(&self) -> bool {
        self.raw().ol_flags & sys::RTE_MBUF_F_RX_IP_CKSUM_MASK as u64
            == sys::RTE_MBUF_F_RX_IP_CKSUM_BAD as u64
    }

    /// Whether the NIC checked the IPv4 header checksum and found it good.
    #[inline(always)]
    pub fn rx_ip_checksum_good(&self) -> bool {
        self.raw().ol_flags & sys::RTE_MBUF_F_RX_IP_CKSUM_MASK as u64
            == sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD as u64
    }

    /// Whether the NIC checked the L4 checksum and found it bad.
    #[inline(always)]
    pub fn rx_l4_checksum_bad(&self) -> bool {
        self.raw().ol_flags & sys::RTE_MBUF_F_RX_L4_CKSUM_MASK as u64
            == sys::RTE_MBUF_F_RX_L4_CKSUM_BAD as u64
    }

    /// Asks the NIC to compute checksums: `flags` are `RTE_MBUF_F_TX_*` checksum and
    /// IP-version bits (IPV4, IPV6, IP_CKSUM, TCP/UDP/SCTP_CKSUM, OUTER_IPV4, OUTER_IPV6,
    /// OUTER_IP_CKSUM, OUTER_UDP_CKSUM); any other bit is ignored, since flags such as
    /// INDIRECT, EXTERNAL, TCP_SEG or SEC_OFFLOAD change how DPDK frees or transmits the mbuf.
    /// The lengths are those of the headers the flags refer to (L2, L3, L4).
    #[inline(always)]
    pub fn set_tx_offload(&mut self, flags: u64, l2_len: u8, l3_len: u16, l4_len: u8) {
        const ALLOWED: u64 = sys::RTE_MBUF_F_TX_IPV4
            | sys::RTE_MBUF_F_TX_IPV6
            | sys::RTE_MBUF_F_TX_IP_CKSUM
            | sys::RTE_MBUF_F_TX_L4_MASK
            | sys::RTE_MBUF_F_TX_OUTER_IPV4
            | sys::RTE_MBUF_F_TX_OUTER_IPV6
            | sys::RTE_MBUF_F_TX_OUTER_IP_CKSUM
            | sys::RTE_MBUF_F_TX_OUTER_UDP_CKSUM;
        let m = self.raw_mut();
        m.ol_flags = (m.ol_flags & !sys::RTE_MBUF_F_TX_OFFLOAD_MASK) | (flags & ALLOWED);
        // tx_offload bit layout (rte_mbuf_core.h): l2_len:7, l3_len:9, l4_len:8.
        let packed =
            u64::from(l2_len & 0x7f) | (u64::from(l3_len & 0x1ff) << 7) | (u64::from(l4_len) << 16);
        m.__bindgen_anon_3.tx_offload = packed;
    }

    /// The port the packet came in on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Copies a chained packet into its first segment. Fails if it does not fit.
    pub fn linearize(&mut self) -> Result<(), DpdkError> {
        if self.is_contiguous() {
            return Ok(());
        }
        // SAFETY: valid owned mbuf; DPDK frees the emptied segments itself.
        check("rte_pktmbuf_linearize", unsafe {
            sys::rte_pktmbuf_linearize(self.0.as_ptr())
        })
        .map(|_| ())
    }

    /// Gives up ownership (for handing the mbuf to DPDK).
    #[inline(always)]
    pub(super) fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this nothing refers to it.
        unsafe { sys::rte_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("pkt_len", &self.pkt_len())
            .field("segments", &self.segments())
            .field("port", &self.port())
            .finish()
    }
}
