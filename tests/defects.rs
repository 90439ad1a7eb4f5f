//! Regression tests for correctness defects of the core: the embedded mode
//! and whatever needs no server. Each test states what must hold, through the
//! public API (or the C API where the defect lives at that boundary), and
//! bounds every wait so that a hang fails the test instead of stopping it.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use common::{
    age_files, copy_tree, embedded_options, finished_within, footer_start, key, maintain_now, reader, row_of, sample,
    tags, tiny, within,
};
use fstore::arrow::array::{ArrayRef, DictionaryArray, Float64Array, RecordBatch, TimestampMicrosecondArray};
use fstore::arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use fstore::ffi::{
    fstore_error, fstore_error_release, fstore_maintain_options, fstore_maintain_report, fstore_options_free,
    fstore_options_new, fstore_options_set, fstore_store, fstore_store_close, fstore_store_maintain, fstore_store_open,
    FSTORE_STATUS_OK,
};
use fstore::{Data, Key, Options, Request, Status, Store};

const BOUND: Duration = Duration::from_secs(30);

fn open(cache: &Path) -> Store {
    Store::open(embedded_options(cache)).unwrap()
}

fn options_with(cache: &Path, settings: &[(&str, &str)]) -> Options {
    let mut o = embedded_options(cache);
    for (name, value) in settings {
        o.set(name, value).unwrap();
    }
    o
}

/// The cache-relative path of `k`'s file, learnt by publishing it in a
/// scratch cache directory (the manifest names it).
fn relative_path(k: &Key) -> PathBuf {
    let scratch = tempfile::tempdir().unwrap();
    let store = open(scratch.path());
    store.put(k, reader(tiny(0)).as_mut()).unwrap();
    let rows = store.manifest_rows().unwrap();
    PathBuf::from(&row_of(&rows, k).expect("the scratch row").path)
}

/// How far back test files are aged: beyond any grace period.
const AGED: Duration = Duration::from_secs(2 * 3600);

fn tag_of(store: &Store, k: &Key) -> Option<i64> {
    store.get(k, &Request::new()).unwrap().map(|d| tags(&d)[0])
}

/// Rows go missing (a process killed between publishing a file and its
/// manifest write, a manifest write that failed, a stale manifest): the file
/// alone proves the entry, so maintenance must index it again from its
/// footer, and remove only files that fail verification.
#[test]
fn maintenance_reindexes_a_file_whose_row_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (source, target) = (dir.path().join("source"), dir.path().join("target"));
    let valid: Vec<Key> = (0..4).map(|i| key("REINDEX", i * 10, i * 10 + 4)).collect();
    let corrupted = key("REINDEX", 100, 104);
    let misnamed = key("REINDEX", 200, 204);
    let publisher = open(&source);
    for (tag, k) in valid.iter().chain([&corrupted, &misnamed]).enumerate() {
        publisher.put(k, reader(sample(k, tag as i64)).as_mut()).unwrap();
    }
    let source_rows = publisher.manifest_rows().unwrap();
    publisher.close().unwrap();
    let path_of = |k: &Key| target.join(&row_of(&source_rows, k).unwrap().path);

    // A second cache directory, whose fresh manifest has no rows, gets the files.
    let store = open(&target);
    assert!(store.manifest_rows().unwrap().is_empty());
    copy_tree(&source.join("data"), &target.join("data"));
    // One copy with a flipped byte in its data region; one entry's file under another's name.
    let mut bytes = fs::read(path_of(&corrupted)).unwrap();
    let inside = footer_start(&bytes) / 2;
    bytes[inside] ^= 0xff;
    fs::write(path_of(&corrupted), &bytes).unwrap();
    fs::copy(path_of(&valid[0]), path_of(&misnamed)).unwrap();
    age_files(&target.join("data"), AGED);

    store.maintain(&maintain_now(None)).unwrap();

    let rows = store.manifest_rows().unwrap();
    for (tag, k) in valid.iter().enumerate() {
        let path = path_of(k);
        assert!(path.exists(), "maintenance removed the valid entry file {} of {k:?}", path.display());
        let row = row_of(&rows, k).unwrap_or_else(|| panic!("no manifest row re-indexed for {k:?}; rows: {rows:?}"));
        assert_eq!(row.entry_id, path.file_stem().unwrap().to_str().unwrap());
        assert_eq!(row.config, fstore::canonical_config(&k.config).unwrap());
        assert_eq!(target.join(&row.path), path);
        assert_eq!(tag_of(&store, k), Some(tag as i64), "{k:?} is readable with its data");
    }
    assert!(!path_of(&corrupted).exists(), "a file with corrupt bytes survived maintenance");
    assert!(!path_of(&misnamed).exists(), "a file whose footer names another key survived maintenance");
    assert!(row_of(&rows, &corrupted).is_none() && row_of(&rows, &misnamed).is_none(), "{rows:?}");
}

/// Those of `keys` whose row or data is gone.
fn lost_entries(store: &Store, keys: &[Key]) -> Vec<Key> {
    let rows = store.manifest_rows().unwrap();
    keys.iter()
        .filter(|k| row_of(&rows, k).is_none() || store.get(k, &Request::new()).unwrap().is_none())
        .cloned()
        .collect()
}

/// Publishes three entries of `symbol` and ages their files.
fn publish_aged(store: &Store, symbol: &str) -> Vec<Key> {
    let keys: Vec<Key> = (0..3).map(|i| key(symbol, i * 10, i * 10 + 2)).collect();
    for k in &keys {
        store.put(k, reader(sample(k, 1)).as_mut()).unwrap();
    }
    store.flush().unwrap();
    age_files(&store.cache_dir().join("data"), AGED);
    keys
}

/// `fstore_maintain_options` as a C caller may lay it out: `dry_run` is a
/// byte, and C code may store any non-zero value in it.
#[repr(C)]
struct CallerMaintainOptions {
    max_age_ms: i64,
    grace_ms: i64,
    dry_run: u8,
}

/// A store opened through the C API, closed on drop.
struct CStore(*mut fstore_store);

impl CStore {
    fn open(options: &[(&str, &str)]) -> CStore {
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let mut error = unsafe { std::mem::zeroed::<fstore_error>() };
        unsafe {
            let mut opts = fstore_options_new();
            for (name, value) in options {
                assert_eq!(fstore_options_set(opts, c(name).as_ptr(), c(value).as_ptr(), &mut error), FSTORE_STATUS_OK);
            }
            let mut store = std::ptr::null_mut();
            let status = fstore_store_open(opts, &mut store, &mut error);
            fstore_options_free(&mut opts);
            assert_eq!(status, FSTORE_STATUS_OK, "{}", message(&error));
            CStore(store)
        }
    }

    /// `fstore_store_maintain` with the options laid out as C lays them out.
    fn maintain(&self, options: &CallerMaintainOptions) -> (u32, String) {
        let mut error = unsafe { std::mem::zeroed::<fstore_error>() };
        // Room for a report larger than this library's: the rest is zero-filled.
        let mut report = [0u64; 32];
        let status = unsafe {
            fstore_store_maintain(
                self.0,
                options as *const CallerMaintainOptions as *const fstore_maintain_options,
                std::mem::size_of::<CallerMaintainOptions>(),
                report.as_mut_ptr() as *mut fstore_maintain_report,
                std::mem::size_of_val(&report),
                &mut error,
            )
        };
        let text = message(&error);
        unsafe { fstore_error_release(&mut error) };
        (status, text)
    }
}

impl Drop for CStore {
    fn drop(&mut self) {
        unsafe { fstore_store_close(&mut self.0) };
    }
}

fn message(error: &fstore_error) -> String {
    if error.message.is_null() {
        return String::new();
    }
    unsafe { std::ffi::CStr::from_ptr(error.message) }.to_string_lossy().into_owned()
}

/// `max_age` in microseconds overflowed `i64` and wrapped to "a moment ago",
/// expiring everything: a very large age must expire nothing, in Rust and
/// through the C API.
#[test]
fn a_huge_max_age_expires_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let c_store = CStore::open(&[("cache_dir", dir.path().to_str().unwrap()), ("manifest", "duckdb")]);
    let through_rust = |max_age: Duration| {
        store.maintain(&maintain_now(Some(max_age))).unwrap();
    };
    let through_c = || {
        let (status, why) = c_store.maintain(&CallerMaintainOptions { max_age_ms: i64::MAX, grace_ms: 0, dry_run: 0 });
        assert_eq!(status, FSTORE_STATUS_OK, "{why}");
    };
    let ways: [(&str, &dyn Fn()); 3] = [
        ("max_age = i64::MAX ms", &|| through_rust(Duration::from_millis(i64::MAX as u64))),
        ("max_age = Duration::MAX", &|| through_rust(Duration::MAX)),
        ("fstore_store_maintain with max_age_ms = INT64_MAX", &through_c),
    ];
    let mut expired = Vec::new();
    for (i, (way, maintain)) in ways.iter().enumerate() {
        let keys = publish_aged(&store, &format!("HUGEAGE{i}"));
        maintain();
        let lost = lost_entries(&store, &keys);
        if !lost.is_empty() {
            expired.push(format!("{way} expired {} of 3 entries", lost.len()));
        }
    }
    assert!(expired.is_empty(), "a huge max_age expired entries: {expired:#?}");
}

/// A date the embedded manifest cannot store failed its whole batch, and the
/// other rows of that batch were dropped for good: such a key must be refused
/// up front, and every other row must reach the manifest.
#[test]
fn an_unstorable_date_is_refused_and_loses_no_other_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let good: Vec<Key> = (0..4).map(|i| key("BIGDATE", i * 10, i * 10 + 2)).collect();
    let bad = key("BIGDATE", 0, i32::MAX);
    // Holding the manifest's lock queues every change behind it, so that the
    // bad row shares a batch with good ones.
    let manifest_lock = hold_manifest_lock(dir.path());
    store.put(&good[0], reader(sample(&good[0], 0)).as_mut()).unwrap();
    let refused = store.put(&bad, reader(tiny(9)).as_mut());
    for k in &good[1..] {
        store.put(k, reader(sample(k, 0)).as_mut()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    drop(manifest_lock);
    let store = Arc::new(store);
    let flushed = within(BOUND, "flush", {
        let store = Arc::clone(&store);
        move || store.flush()
    });

    let rows = store.manifest_rows().unwrap();
    for k in &good {
        assert!(row_of(&rows, k).is_some(), "the row of {k:?} was lost (flush: {flushed:?}); rows: {rows:?}");
    }
    let err = refused.expect_err("a key whose end_date is i32::MAX was accepted");
    assert_eq!(err.status(), Status::InvalidArgument, "{err:?}");
    assert!(err.message().contains(&i32::MAX.to_string()), "the message names the date: {err}");
    flushed.unwrap();
}

/// An exclusive `flock` on the embedded manifest's lock file, from a file
/// description of its own, so that it excludes the store even in this process.
fn hold_manifest_lock(cache: &Path) -> fs::File {
    let file = fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(cache.join("manifest.lock"))
        .unwrap();
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    file
}

/// Stores opened at once on one new cache directory shared a probe file
/// name, so that some failed to open: every one must open.
#[test]
fn sixteen_stores_open_one_new_cache_directory_at_once() {
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let barrier = Arc::new(Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (cache, barrier) = (cache.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(embedded_options(&cache)).map(drop)
                })
            })
            .collect();
        let failures: Vec<_> = threads.into_iter().filter_map(|t| t.join().unwrap().err()).collect();
        assert!(failures.is_empty(), "round {round}: {} of 16 opens failed: {failures:?}", failures.len());
    }
}

/// Runs `command` (this test binary, re-executed for one child test) to its
/// end, within [`BOUND`]; fails with the child's output unless it succeeds.
fn expect_child_success(mut command: std::process::Command, what: &str) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = command
        .stdout(log.as_file().try_clone().unwrap())
        .stderr(log.as_file().try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let deadline = Instant::now() + BOUND;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{what} failed:\n{}", fs::read_to_string(log.path()).unwrap_or_default());
}

/// Re-executes this test binary (at `exe`) to run only the test `name`.
fn child_test(exe: &Path, name: &str) -> std::process::Command {
    let mut command = std::process::Command::new(exe);
    command.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    command
}

/// Temporary names were the process id and a per-process sequence, which
/// another host's writer repeats (NFS): a write then failed, and its clean-up
/// deleted the other writer's temporary file. So did the probe at open. A
/// fresh process, whose sequence starts at 0, makes the collision certain.
#[test]
fn a_writer_neither_collides_with_nor_deletes_another_hosts_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = child_test(&std::env::current_exe().unwrap(), "colliding_names_child");
    child.env("FSTORE_TEST_COLLIDING_NAMES", dir.path());
    expect_child_success(child, "a writer among another host's temporary files");
}

/// The child half: another host's writers, whose process has this process's
/// id, are mid-write in the cache while this process opens a store and writes.
#[test]
fn colliding_names_child() {
    let Some(cache) = std::env::var_os("FSTORE_TEST_COLLIDING_NAMES") else { return };
    let cache = Path::new(&cache);
    let k = key("TEMPNAME", 1, 5);
    let relative = relative_path(&k);
    let shard = cache.join(relative.parent().unwrap());
    fs::create_dir_all(&shard).unwrap();
    let entry_id = relative.file_stem().unwrap().to_str().unwrap().to_string();
    let pid = std::process::id();
    let probe = cache.join("data").join(format!(".probe.{pid}.tmp"));
    fs::write(&probe, b"another host's probe").unwrap();
    let theirs: Vec<PathBuf> = (0..16).map(|seq| shard.join(format!(".{entry_id}.{pid}.{seq}.tmp"))).collect();
    for temp in &theirs {
        fs::write(temp, b"another host's entry, being written").unwrap();
    }

    let store = open(cache);
    let put = store.put(&k, reader(sample(&k, 3)).as_mut());
    let deleted: Vec<_> = theirs.iter().chain([&probe]).filter(|p| !p.exists()).collect();
    assert!(deleted.is_empty(), "another writer's temporary files were deleted: {deleted:?} (put: {put:?})");
    put.unwrap();
    assert_eq!(tag_of(&store, &k), Some(3));
}

/// The checksum did not cover the footer, so a parseable but altered footer
/// changed column types unnoticed: such a file must be refused as corrupt.
#[test]
fn a_footer_that_lost_its_arrow_schema_is_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("FOOTER", 1, 4);
    let stored = typed_data();
    store.put(&k, reader(stored.clone()).as_mut()).unwrap();
    let path = dir.path().join(&row_of(&store.manifest_rows().unwrap(), &k).unwrap().path);
    drop_arrow_schema_from_footer(&path);

    let fresh = open(dir.path());
    match fresh.get(&k, &Request::new()) {
        Ok(None) => {}
        Err(e) if e.status() == Status::Corrupt => {}
        Ok(Some(read)) => panic!(
            "served an entry whose footer was altered: stored {:?}, read {:?}",
            stored.schema.fields(),
            read.schema.fields()
        ),
        Err(e) => panic!("{e:?}"),
    }
    let runs = AtomicUsize::new(0);
    let data = fresh
        .get_or_compute(&k, &Request::new(), |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(reader(typed_data()))
        })
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the altered entry was not computed again");
    assert_eq!(data.schema.fields(), stored.schema.fields());
}

/// A zoned timestamp and a dictionary-encoded string: types that only the
/// footer's Arrow schema preserves.
fn typed_data() -> Data {
    let schema = Arc::new(Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("America/New_York".into())), false),
        Field::new("venue", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), false),
        Field::new("price", DataType::Float64, false),
    ]));
    let at = TimestampMicrosecondArray::from(vec![1_700_000_000_000_000, 1_700_000_060_000_000, 1_700_000_120_000_000])
        .with_timezone("America/New_York");
    let venue: DictionaryArray<Int32Type> = vec!["XNAS", "XNYS", "XNAS"].into_iter().collect();
    let columns: Vec<ArrayRef> = vec![Arc::new(at), Arc::new(venue), Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))];
    Data { schema: schema.clone(), batches: vec![RecordBatch::try_new(schema, columns).unwrap()] }
}

/// Rewrites `path`'s footer without its `ARROW:schema` entry; the file still
/// parses and keeps its key and checksum entries.
fn drop_arrow_schema_from_footer(path: &Path) {
    use parquet::file::metadata::{FileMetaData, ParquetMetaDataBuilder, ParquetMetaDataReader, ParquetMetaDataWriter};
    let bytes = bytes::Bytes::from(fs::read(path).unwrap());
    let metadata = ParquetMetaDataReader::new().parse_and_finish(&bytes).unwrap();
    let file = metadata.file_metadata();
    let kept: Vec<_> =
        file.key_value_metadata().unwrap().iter().filter(|kv| kv.key != "ARROW:schema").cloned().collect();
    assert!(kept.len() < file.key_value_metadata().unwrap().len(), "the footer had an ARROW:schema entry");
    let without = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_string),
        Some(kept),
        file.schema_descr_ptr(),
        file.column_orders().cloned(),
    );
    let rebuilt = ParquetMetaDataBuilder::new(without).set_row_groups(metadata.row_groups().to_vec()).build();
    let mut rewritten = bytes[..footer_start(&bytes)].to_vec();
    ParquetMetaDataWriter::new(&mut rewritten, &rebuilt).finish().unwrap();
    fs::write(path, &rewritten).unwrap();
    let check = ParquetMetaDataReader::new().parse_and_finish(&bytes::Bytes::from(rewritten)).unwrap();
    let keys: Vec<_> = check.file_metadata().key_value_metadata().unwrap().iter().map(|kv| kv.key.clone()).collect();
    assert!(keys.contains(&"fstore.key".to_string()) && !keys.contains(&"ARROW:schema".to_string()), "{keys:?}");
}

/// The embedded manifest's OS lock was taken blocking: a process stopped
/// while holding it hung open, flush and close. Each must give up within the
/// store's wait bound instead.
#[test]
fn a_held_manifest_lock_times_out_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let options = options_with(dir.path(), &[("wait.timeout_ms", "500")]);
    let (flushing, closing) = (Store::open(options.clone()).unwrap(), Store::open(options.clone()).unwrap());
    let held = hold_manifest_lock(dir.path());

    // All three at once, each bounded: a hang is reported, not waited out.
    let limit = Duration::from_secs(5);
    let started = Instant::now();
    let calls = [
        std::thread::spawn(move || finished_within(limit, move || Store::open(options).map(drop))),
        std::thread::spawn(move || {
            finished_within(limit, move || {
                let k = key("MLOCK", 1, 3);
                flushing.put(&k, reader(sample(&k, 1)).as_mut()).and_then(|()| flushing.flush())
            })
        }),
        std::thread::spawn(move || {
            finished_within(limit, move || {
                let k = key("MLOCK", 4, 6);
                closing.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
                closing.close()
            })
        }),
    ]
    .map(|call| call.join().unwrap());
    let took = started.elapsed();
    drop(held);

    let [opened, flushed, closed] = calls;
    let timed_out =
        |outcome: &Option<fstore::Result<()>>| matches!(outcome, Some(Err(e)) if e.status() == Status::Timeout);
    let problems: Vec<String> = [
        (!timed_out(&opened)).then(|| format!("Store::open: {opened:?} (None: hung)")),
        (!timed_out(&flushed)).then(|| format!("put then flush: {flushed:?} (None: hung)")),
        closed.is_none().then(|| "close: hung".to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(problems.is_empty(), "with the manifest lock held elsewhere (after {took:?}): {problems:#?}");
}

/// A valid entry file of `k` holding `sample(k, tag)` for some tag other than
/// `old_tag`, exactly `size` bytes long (equal-width values encode to equal
/// lengths), and that tag.
fn same_size_entry(k: &Key, old_tag: i64, size: u64) -> (Vec<u8>, i64) {
    let scratch = tempfile::tempdir().unwrap();
    let store = open(scratch.path());
    for tag in (old_tag + 1)..(old_tag + 200) {
        store.put(k, reader(sample(k, tag)).as_mut()).unwrap();
        let path = scratch.path().join(&row_of(&store.manifest_rows().unwrap(), k).unwrap().path);
        let bytes = fs::read(path).unwrap();
        if bytes.len() as u64 == size {
            return (bytes, tag);
        }
    }
    panic!("no other data of {k:?} encodes to {size} bytes");
}

/// The memory cache's stamp (device, inode, size, mtime) repeats when a file
/// is rewritten in place and its mtime restored: the store must still serve
/// the new content, not the decoded old one.
#[test]
fn the_memory_cache_notices_a_file_rewritten_in_place() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("INPLACE", 1, 20);
    store.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
    let path = dir.path().join(&row_of(&store.manifest_rows().unwrap(), &k).unwrap().path);
    assert_eq!(tag_of(&store, &k), Some(1)); // decoded, and now kept in memory
    let before = fs::metadata(&path).unwrap();
    let (replacement, new_tag) = same_size_entry(&k, 1, before.len());

    std::thread::sleep(Duration::from_millis(20));
    let mut file = fs::File::options().write(true).truncate(true).open(&path).unwrap();
    file.write_all(&replacement).unwrap();
    file.sync_all().unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
    drop(file);
    let after = fs::metadata(&path).unwrap();
    let stamp = |m: &fs::Metadata| (m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec());
    assert_eq!(stamp(&after), stamp(&before), "the rewrite keeps device, inode, size and mtime");
    assert_ne!((after.ctime(), after.ctime_nsec()), (before.ctime(), before.ctime_nsec()));

    assert_eq!(tag_of(&open(dir.path()), &k), Some(new_tag), "a store with nothing in memory reads the new content");
    assert_eq!(tag_of(&store, &k), Some(new_tag), "the memory cache served the file's old content");
}

/// A store sees its own `put` and `invalidate` of an entry it holds in memory.
#[test]
fn a_put_or_invalidate_of_a_cached_entry_is_seen_by_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("OWNPUT", 1, 20);
    for round in 0..20 {
        store.put(&k, reader(sample(&k, round)).as_mut()).unwrap();
        assert_eq!(tag_of(&store, &k), Some(round), "round {round}: after put");
        assert_eq!(tag_of(&store, &k), Some(round), "round {round}: from memory");
        if round % 2 == 1 {
            store.invalidate(&k).unwrap();
            assert_eq!(tag_of(&store, &k), None, "round {round}: after invalidate");
        }
    }
}

/// Any `stat` error read as "no file", so an entry that exists but cannot be
/// examined was computed again: it must fail with `Io` instead.
#[test]
fn an_entry_that_cannot_be_examined_fails_with_io_without_computing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("ELOOP", 1, 5);
    store.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
    let path = dir.path().join(&row_of(&store.manifest_rows().unwrap(), &k).unwrap().path);
    store.invalidate(&k).unwrap();
    std::os::unix::fs::symlink(&path, &path).unwrap(); // examining it fails with ELOOP

    let runs = AtomicUsize::new(0);
    let result = store.get_or_compute(&k, &Request::new().with_timeout(Duration::from_secs(5)), |k| {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(reader(sample(k, 2)))
    });
    assert_eq!(runs.load(Ordering::SeqCst), 0, "computed although the entry could not be examined: {result:?}");
    assert_eq!(result.err().map(|e| e.status()), Some(Status::Io));
}

/// An invalidation that came while the entry was being computed was undone
/// when the compute published: it must wait for the compute and remove its
/// result.
#[test]
fn an_invalidation_during_a_compute_removes_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let k = key("INVRACE", 1, 10);
    let (started_tx, started_rx) = mpsc::channel();
    let computing = {
        let (store, k) = (Arc::clone(&store), k.clone());
        std::thread::spawn(move || {
            store.get_or_compute(&k, &Request::new(), move |k| {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(500));
                Ok(reader(sample(k, 1)))
            })
        })
    };
    started_rx.recv_timeout(BOUND).expect("the compute started");
    let invalidated = within(BOUND, "invalidate during a compute", {
        let (store, k) = (Arc::clone(&store), k.clone());
        move || store.invalidate(&k)
    });
    let computed = within(BOUND, "the compute", move || computing.join().unwrap());
    assert!(computed.is_ok(), "{computed:?}");

    assert_eq!(
        tag_of(&store, &k),
        None,
        "the compute's result was published after the invalidation (invalidate returned {invalidated:?})"
    );
    invalidated.unwrap();
}

/// A `bool` from C was read as a Rust `bool`, which must be 0 or 1: a dry-run
/// byte of 2 must count as a dry run (nothing removed).
#[test]
fn a_dry_run_byte_of_two_from_c_removes_nothing() {
    assert_eq!(std::mem::size_of::<CallerMaintainOptions>(), std::mem::size_of::<fstore_maintain_options>());
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let keys = publish_aged(&store, "DRYRUN");
    let c_store = CStore::open(&[("cache_dir", dir.path().to_str().unwrap()), ("manifest", "duckdb")]);
    let (status, why) = c_store.maintain(&CallerMaintainOptions { max_age_ms: 0, grace_ms: 0, dry_run: 2 });
    assert_eq!(status, FSTORE_STATUS_OK, "{why}");
    let lost = lost_entries(&store, &keys);
    assert!(lost.is_empty(), "a maintenance whose dry_run byte is 2 removed {lost:?}");
}

/// The child half of the shared-cache test: runs as another user.
#[test]
fn shared_cache_child() {
    let Some(cache) = std::env::var_os("FSTORE_TEST_SHARED_CACHE") else { return };
    let store = Store::open(embedded_options(Path::new(&cache))).unwrap();
    let k = key("SHARED", 11, 20);
    let data = store
        .get_or_compute(&k, &Request::new().with_timeout(Duration::from_secs(10)), |k| Ok(reader(sample(k, 7))))
        .unwrap();
    assert_eq!(tags(&data)[0], 7);
    store.close().unwrap();
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Lock files were opened read-write, so in a cache shared by a group a
/// member who did not create a lock file failed with EACCES. `flock` needs
/// only a read-only descriptor.
#[test]
fn another_user_computes_in_a_shared_cache_with_read_only_lock_files() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: running a child process as user nobody needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let cache = dir.path().join("cache");
    // Shared with a group that root's child, as nobody, is made a member of.
    let group = "users";
    let gid = group_id(group);
    let shared = |cache: &Path| Store::open(options_with(cache, &[("cache.group", group)])).unwrap();
    let owner = shared(&cache);
    let first = key("SHARED", 1, 10);
    owner.get_or_compute(&first, &Request::new(), |k| Ok(reader(sample(k, 1)))).unwrap();
    owner.close().unwrap();

    // The lock files that exist belong to root, read-only.
    let lock_files: Vec<_> =
        fs::read_dir(cache.join("locks")).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    assert!(!lock_files.is_empty(), "the first compute left its lock file");
    for lock in &lock_files {
        chmod(lock, 0o444);
    }

    // The build directory may be private to root (~/.cache): run a link or copy of this binary.
    let exe = dir.path().join("test-binary");
    fs::hard_link(std::env::current_exe().unwrap(), &exe)
        .or_else(|_| fs::copy(std::env::current_exe().unwrap(), &exe).map(drop))
        .unwrap();
    let mut as_nobody = std::process::Command::new("setpriv");
    as_nobody.args(["--reuid=65534", "--regid=65534", &format!("--groups={gid}")]).arg(&exe);
    as_nobody.args(child_test(&exe, "shared_cache_child").get_args());
    as_nobody.env("FSTORE_TEST_SHARED_CACHE", &cache).env("FSTORE_CACHE_GROUP", group).env("HOME", dir.path());
    expect_child_success(as_nobody, "a child running as nobody (through setpriv, from util-linux)");
    assert_eq!(tag_of(&shared(&cache), &key("SHARED", 11, 20)), Some(7));
}

/// The gid of group `name`, which the test needs.
fn group_id(name: &str) -> u32 {
    let c_name = std::ffi::CString::new(name).unwrap();
    // SAFETY: a valid C string; the result is read at once.
    let group = unsafe { libc::getgrnam(c_name.as_ptr()) };
    assert!(!group.is_null(), "this test needs the group '{name}' (it is in every Debian and Red Hat base system)");
    unsafe { (*group).gr_gid }
}

/// Under `symbol` granularity, a store whose threads compute entries of one
/// symbol back to back kept the symbol's lock joined without a gap, and
/// another store (process) asking for a new entry of that symbol starved.
#[test]
fn a_stream_of_computes_in_one_store_does_not_starve_another() {
    let dir = tempfile::tempdir().unwrap();
    let busy = Arc::new(open(dir.path()));
    let other = Arc::new(open(dir.path()));
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let workers: Vec<_> = (0..4u64)
        .map(|i| {
            let (busy, stop, next) = (Arc::clone(&busy), Arc::clone(&stop), Arc::clone(&next));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50 * i));
                while !stop.load(Ordering::SeqCst) && began.elapsed() < Duration::from_secs(4) {
                    let n = next.fetch_add(1, Ordering::SeqCst) as i32;
                    let k = key("STARVE", n * 10, n * 10 + 2);
                    busy.get_or_compute(&k, &Request::new().with_timeout(Duration::from_secs(10)), |k| {
                        std::thread::sleep(Duration::from_millis(200));
                        Ok(reader(sample(k, 1)))
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let result = within(BOUND, "the other store's call", move || {
        other
            .get_or_compute(
                &key("STARVE", 100_000, 100_002),
                &Request::new().with_timeout(Duration::from_secs(2)),
                |k| Ok(reader(sample(k, 2))),
            )
            .map(|d| tags(&d)[0])
    });
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    within(BOUND, "the busy store's threads", move || workers.into_iter().for_each(|w| w.join().unwrap()));
    assert_eq!(result.as_ref().ok(), Some(&2), "the other store starved: {result:?} after {took:?}");
    assert!(took < Duration::from_millis(1500), "the other store waited {took:?}");
}
