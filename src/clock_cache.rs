//! A bounded map shared by threads: sharded, each shard behind a
//! reader-writer lock, evicting by CLOCK (second chance). A lookup takes
//! only its shard's read lock and marks the entry used with an atomic flag,
//! so hits of one hot entry from many threads do not serialise, and making
//! room costs O(1) per eviction (amortised) instead of a scan of every entry.
//!
//! The bound is global (the sum of the weights of all entries), so one
//! entry may weigh up to the whole capacity whatever the shard count.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) struct ClockCache<K, V> {
    shards: Box<[RwLock<Shard<K, V>>]>,
    capacity: usize,
    /// Sum of the weights of every entry in every shard.
    used: AtomicUsize,
    /// The next shard to evict from, when the cache is over its capacity.
    next_victim_shard: AtomicUsize,
}

struct Shard<K, V> {
    index: HashMap<K, usize, Fold>,
    slots: Vec<Option<Slot<K, V>>>,
    /// Indices of empty slots, reused before the vector grows.
    free: Vec<usize>,
    /// The clock hand: the slot examined next when evicting.
    hand: usize,
}

struct Slot<K, V> {
    key: K,
    value: V,
    weight: usize,
    /// Set on every hit, cleared as the hand passes: an entry is evicted
    /// only when the hand finds it unused since its last pass.
    referenced: AtomicBool,
}

impl<K: Hash + Eq + Clone, V: Clone> ClockCache<K, V> {
    /// A cache holding entries of up to `capacity` total weight in `shards`
    /// shards (at least one).
    pub fn new(capacity: usize, shards: usize) -> Self {
        let shards = (0..shards.max(1))
            .map(|_| RwLock::new(Shard { index: HashMap::default(), slots: Vec::new(), free: Vec::new(), hand: 0 }))
            .collect();
        ClockCache { shards, capacity, used: AtomicUsize::new(0), next_victim_shard: AtomicUsize::new(0) }
    }

    /// The value of `key`, if `keep` accepts it. An entry that `keep`
    /// refuses stays (its owner replaces or removes it) but is not marked used.
    pub fn get<Q>(&self, key: &Q, keep: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = read(self.shard_of(key));
        let slot = shard.slots[*shard.index.get(key)?].as_ref().expect("indexed slots are full");
        if !keep(&slot.value) {
            return None;
        }
        if !slot.referenced.load(Ordering::Relaxed) {
            slot.referenced.store(true, Ordering::Relaxed);
        }
        Some(slot.value.clone())
    }

    /// Keeps `value` under `key`, replacing any entry of `key`, after
    /// evicting enough to stay within the capacity (so the new entry is
    /// never its own victim). An entry heavier than the whole capacity is
    /// not kept.
    pub fn insert(&self, key: K, value: V, weight: usize) {
        if weight > self.capacity {
            return;
        }
        self.remove(&key);
        self.make_room(weight);
        let mut shard = write(self.shard_of(&key));
        // Another thread may have inserted the key meanwhile.
        if let Some(old) = shard.take(&key) {
            self.used.fetch_sub(old.weight, Ordering::Relaxed);
        }
        shard.put(Slot { key, value, weight, referenced: AtomicBool::new(false) });
        self.used.fetch_add(weight, Ordering::Relaxed);
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(old) = write(self.shard_of(key)).take(key) {
            self.used.fetch_sub(old.weight, Ordering::Relaxed);
        }
    }

    /// The total weight held.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The number of entries held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| read(shard).index.len()).sum()
    }

    /// Evicts from the shards in turn, one entry each, until `incoming`
    /// more fits (or nothing is left to evict).
    fn make_room(&self, incoming: usize) {
        let mut shards_without_victim = 0;
        while self.used.load(Ordering::Relaxed) + incoming > self.capacity && shards_without_victim < self.shards.len() {
            let at = self.next_victim_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
            match write(&self.shards[at]).evict_one() {
                Some(weight) => {
                    self.used.fetch_sub(weight, Ordering::Relaxed);
                    shards_without_victim = 0;
                }
                None => shards_without_victim += 1,
            }
        }
    }

    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<Shard<K, V>> {
        if self.shards.len() == 1 {
            return &self.shards[0];
        }
        // The high bits: HashMap buckets use the low ones.
        let hash = Fold::default().hash_one(key);
        &self.shards[((hash >> 32) as usize) % self.shards.len()]
    }
}

impl<K: Hash + Eq + Clone, V> Shard<K, V> {
    fn take<Q>(&mut self, key: &Q) -> Option<Slot<K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let at = self.index.remove(key)?;
        self.free.push(at);
        self.slots[at].take()
    }

    fn put(&mut self, slot: Slot<K, V>) {
        let key = slot.key.clone();
        let at = match self.free.pop() {
            Some(at) => {
                self.slots[at] = Some(slot);
                at
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.index.insert(key, at);
    }

    /// Removes the first entry the hand finds unused since its last pass,
    /// clearing the marks it passes; returns its weight. At most two turns.
    fn evict_one(&mut self) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        for _ in 0..2 * self.slots.len() {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let Some(slot) = &self.slots[at] else { continue };
            if slot.referenced.swap(false, Ordering::Relaxed) {
                continue;
            }
            let key = slot.key.clone();
            return self.take(&key).map(|s| s.weight);
        }
        None
    }
}

/// A cheap multiplicative hash. The keys here are already hashes (SHA-256
/// entry ids, or hashes of key parts), so SipHash's protection against
/// chosen keys buys nothing and cost a fifth of a hit.
type Fold = BuildHasherDefault<FoldHasher>;

#[derive(Default)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Locks, recovering from poisoning: no critical section here leaves a
/// shard inconsistent before a call that could panic.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_entry_unused_since_the_hand_last_passed() {
        let cache: ClockCache<String, u32> = ClockCache::new(3, 1);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            cache.insert(name.to_string(), i as u32, 1);
        }
        assert_eq!(cache.get("a", |_| true), Some(0)); // a is used
        cache.insert("d".into(), 3, 1); // the hand spares a, evicts b
        assert_eq!(cache.get("b", |_| true), None);
        assert_eq!(cache.get("a", |_| true), Some(0));
        assert_eq!(cache.get("c", |_| true), Some(2));
        assert_eq!(cache.get("d", |_| true), Some(3));
        assert_eq!(cache.used(), 3);
        // Every entry used: a full turn clears the marks, and the hand's
        // next (c, where it stopped) goes; the new entry is never the victim.
        cache.insert("e".into(), 4, 1);
        assert_eq!(cache.used(), 3);
        assert_eq!(cache.get("c", |_| true), None);
        for (k, v) in [("a", 0), ("d", 3), ("e", 4)] {
            assert_eq!(cache.get(k, |_| true), Some(v), "{k}");
        }
    }

    #[test]
    fn stays_within_its_capacity_across_shards_and_replaces_keys() {
        let cache: ClockCache<u32, u32> = ClockCache::new(100, 8);
        for i in 0..10_000 {
            cache.insert(i, i, 1 + (i as usize % 7));
            assert!(cache.used() <= 100, "{} after inserting {i}", cache.used());
        }
        let held: usize = (0..10_000).filter(|i| cache.get(i, |_| true).is_some()).map(|i| 1 + (i as usize % 7)).sum();
        assert_eq!(held, cache.used());
        assert!(held > 50, "the cache keeps most of its capacity in use: {held}");
        // A replaced key weighs once.
        let cache: ClockCache<u32, u32> = ClockCache::new(100, 8);
        cache.insert(1, 1, 40);
        cache.insert(1, 2, 50);
        assert_eq!((cache.used(), cache.get(&1, |_| true)), (50, Some(2)));
        cache.remove(&1);
        assert_eq!((cache.used(), cache.get(&1, |_| true)), (0, None));
    }

    #[test]
    fn a_heavy_entry_evicts_others_and_a_too_heavy_one_is_not_kept() {
        let cache: ClockCache<u32, u32> = ClockCache::new(100, 8);
        for i in 0..50 {
            cache.insert(i, i, 2);
        }
        cache.insert(1000, 1000, 90); // more than any one shard holds
        assert_eq!(cache.get(&1000, |_| true), Some(1000));
        assert!(cache.used() <= 100);
        cache.insert(2000, 2000, 101);
        assert_eq!(cache.get(&2000, |_| true), None);
    }

    #[test]
    fn a_refused_entry_is_not_served() {
        let cache: ClockCache<u32, u32> = ClockCache::new(10, 2);
        cache.insert(1, 7, 1);
        assert_eq!(cache.get(&1, |v| *v == 8), None);
        assert_eq!(cache.get(&1, |v| *v == 7), Some(7));
    }

    #[test]
    fn threads_share_it_without_losing_count() {
        let cache: ClockCache<u32, u32> = ClockCache::new(64, 4);
        std::thread::scope(|s| {
            for t in 0..4 {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..5_000u32 {
                        let k = (i * 7 + t) % 200;
                        if cache.get(&k, |_| true).is_none() {
                            cache.insert(k, k, 1);
                        }
                        if i % 13 == 0 {
                            cache.remove(&k);
                        }
                    }
                });
            }
        });
        let held = (0..200).filter(|k| cache.get(k, |_| true).is_some()).count();
        assert_eq!(held, cache.used());
        assert!(held <= 64);
    }
}
