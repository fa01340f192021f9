//! Quiescent-state-based reclamation (QSBR), the scheme DPDK's `rte_rcu_qsbr` uses.
//!
//! The writer unlinks an item (an LPM group, a locator set, an entry id), then advances the
//! epoch and files the item under the new epoch. Each reader reports, once per burst, the epoch
//! it saw at the start of that burst; having loaded that epoch it can no longer reach anything
//! unlinked before it. An item filed under epoch `t` may be reused once every online reader has
//! reported `t` or later. Readers pay one load and one store to their own cache line per burst:
//! no lock, no read-modify-write, no fence. Going online after being offline (an idle worker)
//! costs one fence, paired with the fence the writer issues before it scans the readers.
//!
//! Nothing here frees memory: items go back to the writer's free lists, and the memory they live
//! in stays allocated (see `chunked`), so a late reader at worst reads a stale but well-formed
//! value. QSBR is what keeps it from reading a *reused* one.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

use crossbeam::utils::CachePadded;

const OFFLINE: u64 = u64::MAX;

struct Slot {
    seen: AtomicU64,
    taken: AtomicBool,
}

/// Reader registry and epoch.
pub(crate) struct Qsbr {
    epoch: CachePadded<AtomicU64>,
    slots: Box<[CachePadded<Slot>]>,
}

impl Qsbr {
    pub(crate) fn new(max_readers: usize) -> Self {
        Qsbr {
            epoch: CachePadded::new(AtomicU64::new(1)),
            slots: (0..max_readers)
                .map(|_| {
                    CachePadded::new(Slot {
                        seen: AtomicU64::new(OFFLINE),
                        taken: AtomicBool::new(false),
                    })
                })
                .collect(),
        }
    }

    /// Takes a free reader slot (set-up time, not the fast path). The reader starts offline.
    pub(crate) fn register(&self) -> Option<usize> {
        self.slots.iter().position(|s| {
            s.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Gives a slot back.
    pub(crate) fn unregister(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            s.seen.store(OFFLINE, Ordering::Release);
            s.taken.store(false, Ordering::Release);
        }
    }

    /// A reader that is online reports a quiescent state: it holds nothing read before now.
    #[inline(always)]
    pub(crate) fn quiescent(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            s.seen
                .store(self.epoch.load(Ordering::Acquire), Ordering::Release);
        }
    }

    /// An offline reader comes online (then reads). Pairs with the fence in [`Qsbr::min_seen`]:
    /// either the writer sees this reader, or this reader sees the writer's unlinks.
    pub(crate) fn online(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            s.seen
                .store(self.epoch.load(Ordering::Acquire), Ordering::Relaxed);
            fence(Ordering::SeqCst);
        }
    }

    /// A reader goes offline (e.g. before sleeping): the writer stops waiting for it.
    pub(crate) fn offline(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            s.seen.store(OFFLINE, Ordering::Release);
        }
    }

    /// Writer: after unlinking, opens a new epoch and returns it; items unlinked before are
    /// filed under it.
    pub(crate) fn advance(&self) -> u64 {
        let e = self.epoch.load(Ordering::Relaxed) + 1;
        self.epoch.store(e, Ordering::Release);
        e
    }

    /// Writer: the epoch now.
    pub(crate) fn current(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Writer: the oldest epoch an online reader may still be in; items filed under an epoch
    /// at or below it are unreachable.
    pub(crate) fn min_seen(&self) -> u64 {
        fence(Ordering::SeqCst);
        let now = self.epoch.load(Ordering::Relaxed);
        self.slots
            .iter()
            .map(|s| s.seen.load(Ordering::Acquire))
            .filter(|&e| e != OFFLINE)
            .fold(now, u64::min)
    }

    /// Readers registered now.
    pub(crate) fn readers(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.taken.load(Ordering::Acquire))
            .count()
    }

    /// Slots there are.
    pub(crate) fn max_readers(&self) -> usize {
        self.slots.len()
    }
}
