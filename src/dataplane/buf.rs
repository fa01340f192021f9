//! The packet buffer the pipeline works on: DPDK's [`Mbuf`] on the appliance, [`HeapBuf`] in
//! tests and tools. The pipeline only needs a contiguous frame it can grow and shrink at both
//! ends in place.

use crate::dpdk::Mbuf;

/// A received frame, owned; dropping it frees it.
pub trait PacketBuf {
    /// The frame bytes (first segment).
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the frame by `n` bytes at the front and returns the whole frame; `None` (frame
    /// unchanged) without the headroom.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front; false (unchanged) if the frame is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Moves the frame's start `grow` bytes to the front and makes it `len` bytes long (at
    /// most its length plus `grow`), in one step, and returns the whole frame: how the
    /// encapsulation turns a received frame into the outer one. `None` (frame unchanged)
    /// without the headroom, with `len` too long, or for a chain of segments.
    fn reframe(&mut self, grow: usize, len: usize) -> Option<&mut [u8]>;
    /// Shortens the frame to `len` bytes (no-op when already that short).
    fn truncate(&mut self, len: usize);
    /// The NIC's receive hash, if the port computed one.
    fn rss_hash(&self) -> Option<u32>;
    /// Whether the frame is a chain of segments (the pipeline needs one contiguous segment).
    fn is_chained(&self) -> bool;
    /// Grows the frame by `n` bytes at the end and returns them; `None` without the room.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// What the NIC found of the IPv4 header checksum: `Some(true)` good, `Some(false)` bad,
    /// `None` not checked (the pipeline then checks it).
    fn rx_ip_checksum(&self) -> Option<bool> {
        None
    }
    /// Starts loading the frame's first bytes into the cache (a hint; may do nothing).
    fn prefetch(&self) {}
    /// A new empty buffer of the same kind (from the same pool), for fragments.
    fn alloc_sibling(&self) -> Option<Self>
    where
        Self: Sized;
}

impl PacketBuf for Mbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline(always)]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n = u16::try_from(n).ok()?;
        Mbuf::prepend(self, n)?;
        Some(Mbuf::data_mut(self))
    }
    #[inline(always)]
    fn adj(&mut self, n: usize) -> bool {
        u16::try_from(n).is_ok_and(|n| Mbuf::adj(self, n))
    }
    #[inline(always)]
    fn reframe(&mut self, grow: usize, len: usize) -> Option<&mut [u8]> {
        Mbuf::reframe(self, u16::try_from(grow).ok()?, u16::try_from(len).ok()?)
    }
    #[inline(always)]
    fn truncate(&mut self, len: usize) {
        let cur = usize::from(self.data_len());
        if len < cur && self.is_contiguous() {
            // Cannot fail: the only segment is longer than what is cut.
            let _ = Mbuf::trim(self, (cur - len) as u16);
        }
    }
    #[inline(always)]
    fn rss_hash(&self) -> Option<u32> {
        Mbuf::rss_hash(self)
    }
    #[inline(always)]
    fn is_chained(&self) -> bool {
        !self.is_contiguous()
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::append(self, u16::try_from(n).ok()?)
    }
    fn alloc_sibling(&self) -> Option<Self> {
        Mbuf::alloc_sibling(self)
    }
    #[inline(always)]
    fn prefetch(&self) {
        self.prefetch_data();
    }
    #[inline(always)]
    fn rx_ip_checksum(&self) -> Option<bool> {
        if self.rx_ip_checksum_good() {
            Some(true)
        } else if self.rx_ip_checksum_bad() {
            Some(false)
        } else {
            None
        }
    }
}

/// Headroom of a [`HeapBuf`] (DPDK's default `RTE_PKTMBUF_HEADROOM`).
pub const HEAP_HEADROOM: usize = 128;

/// A frame on the heap with DPDK-like headroom: the in-memory backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapBuf {
    bytes: Vec<u8>,
    start: usize,
    rss: Option<u32>,
}

impl HeapBuf {
    /// A frame with [`HEAP_HEADROOM`] bytes of headroom.
    pub fn new(frame: &[u8]) -> Self {
        Self::with_headroom(frame, HEAP_HEADROOM)
    }

    pub fn with_headroom(frame: &[u8], headroom: usize) -> Self {
        let mut bytes = vec![0; headroom + frame.len()];
        bytes[headroom..].copy_from_slice(frame);
        HeapBuf {
            bytes,
            start: headroom,
            rss: None,
        }
    }

    /// Sets the receive hash the "NIC" reports.
    pub fn with_rss(mut self, hash: u32) -> Self {
        self.rss = Some(hash);
        self
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes[self.start..].to_vec()
    }
}

impl PacketBuf for HeapBuf {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..]
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        self.start = self.start.checked_sub(n)?;
        Some(&mut self.bytes[self.start..])
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.bytes.len() - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn truncate(&mut self, len: usize) {
        self.bytes.truncate(self.start + len);
    }
    fn reframe(&mut self, grow: usize, len: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(grow)?;
        if len > self.bytes.len() - start {
            return None;
        }
        self.start = start;
        self.bytes.truncate(start + len);
        Some(&mut self.bytes[start..])
    }
    fn rss_hash(&self) -> Option<u32> {
        self.rss
    }
    fn is_chained(&self) -> bool {
        false
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let old = self.bytes.len();
        self.bytes.resize(old + n, 0);
        Some(&mut self.bytes[old..])
    }
    fn alloc_sibling(&self) -> Option<Self> {
        Some(HeapBuf::new(&[]))
    }
}
