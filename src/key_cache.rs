//! Resolved keys by the exact text of their parts, so that a repeated call
//! skips validation, canonicalisation (RFC 8785) and SHA-256. A cached key
//! is served only to a key equal to it part for part, config text included:
//! configs that differ only in member order are cached apart, and resolve
//! to the same entry.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use crate::clock_cache::ClockCache;
use crate::error::Result;
use crate::key::{KeyRef, ResolvedKey};
use crate::metrics::KeySeries;

/// A resolved key and the metric series its calls count in.
pub(crate) struct CachedKey {
    pub resolved: ResolvedKey,
    pub series: KeySeries,
}

impl std::ops::Deref for CachedKey {
    type Target = ResolvedKey;

    fn deref(&self) -> &ResolvedKey {
        &self.resolved
    }
}

/// Keys kept per store: a few hundred bytes each.
pub(crate) const KEY_CACHE_CAPACITY: usize = 8192;

pub(crate) struct KeyCache {
    /// By a hash of the parts; a lookup compares the parts themselves, so a
    /// hash collision is a miss, never another key's entry.
    keys: ClockCache<u64, Arc<CachedKey>>,
    hasher: RandomState,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        KeyCache { keys: ClockCache::new(capacity, 8), hasher: RandomState::new() }
    }

    /// `key` resolved, from the cache when it was resolved before, with
    /// its metric series (`series` finds them on a miss). An invalid key is
    /// refused every time (and never cached).
    pub fn resolve(&self, key: KeyRef<'_>, series: impl FnOnce(&ResolvedKey) -> KeySeries) -> Result<Arc<CachedKey>> {
        let hash = self.hasher.hash_one(key);
        if let Some(found) = self.keys.get(&hash, |cached| cached.key.borrowed() == key) {
            return Ok(found);
        }
        let resolved = ResolvedKey::resolve_borrowed(key)?;
        let cached = Arc::new(CachedKey { series: series(&resolved), resolved });
        self.keys.insert(hash, Arc::clone(&cached), 1);
        Ok(cached)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.used()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;
    use crate::key::Key;
    use crate::metrics::Metrics;

    fn series(key: &ResolvedKey) -> KeySeries {
        Metrics::new(10, 10).key_series(&key.key.feature_set, &key.key.symbol)
    }

    fn key(config: &str) -> Key {
        Key::new("returns", "AAPL", 19000, 19100, config)
    }

    #[test]
    fn serves_each_key_its_own_entry() {
        let cache = KeyCache::new(16);
        let sorted = cache.resolve(key(r#"{"kind":"sma","window":20}"#).borrowed(), series).unwrap();
        let reordered = cache.resolve(key(r#"{"window": 20, "kind": "sma"}"#).borrowed(), series).unwrap();
        let other = cache.resolve(key(r#"{"kind":"sma","window":21}"#).borrowed(), series).unwrap();
        assert_eq!(sorted.entry_id, reordered.entry_id, "member order does not change the entry");
        assert_ne!(sorted.entry_id, other.entry_id, "a different value is a different entry");
        assert_eq!(reordered.key.config, r#"{"window": 20, "kind": "sma"}"#, "each text keeps its own resolution");
        // Served again from the cache: the very same resolution, and still each its own.
        for _ in 0..3 {
            for (k, expected) in [(r#"{"kind":"sma","window":20}"#, &sorted), (r#"{"kind":"sma","window":21}"#, &other)] {
                let again = cache.resolve(key(k).borrowed(), series).unwrap();
                assert!(Arc::ptr_eq(&again, expected));
                assert_eq!(again.entry_id, ResolvedKey::resolve(&key(k)).unwrap().entry_id);
            }
        }
        // Every part counts, not only the config.
        let variants = [
            Key::new("returnz", "AAPL", 19000, 19100, "{}"),
            Key::new("returns", "AAPM", 19000, 19100, "{}"),
            Key::new("returns", "AAPL", 19001, 19100, "{}"),
            Key::new("returns", "AAPL", 19000, 19101, "{}"),
            key("{}"),
        ];
        let ids: std::collections::HashSet<String> =
            variants.iter().map(|k| cache.resolve(k.borrowed(), series).unwrap().entry_id.clone()).collect();
        assert_eq!(ids.len(), variants.len());
        for k in &variants {
            assert_eq!(cache.resolve(k.borrowed(), series).unwrap().key, *k);
        }
    }

    #[test]
    fn is_bounded_and_never_caches_a_bad_key() {
        let cache = KeyCache::new(64);
        for day in 0..1000 {
            let k = Key::new("f", "S", day, day, "{}");
            let resolved = cache.resolve(k.borrowed(), series).unwrap();
            assert_eq!(resolved.key, k);
            assert!(cache.len() <= 64);
        }
        assert_eq!(cache.len(), 64);
        for _ in 0..2 {
            let err = cache.resolve(key("{").borrowed(), series).err().expect("a malformed config is refused");
            assert_eq!(err.status(), Status::InvalidArgument);
        }
        assert_eq!(cache.len(), 64);
    }
}
