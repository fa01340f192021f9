//! The neighbour table: IP address → MAC address and DPDK port, for delivering decapsulated
//! packets and reaching next hops. Published to the workers the same way as the map-cache: one
//! writer (the control core: ARP/ND), lock-free readers with a snapshot per burst.
//!
//! Host routes (/32, /128) in the same trie as the map-cache (16-bit root); the MAC and port
//! of a neighbour fit in one 64-bit word, so changing them is a single atomic store.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::chunked::Chunked;
use super::lpm::{leaf_value, LpmError, LpmShared, LpmWriter, MAX_VALUE};
use super::qsbr::Qsbr;
use super::MapCacheError;

/// Where to send a frame for a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Neighbor {
    /// Its MAC address.
    pub mac: [u8; 6],
    /// The DPDK port it is reached through.
    pub port: u16,
}

impl Neighbor {
    fn word(self) -> u64 {
        let m = self.mac;
        u64::from_be_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0]) | u64::from(self.port)
    }
    fn from_word(w: u64) -> Self {
        let b = w.to_be_bytes();
        Neighbor {
            mac: [b[0], b[1], b[2], b[3], b[4], b[5]],
            port: w as u16,
        }
    }
}

struct Shared {
    qsbr: Qsbr,
    v4: LpmShared<u32>,
    v6: LpmShared<u128>,
    values: Chunked<AtomicU64>,
    /// Bumped after every change (a neighbour added, changed or removed): readers that keep
    /// what they derived from the table (the workers' outer headers per RLOC) know when to
    /// throw it away.
    generation: AtomicU64,
}

/// Creates a neighbour table for up to `capacity` neighbours and `max_readers` workers.
pub fn neighbor_table(capacity: u32, max_readers: usize) -> Result<NeighborWriter, MapCacheError> {
    if capacity == 0 || capacity > MAX_VALUE / 2 || max_readers == 0 {
        return Err(MapCacheError::InvalidConfig(format!(
            "neighbour table: capacity {capacity} must be 1..={}, max_readers at least 1",
            MAX_VALUE / 2
        )));
    }
    let v4_groups = capacity.saturating_mul(2).min(MAX_VALUE);
    let v6_groups = capacity.saturating_mul(14).min(MAX_VALUE);
    let ids = capacity as usize * 2 + 64;
    let no_memory =
        || MapCacheError::InvalidConfig("neighbour table: cannot map its tables".into());
    Ok(NeighborWriter {
        shared: Arc::new(Shared {
            qsbr: Qsbr::new(max_readers),
            v4: LpmShared::new(16, 1, v4_groups).ok_or_else(no_memory)?,
            v6: LpmShared::new(16, 1, v6_groups).ok_or_else(no_memory)?,
            values: Chunked::new(ids, 12),
            generation: AtomicU64::new(0),
        }),
        lpm4: LpmWriter::new(v4_groups),
        lpm6: LpmWriter::new(v6_groups),
        ids: FxHashMap::default(),
        free: Vec::new(),
        next: 0,
        id_space: ids as u32,
        capacity,
        limbo: VecDeque::new(),
        roots: false,
    })
}

/// The control core's handle on the neighbour table.
pub struct NeighborWriter {
    shared: Arc<Shared>,
    lpm4: LpmWriter<u32>,
    lpm6: LpmWriter<u128>,
    ids: FxHashMap<IpAddr, (u32, Neighbor)>,
    free: Vec<u32>,
    next: u32,
    id_space: u32,
    capacity: u32,
    limbo: VecDeque<(u64, Retired)>,
    roots: bool,
}

enum Retired {
    Id(u32),
    Group4(u32),
    Group6(u32),
}

impl NeighborWriter {
    /// Registers a reader (one per worker).
    pub fn reader(&self) -> Result<NeighborReader, MapCacheError> {
        let slot = self
            .shared
            .qsbr
            .register()
            .ok_or(MapCacheError::TooManyReaders {
                max: self.shared.qsbr.max_readers(),
            })?;
        Ok(NeighborReader {
            shared: self.shared.clone(),
            slot,
            online: false,
        })
    }

    /// Neighbours known.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every neighbour, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (IpAddr, Neighbor)> + '_ {
        self.ids.iter().map(|(ip, (_, n))| (*ip, *n))
    }

    /// The neighbour of `ip`, if any.
    pub fn get(&self, ip: IpAddr) -> Option<Neighbor> {
        self.ids.get(&ip).map(|(_, n)| *n)
    }

    /// Adds or updates the neighbour `ip`.
    pub fn insert(&mut self, ip: IpAddr, neighbor: Neighbor) -> Result<(), MapCacheError> {
        if !self.roots {
            self.shared.v4.ensure_root(0);
            self.shared.v6.ensure_root(0);
            self.roots = true;
        }
        if let Some((id, n)) = self.ids.get_mut(&ip) {
            if *n != neighbor {
                if let Some(w) = self.shared.values.get(*id as usize) {
                    w.store(neighbor.word(), Ordering::Release);
                }
                *n = neighbor;
                self.shared.generation.fetch_add(1, Ordering::Release);
            }
            return Ok(());
        }
        if self.ids.len() as u32 >= self.capacity {
            return Err(MapCacheError::NeighborTableFull {
                capacity: self.capacity,
            });
        }
        if self.free.is_empty() {
            self.reclaim();
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.next < self.id_space => {
                self.next += 1;
                self.next - 1
            }
            None => return Err(MapCacheError::Busy),
        };
        let Some(w) = self.shared.values.ensure(id as usize) else {
            self.free.push(id);
            return Err(MapCacheError::Busy);
        };
        w.store(neighbor.word(), Ordering::Release);
        let res = match ip {
            IpAddr::V4(a) => self.lpm4.insert(&self.shared.v4, 0, a.into(), 32, id),
            IpAddr::V6(a) => self.lpm6.insert(&self.shared.v6, 0, a.into(), 128, id),
        };
        match res {
            Ok(_) => {
                self.ids.insert(ip, (id, neighbor));
                self.shared.generation.fetch_add(1, Ordering::Release);
                Ok(())
            }
            Err(LpmError::NoGroups) | Err(LpmError::Invalid) => {
                self.free.push(id);
                Err(MapCacheError::NeighborTableFull {
                    capacity: self.capacity,
                })
            }
        }
    }

    /// Forgets the neighbour `ip`; returns what it was.
    pub fn remove(&mut self, ip: IpAddr) -> Option<Neighbor> {
        let (id, n) = self.ids.remove(&ip)?;
        let mut groups = Vec::new();
        let mut retired = vec![Retired::Id(id)];
        match ip {
            IpAddr::V4(a) => {
                self.lpm4
                    .remove(&self.shared.v4, 0, a.into(), 32, &mut groups);
                retired.extend(groups.into_iter().map(Retired::Group4));
            }
            IpAddr::V6(a) => {
                self.lpm6
                    .remove(&self.shared.v6, 0, a.into(), 128, &mut groups);
                retired.extend(groups.into_iter().map(Retired::Group6));
            }
        }
        self.shared.generation.fetch_add(1, Ordering::Release);
        let epoch = self.shared.qsbr.advance();
        self.limbo.extend(retired.into_iter().map(|r| (epoch, r)));
        Some(n)
    }

    /// Reuses what no reader can see any more; returns how many items.
    pub fn reclaim(&mut self) -> usize {
        let safe = self.shared.qsbr.min_seen();
        let mut n = 0;
        while self.limbo.front().is_some_and(|(e, _)| *e <= safe) {
            match self.limbo.pop_front() {
                Some((_, Retired::Id(id))) => self.free.push(id),
                Some((_, Retired::Group4(g))) => self.lpm4.free_group(g),
                Some((_, Retired::Group6(g))) => self.lpm6.free_group(g),
                None => break,
            }
            n += 1;
        }
        n
    }
}

/// A worker's handle on the neighbour table.
pub struct NeighborReader {
    shared: Arc<Shared>,
    slot: usize,
    online: bool,
}

impl NeighborReader {
    /// Starts a burst (reports a quiescent state), like [`super::MapCacheReader::snapshot`].
    #[inline]
    pub fn snapshot(&mut self) -> NeighborSnapshot<'_> {
        if self.online {
            self.shared.qsbr.quiescent(self.slot);
        } else {
            self.shared.qsbr.online(self.slot);
            self.online = true;
        }
        NeighborSnapshot {
            shared: &self.shared,
        }
    }

    /// Stops taking part until the next snapshot (an idle worker).
    pub fn offline(&mut self) {
        self.shared.qsbr.offline(self.slot);
        self.online = false;
    }
}

impl Drop for NeighborReader {
    fn drop(&mut self) {
        self.shared.qsbr.unregister(self.slot);
    }
}

/// A worker's view of the neighbour table for one burst.
pub struct NeighborSnapshot<'a> {
    shared: &'a Shared,
}

impl NeighborSnapshot<'_> {
    /// The table's generation: it changes after every change to the table, so two equal
    /// values mean nothing a reader derived in between is out of date.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The neighbour `ip`, if known.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<Neighbor> {
        let e = match ip {
            IpAddr::V4(a) => self.shared.v4.lookup(0, a.into()),
            IpAddr::V6(a) => self.shared.v6.lookup(0, a.into()),
        };
        let id = leaf_value(e)?;
        let w = self.shared.values.get(id as usize)?.load(Ordering::Acquire);
        Some(Neighbor::from_word(w))
    }

    /// Looks up a burst of IPv4 neighbours: `out[i]` for `ips[i]` (the LPM level by level
    /// across the burst, so the cache misses of different addresses overlap).
    #[inline]
    pub fn lookup_v4_batch(&self, ips: &[u32], out: &mut [Option<Neighbor>]) {
        self.lookup_batch(&self.shared.v4, ips, out);
    }

    /// [`NeighborSnapshot::lookup_v4_batch`] for IPv6 neighbours.
    #[inline]
    pub fn lookup_v6_batch(&self, ips: &[u128], out: &mut [Option<Neighbor>]) {
        self.lookup_batch(&self.shared.v6, ips, out);
    }

    #[inline(always)]
    fn lookup_batch<K: super::lpm::Key>(
        &self,
        lpm: &LpmShared<K>,
        ips: &[K],
        out: &mut [Option<Neighbor>],
    ) {
        let mut slots = [0u32; 64];
        for (ips, out) in ips.chunks(64).zip(out.chunks_mut(64)) {
            let n = ips.len().min(out.len());
            lpm.lookup_batch(0, &ips[..n], &mut slots[..n]);
            // Every value starts loading before the first is read (misses in a large table).
            if n > 1 {
                for e in &slots[..n] {
                    if let Some(id) = leaf_value(*e) {
                        self.shared.values.prefetch(id as usize);
                    }
                }
            }
            for (o, e) in out.iter_mut().zip(&slots[..n]) {
                *o = leaf_value(*e).and_then(|id| {
                    let w = self.shared.values.get(id as usize)?.load(Ordering::Acquire);
                    Some(Neighbor::from_word(w))
                });
            }
        }
    }
}
