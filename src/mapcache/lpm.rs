//! Longest-prefix match: a multibit trie with a wide root and 8-bit strides below it, updated in
//! place by one writer while readers look up (the DIR-24-8 family of DPDK's `rte_lpm`, with the
//! root width a parameter: 16 or 24 bits; see docs/mapcache.md for the measurements).
//!
//! Every table slot is an `AtomicU32`:
//! - `0`: no route;
//! - tag `1..=129` in the top 8 bits: a leaf, prefix length `tag - 1`, value in the low 24 bits
//!   (prefixes are expanded into every slot they cover: controlled prefix expansion);
//! - tag `0xFF`: the slot points to a 256-slot group for the next 8 bits.
//!
//! A lookup is one load per level and never waits. The writer keeps the rules (prefix, length,
//! value) on its side, so it knows what covers a deleted prefix and which slots are whose. A
//! group that stops holding anything longer than its parent slot is folded back into that slot
//! and handed to the caller to retire (it is reused only after every reader has moved on).

use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};

use rustc_hash::FxHashMap;

use crate::dpdk::AtomicTable;

/// Largest value a leaf carries (24 bits).
pub(crate) const MAX_VALUE: u32 = 0x00FF_FFFF;
const GROUP: u32 = 0xFF;
const GROUP_SHIFT: u32 = 8;
const GROUP_LEN: usize = 1 << GROUP_SHIFT;

/// An address as an unsigned integer, most significant bit first.
pub(crate) trait Key: Copy + Eq + Hash + std::fmt::Debug {
    /// Address length in bits.
    const BITS: u32;
    /// `len` bits starting at bit `start` (0 = most significant); 0 when out of range.
    fn bits(self, start: u32, len: u32) -> usize;
    /// The first `BITS - shift` bits (`shift` < `BITS`): `self >> shift`.
    fn top(self, shift: u32) -> usize;
    /// The first `depth` bits, the rest zeroed.
    fn masked(self, depth: u32) -> Self;
}

/// `Key` for an unsigned integer of `$bits` bits.
macro_rules! impl_key {
    ($t:ty, $bits:expr) => {
        impl Key for $t {
            const BITS: u32 = $bits;
            #[inline(always)]
            fn bits(self, start: u32, len: u32) -> usize {
                if len == 0 || start + len > $bits {
                    return 0;
                }
                ((self << start) >> ($bits - len)) as usize
            }
            #[inline(always)]
            fn top(self, shift: u32) -> usize {
                (self >> (shift % $bits)) as usize
            }
            #[inline(always)]
            fn masked(self, depth: u32) -> Self {
                match depth {
                    0 => 0,
                    d if d >= $bits => self,
                    d => self & (<$t>::MAX << ($bits - d)),
                }
            }
        }
    };
}

impl_key!(u32, 32);
impl_key!(u128, 128);

#[inline(always)]
fn leaf(depth: u32, value: u32) -> u32 {
    ((depth + 1) << 24) | (value & MAX_VALUE)
}
#[inline(always)]
fn is_group(e: u32) -> bool {
    e >> 24 == GROUP
}
/// Prefix length of a leaf; `None` for "no route" (and groups).
#[inline(always)]
fn depth(e: u32) -> Option<u32> {
    match e >> 24 {
        0 | GROUP => None,
        t => Some(t - 1),
    }
}
/// The value of a leaf slot, `None` for no route.
#[inline(always)]
pub(crate) fn leaf_value(e: u32) -> Option<u32> {
    match e >> 24 {
        0 | GROUP => None,
        _ => Some(e & MAX_VALUE),
    }
}

/// The part readers see: roots (one per table, e.g. per instance-ID) and the group pool, each
/// one flat table allocated once (zeroed, committed lazily, transparent hugepages where the
/// kernel allows) and indexed modulo its power-of-two length: a lookup level is one shift, one
/// mask and one load, with no chunk indirection and no bounds check.
pub(crate) struct LpmShared<K> {
    root_bits: u32,
    roots: AtomicTable<AtomicU32>,
    groups: AtomicTable<AtomicU32>,
    tables: usize,
    _key: PhantomData<K>,
}

#[derive(Clone, Copy)]
enum Table {
    Root(usize),
    Group(u32),
}

impl<K: Key> LpmShared<K> {
    /// `tables` roots of `1 << root_bits` slots, at most `max_groups` groups. `None` when the
    /// memory cannot be mapped.
    pub(crate) fn new(root_bits: u32, tables: usize, max_groups: u32) -> Option<Self> {
        Some(LpmShared {
            root_bits,
            roots: AtomicTable::zeroed(tables.checked_shl(root_bits)?, true)?,
            groups: AtomicTable::zeroed((max_groups.max(1) as usize) << GROUP_SHIFT, true)?,
            tables,
            _key: PhantomData,
        })
    }

    /// The leaf slot for `key` in table `root` (0 when there is no route).
    #[inline(always)]
    pub(crate) fn lookup(&self, root: usize, key: K) -> u32 {
        let base = root << self.root_bits;
        let mut e = self
            .roots
            .at(base | key.bits(0, self.root_bits))
            .load(Ordering::Acquire);
        let mut start = self.root_bits;
        while is_group(e) {
            if start >= K::BITS {
                return 0;
            }
            let i = (((e & MAX_VALUE) as usize) << GROUP_SHIFT) | key.bits(start, GROUP_SHIFT);
            e = self.groups.at(i).load(Ordering::Acquire);
            start += GROUP_SHIFT;
        }
        e
    }

    /// [`LpmShared::lookup`] for a batch, the strategy chosen by measurement
    /// (perf/results/mapcache-*.md): with at most one level below the root (IPv4, 24-bit
    /// root: ~99% of BGP-table lookups end at the root) root-first, else level by level.
    #[inline]
    pub(crate) fn lookup_batch(&self, root: usize, keys: &[K], out: &mut [u32]) {
        if K::BITS <= self.root_bits + GROUP_SHIFT {
            self.lookup_root_first(root, keys, out);
        } else {
            self.lookup_levels(root, keys, out);
        }
    }

    /// Starts loading `key`'s root slot in table `root`, for a lookup a little later.
    #[inline(always)]
    pub(crate) fn prefetch_root(&self, root: usize, key: K) {
        self.roots
            .prefetch((root << self.root_bits) | key.top(K::BITS - self.root_bits));
    }

    /// Root-first: one pass prefetches every root slot of the burst, so all the burst's root
    /// misses are in flight at once (more than the out-of-order window would keep), then the
    /// loop loads them. Keys whose root slot is a group (host routes: /32 EIDs of moved VMs,
    /// ~1% of a BGP table) are finished afterwards, their group slots prefetched together too.
    #[inline(always)]
    fn lookup_root_first(&self, root: usize, keys: &[K], out: &mut [u32]) {
        let base = root << self.root_bits;
        let shift = K::BITS - self.root_bits;
        for k in keys {
            self.roots.prefetch(base | k.top(shift));
        }
        let mut deep = [0u8; 64];
        let mut nd = 0;
        for (i, (k, o)) in keys.iter().zip(out.iter_mut()).enumerate() {
            let e = self.roots.at(base | k.top(shift)).load(Ordering::Acquire);
            *o = e;
            if is_group(e) {
                if i < deep.len() {
                    deep[nd] = i as u8;
                    nd += 1;
                } else {
                    *o = self.below_root(e, *k);
                }
            }
        }
        if nd == 0 {
            return;
        }
        for &i in &deep[..nd] {
            let (e, k) = (out[usize::from(i)], keys[usize::from(i)]);
            self.groups.prefetch(
                (((e & MAX_VALUE) as usize) << GROUP_SHIFT) | k.bits(self.root_bits, GROUP_SHIFT),
            );
        }
        for &i in &deep[..nd] {
            let i = usize::from(i);
            out[i] = self.below_root(out[i], keys[i]);
        }
    }

    /// A batch level by level across the batch, so the loads of
    /// different keys overlap in the memory system (every root load of the burst is issued
    /// before any group load).
    #[inline]
    fn lookup_levels(&self, root: usize, keys: &[K], out: &mut [u32]) {
        let base = root << self.root_bits;
        let shift = K::BITS - self.root_bits;
        for k in keys {
            self.roots.prefetch(base | k.top(shift));
        }
        let mut deeper = false;
        for (k, o) in keys.iter().zip(out.iter_mut()) {
            let e = self.roots.at(base | k.top(shift)).load(Ordering::Acquire);
            deeper |= is_group(e);
            *o = e;
        }
        let mut start = self.root_bits;
        while deeper {
            deeper = false;
            let end = start >= K::BITS;
            if !end {
                // This level's slots all start loading before the first is read.
                for (k, o) in keys.iter().zip(out.iter()) {
                    if is_group(*o) {
                        self.groups.prefetch(
                            (((*o & MAX_VALUE) as usize) << GROUP_SHIFT)
                                | k.bits(start, GROUP_SHIFT),
                        );
                    }
                }
            }
            for (k, o) in keys.iter().zip(out.iter_mut()) {
                if is_group(*o) {
                    let e = if end {
                        0
                    } else {
                        let i = (((*o & MAX_VALUE) as usize) << GROUP_SHIFT)
                            | k.bits(start, GROUP_SHIFT);
                        self.groups.at(i).load(Ordering::Acquire)
                    };
                    deeper |= is_group(e);
                    *o = e;
                }
            }
            start += GROUP_SHIFT;
        }
    }

    /// The walk below the root for `key` whose root slot is the group pointer `e`.
    #[inline(never)]
    fn below_root(&self, mut e: u32, key: K) -> u32 {
        let mut start = self.root_bits;
        while is_group(e) {
            if start >= K::BITS {
                return 0;
            }
            let i = (((e & MAX_VALUE) as usize) << GROUP_SHIFT) | key.bits(start, GROUP_SHIFT);
            e = self.groups.at(i).load(Ordering::Acquire);
            start += GROUP_SHIFT;
        }
        e
    }

    fn slot(&self, t: Table, i: usize) -> &AtomicU32 {
        match t {
            Table::Root(r) => self.roots.at((r << self.root_bits) | i),
            Table::Group(g) => self.groups.at(((g as usize) << GROUP_SHIFT) | i),
        }
    }

    fn load(&self, t: Table, i: usize) -> u32 {
        self.slot(t, i).load(Ordering::Acquire)
    }

    fn store(&self, t: Table, i: usize, e: u32) {
        self.slot(t, i).store(e, Ordering::Release);
    }

    /// Makes table `root` ready (writer), false past the configured number. Commits its root
    /// now (one store per 4 KiB page, of the zero already there, before any reader can know
    /// the table), so the kernel backs a 24-bit root with hugepages while memory is
    /// unfragmented, not page by page as prefixes arrive.
    pub(crate) fn ensure_root(&self, root: usize) -> bool {
        if root >= self.tables {
            return false;
        }
        let base = root << self.root_bits;
        for i in (0..1usize << self.root_bits).step_by(1024) {
            self.roots.at(base | i).store(0, Ordering::Relaxed);
        }
        true
    }

    /// Bytes a root table takes once written.
    pub(crate) fn root_bytes(&self) -> usize {
        (1usize << self.root_bits) * std::mem::size_of::<AtomicU32>()
    }

    /// Whether the kernel backs the tables with transparent hugepages.
    pub(crate) fn hugepages(&self) -> bool {
        self.roots.hugepages() || self.groups.hugepages()
    }
}

/// Why an LPM update was refused (nothing was changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LpmError {
    /// The group pool is exhausted.
    NoGroups,
    /// Bad prefix length or value.
    Invalid,
}

/// The writer's side: the rules of every table, and the group free list.
pub(crate) struct LpmWriter<K> {
    rules: Vec<Vec<FxHashMap<K, u32>>>,
    free_groups: Vec<u32>,
    next_group: u32,
    max_groups: u32,
    groups_in_use: u32,
}

impl<K: Key> LpmWriter<K> {
    pub(crate) fn new(max_groups: u32) -> Self {
        LpmWriter {
            rules: Vec::new(),
            free_groups: Vec::new(),
            next_group: 0,
            max_groups,
            groups_in_use: 0,
        }
    }

    fn rules_mut(&mut self, root: usize) -> &mut Vec<FxHashMap<K, u32>> {
        if self.rules.len() <= root {
            self.rules.resize_with(root + 1, Vec::new);
        }
        let r = &mut self.rules[root];
        if r.is_empty() {
            r.resize_with(K::BITS as usize + 1, FxHashMap::default);
        }
        r
    }

    /// The value of the exact rule `prefix/depth` in table `root`.
    pub(crate) fn get(&self, root: usize, prefix: K, depth: u32) -> Option<u32> {
        self.rules
            .get(root)?
            .get(depth as usize)?
            .get(&prefix.masked(depth))
            .copied()
    }

    /// The longest rule strictly shorter than `depth` covering `prefix`, as a leaf slot.
    fn covering(&self, root: usize, prefix: K, depth: u32) -> u32 {
        let Some(r) = self.rules.get(root) else {
            return 0;
        };
        for d in (0..depth).rev() {
            if let Some(v) = r.get(d as usize).and_then(|m| m.get(&prefix.masked(d))) {
                return leaf(d, *v);
            }
        }
        0
    }

    /// Groups ever allocated (the high-water mark: their memory is committed).
    pub(crate) fn groups_touched(&self) -> u32 {
        self.next_group
    }

    /// Groups in use now (not counting those waiting to be retired).
    pub(crate) fn groups_in_use(&self) -> u32 {
        self.groups_in_use
    }

    fn groups_available(&self) -> u32 {
        self.free_groups.len() as u32 + (self.max_groups - self.next_group)
    }

    fn alloc_group(&mut self) -> Option<u32> {
        let g = match self.free_groups.pop() {
            Some(g) => g,
            None if self.next_group < self.max_groups => {
                self.next_group += 1;
                self.next_group - 1
            }
            None => return None,
        };
        self.groups_in_use += 1;
        Some(g)
    }

    /// A retired group is unreachable by every reader: reuse it.
    pub(crate) fn free_group(&mut self, g: u32) {
        self.free_groups.push(g);
    }

    /// Adds or replaces `prefix/depth` → `value` in table `root`; returns the value replaced.
    pub(crate) fn insert(
        &mut self,
        sh: &LpmShared<K>,
        root: usize,
        prefix: K,
        depth: u32,
        value: u32,
    ) -> Result<Option<u32>, LpmError> {
        if depth > K::BITS || value > MAX_VALUE {
            return Err(LpmError::Invalid);
        }
        let prefix = prefix.masked(depth);
        if self.groups_needed(sh, root, prefix, depth) > self.groups_available() {
            return Err(LpmError::NoGroups);
        }
        let old = self.rules_mut(root)[depth as usize].insert(prefix, value);
        self.insert_at(
            sh,
            Table::Root(root),
            0,
            sh.root_bits,
            prefix,
            depth,
            leaf(depth, value),
        );
        Ok(old)
    }

    /// Groups an insert of `prefix/depth` would allocate: one per level below the root that
    /// the prefix reaches and that has no group yet on its path.
    fn groups_needed(&self, sh: &LpmShared<K>, root: usize, prefix: K, depth: u32) -> u32 {
        let mut t = Table::Root(root);
        let (mut start, mut width) = (0, sh.root_bits);
        while depth > start + width {
            let e = sh.load(t, prefix.bits(start, width));
            if !is_group(e) {
                return (depth - (start + width)).div_ceil(GROUP_SHIFT);
            }
            t = Table::Group(e & MAX_VALUE);
            start += width;
            width = GROUP_SHIFT;
        }
        0
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_at(
        &mut self,
        sh: &LpmShared<K>,
        t: Table,
        start: u32,
        width: u32,
        p: K,
        d: u32,
        new: u32,
    ) {
        let end = start + width;
        if d <= end {
            let first = p.bits(start, width);
            let span = 1usize << (end - d);
            for i in first..first + span {
                overwrite(sh, t, i, &|e| depth(e).map_or(true, |x| x <= d), new);
            }
        } else {
            let i = p.bits(start, width);
            let e = sh.load(t, i);
            let g = if is_group(e) {
                e & MAX_VALUE
            } else {
                // Checked up front in insert(): a group is available.
                let Some(g) = self.alloc_group() else {
                    return;
                };
                for j in 0..GROUP_LEN {
                    sh.slot(Table::Group(g), j).store(e, Ordering::Relaxed);
                }
                // Release: the group's slots are visible before the pointer to it.
                sh.store(t, i, (GROUP << 24) | g);
                g
            };
            self.insert_at(sh, Table::Group(g), end, GROUP_SHIFT, p, d, new);
        }
    }

    /// Removes `prefix/depth` from table `root`; returns its value. Groups that became
    /// unnecessary are pushed to `retired`: the caller reuses them once readers moved on.
    pub(crate) fn remove(
        &mut self,
        sh: &LpmShared<K>,
        root: usize,
        prefix: K,
        depth: u32,
        retired: &mut Vec<u32>,
    ) -> Option<u32> {
        if depth > K::BITS {
            return None;
        }
        let prefix = prefix.masked(depth);
        let old = self
            .rules
            .get_mut(root)?
            .get_mut(depth as usize)?
            .remove(&prefix)?;
        let cover = self.covering(root, prefix, depth);
        let before = retired.len();
        self.remove_at(
            sh,
            Table::Root(root),
            0,
            sh.root_bits,
            prefix,
            depth,
            cover,
            retired,
        );
        self.groups_in_use -= (retired.len() - before) as u32;
        Some(old)
    }

    #[allow(clippy::too_many_arguments)]
    fn remove_at(
        &mut self,
        sh: &LpmShared<K>,
        t: Table,
        start: u32,
        width: u32,
        p: K,
        d: u32,
        cover: u32,
        retired: &mut Vec<u32>,
    ) {
        let end = start + width;
        if d <= end {
            let first = p.bits(start, width);
            let span = 1usize << (end - d);
            for i in first..first + span {
                overwrite(sh, t, i, &|e| depth(e) == Some(d), cover);
            }
        } else {
            let i = p.bits(start, width);
            let e = sh.load(t, i);
            if !is_group(e) {
                return;
            }
            let g = e & MAX_VALUE;
            self.remove_at(sh, Table::Group(g), end, GROUP_SHIFT, p, d, cover, retired);
            if let Some(u) = uniform(sh, g, end) {
                sh.store(t, i, u);
                retired.push(g);
            }
        }
    }
}

/// Sets slot `i` of `t` (and, through groups, everything below it) to `new` where `pred` holds.
fn overwrite<K: Key>(sh: &LpmShared<K>, t: Table, i: usize, pred: &dyn Fn(u32) -> bool, new: u32) {
    let e = sh.load(t, i);
    if is_group(e) {
        let g = Table::Group(e & MAX_VALUE);
        for j in 0..GROUP_LEN {
            overwrite(sh, g, j, pred, new);
        }
    } else if pred(e) {
        sh.store(t, i, new);
    }
}

/// If group `g` (covering bits from `start`) holds no group and no prefix longer than `start`,
/// all its slots are equal: that slot.
fn uniform<K: Key>(sh: &LpmShared<K>, g: u32, start: u32) -> Option<u32> {
    let first = sh.load(Table::Group(g), 0);
    for j in 0..GROUP_LEN {
        let e = sh.load(Table::Group(g), j);
        if e != first || is_group(e) || depth(e).is_some_and(|x| x > start) {
            return None;
        }
    }
    Some(first)
}
