//! Helpers for the integration tests: sample data, readers, child processes.
#![allow(dead_code)]

pub mod fork;
pub mod hosts;
pub mod pg;
pub mod proc_stats;
pub mod workers;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use fstore::arrow::array::{Date32Array, Float64Array, Int64Array, RecordBatch};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::record_batch::{RecordBatchIterator, RecordBatchReader};
use fstore::{Data, Key};

pub fn key(symbol: &str, start: i32, end: i32) -> Key {
    Key::new("returns", symbol, start, end, r#"{"window": 20}"#)
}

/// Deterministic data for `key`, tagged with `tag` so tests can tell whose
/// compute produced what they read.
pub fn sample(key: &Key, tag: i64) -> Data {
    let schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("value", DataType::Float64, false),
        Field::new("tag", DataType::Int64, false),
    ]));
    let days: Vec<i32> = (key.start_date..=key.end_date).collect();
    let values: Vec<f64> = days.iter().map(|d| (*d as f64).sin() + key.symbol.len() as f64).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Date32Array::from(days.clone())),
            Arc::new(Float64Array::from(values)),
            Arc::new(Int64Array::from(vec![tag; days.len()])),
        ],
    )
    .unwrap();
    Data { schema, batches: vec![batch] }
}

/// Checks that `data` is exactly what [`sample`] makes for `key`, with one
/// tag throughout; returns that tag, or what differs.
pub fn check_sample(key: &Key, data: &Data) -> Result<i64, String> {
    let names: Vec<&str> = data.schema.fields().iter().map(|f| f.name().as_str()).collect();
    if names != ["date", "value", "tag"] {
        return Err(format!("columns {names:?}, expected [date, value, tag]"));
    }
    let mut expected_day = key.start_date;
    let mut tag = None;
    for batch in &data.batches {
        let column = |i: usize| batch.column(i).as_any();
        let (Some(days), Some(values), Some(tags)) = (
            column(0).downcast_ref::<Date32Array>(),
            column(1).downcast_ref::<Float64Array>(),
            column(2).downcast_ref::<Int64Array>(),
        ) else {
            return Err(format!("column types {:?}", batch.schema()));
        };
        for row in 0..batch.num_rows() {
            let (day, value, row_tag) = (days.value(row), values.value(row), tags.value(row));
            let want = (expected_day as f64).sin() + key.symbol.len() as f64;
            if day != expected_day || value.to_bits() != want.to_bits() {
                return Err(format!("row for day {expected_day} holds day {day}, value {value} (expected {want})"));
            }
            if *tag.get_or_insert(row_tag) != row_tag {
                return Err(format!("tags differ within the entry: {} and {row_tag}", tag.unwrap()));
            }
            expected_day += 1;
        }
    }
    if expected_day != key.end_date + 1 {
        return Err(format!("{} rows, expected {}", expected_day - key.start_date, key.end_date - key.start_date + 1));
    }
    tag.ok_or_else(|| "no rows".to_string())
}

pub fn reader(data: Data) -> Box<dyn RecordBatchReader> {
    let schema = data.schema.clone();
    Box::new(RecordBatchIterator::new(data.batches.into_iter().map(Ok), schema))
}

pub fn tags(data: &Data) -> Vec<i64> {
    let mut out = Vec::new();
    for b in &data.batches {
        let col = b.column_by_name("tag").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
        out.extend(col.values().iter().copied());
    }
    out
}

/// A stable text digest of the data, to compare what processes received.
pub fn digest(data: &Data) -> String {
    format!("{:?}", data.batches.iter().map(|b| format!("{b:?}")).collect::<Vec<_>>())
}

/// Lines of an append-only run log (one per compute).
pub fn count_lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

pub fn append_line(path: &std::path::Path, line: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
}

/// Children of this test binary, re-executed to run `entry` with `env`. Each
/// prints `FSTORE_READY`, blocks until its stdin closes (the barrier), runs,
/// and prints lines starting with `FSTORE_`.
pub struct Children {
    children: Vec<Child>,
}

impl Children {
    pub fn spawn(entry: &str, envs: &[Vec<(String, String)>]) -> Children {
        let mut children = Vec::new();
        for env in envs {
            children.push(child_command(entry, env, &[]).spawn().unwrap());
        }
        Children { children }
    }

    /// Waits until every child is at the barrier, then releases them all at once.
    pub fn release_together(&mut self) -> Vec<BufReader<std::process::ChildStdout>> {
        let mut outs = Vec::new();
        for child in &mut self.children {
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            loop {
                line.clear();
                assert!(out.read_line(&mut line).unwrap() > 0, "child exited before the barrier");
                // libtest may print "test child_worker ... " in front of it.
                if line.contains("FSTORE_READY") {
                    break;
                }
            }
            outs.push(out);
        }
        for child in &mut self.children {
            drop(child.stdin.take());
        }
        outs
    }

    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|c| c.id()).collect()
    }

    /// Waits for every child; returns each one's `FSTORE_` lines and whether it succeeded.
    pub fn finish(mut self, outs: Vec<BufReader<std::process::ChildStdout>>) -> Vec<(bool, Vec<String>)> {
        let mut results = Vec::new();
        for (child, out) in self.children.iter_mut().zip(outs) {
            let lines: Vec<String> = out
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.find("FSTORE_").map(|at| l[at..].to_string()))
                .collect();
            let ok = child.wait().unwrap().success();
            results.push((ok, lines));
        }
        results
    }
}

/// A re-execution of this test binary that runs test `entry` with
/// FSTORE_TEST_CHILD and `env` set, under `wrapper` (a command and its
/// arguments, such as `ip netns exec NS`, or nothing); stdin and stdout piped.
pub fn child_command(entry: &str, env: &[(String, String)], wrapper: &[String]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    command
        .args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .env("FSTORE_TEST_CHILD", "1")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// In a child: announce readiness and block until the parent releases the barrier.
pub fn child_barrier() {
    println!("FSTORE_READY");
    std::io::stdout().flush().unwrap();
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
}

/// The body of a child process: waits at the barrier, then asks `store` for
/// the key of `symbol` and CHILD_START..CHILD_END. Its compute appends
/// "<pid> <start>" to CHILD_LOG (O_APPEND, outside the library), touches
/// CHILD_STARTED_MARKER if set, and sleeps CHILD_SLEEP_MS. Prints the digest
/// and tag of what it got.
pub fn run_child(store: fstore::Store, symbol: &str) {
    let k = key(symbol, env("CHILD_START").parse().unwrap(), env("CHILD_END").parse().unwrap());
    let log = env("CHILD_LOG");
    let sleep_ms: u64 = env("CHILD_SLEEP_MS").parse().unwrap();
    child_barrier();
    let data = store
        .get_or_compute(&k, &fstore::Request::new(), |k| {
            append_line(std::path::Path::new(&log), &format!("{} {}", std::process::id(), k.start_date));
            if let Ok(marker) = std::env::var("CHILD_STARTED_MARKER") {
                std::fs::write(marker, b"computing").unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(sleep_ms));
            Ok(reader(sample(k, std::process::id() as i64)))
        })
        .unwrap();
    println!("FSTORE_DIGEST {} {}", k.start_date, digest(&data));
    println!("FSTORE_TAG {}", tags(&data)[0]);
    store.close().unwrap();
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set for child processes"))
}

/// Runs `f` on a thread of its own and waits for it at most `limit`, so that
/// a call that hangs fails the test (naming `what`) instead of stopping it.
pub fn within<T: Send + 'static>(limit: std::time::Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    finished_within(limit, f).unwrap_or_else(|| panic!("{what} did not return within {limit:?}"))
}

/// Runs `f` on a thread of its own; `None` when it has not returned after
/// `limit` (it is left running). A panic in `f` is passed on.
pub fn finished_within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => Some(value),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => None,
    }
}

/// Options for a store on `cache` with the embedded manifest.
pub fn embedded_options(cache: &std::path::Path) -> fstore::Options {
    let mut o = fstore::Options::default();
    o.set("cache_dir", cache.to_str().unwrap()).unwrap();
    o.set("manifest", "duckdb").unwrap();
    o
}

/// Every entry file (`*.parquet`) under `cache`'s data directory.
pub fn entry_files(cache: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(shards) = std::fs::read_dir(cache.join("data")) else { return files };
    for shard in shards.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
        for file in std::fs::read_dir(shard.path()).unwrap().filter_map(|e| e.ok()) {
            if file.file_name().to_string_lossy().ends_with(".parquet") {
                files.push(file.path());
            }
        }
    }
    files.sort();
    files
}

/// Sets the modification time of every file under `dir` `by` into the past,
/// so that maintenance's grace period no longer protects them.
pub fn age_files(dir: &std::path::Path, by: std::time::Duration) {
    let when = std::time::SystemTime::now() - by;
    for entry in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.is_dir() {
            age_files(&path, by);
        } else {
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        }
    }
}

/// Copies the tree `from` into `to`, creating directories as needed.
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().filter_map(|e| e.ok()) {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Small data of one row group that does not depend on the key's dates, for
/// keys whose date range is too wide for [`sample`].
pub fn tiny(tag: i64) -> Data {
    let schema = Arc::new(Schema::new(vec![
        Field::new("value", DataType::Float64, false),
        Field::new("tag", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Float64Array::from(vec![0.5, 1.5, 2.5])), Arc::new(Int64Array::from(vec![tag; 3]))],
    )
    .unwrap();
    Data { schema, batches: vec![batch] }
}

/// Where a Parquet file's footer (its metadata, length and magic) begins.
pub fn footer_start(file: &[u8]) -> usize {
    let len = file.len();
    assert!(len >= 12 && &file[len - 4..] == b"PAR1", "not a Parquet file");
    let footer_len = u32::from_le_bytes(file[len - 8..len - 4].try_into().unwrap()) as usize;
    len - 8 - footer_len
}

/// The manifest row of `k` among `rows`.
pub fn row_of<'a>(rows: &'a [fstore::ManifestRow], k: &Key) -> Option<&'a fstore::ManifestRow> {
    rows.iter().find(|r| {
        r.feature_set == k.feature_set
            && r.symbol == k.symbol
            && r.start_date == k.start_date
            && r.end_date == k.end_date
    })
}

/// Maintenance with no grace period: whatever qualifies goes now.
pub fn maintain_now(max_age: Option<std::time::Duration>) -> fstore::maintenance::MaintainOptions {
    fstore::maintenance::MaintainOptions { max_age, grace: std::time::Duration::ZERO, ..Default::default() }
}
