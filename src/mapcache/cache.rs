//! The map-cache: (instance-ID, EID-prefix) → mapping, written by the control core, read by the
//! workers without locks. See the module documentation in `mod.rs` for the model.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use super::chunked::Chunked;
use super::lpm::{leaf_value, LpmError, LpmShared, LpmWriter, MAX_VALUE};
use super::mapping::{
    locator_at, select, select_packed, set_image, Mapping, NegativeAction, SetImage, SET_WORDS,
};
use super::qsbr::Qsbr;
use super::MapCacheError;
use crate::dpdk::AtomicTable;

/// Sizes fixed when the cache is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapCacheConfig {
    /// Most entries (IPv4 and IPv6, all instance-IDs); inserting past it evicts the least
    /// recently used entry.
    pub capacity: u32,
    /// Most readers (worker lcores) registered at once.
    pub max_readers: usize,
    /// Most instance-IDs.
    pub max_iids: usize,
    /// Width of the IPv4 root table: 16 (256 KiB per IID) or 24 (64 MiB per IID, DIR-24-8).
    pub v4_root_bits: u8,
    /// Width of the IPv6 root table: 16 or 24.
    pub v6_root_bits: u8,
    /// Most 256-slot groups (1 KiB each) for IPv4 prefixes longer than the root.
    pub v4_groups: u32,
    /// Most 256-slot groups for IPv6.
    pub v6_groups: u32,
}

impl Default for MapCacheConfig {
    fn default() -> Self {
        MapCacheConfig {
            capacity: 100_000,
            max_readers: 16,
            max_iids: 16,
            v4_root_bits: 24,
            v6_root_bits: 16,
            v4_groups: 1 << 16,
            v6_groups: 1 << 18,
        }
    }
}

impl MapCacheConfig {
    fn validate(&self) -> Result<(), MapCacheError> {
        let bad = |m: String| Err(MapCacheError::InvalidConfig(m));
        if self.capacity == 0 || self.capacity > MAX_VALUE / 2 {
            return bad(format!(
                "capacity {} must be 1..={}",
                self.capacity,
                MAX_VALUE / 2
            ));
        }
        for (name, bits) in [("v4", self.v4_root_bits), ("v6", self.v6_root_bits)] {
            if ![8, 16, 24].contains(&bits) {
                return bad(format!("{name}_root_bits {bits} must be 8, 16 or 24"));
            }
        }
        if self.max_readers == 0 || self.max_iids == 0 {
            return bad("max_readers and max_iids must be at least 1".into());
        }
        if self.v4_groups > MAX_VALUE || self.v6_groups > MAX_VALUE {
            return bad(format!("at most {MAX_VALUE} groups per family"));
        }
        Ok(())
    }

    /// Entry ids: the capacity plus room for ids that wait for readers to move on.
    fn id_space(&self) -> u32 {
        (self.capacity.saturating_mul(2).saturating_add(1024)).min(MAX_VALUE + 1)
    }
}

/// What the pipeline does with a packet whose destination EID it looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Resolution {
    /// Encapsulate to this RLOC.
    Encapsulate(IpAddr),
    /// Negative entry: forward natively (PETR/PITR behaviour for non-LISP destinations).
    NativelyForward,
    /// Negative entry: drop.
    Drop,
    /// Negative entry asking for a Map-Request: treat like a miss, without a new entry.
    SendMapRequest,
    /// A mapping exists but none of its locators is usable (all unreachable or priority 255).
    NoUsableRloc,
    /// No entry covers the EID: punt (IID, EID) to the control core for a Map-Request.
    #[default]
    Miss,
}

/// A [`Resolution`] packed in one word, for the per-packet path of an IPv4 underlay: the
/// common outcome, an IPv4 RLOC, is read without building an `IpAddr`.
/// [`Snapshot::resolve_v4_packed`] makes them; [`Snapshot::unpack`] gives the full form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Packed(u64);

const PK_MISS: u64 = 0;
const PK_V4: u64 = 1;
const PK_V6: u64 = 2;
const PK_NATIVE: u64 = 3;
const PK_DROP: u64 = 4;
const PK_SMR: u64 = 5;
const PK_UNUSABLE: u64 = 6;

impl Packed {
    /// No entry covers the EID.
    pub const MISS: Packed = Packed(PK_MISS);

    #[inline(always)]
    fn new(kind: u64, low: u32) -> Self {
        Packed(kind << 56 | u64::from(low))
    }

    #[inline(always)]
    fn kind(self) -> u64 {
        self.0 >> 56
    }

    /// The IPv4 RLOC to encapsulate to, when that is the outcome.
    #[inline(always)]
    pub fn rloc_v4(self) -> Option<u32> {
        (self.kind() == PK_V4).then_some(self.0 as u32)
    }
}

/// Entry flags in the reader-visible target word.
const POSITIVE: u32 = 1 << 30;
const NEGATIVE: u32 = 2 << 30;

fn action_code(a: NegativeAction) -> u32 {
    match a {
        NegativeAction::NativelyForward => 0,
        NegativeAction::Drop => 1,
        NegativeAction::SendMapRequest => 2,
    }
}

/// What readers see.
struct Shared {
    qsbr: Qsbr,
    /// Root index → `1 << 32 | iid` when in use.
    iids: Box<[AtomicU64]>,
    v4: LpmShared<u32>,
    v6: LpmShared<u128>,
    /// Entry id → `POSITIVE | set` or `NEGATIVE | action`.
    entries: AtomicTable<AtomicU32>,
    sets: Chunked<[AtomicU64; SET_WORDS]>,
    /// Per reader slot: entry id → hits (wrapping), written only by that reader.
    hits: Box<[AtomicTable<AtomicU32>]>,
}

impl Shared {
    #[inline(always)]
    fn root_of(&self, iid: u32) -> Option<usize> {
        let want = (1u64 << 32) | u64::from(iid);
        self.iids
            .iter()
            .position(|w| w.load(Ordering::Acquire) == want)
    }
}

/// Memory the cache has allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Bytes of the tables the readers read (roots, groups, entries, locator sets, counters).
    pub reader_bytes: usize,
    /// LPM groups in use (IPv4, IPv6).
    pub groups_in_use: (u32, u32),
    /// Locator sets in use.
    pub sets_in_use: u32,
    /// Items waiting for readers to move on before reuse.
    pub waiting: usize,
    /// Whether the kernel accepted transparent hugepages for the LPM tables.
    pub hugepages: bool,
}

/// Usage of one entry, as of the last [`MapCacheWriter::collect_usage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Lookups that hit the entry, all workers.
    pub hits: u64,
    /// When it was last seen used (or inserted), in the caller's milliseconds.
    pub last_used_ms: u64,
}

/// What [`MapCacheWriter::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertOutcome {
    /// The prefix had a mapping, now replaced.
    pub replaced: bool,
    /// The entry evicted to make room (least recently used).
    pub evicted: Option<(u32, IpNet)>,
}

struct EntryState {
    iid: u32,
    root: usize,
    prefix: IpNet,
    mapping: Mapping,
    set: Option<u32>,
    last_used: u64,
    expires: Option<u64>,
    hits: u64,
    hits_seen: u32,
    /// When the prefix was first installed (a replacement keeps it).
    installed: u64,
}

/// One map-cache entry as `pxtr ctl` shows it (see [`MapCacheWriter::entries`]).
#[derive(Debug, Clone, Copy)]
pub struct EntryView<'a> {
    pub iid: u32,
    pub prefix: IpNet,
    pub mapping: &'a Mapping,
    /// When it expires (caller's milliseconds); `None`: never.
    pub expires_ms: Option<u64>,
    /// When the prefix was first installed.
    pub installed_ms: u64,
    pub usage: Usage,
}

enum Retired {
    Group4(u32),
    Group6(u32),
    Set(u32),
    Entry(u32),
}

/// Creates a map-cache: the writer (control core) and the factory of readers.
pub fn map_cache(config: MapCacheConfig) -> Result<MapCacheWriter, MapCacheError> {
    config.validate()?;
    let ids = config.id_space() as usize;
    let no_memory = || {
        MapCacheError::InvalidConfig(format!(
            "cannot map the reader tables for {} instance-IDs",
            config.max_iids
        ))
    };
    let hits = (0..config.max_readers)
        .map(|_| AtomicTable::zeroed(ids, true))
        .collect::<Option<Box<[_]>>>()
        .ok_or_else(no_memory)?;
    let shared = Arc::new(Shared {
        qsbr: Qsbr::new(config.max_readers),
        iids: (0..config.max_iids).map(|_| AtomicU64::new(0)).collect(),
        v4: LpmShared::new(
            u32::from(config.v4_root_bits),
            config.max_iids,
            config.v4_groups,
        )
        .ok_or_else(no_memory)?,
        v6: LpmShared::new(
            u32::from(config.v6_root_bits),
            config.max_iids,
            config.v6_groups,
        )
        .ok_or_else(no_memory)?,
        entries: AtomicTable::zeroed(ids, true).ok_or_else(no_memory)?,
        sets: Chunked::new(ids, 10),
        hits,
    });
    Ok(MapCacheWriter {
        lpm4: LpmWriter::new(config.v4_groups),
        lpm6: LpmWriter::new(config.v6_groups),
        iid_roots: FxHashMap::default(),
        entries: Vec::new(),
        free_entries: Vec::new(),
        sets: FxHashMap::default(),
        set_images: Vec::new(),
        free_sets: Vec::new(),
        lru: BTreeSet::new(),
        expiry: BTreeSet::new(),
        limbo: VecDeque::new(),
        len: 0,
        id_space: config.id_space(),
        config,
        shared,
    })
}

/// The control core's handle: the only writer.
pub struct MapCacheWriter {
    shared: Arc<Shared>,
    config: MapCacheConfig,
    lpm4: LpmWriter<u32>,
    lpm6: LpmWriter<u128>,
    iid_roots: FxHashMap<u32, usize>,
    entries: Vec<Option<EntryState>>,
    free_entries: Vec<u32>,
    sets: FxHashMap<SetImage, (u32, u32)>,
    set_images: Vec<SetImage>,
    free_sets: Vec<u32>,
    lru: BTreeSet<(u64, u32)>,
    expiry: BTreeSet<(u64, u32)>,
    limbo: VecDeque<(u64, Retired)>,
    len: u32,
    id_space: u32,
}

impl MapCacheWriter {
    /// Registers a reader (one per worker). Fails when `max_readers` are registered.
    pub fn reader(&self) -> Result<MapCacheReader, MapCacheError> {
        let slot = self
            .shared
            .qsbr
            .register()
            .ok_or(MapCacheError::TooManyReaders {
                max: self.config.max_readers,
            })?;
        Ok(MapCacheReader {
            shared: self.shared.clone(),
            slot,
            online: false,
        })
    }

    /// Entries in the cache.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.config.capacity as usize
    }

    fn root(&mut self, iid: u32) -> Result<usize, MapCacheError> {
        if let Some(&r) = self.iid_roots.get(&iid) {
            return Ok(r);
        }
        let r = self.iid_roots.len();
        let too_many = MapCacheError::TooManyIids {
            max: self.config.max_iids,
        };
        if r >= self.config.max_iids
            || !self.shared.v4.ensure_root(r)
            || !self.shared.v6.ensure_root(r)
        {
            return Err(too_many);
        }
        let Some(w) = self.shared.iids.get(r) else {
            return Err(too_many);
        };
        w.store((1u64 << 32) | u64::from(iid), Ordering::Release);
        self.iid_roots.insert(iid, r);
        Ok(r)
    }

    fn find(&self, iid: u32, prefix: IpNet) -> Option<u32> {
        let root = *self.iid_roots.get(&iid)?;
        match prefix.trunc() {
            IpNet::V4(p) => self
                .lpm4
                .get(root, p.network().into(), p.prefix_len().into()),
            IpNet::V6(p) => self
                .lpm6
                .get(root, p.network().into(), p.prefix_len().into()),
        }
    }

    /// The mapping installed for exactly `iid`/`prefix`.
    pub fn get(&self, iid: u32, prefix: IpNet) -> Option<&Mapping> {
        let id = self.find(iid, prefix)?;
        Some(&self.entries.get(id as usize)?.as_ref()?.mapping)
    }

    /// Every entry, in no particular order (the control core's view: what `pxtr ctl show
    /// map-cache` lists). Usage is as of the last [`MapCacheWriter::collect_usage`].
    pub fn entries(&self) -> impl Iterator<Item = EntryView<'_>> + '_ {
        self.entries.iter().flatten().map(|e| EntryView {
            iid: e.iid,
            prefix: e.prefix,
            mapping: &e.mapping,
            expires_ms: e.expires,
            installed_ms: e.installed,
            usage: Usage {
                hits: e.hits,
                last_used_ms: e.last_used,
            },
        })
    }

    /// Usage of `iid`/`prefix` as of the last [`MapCacheWriter::collect_usage`].
    pub fn usage(&self, iid: u32, prefix: IpNet) -> Option<Usage> {
        let id = self.find(iid, prefix)?;
        let e = self.entries.get(id as usize)?.as_ref()?;
        Some(Usage {
            hits: e.hits,
            last_used_ms: e.last_used,
        })
    }

    fn acquire_set(&mut self, img: SetImage) -> Option<u32> {
        if let Some((id, refs)) = self.sets.get_mut(&img) {
            *refs += 1;
            return Some(*id);
        }
        let id = match self.free_sets.pop() {
            Some(id) => id,
            None if (self.set_images.len() as u32) < self.id_space => {
                self.set_images.push([0; SET_WORDS]);
                self.set_images.len() as u32 - 1
            }
            None => return None,
        };
        let Some(words) = self.shared.sets.ensure(id as usize) else {
            self.free_sets.push(id);
            return None;
        };
        for (w, v) in words.iter().zip(img.iter()) {
            w.store(*v, Ordering::Relaxed);
        }
        if let Some(slot) = self.set_images.get_mut(id as usize) {
            *slot = img;
        }
        self.sets.insert(img, (id, 1));
        Some(id)
    }

    fn release_set(&mut self, id: u32, retired: &mut Vec<Retired>) {
        let Some(img) = self.set_images.get(id as usize).copied() else {
            return;
        };
        if let Some((_, refs)) = self.sets.get_mut(&img) {
            *refs -= 1;
            if *refs == 0 {
                self.sets.remove(&img);
                retired.push(Retired::Set(id));
            }
        }
    }

    fn target(&mut self, mapping: &Mapping) -> Result<(u32, Option<u32>), MapCacheError> {
        if mapping.locators.is_empty() {
            return Ok((NEGATIVE | action_code(mapping.action), None));
        }
        let set = self
            .acquire_set(set_image(&mapping.locators))
            .ok_or(MapCacheError::Busy)?;
        Ok((POSITIVE | set, Some(set)))
    }

    /// Installs `mapping` for `iid`/`prefix` (host bits of `prefix` are ignored), replacing
    /// any mapping of that exact prefix. When the cache is full the least recently used entry
    /// is evicted and returned. `now_ms` is the caller's clock (for TTL and LRU).
    pub fn insert(
        &mut self,
        iid: u32,
        prefix: IpNet,
        mapping: Mapping,
        now_ms: u64,
    ) -> Result<InsertOutcome, MapCacheError> {
        let prefix = prefix.trunc();
        let mut retired = Vec::new();
        let expires = mapping
            .ttl
            .map(|t| now_ms.saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)));
        if let Some(id) = self.find(iid, prefix) {
            // Replacing a mapping is O(1): one store of the entry word the prefix's leaves
            // name. A refresh with the same locators and action (a new TTL or version) does not
            // even write that: readers' cache lines stay untouched.
            let same = matches!(
                self.entries.get(id as usize),
                Some(Some(e)) if e.mapping.locators == mapping.locators
                    && e.mapping.action == mapping.action
            );
            let mut old_set = None;
            if !same {
                let (target, set) = self.target(&mapping)?;
                self.shared
                    .entries
                    .at(id as usize)
                    .store(target, Ordering::Release);
                if let Some(Some(e)) = self.entries.get_mut(id as usize) {
                    old_set = std::mem::replace(&mut e.set, set);
                }
            }
            let Some(Some(e)) = self.entries.get_mut(id as usize) else {
                return Err(MapCacheError::Busy);
            };
            e.mapping = mapping;
            let old_exp = std::mem::replace(&mut e.expires, expires);
            if let Some(x) = old_exp {
                self.expiry.remove(&(x, id));
            }
            if let Some(x) = expires {
                self.expiry.insert((x, id));
            }
            if let Some(s) = old_set {
                self.release_set(s, &mut retired);
            }
            self.retire(retired);
            return Ok(InsertOutcome {
                replaced: true,
                evicted: None,
            });
        }
        let root = self.root(iid)?;
        let mut evicted = None;
        if self.len >= self.config.capacity {
            if let Some(&(_, victim)) = self.lru.iter().next() {
                if let Some(Some(v)) = self.entries.get(victim as usize) {
                    let key = (v.iid, v.prefix);
                    self.remove(key.0, key.1);
                    evicted = Some(key);
                }
            }
        }
        let id = self.alloc_entry()?;
        let (target, set) = match self.target(&mapping) {
            Ok(t) => t,
            Err(e) => {
                self.free_entries.push(id);
                return Err(e);
            }
        };
        self.shared
            .entries
            .at(id as usize)
            .store(target, Ordering::Release);
        let res = match prefix {
            IpNet::V4(p) => self.lpm4.insert(
                &self.shared.v4,
                root,
                p.network().into(),
                p.prefix_len().into(),
                id,
            ),
            IpNet::V6(p) => self.lpm6.insert(
                &self.shared.v6,
                root,
                p.network().into(),
                p.prefix_len().into(),
                id,
            ),
        };
        if let Err(e) = res {
            self.free_entries.push(id);
            if let Some(s) = set {
                self.release_set(s, &mut retired);
            }
            self.retire(retired);
            return Err(match e {
                LpmError::NoGroups => MapCacheError::TableFull {
                    family: if prefix.addr().is_ipv4() {
                        "IPv4"
                    } else {
                        "IPv6"
                    },
                },
                LpmError::Invalid => MapCacheError::InvalidPrefix(prefix),
            });
        }
        let hits_seen = self.hits_sum(id);
        let slot = self.entries_slot(id);
        *slot = Some(EntryState {
            iid,
            root,
            prefix,
            mapping,
            set,
            last_used: now_ms,
            expires,
            hits: 0,
            hits_seen,
            installed: now_ms,
        });
        self.lru.insert((now_ms, id));
        if let Some(x) = expires {
            self.expiry.insert((x, id));
        }
        self.len += 1;
        self.retire(retired);
        Ok(InsertOutcome {
            replaced: false,
            evicted,
        })
    }

    fn entries_slot(&mut self, id: u32) -> &mut Option<EntryState> {
        let i = id as usize;
        if self.entries.len() <= i {
            self.entries.resize_with(i + 1, || None);
        }
        &mut self.entries[i]
    }

    fn alloc_entry(&mut self) -> Result<u32, MapCacheError> {
        if self.free_entries.is_empty() && self.entries.len() as u32 >= self.id_space {
            self.reclaim();
        }
        if let Some(id) = self.free_entries.pop() {
            return Ok(id);
        }
        let next = self.entries.len() as u32;
        if next < self.id_space {
            self.entries.push(None);
            Ok(next)
        } else {
            Err(MapCacheError::Busy)
        }
    }

    fn hits_sum(&self, id: u32) -> u32 {
        self.shared.hits.iter().fold(0u32, |s, h| {
            s.wrapping_add(h.at(id as usize).load(Ordering::Relaxed))
        })
    }

    /// Removes the mapping of exactly `iid`/`prefix`; returns it.
    pub fn remove(&mut self, iid: u32, prefix: IpNet) -> Option<Mapping> {
        let prefix = prefix.trunc();
        let root = *self.iid_roots.get(&iid)?;
        let mut groups = Vec::new();
        let mut retired = Vec::new();
        let id = match prefix {
            IpNet::V4(p) => {
                let id = self.lpm4.remove(
                    &self.shared.v4,
                    root,
                    p.network().into(),
                    p.prefix_len().into(),
                    &mut groups,
                )?;
                retired.extend(groups.drain(..).map(Retired::Group4));
                id
            }
            IpNet::V6(p) => {
                let id = self.lpm6.remove(
                    &self.shared.v6,
                    root,
                    p.network().into(),
                    p.prefix_len().into(),
                    &mut groups,
                )?;
                retired.extend(groups.drain(..).map(Retired::Group6));
                id
            }
        };
        let e = self.entries.get_mut(id as usize)?.take()?;
        debug_assert_eq!((e.root, e.iid), (root, iid));
        self.lru.remove(&(e.last_used, id));
        if let Some(x) = e.expires {
            self.expiry.remove(&(x, id));
        }
        if let Some(s) = e.set {
            self.release_set(s, &mut retired);
        }
        retired.push(Retired::Entry(id));
        self.len -= 1;
        self.retire(retired);
        Some(e.mapping)
    }

    /// Removes every entry whose TTL ran out by `now_ms`; appends them to `expired`.
    pub fn expire(&mut self, now_ms: u64, expired: &mut Vec<(u32, IpNet)>) {
        while let Some(&(at, id)) = self.expiry.iter().next() {
            if at > now_ms {
                break;
            }
            self.expiry.remove(&(at, id));
            if let Some(Some(e)) = self.entries.get(id as usize) {
                let key = (e.iid, e.prefix);
                self.remove(key.0, key.1);
                expired.push(key);
            }
        }
    }

    /// Folds the workers' hit counters into each entry's usage; an entry hit since the last
    /// call counts as used at `now_ms` (the LRU order). Call it periodically (e.g. every
    /// second) from the control core: it reads every counter once and writes none.
    pub fn collect_usage(&mut self, now_ms: u64) {
        for id in 0..self.entries.len() as u32 {
            let sum = self.hits_sum(id);
            let Some(Some(e)) = self.entries.get_mut(id as usize) else {
                continue;
            };
            let delta = sum.wrapping_sub(e.hits_seen);
            if delta == 0 {
                continue;
            }
            e.hits_seen = sum;
            e.hits += u64::from(delta);
            if e.last_used != now_ms {
                self.lru.remove(&(e.last_used, id));
                e.last_used = now_ms;
                self.lru.insert((now_ms, id));
            }
        }
    }

    /// Files unlinked items under the next epoch. The epoch itself is advanced only when
    /// reclaiming (the unlinks happened before that store, which is all QSBR needs), so a burst
    /// of updates writes the cache line every reader loads once, not once per update.
    fn retire(&mut self, retired: Vec<Retired>) {
        if !retired.is_empty() {
            let epoch = self.shared.qsbr.current() + 1;
            self.limbo.extend(retired.into_iter().map(|r| (epoch, r)));
        }
        if self.limbo.len() >= 1024 {
            self.reclaim();
        }
    }

    /// Reuses what no reader can see any more; returns how many items. Runs on its own during
    /// updates; call it from the control loop too so memory comes back when updates stop.
    pub fn reclaim(&mut self) -> usize {
        let Some((newest, _)) = self.limbo.back() else {
            return 0;
        };
        if *newest > self.shared.qsbr.current() {
            self.shared.qsbr.advance();
        }
        let safe = self.shared.qsbr.min_seen();
        let mut n = 0;
        while let Some((epoch, _)) = self.limbo.front() {
            if *epoch > safe {
                break;
            }
            let Some((_, r)) = self.limbo.pop_front() else {
                break;
            };
            match r {
                Retired::Group4(g) => self.lpm4.free_group(g),
                Retired::Group6(g) => self.lpm6.free_group(g),
                Retired::Set(s) => self.free_sets.push(s),
                Retired::Entry(e) => self.free_entries.push(e),
            }
            n += 1;
        }
        n
    }

    /// Memory allocated and in use.
    pub fn memory(&self) -> MemoryUsage {
        let s = &self.shared;
        // The tables are reserved up front and committed as they are written: count the
        // roots of the instance-IDs in use, the groups ever handed out, the entry ids ever
        // handed out (entry word + one hit counter per reader slot) and the locator sets.
        let roots = self.iid_roots.len();
        let group_bytes = 4 << 8;
        MemoryUsage {
            reader_bytes: roots * (s.v4.root_bytes() + s.v6.root_bytes())
                + (self.lpm4.groups_touched() as usize + self.lpm6.groups_touched() as usize)
                    * group_bytes
                + self.entries.len() * 4 * (1 + s.hits.len())
                + s.sets.allocated_bytes(),
            groups_in_use: (self.lpm4.groups_in_use(), self.lpm6.groups_in_use()),
            sets_in_use: self.sets.len() as u32,
            waiting: self.limbo.len(),
            hugepages: s.v4.hugepages() || s.v6.hugepages(),
        }
    }

    /// Readers registered now.
    pub fn readers(&self) -> usize {
        self.shared.qsbr.readers()
    }
}

/// A worker's handle. Take one [`Snapshot`] per burst; go [`offline`](Self::offline) before
/// sleeping so the writer does not wait for you.
pub struct MapCacheReader {
    shared: Arc<Shared>,
    slot: usize,
    online: bool,
}

impl MapCacheReader {
    /// Starts a burst: reports a quiescent state (everything read in earlier bursts is
    /// released) and returns the view to look up through. One load and one store to this
    /// reader's own cache line.
    #[inline]
    pub fn snapshot(&mut self) -> Snapshot<'_> {
        if self.online {
            self.shared.qsbr.quiescent(self.slot);
        } else {
            self.shared.qsbr.online(self.slot);
            self.online = true;
        }
        let hits = self.shared.hits.get(self.slot);
        Snapshot {
            shared: &self.shared,
            hits,
        }
    }

    /// Stops taking part until the next [`MapCacheReader::snapshot`] (an idle worker).
    pub fn offline(&mut self) {
        self.shared.qsbr.offline(self.slot);
        self.online = false;
    }

    /// Maximum readers of this cache.
    pub fn max_readers(&self) -> usize {
        self.shared.qsbr.max_readers()
    }
}

impl Drop for MapCacheReader {
    fn drop(&mut self) {
        self.shared.qsbr.unregister(self.slot);
    }
}

/// A worker's view for one burst.
pub struct Snapshot<'a> {
    shared: &'a Shared,
    hits: Option<&'a AtomicTable<AtomicU32>>,
}

impl Snapshot<'_> {
    /// The entry word (`POSITIVE | set`, `NEGATIVE | action`, 0 for none) a leaf slot names,
    /// counting the hit in this reader's own counters.
    #[inline(always)]
    fn target(&self, e: u32) -> u32 {
        let Some(id) = leaf_value(e) else {
            return 0;
        };
        self.shared.entries.at(id as usize).load(Ordering::Acquire)
    }

    #[inline(always)]
    fn count_hit(&self, e: u32) {
        self.count_hits(e, 1);
    }

    #[inline(always)]
    fn count_hits(&self, e: u32, n: u32) {
        if let (Some(h), Some(id)) = (self.hits, leaf_value(e)) {
            let c = h.at(id as usize);
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    /// Counts a burst's hits, a run of packets to one entry as one add: incrementing the same
    /// counter packet after packet is a chain of dependent memory updates.
    #[inline(always)]
    fn count_burst(&self, slots: &[u32]) {
        let Some(&first) = slots.first() else {
            return;
        };
        let (mut run_e, mut run) = (first, 0u32);
        for e in slots {
            if *e == run_e {
                run += 1;
            } else {
                self.count_hits(run_e, run);
                run_e = *e;
                run = 1;
            }
        }
        self.count_hits(run_e, run);
    }

    #[inline(always)]
    fn outcome(&self, t: u32, flow_hash: u32) -> Resolution {
        match t & (3 << 30) {
            // The resolution is built where the locator is read: going through an
            // `Option<IpAddr>` made the compiler copy it via the stack with mismatched store
            // and load widths (a store-forwarding stall per packet).
            POSITIVE => match self.shared.sets.get((t & MAX_VALUE) as usize) {
                Some(w) => match select(w, flow_hash) {
                    Some(a) => Resolution::Encapsulate(a),
                    None => Resolution::NoUsableRloc,
                },
                None => Resolution::NoUsableRloc,
            },
            NEGATIVE => match t & 3 {
                0 => Resolution::NativelyForward,
                1 => Resolution::Drop,
                _ => Resolution::SendMapRequest,
            },
            _ => Resolution::Miss,
        }
    }

    #[inline(always)]
    fn finish(&self, e: u32, flow_hash: u32) -> Resolution {
        self.count_hit(e);
        self.outcome(self.target(e), flow_hash)
    }

    /// The entry words and hit counters of a large cache are cache misses: start them all.
    #[inline(always)]
    fn prefetch_entries(&self, slots: &[u32]) {
        for e in slots {
            if let Some(id) = leaf_value(*e) {
                self.shared.entries.prefetch(id as usize);
                if let Some(h) = self.hits {
                    h.prefetch(id as usize);
                }
            }
        }
    }

    /// The burst after its LPM: all entry-word loads, then all hit counts, then the RLOC
    /// picks, so the cache misses of different packets overlap instead of queueing.
    #[inline(always)]
    fn finish_burst(&self, slots: &[u32], flow_hashes: &[u32], out: &mut [Resolution]) {
        self.prefetch_entries(slots);
        let mut targets = [0u32; 64];
        for (t, e) in targets.iter_mut().zip(slots) {
            *t = self.target(*e);
        }
        self.count_burst(slots);
        for ((o, t), h) in out.iter_mut().zip(&targets[..slots.len()]).zip(flow_hashes) {
            *o = self.outcome(*t, *h);
        }
    }

    /// The packed outcome of entry word `t` for a flow, and whether any flow gets the same
    /// (at most one usable locator, or no locator at all).
    #[inline(always)]
    fn outcome_packed(&self, t: u32, flow_hash: u32) -> (Packed, bool) {
        match t & (3 << 30) {
            POSITIVE => {
                let set = t & MAX_VALUE;
                match self
                    .shared
                    .sets
                    .get(set as usize)
                    .and_then(|w| select_packed(w, flow_hash))
                {
                    Some((Ok(a), fixed)) => (Packed::new(PK_V4, a), fixed),
                    // The locator's index beside the set id: unpacked when the packet is sent.
                    Some((Err(k), fixed)) => (
                        Packed(PK_V6 << 56 | (k as u64) << 32 | u64::from(set)),
                        fixed,
                    ),
                    None => (Packed::new(PK_UNUSABLE, 0), true),
                }
            }
            NEGATIVE => match t & 3 {
                0 => (Packed::new(PK_NATIVE, 0), true),
                1 => (Packed::new(PK_DROP, 0), true),
                _ => (Packed::new(PK_SMR, 0), true),
            },
            _ => (Packed::MISS, true),
        }
    }

    /// Resolves a burst of IPv4 EIDs (as integers) of instance `iid` into packed results:
    /// the same outcomes as [`Snapshot::resolve_v4`] (and the same hit counts). Processes
    /// `min` of the three lengths.
    #[inline]
    pub fn resolve_v4_packed(
        &self,
        iid: u32,
        eids: &[u32],
        flow_hashes: &[u32],
        out: &mut [Packed],
    ) {
        let mut slots = [0u32; 64];
        let n = eids.len().min(flow_hashes.len()).min(out.len());
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            let slots = &mut slots[..end - start];
            self.resolve_keys(iid, &eids[start..end], slots, &self.shared.v4);
            self.prefetch_entries(slots);
            let mut targets = [0u32; 64];
            for (t, e) in targets.iter_mut().zip(slots.iter()) {
                *t = self.target(*e);
            }
            self.count_burst(slots);
            // A run of packets to one entry whose outcome does not depend on the flow (one
            // locator, negative, none) reuses the first packet's result.
            let (mut prev_t, mut prev) = (u32::MAX, None);
            for ((o, t), h) in out[start..end]
                .iter_mut()
                .zip(&targets)
                .zip(&flow_hashes[start..end])
            {
                if *t == prev_t {
                    if let Some(p) = prev {
                        *o = p;
                        continue;
                    }
                }
                let (p, fixed) = self.outcome_packed(*t, *h);
                *o = p;
                prev_t = *t;
                prev = fixed.then_some(p);
            }
        }
    }

    /// The table of instance `iid`'s IPv4 EIDs, for [`Snapshot::prefetch_v4`]; `None` when
    /// the instance has no mappings.
    #[inline]
    pub fn v4_table(&self, iid: u32) -> Option<usize> {
        self.shared.root_of(iid)
    }

    /// Starts loading the first level of a lookup of `eid` in `table` (from
    /// [`Snapshot::v4_table`]): a packet's destination is known well before its burst is
    /// resolved, and in a large cache that first load is a miss. A hint: changes nothing.
    #[inline(always)]
    pub fn prefetch_v4(&self, table: usize, eid: u32) {
        self.shared.v4.prefetch_root(table, eid);
    }

    /// The full form of a packed result.
    pub fn unpack(&self, p: Packed) -> Resolution {
        match p.kind() {
            PK_V4 => Resolution::Encapsulate(IpAddr::V4(Ipv4Addr::from(p.0 as u32))),
            PK_V6 => {
                let set = (p.0 as u32) as usize;
                let k = ((p.0 >> 32) & 0xff) as usize;
                match self.shared.sets.get(set).and_then(|w| locator_at(w, k)) {
                    Some(a) => Resolution::Encapsulate(a),
                    None => Resolution::NoUsableRloc,
                }
            }
            PK_NATIVE => Resolution::NativelyForward,
            PK_DROP => Resolution::Drop,
            PK_SMR => Resolution::SendMapRequest,
            PK_UNUSABLE => Resolution::NoUsableRloc,
            _ => Resolution::Miss,
        }
    }

    /// Resolves one destination EID in instance `iid` for a flow with `flow_hash`.
    #[inline]
    pub fn resolve(&self, iid: u32, eid: IpAddr, flow_hash: u32) -> Resolution {
        let Some(root) = self.shared.root_of(iid) else {
            return Resolution::Miss;
        };
        let e = match eid {
            IpAddr::V4(a) => self.shared.v4.lookup(root, u32::from(a)),
            IpAddr::V6(a) => self.shared.v6.lookup(root, u128::from(a)),
        };
        self.finish(e, flow_hash)
    }

    /// Resolves a burst of IPv4 EIDs of instance `iid`: `out[i]` for `eids[i]` with
    /// `flow_hashes[i]`. Processes `min` of the three lengths.
    #[inline]
    pub fn resolve_v4(
        &self,
        iid: u32,
        eids: &[Ipv4Addr],
        flow_hashes: &[u32],
        out: &mut [Resolution],
    ) {
        self.resolve_burst(iid, eids, flow_hashes, out, &self.shared.v4);
    }

    /// [`Snapshot::resolve_v4`] for IPv6 EIDs.
    #[inline]
    pub fn resolve_v6(
        &self,
        iid: u32,
        eids: &[Ipv6Addr],
        flow_hashes: &[u32],
        out: &mut [Resolution],
    ) {
        self.resolve_burst(iid, eids, flow_hashes, out, &self.shared.v6);
    }

    /// Both families: the burst in slices of 64 keys (stack arrays, no allocation).
    #[inline(always)]
    fn resolve_burst<A: Copy, K: super::lpm::Key + Default + Copy + From<A>>(
        &self,
        iid: u32,
        eids: &[A],
        flow_hashes: &[u32],
        out: &mut [Resolution],
        lpm: &LpmShared<K>,
    ) {
        let mut keys = [K::default(); 64];
        let mut slots = [0u32; 64];
        let n = eids.len().min(flow_hashes.len()).min(out.len());
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            let m = end - start;
            for (k, a) in keys.iter_mut().zip(&eids[start..end]) {
                *k = K::from(*a);
            }
            self.resolve_keys(iid, &keys[..m], &mut slots[..m], lpm);
            self.finish_burst(&slots[..m], &flow_hashes[start..end], &mut out[start..end]);
        }
    }

    #[inline(always)]
    fn resolve_keys<K: super::lpm::Key>(
        &self,
        iid: u32,
        keys: &[K],
        slots: &mut [u32],
        lpm: &LpmShared<K>,
    ) {
        match self.shared.root_of(iid) {
            Some(root) => lpm.lookup_batch(root, keys, slots),
            None => slots.iter_mut().for_each(|s| *s = 0),
        }
    }

    /// The longest-prefix match alone, as an entry id (what `rte_lpm` returns): for
    /// benchmarks and diagnostics. `out[i]` is `None` on a miss.
    #[inline]
    pub fn entry_ids_v4(&self, iid: u32, eids: &[u32], out: &mut [Option<u32>]) {
        let mut slots = [0u32; 64];
        let n = eids.len().min(out.len());
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            let m = end - start;
            self.resolve_keys(iid, &eids[start..end], &mut slots[..m], &self.shared.v4);
            for (o, e) in out[start..end].iter_mut().zip(&slots[..m]) {
                *o = leaf_value(*e);
            }
        }
    }

    /// [`Snapshot::entry_ids_v4`] for IPv6.
    #[inline]
    pub fn entry_ids_v6(&self, iid: u32, eids: &[u128], out: &mut [Option<u32>]) {
        let mut slots = [0u32; 64];
        let n = eids.len().min(out.len());
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            let m = end - start;
            self.resolve_keys(iid, &eids[start..end], &mut slots[..m], &self.shared.v6);
            for (o, e) in out[start..end].iter_mut().zip(&slots[..m]) {
                *o = leaf_value(*e);
            }
        }
    }

    /// One IPv4 longest-prefix match as an entry id (see [`Snapshot::entry_ids_v4`]).
    #[inline]
    pub fn entry_id_v4(&self, iid: u32, eid: u32) -> Option<u32> {
        let root = self.shared.root_of(iid)?;
        leaf_value(self.shared.v4.lookup(root, eid))
    }

    /// One IPv6 longest-prefix match as an entry id.
    #[inline]
    pub fn entry_id_v6(&self, iid: u32, eid: u128) -> Option<u32> {
        let root = self.shared.root_of(iid)?;
        leaf_value(self.shared.v6.lookup(root, eid))
    }
}
