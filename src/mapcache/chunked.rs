//! Arrays of atomics that the writer grows chunk by chunk while readers index them.
//!
//! A chunk, once allocated, stays at its address for the life of the array, so a reader never
//! sees memory move or go away; it only ever sees a chunk as absent (before the writer published
//! it through the `OnceLock`) or present. Reading costs two bounds checks and one load of the
//! `OnceLock` state (a plain load on x86): no lock, no read-modify-write.

use std::sync::OnceLock;

/// A fixed-capacity array of `T` (an atomic), allocated lazily in power-of-two chunks.
pub(crate) struct Chunked<T> {
    chunks: Box<[OnceLock<Box<[T]>>]>,
    shift: u32,
    mask: usize,
}

impl<T: Default> Chunked<T> {
    /// Room for at least `capacity` elements, in chunks of `1 << chunk_shift`.
    pub(crate) fn new(capacity: usize, chunk_shift: u32) -> Self {
        let chunk_len = 1usize << chunk_shift;
        let n = capacity.div_ceil(chunk_len).max(1);
        Chunked {
            chunks: (0..n).map(|_| OnceLock::new()).collect(),
            shift: chunk_shift,
            mask: chunk_len - 1,
        }
    }

    /// Element `i`, if its chunk exists.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> self.shift)?.get()?.get(i & self.mask)
    }

    /// Hints the CPU to start loading element `i` (a lookup about to read it), if its chunk
    /// exists. Changes nothing visible.
    #[inline(always)]
    pub(crate) fn prefetch(&self, i: usize) {
        if let Some(e) = self.get(i) {
            crate::dpdk::prefetch(e);
        }
    }

    /// Element `i`, allocating its chunk (zeroed) first. Writer only. `None` past capacity.
    pub(crate) fn ensure(&self, i: usize) -> Option<&T> {
        let chunk = self.chunks.get(i >> self.shift)?;
        let len = self.mask + 1;
        chunk
            .get_or_init(|| (0..len).map(|_| T::default()).collect())
            .get(i & self.mask)
    }

    /// Bytes of the chunks allocated so far.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let per_chunk = (self.mask + 1) * std::mem::size_of::<T>();
        self.chunks.iter().filter(|c| c.get().is_some()).count() * per_chunk
            + self.chunks.len() * std::mem::size_of::<OnceLock<Box<[T]>>>()
    }
}
