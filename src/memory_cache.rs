//! A per-process cache of decoded entries, so that a repeated hit costs a
//! `stat` instead of a Parquet decode. The file stays the proof of a hit: an
//! entry is served from memory only while its file is still the very file it
//! was read from. A replaced file is a new inode, but inode numbers are
//! reused, so the stamp also holds the size and the modification, change
//! and (where the file system keeps it) birth times; and the store drops its
//! cached copy whenever it publishes, puts or invalidates the entry itself.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::data::Data;
use crate::error::{Error, Result};
use crate::sync::lock;

/// Identifies one version of a file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    btime_ns: Option<i128>,
}

impl FileStamp {
    /// `None` when the file does not exist. Any other failure (`EACCES`,
    /// `ESTALE`) is an error, not a miss: an entry that cannot be examined
    /// must not be computed again as if it were absent.
    pub fn of(path: &Path) -> Result<Option<FileStamp>> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(Self::from_metadata(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot stat {}", path.display()), e)),
        }
    }

    pub fn from_metadata(m: &std::fs::Metadata) -> FileStamp {
        let btime_ns = m
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128);
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            btime_ns,
        }
    }
}

pub(crate) struct MemoryCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Slot>,
    used: usize,
    clock: u64,
}

impl State {
    fn forget(&mut self, entry_id: &str) {
        if let Some(old) = self.entries.remove(entry_id) {
            self.used -= old.bytes;
        }
    }
}

struct Slot {
    data: Arc<Data>,
    stamp: FileStamp,
    bytes: usize,
    last_used: u64,
}

impl MemoryCache {
    /// A cache holding up to `capacity` bytes of Arrow data; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        MemoryCache { capacity, state: Mutex::new(State::default()) }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn get(&self, entry_id: &str, stamp: FileStamp) -> Option<Arc<Data>> {
        let mut state = lock(&self.state);
        state.clock += 1;
        let now = state.clock;
        let slot = state.entries.get_mut(entry_id)?;
        if slot.stamp != stamp {
            return None;
        }
        slot.last_used = now;
        Some(Arc::clone(&slot.data))
    }

    /// Keeps `data` (read from the file with `stamp`), evicting the least
    /// recently used entries to make room. Entries larger than a quarter of
    /// the cache are not kept.
    pub fn insert(&self, entry_id: &str, stamp: FileStamp, data: Arc<Data>) {
        let bytes: usize = data.batches.iter().map(|b| b.get_array_memory_size()).sum();
        if !self.enabled() || bytes > self.capacity / 4 {
            return;
        }
        let mut state = lock(&self.state);
        state.forget(entry_id);
        while state.used + bytes > self.capacity {
            let Some(victim) = state.entries.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone()) else {
                break;
            };
            state.forget(&victim);
        }
        state.clock += 1;
        let last_used = state.clock;
        state.used += bytes;
        state.entries.insert(entry_id.to_string(), Slot { data, stamp, bytes, last_used });
    }

    pub fn remove(&self, entry_id: &str) {
        lock(&self.state).forget(entry_id);
    }

    #[cfg(test)]
    fn used(&self) -> usize {
        lock(&self.state).used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    fn data(rows: usize) -> Arc<Data> {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Float64Array::from(vec![1.0; rows]))]).unwrap();
        Arc::new(Data { schema, batches: vec![batch] })
    }

    #[test]
    fn serves_only_the_file_version_it_read_and_evicts_the_least_recent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, b"one").unwrap();
        let stamp = FileStamp::of(&path).unwrap().unwrap();
        let one = data(1000);
        let size: usize = one.batches[0].get_array_memory_size();
        let cache = MemoryCache::new(size * 4 + 10);
        cache.insert("a", stamp, one);
        assert!(cache.get("a", stamp).is_some());

        // A republished file (new inode) is a different version.
        let tmp = dir.path().join("a.tmp");
        std::fs::write(&tmp, b"two!").unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let new_stamp = FileStamp::of(&path).unwrap().unwrap();
        assert_ne!(stamp, new_stamp);
        assert!(cache.get("a", new_stamp).is_none());

        for name in ["b", "c", "d"] {
            cache.insert(name, stamp, data(1000));
        }
        assert!(cache.get("b", stamp).is_some()); // b is now more recent than a
        cache.insert("e", stamp, data(1000)); // evicts a, the least recent
        assert!(cache.get("a", stamp).is_none());
        assert!(cache.get("b", stamp).is_some());
        assert!(cache.used() <= size * 4 + 10);
        cache.remove("b");
        assert!(cache.get("b", stamp).is_none());
        assert!(FileStamp::of(&dir.path().join("missing")).unwrap().is_none());
    }

    #[test]
    fn a_zero_capacity_keeps_nothing() {
        let cache = MemoryCache::new(0);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        let stamp = FileStamp::of(&dir.path().join("a")).unwrap().unwrap();
        cache.insert("a", stamp, data(10));
        assert!(cache.get("a", stamp).is_none());
    }
}
