//! A per-process cache of decoded entries, so that a repeated hit costs a
//! `stat` instead of a Parquet decode. The file stays the proof of a hit: an
//! entry is served from memory only while its file is still the very file it
//! was read from. A replaced file is a new inode, but inode numbers are
//! reused, so the stamp also holds the size and the modification, change
//! and (where the file system keeps it) birth times; and the store drops its
//! cached copy whenever it publishes, puts or invalidates the entry itself.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use crate::clock_cache::ClockCache;
use crate::data::Data;
use crate::error::{Error, Result};

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

/// Shards of the cache: enough that threads hitting different entries
/// rarely share a lock, few enough that each shard's clock keeps a useful
/// history.
const SHARDS: usize = 8;

pub(crate) struct MemoryCache {
    capacity: usize,
    entries: ClockCache<Box<str>, Cached>,
}

/// A decoded entry and the version of the file it was decoded from.
#[derive(Clone)]
struct Cached {
    data: Arc<Data>,
    stamp: FileStamp,
}

impl MemoryCache {
    /// A cache holding up to `capacity` bytes of Arrow data; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        MemoryCache { capacity, entries: ClockCache::new(capacity, SHARDS) }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Whether an entry of `bytes` of Arrow data would be kept: entries
    /// larger than a quarter of the cache are not.
    pub fn would_keep(&self, bytes: usize) -> bool {
        self.enabled() && bytes <= self.capacity / 4
    }

    /// The entry decoded from the file version `stamp`, if it is cached.
    pub fn get(&self, entry_id: &str, stamp: FileStamp) -> Option<Arc<Data>> {
        self.entries.get(entry_id, |cached| cached.stamp == stamp).map(|cached| cached.data)
    }

    /// Keeps `data` (read from the file with `stamp`), evicting entries
    /// unused for longest (approximately: a clock per shard) to make room.
    pub fn insert(&self, entry_id: &str, stamp: FileStamp, data: Arc<Data>) {
        let bytes: usize = data.batches.iter().map(|b| b.get_array_memory_size()).sum();
        if !self.would_keep(bytes) {
            return;
        }
        self.entries.insert(entry_id.into(), Cached { data, stamp }, bytes);
    }

    pub fn remove(&self, entry_id: &str) {
        self.entries.remove(entry_id);
    }

    /// Bytes of Arrow data and entries held.
    pub fn usage(&self) -> (usize, usize) {
        (self.entries.used(), self.entries.len())
    }

    #[cfg(test)]
    fn used(&self) -> usize {
        self.entries.used()
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
    fn serves_only_the_file_version_it_read_and_stays_within_its_capacity() {
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

        for name in ["b", "c", "d", "e"] {
            cache.insert(name, stamp, data(1000));
            assert!(cache.get(name, stamp).is_some(), "a new entry is never its own victim");
        }
        // Room for four: one of the five went, and the bytes add up.
        let held = ["a", "b", "c", "d", "e"].iter().filter(|n| cache.get(n, stamp).is_some()).count();
        assert_eq!(held, 4);
        assert_eq!(cache.used(), 4 * size);
        assert!(cache.get("e", stamp).is_some());
        // Too large an entry (over a quarter of the cache) is not kept.
        cache.insert("big", stamp, data(2000));
        assert!(cache.get("big", stamp).is_none());
        cache.remove("e");
        assert!(cache.get("e", stamp).is_none());
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
