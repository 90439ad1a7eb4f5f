//! The store as a Rust user sees it: hits, misses, single flight, failures,
//! waits that time out or are cancelled, corruption, the manifest.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{key, reader, sample, tags};
use fstore::arrow::array::{Float64Array, RecordBatch};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::error::ArrowError;
use fstore::arrow::record_batch::{RecordBatchIterator, RecordBatchReader};
use fstore::{Error, Options, Request, Status, Store};

fn open(dir: &std::path::Path) -> Store {
    let mut options = Options::default();
    options.set("cache_dir", dir.to_str().unwrap()).unwrap();
    Store::open(options).unwrap()
}

fn slow<'a>(
    delay: Duration,
    runs: &'a AtomicUsize,
    tag: i64,
) -> impl FnOnce(&fstore::Key) -> fstore::Result<Box<dyn RecordBatchReader>> + 'a {
    move |k| {
        runs.fetch_add(1, Ordering::SeqCst);
        thread::sleep(delay);
        Ok(reader(sample(k, tag)))
    }
}

#[test]
fn a_miss_computes_once_then_hits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("AAPL", 19000, 19030);
    let runs = AtomicUsize::new(0);
    let first = store.get_or_compute(&k, &Request::new(), slow(Duration::ZERO, &runs, 7)).unwrap();
    let second = store.get_or_compute(&k, &Request::new(), slow(Duration::ZERO, &runs, 8)).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(first.num_rows(), 31);
    assert_eq!(tags(&second), vec![7; 31]);
    assert_eq!(common::digest(&first), common::digest(&second));
    let s = store.stats();
    assert_eq!((s.misses, s.hits, s.computes), (1, 1, 1));
    // The first hit decodes the file; the next comes from the memory cache.
    assert!(s.bytes_written > 0 && s.bytes_read > 0, "{s:?}");
    store.get(&k, &Request::new()).unwrap().unwrap();
    assert_eq!(store.stats().bytes_read, s.bytes_read, "served from memory");
    assert!(store.contains(&k).unwrap());
    assert!(store.get(&key("AAPL", 19000, 19031), &Request::new()).unwrap().is_none());
}

#[test]
fn the_memory_cache_never_serves_a_replaced_or_removed_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(dir.path()), open(dir.path()));
    let k = key("AAPL", 1, 30);
    a.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
    assert_eq!(tags(&a.get(&k, &Request::new()).unwrap().unwrap())[0], 1);
    // Another store (as another process would) republishes the entry.
    b.put(&k, reader(sample(&k, 2)).as_mut()).unwrap();
    assert_eq!(tags(&a.get(&k, &Request::new()).unwrap().unwrap())[0], 2);
    assert!(a.stats().bytes_read > 0, "the new file was read, not the cached one");
    b.invalidate(&k).unwrap();
    assert!(a.get(&k, &Request::new()).unwrap().is_none());

    // With the cache off, every hit reads the file.
    let mut options = Options::default();
    options.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    options.set("memory_cache_mb", "0").unwrap();
    let uncached = Store::open(options).unwrap();
    uncached.put(&k, reader(sample(&k, 3)).as_mut()).unwrap();
    for _ in 0..2 {
        assert_eq!(tags(&uncached.get(&k, &Request::new()).unwrap().unwrap())[0], 3);
    }
    assert!(uncached.stats().bytes_read > 0);
}

#[test]
fn equal_configs_share_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut a = key("MSFT", 1, 10);
    a.config = r#"{"window": 20, "kind": "sma"}"#.into();
    let mut b = a.clone();
    b.config = "{\"kind\":\"sma\",\n \"window\":2e1}".into();
    store.put(&a, reader(sample(&a, 1)).as_mut()).unwrap();
    assert_eq!(tags(&store.get(&b, &Request::new()).unwrap().unwrap())[0], 1);
}

#[test]
fn projection_returns_the_columns_asked_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("AAPL", 0, 9);
    store.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
    let data = store.get(&k, &Request::new().with_columns(["tag", "date"])).unwrap().unwrap();
    let names: Vec<_> = data.schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["tag", "date"]);
    assert_eq!(data.batches[0].num_columns(), 2);
    let err = store.get(&k, &Request::new().with_columns(["nope"])).unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument);
    assert!(err.message().contains("unknown column 'nope'"), "{err}");
    // The compute path projects the same way, for leader and hit alike.
    let k2 = key("AAPL", 0, 10);
    let runs = AtomicUsize::new(0);
    let data = store.get_or_compute(&k2, &Request::new().with_columns(["value"]), slow(Duration::ZERO, &runs, 1)).unwrap();
    assert_eq!(data.schema.fields().len(), 1);
}

#[test]
fn threads_on_one_key_share_one_compute() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("TSLA", 100, 200);
    let runs = AtomicUsize::new(0);
    let barrier = Barrier::new(16);
    let results: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let (store, k, runs, barrier) = (&store, &k, &runs, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    store.get_or_compute(k, &Request::new(), slow(Duration::from_millis(200), runs, i)).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let first = common::digest(&results[0]);
    assert!(results.iter().all(|d| common::digest(d) == first));
    let s = store.stats();
    assert_eq!(s.computes, 1);
    assert_eq!(s.misses + s.hits, 16);
    assert!(s.waits >= 1, "{s:?}");
}

/// With per-symbol locks, two entries of one symbol in one process must not
/// wait for each other: each compute waits until the other has started.
#[test]
fn different_entries_of_a_symbol_never_wait_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a_started, a_seen) = mpsc::channel();
    let (b_started, b_seen) = mpsc::channel();
    thread::scope(|s| {
        let store = &store;
        let a = s.spawn(move || {
            store.get_or_compute(&key("GOOGL", 1, 5), &Request::new(), move |k| {
                a_started.send(()).unwrap();
                b_seen.recv_timeout(Duration::from_secs(5)).map_err(|_| Error::new(Status::Internal, "B never started: A blocked it"))?;
                Ok(reader(sample(k, 1)))
            })
        });
        let b = s.spawn(move || {
            store.get_or_compute(&key("GOOGL", 6, 9), &Request::new(), move |k| {
                b_started.send(()).unwrap();
                a_seen.recv_timeout(Duration::from_secs(5)).map_err(|_| Error::new(Status::Internal, "A never started: B blocked it"))?;
                Ok(reader(sample(k, 2)))
            })
        });
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
    });
}

#[test]
fn a_failed_compute_reaches_every_waiter_stores_nothing_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("BRK.B", 10, 20);
    let barrier = Barrier::new(6);
    let errors: Vec<Error> = thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (store, k, barrier) = (&store, &k, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    store
                        .get_or_compute(k, &Request::new(), |_| {
                            thread::sleep(Duration::from_millis(150));
                            Err(Error::new(Status::CallbackFailed, "vendor feed down"))
                        })
                        .unwrap_err()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(errors.iter().all(|e| e.status() == Status::CallbackFailed && e.message() == "vendor feed down"), "{errors:?}");
    assert_eq!(store.stats().computes, 1);
    assert!(!store.contains(&k).unwrap());
    let runs = AtomicUsize::new(0);
    store.get_or_compute(&k, &Request::new(), slow(Duration::ZERO, &runs, 3)).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn waiters_time_out_or_are_cancelled_while_the_leader_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("ES=F", 1, 3);
    let runs = AtomicUsize::new(0);
    let (started_tx, started) = mpsc::channel();
    thread::scope(|s| {
        let (store, k, runs) = (&store, &k, &runs);
        let leader = s.spawn(move || {
            store.get_or_compute(k, &Request::new(), move |key| {
                started_tx.send(()).unwrap();
                runs.fetch_add(1, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(700));
                Ok(reader(sample(key, 1)))
            })
        });
        started.recv().unwrap();

        let t0 = Instant::now();
        let err = store.get_or_compute(k, &Request::new().with_timeout(Duration::from_millis(50)), |_| unreachable!()).unwrap_err();
        assert_eq!(err.status(), Status::Timeout, "{err:?}");
        assert!(t0.elapsed() < Duration::from_millis(500), "{:?}", t0.elapsed());
        assert!(err.message().contains("gave up after 50 ms"), "{err}");

        let request = Request::new();
        let canceller = request.clone();
        let t0 = Instant::now();
        s.spawn(move || {
            thread::sleep(Duration::from_millis(50));
            canceller.cancel();
        });
        let err = store.get_or_compute(k, &request, |_| unreachable!()).unwrap_err();
        assert_eq!(err.status(), Status::Cancelled, "{err:?}");
        assert!(t0.elapsed() < Duration::from_millis(500), "{:?}", t0.elapsed());

        // A zero timeout does not wait at all.
        let err = store.get_or_compute(k, &Request::new().with_timeout(Duration::ZERO), |_| unreachable!()).unwrap_err();
        assert_eq!(err.status(), Status::Timeout);

        assert_eq!(tags(&leader.join().unwrap().unwrap())[0], 1);
    });
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(store.contains(&k).unwrap());
    let s = store.stats();
    assert_eq!((s.timeouts, s.cancellations), (2, 1));
}

struct MismatchedReader {
    schema: Arc<Schema>,
    sent: bool,
}

impl Iterator for MismatchedReader {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.sent {
            return None;
        }
        self.sent = true;
        let other = Arc::new(Schema::new(vec![Field::new("other", DataType::Float64, false)]));
        Some(Ok(RecordBatch::try_new(other, vec![Arc::new(Float64Array::from(vec![1.0]))]).unwrap()))
    }
}

impl RecordBatchReader for MismatchedReader {
    fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }
}

#[test]
fn bad_streams_store_nothing_and_keep_earlier_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let good = key("AAPL", 1, 2);
    store.put(&good, reader(sample(&good, 1)).as_mut()).unwrap();

    let k = key("AAPL", 3, 4);
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
    let err = store.put(&k, &mut MismatchedReader { schema: schema.clone(), sent: false }).unwrap_err();
    assert_eq!(err.status(), Status::InvalidData);
    assert!(err.message().contains("batch 0 has schema"), "{err}");

    let failing = RecordBatchIterator::new(
        vec![
            Ok(RecordBatch::try_new(schema.clone(), vec![Arc::new(Float64Array::from(vec![1.0]))]).unwrap()),
            Err(ArrowError::IoError("socket closed".into(), std::io::Error::other("socket closed"))),
        ],
        schema,
    );
    let err = store.get_or_compute(&k, &Request::new(), move |_| Ok(Box::new(failing) as _)).unwrap_err();
    assert_eq!(err.status(), Status::InvalidData);
    assert!(err.message().contains("stream failed at batch 1"), "{err}");

    assert!(!store.contains(&k).unwrap());
    assert_eq!(tags(&store.get(&good, &Request::new()).unwrap().unwrap()), vec![1, 1]);
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn a_corrupt_file_is_refused_and_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let k = key("^GSPC", 1, 400);
    let runs = AtomicUsize::new(0);
    store.get_or_compute(&k, &Request::new(), slow(Duration::ZERO, &runs, 1)).unwrap();
    let file = walk(dir.path()).into_iter().find(|p| p.ends_with(".parquet")).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0xff; // inside the column data, before the footer
    std::fs::write(&file, &bytes).unwrap();

    let err = store.get(&k, &Request::new()).unwrap_err();
    assert_eq!(err.status(), Status::Corrupt);
    assert!(err.message().contains("checksum mismatch"), "{err}");
    let data = store.get_or_compute(&k, &Request::new(), slow(Duration::ZERO, &runs, 2)).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(tags(&data)[0], 2);
    assert_eq!(tags(&store.get(&k, &Request::new()).unwrap().unwrap())[0], 2);
}

#[test]
fn the_manifest_lists_entries_and_forgets_invalidated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = (key("AAPL", 1, 10), key("MSFT", 5, 6));
    store.put(&a, reader(sample(&a, 1)).as_mut()).unwrap();
    store.put(&b, reader(sample(&b, 1)).as_mut()).unwrap();
    let listed = store.entries().unwrap();
    assert_eq!(listed.num_rows(), 2);
    let symbols = fstore::arrow::compute::concat_batches(&listed.schema, &listed.batches).unwrap();
    let col = symbols.column_by_name("symbol").unwrap();
    let col = fstore::arrow::array::as_string_array(col);
    assert_eq!((col.value(0), col.value(1)), ("AAPL", "MSFT"));
    let rows = symbols.column_by_name("rows").unwrap().as_any().downcast_ref::<fstore::arrow::array::UInt64Array>().unwrap();
    assert_eq!(rows.value(0), 10);

    let summary = store.summary().unwrap();
    let summary = fstore::arrow::compute::concat_batches(&summary.schema, &summary.batches).unwrap();
    let entries = summary.column_by_name("entries").unwrap().as_any().downcast_ref::<fstore::arrow::array::UInt64Array>().unwrap();
    let rows = summary.column_by_name("rows").unwrap().as_any().downcast_ref::<fstore::arrow::array::UInt64Array>().unwrap();
    assert_eq!((entries.values().to_vec(), rows.values().to_vec()), (vec![1, 1], vec![10, 2]));

    store.invalidate(&a).unwrap();
    assert_eq!(store.invalidate(&a).unwrap_err().status(), Status::NotFound);
    assert!(store.get(&a, &Request::new()).unwrap().is_none());
    assert_eq!(store.entries().unwrap().num_rows(), 1);
    store.close().unwrap();

    // A second store over the same directory sees the same manifest.
    assert_eq!(open(dir.path()).entries().unwrap().num_rows(), 1);
}

#[test]
fn an_unwritable_cache_directory_fails_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let mut options = Options::default();
    options.set("cache_dir", file.join("cache").to_str().unwrap()).unwrap();
    let err = Store::open(options).err().unwrap();
    assert_eq!(err.status(), Status::Io);
    assert!(err.message().contains("cannot create cache directory"), "{err}");
}

#[test]
fn bad_keys_are_refused_before_any_compute() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut k = key("AAPL", 10, 5);
    let err = store.get_or_compute(&k, &Request::new(), |_| unreachable!()).unwrap_err();
    assert_eq!(err.status(), Status::InvalidArgument);
    k.end_date = 20;
    k.config = "{\"a\":1,\"a\":2}".into();
    let err = store.get_or_compute(&k, &Request::new(), |_| unreachable!()).unwrap_err();
    assert!(err.message().contains("duplicate member name"), "{err}");
    assert_eq!(store.stats().computes, 0);
}

#[test]
fn cached_keys_resolve_each_config_to_its_own_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let with = |config: &str| {
        let mut k = key("NVDA", 1, 20);
        k.config = config.into();
        k
    };
    let (sorted, reordered, other) = (with(r#"{"a":1,"b":[2,3]}"#), with(r#"{"b": [2, 3], "a": 1}"#), with(r#"{"a":1,"b":[2,4]}"#));
    store.put(&sorted, reader(sample(&sorted, 1)).as_mut()).unwrap();
    store.put(&other, reader(sample(&other, 2)).as_mut()).unwrap();
    // Repeated calls are served from the key cache: still each its own entry.
    for _ in 0..3 {
        for (k, tag) in [(&sorted, 1), (&reordered, 1), (&other, 2)] {
            assert_eq!(tags(&store.get(k, &Request::new()).unwrap().unwrap())[0], tag, "{}", k.config);
        }
        assert!(store.get(&with(r#"{"a":1,"b":[2,5]}"#), &Request::new()).unwrap().is_none());
        let err = store.get(&with(r#"{"a":1,"a":2}"#), &Request::new()).unwrap_err();
        assert_eq!(err.status(), Status::InvalidArgument, "{err}");
    }
}

#[test]
fn the_memory_cache_drops_every_entry_replaced_or_removed_by_another_store() {
    let dir = tempfile::tempdir().unwrap();
    let (reader_store, writer) = (open(dir.path()), open(dir.path()));
    let keys: Vec<_> = (0..64).map(|i| key(&format!("S{i}"), 1, 10)).collect();
    for k in &keys {
        writer.put(k, reader(sample(k, 1)).as_mut()).unwrap();
        assert_eq!(tags(&reader_store.get(k, &Request::new()).unwrap().unwrap())[0], 1);
    }
    let read_once = reader_store.stats().bytes_read;
    for k in &keys {
        assert_eq!(tags(&reader_store.get(k, &Request::new()).unwrap().unwrap())[0], 1);
    }
    assert_eq!(reader_store.stats().bytes_read, read_once, "every entry in every shard served from memory");
    for (i, k) in keys.iter().enumerate() {
        if i % 2 == 0 {
            writer.put(k, reader(sample(k, 2)).as_mut()).unwrap();
        } else {
            writer.invalidate(k).unwrap();
        }
    }
    for (i, k) in keys.iter().enumerate() {
        let found = reader_store.get(k, &Request::new()).unwrap();
        if i % 2 == 0 {
            assert_eq!(tags(&found.unwrap())[0], 2, "{}", k.symbol);
        } else {
            assert!(found.is_none(), "{} was removed", k.symbol);
        }
    }
}

/// Overwrites the data pages of `column` in the entry file under `dir`, so
/// that decoding that column (and only it) fails.
fn spoil_column(dir: &std::path::Path, column: &str) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = walk(dir).into_iter().find(|p| p.ends_with(".parquet")).unwrap();
    let meta = SerializedFileReader::new(std::fs::File::open(&file).unwrap()).unwrap().metadata().clone();
    let mut bytes = std::fs::read(&file).unwrap();
    for group in meta.row_groups() {
        let chunk = group.columns().iter().find(|c| c.column_path().string() == column).unwrap();
        let (start, len) = chunk.byte_range();
        bytes[start as usize..(start + len) as usize].fill(0xee);
    }
    std::fs::write(&file, &bytes).unwrap();
}

#[test]
fn a_projection_decodes_only_its_columns_when_the_entry_is_not_cached() {
    for (memory_cache_mb, last_day) in [("0", 30), ("1", 60_000)] {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options::default();
        options.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
        options.set("memory_cache_mb", memory_cache_mb).unwrap();
        // The data checksum would refuse the spoiled file before any decode.
        options.set("verify_checksums", "false").unwrap();
        let store = Store::open(options).unwrap();
        let k = key("AMZN", 0, last_day);
        store.put(&k, reader(sample(&k, 9)).as_mut()).unwrap();
        spoil_column(dir.path(), "value");

        let what = format!("memory_cache_mb {memory_cache_mb}, {last_day} rows");
        let data = store.get(&k, &Request::new().with_columns(["tag", "date"])).unwrap().unwrap();
        assert_eq!(data.schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["tag", "date"], "{what}");
        assert_eq!(data.num_rows(), last_day as usize + 1, "{what}");
        assert!(tags(&data).iter().all(|t| *t == 9), "{what}");
        let err = store.get(&k, &Request::new()).unwrap_err();
        assert_eq!(err.status(), Status::Corrupt, "{what}: decoding every column reaches the spoiled one: {err}");
        let err = store.get(&k, &Request::new().with_columns(["tag", "nope"])).unwrap_err();
        assert_eq!(err.status(), Status::InvalidArgument, "{what}");
        assert!(err.message().contains("unknown column 'nope'"), "{what}: {err}");
    }
}

/// The exposition's value of the sample `series` (name and labels exactly
/// as written), or `None`.
fn sample_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_count_each_symbol_up_to_the_cap_and_every_wait_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::default();
    options.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    options.set("metrics.max_symbols", "1").unwrap();
    let store = Arc::new(Store::open(options).unwrap());
    let runs = AtomicUsize::new(0);
    // AAPL: a compute that another thread waits for, then a hit.
    let k = key("AAPL", 19000, 19030);
    let (started_tx, started_rx) = mpsc::channel();
    thread::scope(|scope| {
        let leader = scope.spawn(|| {
            store
                .get_or_compute(&k, &Request::new(), |k| {
                    started_tx.send(()).unwrap();
                    thread::sleep(Duration::from_millis(300));
                    Ok(reader(sample(k, 1)))
                })
                .unwrap()
        });
        started_rx.recv().unwrap();
        store.get_or_compute(&k, &Request::new(), slow(Duration::ZERO, &runs, 2)).unwrap();
        leader.join().unwrap();
    });
    store.get_or_compute(&k, &Request::new(), slow(Duration::ZERO, &runs, 2)).unwrap();
    // Two more symbols fold into `other`; one compute of them fails.
    store.get_or_compute(&key("MSFT", 19000, 19030), &Request::new(), slow(Duration::ZERO, &runs, 3)).unwrap();
    let failed = store.get_or_compute(&key("NVDA", 19000, 19030), &Request::new(), |_| Err(Error::invalid_data("no data")));
    assert_eq!(failed.unwrap_err().status(), Status::InvalidData);
    let bad = store.get_or_compute(&key("", 19000, 19030), &Request::new(), slow(Duration::ZERO, &runs, 4));
    assert_eq!(bad.unwrap_err().status(), Status::InvalidArgument);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "only MSFT computed through `slow`");

    let text = store.metrics().unwrap();
    let value = |series: &str| sample_value(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    assert_eq!(value("featurestore_hits_total{symbol=\"AAPL\"}"), 1.0);
    assert_eq!(value("featurestore_misses_total{symbol=\"AAPL\"}"), 2.0);
    assert_eq!(value("featurestore_waits_total{symbol=\"AAPL\"}"), 1.0);
    assert_eq!(value("featurestore_misses_total{symbol=\"other\"}"), 2.0);
    assert_eq!(value("featurestore_hits_total{symbol=\"other\"}"), 0.0);
    assert!(sample_value(&text, "featurestore_hits_total{symbol=\"MSFT\"}").is_none(), "beyond the cap: {text}");
    assert_eq!(value("featurestore_computes_total{feature_set=\"returns\"}"), 3.0);
    assert_eq!(value("featurestore_compute_failures_total{feature_set=\"returns\"}"), 1.0);
    assert_eq!(value("featurestore_errors_total{status=\"invalid_data\"}"), 1.0);
    assert_eq!(value("featurestore_errors_total{status=\"invalid_argument\"}"), 1.0);
    assert_eq!(value("featurestore_errors_total{status=\"timeout\"}"), 0.0);
    assert_eq!(value("featurestore_hit_ratio"), 0.2);
    // Five reads of valid keys timed, one of them waiting at least 300 ms
    // minus the time the leader took to start.
    assert_eq!(value("featurestore_get_seconds_count{feature_set=\"returns\"}"), 5.0);
    assert_eq!(value("featurestore_compute_seconds_count{feature_set=\"returns\"}"), 3.0);
    assert!(value("featurestore_compute_seconds_sum{feature_set=\"returns\"}") >= 0.3);
    assert_eq!(value("featurestore_lock_wait_seconds_count"), 3.0);
    assert!(value("featurestore_memory_cache_entries") >= 1.0);
    assert_eq!(value("featurestore_info{version=\"0.1.0\",backend=\"duckdb\"}"), 1.0);
}

#[test]
fn an_entry_keeps_its_schema_metadata_on_a_hit_as_on_the_miss() {
    // pandas keeps a frame's index and dtypes there: a hit must read back
    // what the miss returned.
    let dir = tempfile::tempdir().unwrap();
    let mut options = Options::default();
    options.set("cache_dir", dir.path().to_str().unwrap()).unwrap();
    options.set("memory_cache_mb", "0").unwrap(); // every hit decodes the file
    let store = Store::open(options).unwrap();
    let k = key("AAPL", 0, 9);
    let data = sample(&k, 1);
    let labels: std::collections::HashMap<String, String> =
        [("pandas".to_string(), r#"{"index_columns": ["date"]}"#.to_string()), ("owner".to_string(), "research".to_string())]
            .into();
    let schema = Arc::new(data.schema.as_ref().clone().with_metadata(labels.clone()));
    let batches = data.batches.iter().map(|b| b.clone().with_schema(schema.clone()).unwrap()).collect();
    let labelled = fstore::Data { schema, batches };
    let runs = AtomicUsize::new(0);
    let compute = |_: &fstore::Key| -> fstore::Result<Box<dyn RecordBatchReader>> {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(reader(labelled.clone()))
    };
    let miss = store.get_or_compute(&k, &Request::new(), compute).unwrap();
    assert_eq!(miss.schema.metadata(), &labels);
    let hit = store.get(&k, &Request::new()).unwrap().unwrap();
    assert_eq!(hit.schema.metadata(), &labels, "the library's own footer entries stay out of it");
    let projected = store.get(&k, &Request::new().with_columns(["value"])).unwrap().unwrap();
    assert_eq!(projected.schema.metadata(), &labels);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
