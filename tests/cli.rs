//! The `fstore` command-line tool, run as a person or a script would: the
//! real binary on real cache directories (and, when FSTORE_TEST_PG_DSN is
//! set, a real PostgreSQL server). Every command runs with and without
//! `--json`; the JSON is checked against what the test did.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use common::pg::{admin, fresh_schema, pg_options};
use common::{key, reader, sample};
use fstore::{Key, Options, Request, Store};
use serde_json::Value;

fn embedded(dir: &Path) -> Options {
    let mut o = Options::default();
    o.set("cache_dir", dir.to_str().unwrap()).unwrap();
    o.set("manifest", "duckdb").unwrap();
    o
}

/// Runs `fstore -o cache_dir=DIR OPTIONS... ARGS...` with no server in the
/// environment, so only the options given choose the manifest.
fn fstore(dir: &Path, options: &[String], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fstore"));
    command.arg("-o").arg(format!("cache_dir={}", dir.display()));
    for o in options {
        command.args(["-o", o]);
    }
    for var in ["PG_MANIFEST_DSN", "PG_HOST", "PG_PORT", "PG_DATABASE", "PG_USER", "PG_PASSWORD", "FSTORE_CACHE_DIR"] {
        command.env_remove(var);
    }
    command.args(args).output().unwrap()
}

fn duckdb() -> Vec<String> {
    vec!["manifest=duckdb".into()]
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command succeeded; its stdout.
fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}{}", String::from_utf8_lossy(&out.stderr), stdout(&out));
    stdout(&out)
}

/// The command succeeded and printed one JSON document.
fn json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The command failed with exactly one line on stderr, `fstore: <reason>
/// (<status>)`; returns that line.
fn fails(out: Output, status: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "succeeded: {}", stdout(&out));
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("fstore: ") && stderr.trim_end().ends_with(&format!("({status})")), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn entry_id(k: &Key) -> String {
    fstore::admin::entry_id(k).unwrap()
}

fn entry_file(dir: &Path, id: &str) -> PathBuf {
    dir.join("data").join(&id[..2]).join(format!("{id}.parquet"))
}

fn put(store: &Store, k: &Key, tag: i64) {
    store.put(k, reader(sample(k, tag)).as_mut()).unwrap();
}

/// Issue 9: the summary of a store with entries failed formatting its
/// `timestamp[us, UTC]` columns ("Invalid timezone \"UTC\""); `stats`
/// replaces it and prints the same per feature set and symbol.
#[test]
fn the_summary_of_a_store_with_entries_prints() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(embedded(dir.path())).unwrap();
    let k = key("SUMM", 1, 5);
    put(&store, &k, 1);
    store.close().unwrap();

    let text = ok(fstore(dir.path(), &duckdb(), &["stats"]));
    assert!(text.contains("SUMM") && text.contains("returns"), "{text}");
    // Creation times print as RFC 3339 UTC.
    assert!(text.lines().any(|l| l.contains("SUMM") && l.trim_end().ends_with('Z')), "{text}");
}

#[test]
fn every_entry_command_on_the_embedded_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = Store::open(embedded(d)).unwrap();
    let (a, b) = (key("AAA", 19_723, 19_727), key("AAA", 19_730, 19_739)); // 2024-01-01..05, 2024-01-08..17
    let c = Key::new("volume", "BBB", 19_723, 19_724, r#"{"bars": 5}"#);
    put(&store, &a, 1);
    put(&store, &b, 2);
    put(&store, &c, 3);
    // One computed through the store, as a worker would.
    let computed = key("CCC", 19_800, 19_809);
    store.get_or_compute(&computed, &Request::new(), |k| Ok(reader(sample(k, 4)))).unwrap();
    assert_eq!(store.stats().computes, 1);
    store.close().unwrap();
    let rows_of = |k: &Key| (k.end_date - k.start_date + 1) as u64;
    let o = duckdb();

    // stats
    let stats = json(fstore(d, &o, &["stats", "--json"]));
    assert_eq!(stats["backend"], "duckdb");
    assert_eq!(stats["total"]["entries"], 4);
    assert_eq!(stats["total"]["rows"], [&a, &b, &c, &computed].iter().map(|k| rows_of(k)).sum::<u64>());
    assert_eq!(stats["feature_sets"], 2);
    assert_eq!(stats["symbols"], 3);
    let aaa = stats["groups"].as_array().unwrap().iter().find(|g| g["symbol"] == "AAA").unwrap();
    assert_eq!((aaa["entries"].as_u64(), aaa["rows"].as_u64()), (Some(2), Some(rows_of(&a) + rows_of(&b))));
    assert!(stats["pool"].is_null() && stats["warnings"].as_array().unwrap().is_empty());
    let text = ok(fstore(d, &o, &["stats"]));
    assert!(text.contains("duckdb") && text.contains("volume") && text.contains("BBB"), "{text}");

    // ls, with each filter
    let ls = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ls", "--json"];
        all.extend_from_slice(args);
        let listed = json(fstore(d, &o, &all));
        listed.as_array().unwrap().iter().map(|e| e["entry_id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ls(&[]).len(), 4);
    assert_eq!(ls(&["--symbol", "AAA"]), {
        let mut ids = vec![entry_id(&a), entry_id(&b)];
        ids.sort_by_key(|id| if *id == entry_id(&a) { 0 } else { 1 });
        ids
    });
    assert_eq!(ls(&["--feature-set", "volume"]), [entry_id(&c)]);
    assert_eq!(ls(&["--symbol", "AAA", "--from", "2024-01-06"]), [entry_id(&b)]);
    assert_eq!(ls(&["--symbol", "AAA", "--to", "2024-01-06"]), [entry_id(&a)]);
    assert_eq!(ls(&["--from", "2024-01-06", "--to", "2024-01-07"]).len(), 0);
    let listed = json(fstore(d, &o, &["ls", "--json", "--feature-set", "volume"]));
    let row = &listed[0];
    assert_eq!((row["symbol"].as_str(), row["start_date"].as_str(), row["end_date"].as_str()), (Some("BBB"), Some("2024-01-01"), Some("2024-01-02")));
    assert_eq!(row["config"], r#"{"bars":5}"#);
    assert_eq!(row["rows"], 2);
    assert!(row["bytes"].as_u64().unwrap() > 0 && row["age_seconds"].as_f64().unwrap() < 600.0);
    let text = ok(fstore(d, &o, &["ls"]));
    assert!(text.contains(&entry_id(&c)[..12]) && text.contains("2024-01-08"), "{text}");

    // show, by id prefix and by key
    let id = entry_id(&c);
    let shown = json(fstore(d, &o, &["show", &id[..10], "--json"]));
    assert_eq!(shown["entry_id"], id.as_str());
    assert_eq!(shown["rows"], 2);
    assert_eq!(shown["checksum"], row["checksum"]);
    assert_eq!(shown["in_manifest"], true);
    let columns: Vec<&str> = shown["schema"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(columns, ["date", "value", "tag"]);
    assert_eq!(shown["schema"][0]["type"], "Date32");
    assert_eq!(shown["path"], entry_file(d, &id).display().to_string());
    let args = ["show", "--feature-set", "volume", "--symbol", "BBB", "--start", "2024-01-01", "--end", "2024-01-02"];
    let by_key = json(fstore(d, &o, &[&args[..], &["--config", r#"{ "bars" : 5.0 }"#, "--json"]].concat()));
    assert_eq!(by_key["entry_id"], id.as_str());
    let text = ok(fstore(d, &o, &["show", &id]));
    assert!(text.contains("verified") && text.contains("Float64"), "{text}");

    // get, in each format
    let out = tempfile::tempdir().unwrap();
    let parquet_path = out.path().join("a.parquet");
    let got = json(fstore(d, &o, &["get", &entry_id(&a), "--output", parquet_path.to_str().unwrap(), "--json"]));
    assert_eq!((got["format"].as_str(), got["rows"].as_u64()), (Some("parquet"), Some(rows_of(&a))));
    let file = std::fs::File::open(&parquet_path).unwrap();
    let batches: Vec<_> = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let data = fstore::Data { schema: batches[0].schema(), batches };
    assert_eq!(common::check_sample(&a, &data), Ok(1));

    let arrow_path = out.path().join("b.arrow");
    ok(fstore(d, &o, &["get", &entry_id(&b), "-O", arrow_path.to_str().unwrap()]));
    let ipc = fstore::arrow::ipc::reader::FileReader::try_new(std::fs::File::open(&arrow_path).unwrap(), None).unwrap();
    let schema = ipc.schema();
    let data = fstore::Data { schema, batches: ipc.collect::<Result<_, _>>().unwrap() };
    assert_eq!(common::check_sample(&b, &data), Ok(2));

    let csv_path = out.path().join("c.txt");
    let args = ["get", "--feature-set", "volume", "--symbol", "BBB", "--start", "2024-01-01", "--end", "2024-01-02"];
    let got = json(fstore(d, &o, &[&args[..], &["--config", r#"{"bars":5}"#, "--output", csv_path.to_str().unwrap(), "--format", "csv", "--json"]].concat()));
    assert_eq!(got["format"], "csv");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines, ["date,value,tag", &format!("2024-01-01,{},3", (19_723f64).sin() + 3.0), &format!("2024-01-02,{},3", (19_724f64).sin() + 3.0)]);

    // verify: all good, then a corrupted file is reported and fails the run
    let verified = json(fstore(d, &o, &["verify", "--json"]));
    assert_eq!((verified["checked"].as_u64(), verified["bad"].as_array().unwrap().len()), (Some(4), 0));
    assert!(ok(fstore(d, &o, &["verify"])).contains("4 entries checked"));
    let damaged = entry_file(d, &entry_id(&b));
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[8] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    let out_bad = fstore(d, &o, &["verify", "--json"]);
    let report: Value = serde_json::from_slice(&out_bad.stdout).unwrap();
    assert_eq!(report["bad"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["bad"][0]["entry_id"], entry_id(&b).as_str());
    assert!(report["bad"][0]["reason"].as_str().unwrap().contains("checksum mismatch"), "{report}");
    fails(out_bad, "corrupt entry");
    let human = fstore(d, &o, &["verify"]);
    assert!(stdout(&human).contains(&entry_id(&b)));
    fails(human, "corrupt entry");

    // gc trusts the entries the manifest lists; with --verify it re-reads
    // them and removes the damaged one with its row
    let trusting = json(fstore(d, &o, &["gc", "--grace", "0s", "--json"]));
    assert_eq!(trusting["corrupt_files"], 0, "{trusting}");
    assert!(damaged.exists());
    let counted = json(fstore(d, &o, &["gc", "--verify", "--dry-run", "--grace", "0s", "--json"]));
    assert_eq!(counted["corrupt_files"], 1, "{counted}");
    assert!(damaged.exists());
    let repaired = json(fstore(d, &o, &["gc", "--verify", "--grace", "0s", "--json"]));
    assert_eq!(repaired["corrupt_files"], 1, "{repaired}");
    assert!(!damaged.exists());
    assert!(!ls(&[]).contains(&entry_id(&b)), "its row is gone too");
    assert!(ok(fstore(d, &o, &["verify"])).contains("3 entries checked"));

    // invalidate, by key and by id; a second time there is nothing to remove
    let gone = json(fstore(d, &o, &["invalidate", &entry_id(&computed), "--json"]));
    assert_eq!((gone["entry_id"].as_str(), gone["invalidated"].as_bool()), (Some(entry_id(&computed).as_str()), Some(true)));
    assert!(!entry_file(d, &entry_id(&computed)).exists());
    let args = ["invalidate", "--feature-set", "returns", "--symbol", "AAA", "--start", "2024-01-01", "--end", "2024-01-05"];
    let text = ok(fstore(d, &o, &[&args[..], &["--config", r#"{"window":20}"#]].concat()));
    assert!(text.contains(&entry_id(&a)), "{text}");
    fails(fstore(d, &o, &[&args[..], &["--config", r#"{"window":20}"#]].concat()), "not found");
    assert_eq!(ls(&[]), [entry_id(&c)]);

    // gc: a dry run removes nothing; the real run removes what it counted
    let dry = json(fstore(d, &o, &["gc", "--dry-run", "--max-age", "0s", "--grace", "0s", "--json"]));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["expired_entries"], 1, "{dry}");
    assert!(entry_file(d, &entry_id(&c)).exists());
    assert_eq!(ls(&[]).len(), 1);
    assert!(ok(fstore(d, &o, &["gc", "--dry-run", "--grace", "0s"])).contains("dry run"));
    let done = json(fstore(d, &o, &["gc", "--max-age", "0s", "--grace", "0s", "--json"]));
    assert_eq!(done["bytes_freed"], dry["bytes_freed"]);
    assert!(!entry_file(d, &entry_id(&c)).exists());
    assert_eq!(ls(&[]).len(), 0);
    assert!(ok(fstore(d, &o, &["gc", "--grace", "0s"])).contains("removed"));

    // rebind, both ways of printing
    let bound = json(fstore(d, &o, &["-o", "lock.granularity=entry", "rebind", "--json"]));
    assert!(bound["binding"].as_str().unwrap().contains("lock.granularity=entry"), "{bound}");
    assert!(ok(fstore(d, &o, &["rebind"])).contains("lock.granularity=symbol"));

    // metrics: this process's exposition (its store did nothing yet)
    let text = ok(fstore(d, &o, &["metrics"]));
    assert!(text.contains("featurestore_info{version=\"0.1.0\",backend=\"duckdb\"} 1"), "{text}");
    assert!(text.lines().any(|l| l == "featurestore_hit_ratio 0"), "{text}");
    let printed = json(fstore(d, &o, &["metrics", "--json"]));
    assert!(printed["text"].as_str().unwrap().contains("# TYPE featurestore_hits_total counter"), "{printed}");

    // PostgreSQL-only commands say so
    for args in [&["locks"][..], &["pool", "--json"]] {
        let line = fails(fstore(d, &o, args), "not found");
        assert!(line.contains("PostgreSQL"), "{line}");
    }
}

/// One HTTP/1.1 request to `address`; the response's status line, headers and body.
fn http(address: &str, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// A child process ended when dropped, also when an assertion fails first.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `metrics --listen` serves the exposition at /metrics for a scrape, one
/// request after another, and refuses anything else.
#[test]
fn metrics_are_served_over_http() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    Store::open(embedded(dir.path())).unwrap().close().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_fstore"));
    command.args(["-o", &format!("cache_dir={}", dir.path().display()), "-o", "manifest=duckdb"]);
    let mut server = Server(
        command.args(["metrics", "--listen", "127.0.0.1:0", "--json"]).stdout(std::process::Stdio::piped()).spawn().unwrap(),
    );
    let mut first = String::new();
    std::io::BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let announced: Value = serde_json::from_str(&first).unwrap();
    let address = announced["listening"].as_str().unwrap().to_string();
    for _ in 0..2 {
        let (head, body) = http(&address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
        assert!(body.contains("featurestore_info{version=\"0.1.0\",backend=\"duckdb\"} 1"), "{body}");
    }
    assert!(http(&address, "GET / HTTP/1.1\r\n\r\n").0.starts_with("HTTP/1.1 404"));
    assert!(http(&address, "POST /metrics HTTP/1.1\r\n\r\n").0.starts_with("HTTP/1.1 405"));
    drop(server);
    // An address that cannot be bound is a one-line failure.
    fails(fstore(dir.path(), &duckdb(), &["metrics", "--listen", "not-an-address"]), "I/O error");
}

#[test]
fn bad_input_gets_a_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = Store::open(embedded(d)).unwrap();
    let k = key("BAD", 1, 3);
    put(&store, &k, 1);
    let twin = key("BAD", 1, 4); // ids differ; prefixes of 1 hex digit would match many
    put(&store, &twin, 1);
    store.close().unwrap();
    let o = duckdb();
    let out = tempfile::tempdir().unwrap();

    fails(fstore(d, &o, &["show", &"f".repeat(64)]), "not found");
    fails(fstore(d, &o, &["show", "abcdef0123"]), "not found");
    fails(fstore(d, &o, &["show", "abc"]), "invalid argument");
    fails(fstore(d, &o, &["show", "not-hex!"]), "invalid argument");
    fails(fstore(d, &o, &["show", "--feature-set", "returns", "--symbol", "BAD"]), "invalid argument");
    fails(fstore(d, &o, &["show", &entry_id(&k), "--symbol", "BAD"]), "invalid argument");
    let line = fails(fstore(d, &o, &["ls", "--from", "2024-02-30"]), "invalid argument");
    assert!(line.contains("2024-02-30"), "{line}");
    fails(fstore(d, &o, &["ls", "--to", "yesterday"]), "invalid argument");
    fails(fstore(d, &o, &["gc", "--max-age", "3 days"]), "invalid argument");
    fails(fstore(d, &o, &["frobnicate"]), "invalid argument");
    let line = fails(fstore(d, &o, &[]), "invalid argument");
    assert!(line.contains("requires a subcommand"), "{line}");
    fails(fstore(d, &o, &["show", "--feature-set", "returns", "--symbol", "BAD", "--start", "1970-01-02", "--end", "1970-01-04", "--config", "{oops"]), "invalid argument");
    let missing = out.path().join("no/such/dir/x.parquet");
    fails(fstore(d, &o, &["get", &entry_id(&k), "--output", missing.to_str().unwrap()]), "I/O error");
    fails(fstore(d, &o, &["get", &entry_id(&k), "--output", out.path().join("x.xlsx").to_str().unwrap()]), "invalid argument");
    fails(fstore(d, &o, &["migrate"]), "invalid argument");
    fails(fstore(d, &o, &["-o", "lock.granularity=row", "stats"]), "invalid argument");
    fails(fstore(d, &o, &["-o", "nonsense", "stats"]), "invalid argument");
    let line = fails(fstore(&d.join("typo"), &o, &["stats"]), "not found");
    assert!(line.contains("does not exist"), "{line}");
    assert!(!d.join("typo").exists(), "inspecting a missing directory created it");
    fails(fstore(d, &o, &["rollback"]), "invalid state");
    // Help is not a failure.
    assert!(ok(fstore(d, &o, &["--help"])).contains("verify"));
}

/// A cache directory anyone may write is refused with the reason and the
/// fix on one line; nothing is created in it.
#[test]
fn an_unsafe_cache_directory_is_refused_in_one_line() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let line = fails(fstore(&cache, &duckdb(), &["stats"]), "permission denied");
    let real = std::fs::canonicalize(&cache).unwrap();
    assert!(line.contains("writable by every user (mode 0777)"), "{line}");
    assert!(line.contains(&format!("chmod 700 {}", real.display())), "{line}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0, "something was created in it");
    // Fixed as the message says, it opens.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    ok(fstore(&cache, &duckdb(), &["stats"]));
}

fn pg_dsn() -> Option<String> {
    let dsn = std::env::var("FSTORE_TEST_PG_DSN").ok();
    if dsn.is_none() {
        eprintln!("FSTORE_TEST_PG_DSN is not set: skipping the PostgreSQL commands");
    }
    dsn
}

fn postgres(dsn: &str, schema: &str) -> Vec<String> {
    vec!["manifest=postgres".into(), format!("postgres.dsn={dsn}"), format!("postgres.schema={schema}")]
}

/// Migrates an embedded cache to PostgreSQL, publishes there, and rolls
/// back: the entry published after the migration survives, and one
/// invalidated after it stays gone.
#[test]
fn migrate_then_roll_back_loses_nothing_published_since() {
    let Some(dsn) = pg_dsn() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (before, dropped, after) = (key("MIG", 1, 5), key("MIG", 6, 9), key("MIG", 10, 19));
    let local = Store::open(embedded(d)).unwrap();
    put(&local, &before, 1);
    put(&local, &dropped, 2);
    local.close().unwrap();

    let schema = fresh_schema("t_cli_migrate");
    let pg = postgres(&dsn, &schema);
    let migrated = json(fstore(d, &pg, &["migrate", "--schema", "--manifest", "--json"]));
    assert_eq!(migrated["schema"]["applied_versions"], serde_json::json!([1, 2]));
    assert_eq!((migrated["manifest"]["rows_read"].as_u64(), migrated["manifest"]["inserted"].as_u64()), (Some(2), Some(2)));
    let backup = PathBuf::from(migrated["manifest"]["backup"].as_str().unwrap());
    assert!(backup.exists());
    let again = json(fstore(d, &pg, &["migrate", "--manifest", "--json"]));
    assert_eq!((again["manifest"]["inserted"].as_u64(), again["manifest"]["already_present"].as_u64()), (Some(0), Some(2)));
    // Each run backs the DuckDB file up again; a rollback restores the newest.
    let backup = PathBuf::from(again["manifest"]["backup"].as_str().unwrap());

    let remote = Store::open(pg_options(d, &schema)).unwrap();
    put(&remote, &after, 3);
    remote.invalidate(&dropped).unwrap();
    remote.close().unwrap();
    let stats = json(fstore(d, &pg, &["stats", "--json"]));
    assert_eq!((stats["backend"].as_str(), stats["total"]["entries"].as_u64()), (Some("postgres"), Some(2)));
    assert!(stats["pool"]["size"].as_u64().unwrap() >= 1);
    assert!(stats["advisory_locks"]["held"].is_u64());

    let rolled = json(fstore(d, &pg, &["rollback", "--json"]));
    assert_eq!(rolled["backup"], backup.display().to_string());
    assert_eq!(rolled["rows_from_postgres"], 2);
    assert_eq!(rolled["rows_dropped"], 1);
    assert_eq!(rolled["rows"], 2);
    assert!(rolled["binding"].as_str().unwrap().starts_with("manifest duckdb"), "{rolled}");

    let back = Store::open(embedded(d)).unwrap();
    let ids: Vec<String> = back.manifest_rows().unwrap().into_iter().map(|r| r.entry_id).collect();
    let mut expected = vec![entry_id(&before), entry_id(&after)];
    expected.sort();
    let mut ids_sorted = ids.clone();
    ids_sorted.sort();
    assert_eq!(ids_sorted, expected);
    assert_eq!(common::tags(&back.get(&after, &Request::new()).unwrap().unwrap())[0], 3);
    back.close().unwrap();
    // Rolled back already: the directory is embedded now.
    fails(fstore(d, &pg, &["rollback"]), "invalid state");
    // Human output of both, on a second directory.
    let other = tempfile::tempdir().unwrap();
    let local = Store::open(embedded(other.path())).unwrap();
    put(&local, &before, 1);
    local.close().unwrap();
    let schema = fresh_schema("t_cli_migrate_two");
    let pg = postgres(&dsn, &schema);
    assert!(ok(fstore(other.path(), &pg, &["migrate", "--schema", "--manifest"])).contains("inserted: 1"));
    assert!(ok(fstore(other.path(), &pg, &["rollback"])).contains("rows now: 1"));
}

/// `locks` names the symbol and entry of a compute in progress and a
/// program waiting for the symbol; `pool` counts libfstore's connections.
#[test]
fn locks_and_pool_on_postgres() {
    let Some(dsn) = pg_dsn() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let schema = fresh_schema("t_cli_locks");
    let pg = postgres(&dsn, &schema);
    let store = std::sync::Arc::new(Store::open(pg_options(d, &schema)).unwrap());
    let known = key("LCK", 1, 5);
    put(&store, &known, 1);
    let computing = key("LCK", 6, 9);

    let (started_tx, started) = mpsc::channel();
    let (finish, finish_rx) = mpsc::channel::<()>();
    let worker = {
        let store = std::sync::Arc::clone(&store);
        let computing = computing.clone();
        std::thread::spawn(move || {
            store.get_or_compute(&computing, &Request::new(), |k| {
                started_tx.send(()).unwrap();
                finish_rx.recv_timeout(Duration::from_secs(30)).ok();
                Ok(reader(sample(k, 2)))
            })
        })
    };
    started.recv_timeout(Duration::from_secs(30)).expect("the compute started");

    // Another program takes the symbol's key exclusively: it waits for the compute.
    let symbol_key = fstore::lock_key("LCK").unwrap();
    let waiter = std::thread::spawn(move || {
        let mut client = admin();
        client.batch_execute("SET lock_timeout = '30s'").unwrap();
        client.execute("SELECT pg_advisory_lock($1)", &[&symbol_key]).map(drop)
    });
    let mut probe = admin();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while probe
        .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", &[])
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "the other program never waited");
        std::thread::sleep(Duration::from_millis(20));
    }

    let locks = json(fstore(d, &pg, &["locks", "--json"]));
    let all = locks["locks"].as_array().unwrap();
    let symbol_locks: Vec<&Value> = all.iter().filter(|l| l["key"] == symbol_key).collect();
    assert!(symbol_locks.iter().all(|l| l["object"]["kind"] == "symbol" && l["object"]["symbol"] == "LCK"), "{locks}");
    assert!(symbol_locks.iter().any(|l| l["granted"] == true && l["mode"] == "ShareLock"), "{locks}");
    assert!(symbol_locks.iter().any(|l| l["granted"] == false && l["mode"] == "ExclusiveLock"), "{locks}");
    let entry_key = common::pg::entry_lock_key(&entry_id(&computing));
    let entry_lock = all.iter().find(|l| l["key"] == entry_key).expect("the compute's entry lock");
    assert_eq!((entry_lock["granted"].as_bool(), entry_lock["mode"].as_str()), (Some(true), Some("ExclusiveLock")));
    assert_eq!(entry_lock["object"]["kind"], "unknown"); // not in the manifest until published
    let per_symbol = locks["symbols"].as_array().unwrap().iter().find(|s| s["symbol"] == "LCK").unwrap();
    assert!(per_symbol["held"].as_u64().unwrap() >= 1 && per_symbol["waiting"].as_u64().unwrap() >= 1, "{locks}");
    let text = ok(fstore(d, &pg, &["locks"]));
    assert!(text.contains("symbol LCK") && text.contains("waiting"), "{text}");
    // The exposition's advisory-lock gauges count the same locks.
    let exposition = ok(fstore(d, &pg, &["metrics"]));
    let gauge = |state: &str| -> f64 {
        let prefix = format!("featurestore_advisory_locks{{state=\"{state}\"}} ");
        exposition.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap().parse().unwrap()
    };
    assert!(gauge("held") >= 2.0 && gauge("waiting") >= 1.0, "{exposition}");
    assert!(exposition.contains("backend=\"postgres\""), "{exposition}");

    let pool = json(fstore(d, &pg, &["pool", "--json"]));
    assert!(pool["pool"]["size"].as_u64().unwrap() >= 1);
    assert_eq!(pool["pool"]["max"], 16);
    assert!(pool["server"]["max_connections"].as_u64().unwrap() > 0);
    // The test's store holds at least the compute's connection and its pool's first.
    assert!(pool["server"]["libfstore_connections"].as_u64().unwrap() >= 2, "{pool}");
    let states: Vec<&str> = pool["server"]["libfstore_by_state"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"idle in transaction"), "the compute's lock transaction: {pool}");
    assert!(ok(fstore(d, &pg, &["pool"])).contains("max_connections"));

    finish.send(()).unwrap();
    worker.join().unwrap().unwrap();
    waiter.join().unwrap().unwrap();
    // Published: now the manifest names the entry's lock too.
    let named = json(fstore(d, &pg, &["locks", "--json", "--symbol", "OTHER"]));
    assert!(named["locks"].as_array().unwrap().iter().all(|l| l["object"]["kind"] != "unknown" || l["key"] != entry_key));
}
