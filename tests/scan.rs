//! Scans: many entries at once, with the key columns in front, over both
//! manifests; missing and corrupt entries are reported, never dropped.

mod common;

use std::path::Path;

use common::pg::{fresh_schema, pg_options};
use common::{embedded_options, key, reader, sample};
use fstore::arrow::array::{Array, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::{Data, Key, Options, ScanRequest, Status, Store, END_DATE_COLUMN, START_DATE_COLUMN, SYMBOL_COLUMN};

const CONFIG: &str = r#"{"window": 20}"#;

/// One row of a scan: symbol, start and end date of its entry, its date and tag.
type Row = (String, i32, i32, i32, i64);

fn scan_rows(data: &Data) -> Vec<Row> {
    let mut rows = Vec::new();
    for batch in &data.batches {
        let col = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
        let symbols = col(SYMBOL_COLUMN);
        let symbols = symbols.as_any().downcast_ref::<StringArray>().unwrap();
        let (starts, ends, dates, tags) = (col(START_DATE_COLUMN), col(END_DATE_COLUMN), col("date"), col("tag"));
        let date32 = |a: &dyn Array| a.as_any().downcast_ref::<Date32Array>().unwrap().clone();
        let (starts, ends, dates) = (date32(&starts), date32(&ends), date32(&dates));
        let tags = tags.as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..batch.num_rows() {
            rows.push((symbols.value(i).to_string(), starts.value(i), ends.value(i), dates.value(i), tags.value(i)));
        }
    }
    rows
}

/// The rows a scan of `keys` must give, in the scan's order.
fn expected_rows(keys: &[(Key, i64)]) -> Vec<Row> {
    let mut sorted: Vec<_> = keys.to_vec();
    sorted.sort_by(|(a, _), (b, _)| (&a.symbol, a.start_date, a.end_date).cmp(&(&b.symbol, b.start_date, b.end_date)));
    sorted
        .iter()
        .flat_map(|(k, tag)| (k.start_date..=k.end_date).map(move |d| (k.symbol.clone(), k.start_date, k.end_date, d, *tag)))
        .collect()
}

fn put(store: &Store, k: &Key, tag: i64) {
    store.put(k, &mut reader(sample(k, tag))).unwrap();
}

fn window(start: i32, end: i32) -> ScanRequest {
    ScanRequest::new("returns", start, end).with_config(CONFIG)
}

fn names(data: &Data) -> Vec<String> {
    data.schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Puts entries of three symbols, some outside the window, and checks what
/// scans of them return: rows, key columns, order, projection, the window
/// rule, the symbol list and the config.
fn rows_key_columns_projection_and_window(options: Options) {
    let store = Store::open(options).unwrap();
    let inside = [
        (key("MSFT", 100, 109), 1),
        (key("AAPL", 110, 119), 2),
        (key("AAPL", 100, 109), 3),
        (key("IBM", 105, 105), 4),
        // Exactly the window's bounds: inside.
        (key("IBM", 100, 130), 5),
    ];
    for (k, tag) in &inside {
        put(&store, k, *tag);
    }
    // Overlapping the window at either end, or wider than it: outside.
    for k in [key("AAPL", 95, 104), key("MSFT", 125, 135), key("IBM", 90, 140)] {
        put(&store, &k, 9);
    }
    // Another feature set and another config: outside.
    put(&store, &Key::new("other", "AAPL", 100, 109, CONFIG), 9);
    put(&store, &Key::new("returns", "AAPL", 100, 109, r#"{"window": 21}"#), 9);

    let all = store.scan(&window(100, 130)).unwrap();
    assert!(all.missing.is_empty(), "{:?}", all.missing);
    assert_eq!(names(&all.data), [SYMBOL_COLUMN, START_DATE_COLUMN, END_DATE_COLUMN, "date", "value", "tag"]);
    assert_eq!(scan_rows(&all.data), expected_rows(&inside));

    // A symbol list (with a repeat, and a symbol that has no entries) and a
    // config spelled differently but canonically equal.
    let some = store
        .scan(&window(100, 130).with_symbols(["IBM", "AAPL", "IBM", "NONE"]).with_config(r#"{ "window" : 2.0e1 }"#))
        .unwrap();
    let wanted: Vec<_> = inside.iter().filter(|(k, _)| k.symbol != "MSFT").cloned().collect();
    assert_eq!(scan_rows(&some.data), expected_rows(&wanted));

    // Projection: the key columns, then the columns asked for, in that order.
    let projected = store.scan(&window(100, 130).with_columns(["tag", "date"])).unwrap();
    assert_eq!(names(&projected.data), [SYMBOL_COLUMN, START_DATE_COLUMN, END_DATE_COLUMN, "tag", "date"]);
    assert_eq!(scan_rows(&projected.data), expected_rows(&inside));

    // A narrower window keeps only the entries it contains.
    let narrow = store.scan(&window(100, 109)).unwrap();
    let wanted: Vec<_> = inside.iter().filter(|(k, _)| k.end_date <= 109).cloned().collect();
    assert_eq!(scan_rows(&narrow.data), expected_rows(&wanted));

    // Nothing in the window: no rows, the key columns only, nothing missing.
    let empty = store.scan(&window(1000, 2000)).unwrap();
    assert_eq!(empty.data.num_rows(), 0);
    assert!(empty.missing.is_empty());
    assert_eq!(names(&empty.data), [SYMBOL_COLUMN, START_DATE_COLUMN, END_DATE_COLUMN]);
}

/// Deletes one entry's file and corrupts another's: both are reported with
/// their keys and why, the others are read, nothing is computed.
fn missing_and_corrupt_files_are_reported(options: Options, cache: &Path) {
    let store = Store::open(options).unwrap();
    let keys = [(key("AAPL", 1, 5), 1), (key("AAPL", 6, 10), 2), (key("MSFT", 1, 5), 3), (key("MSFT", 6, 10), 4)];
    for (k, tag) in &keys {
        put(&store, k, *tag);
    }
    store.flush().unwrap();
    let rows = store.manifest_rows().unwrap();
    let path_of = |k: &Key| cache.join(&common::row_of(&rows, k).unwrap().path);
    std::fs::remove_file(path_of(&keys[1].0)).unwrap();
    let corrupt = path_of(&keys[2].0);
    let mut bytes = std::fs::read(&corrupt).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&corrupt, bytes).unwrap();

    let scan = store.scan(&window(0, 100)).unwrap();
    let kept = [keys[0].clone(), keys[3].clone()];
    assert_eq!(scan_rows(&scan.data), expected_rows(&kept));
    let missing: Vec<(&str, i32, i32)> =
        scan.missing.iter().map(|m| (m.key.symbol.as_str(), m.key.start_date, m.key.end_date)).collect();
    assert_eq!(missing, [("AAPL", 6, 10), ("MSFT", 1, 5)]);
    assert_eq!(scan.missing[0].reason, "its file is missing");
    assert!(scan.missing[1].reason.contains("checksum mismatch"), "{}", scan.missing[1].reason);
    assert_eq!(scan.missing[0].key.config, r#"{"window":20}"#, "the canonical config");
    assert_eq!(store.stats().computes, 0);

    // The same report as Arrow, for the C API.
    let table = scan.missing_to_arrow().unwrap();
    assert_eq!(table.num_rows(), 2);
    assert_eq!(names(&table), ["feature_set", "symbol", "start_date", "end_date", "config", "reason"]);
}

fn embedded(dir: &Path) -> Options {
    embedded_options(dir)
}

#[test]
fn embedded_scans_return_rows_with_key_columns_by_the_window_rule() {
    let dir = tempfile::tempdir().unwrap();
    rows_key_columns_projection_and_window(embedded(dir.path()));
}

#[test]
fn embedded_scans_report_missing_and_corrupt_entries() {
    let dir = tempfile::tempdir().unwrap();
    missing_and_corrupt_files_are_reported(embedded(dir.path()), dir.path());
}

#[test]
fn postgres_scans_return_rows_with_key_columns_by_the_window_rule() {
    let dir = tempfile::tempdir().unwrap();
    rows_key_columns_projection_and_window(pg_options(dir.path(), &fresh_schema("fstore_scan_rows")));
}

#[test]
fn postgres_scans_report_missing_and_corrupt_entries() {
    let dir = tempfile::tempdir().unwrap();
    missing_and_corrupt_files_are_reported(pg_options(dir.path(), &fresh_schema("fstore_scan_missing")), dir.path());
}

#[test]
fn the_memory_cache_gives_the_same_scan_and_serves_it_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(embedded(dir.path())).unwrap();
    let keys = [(key("AAPL", 1, 5), 1), (key("MSFT", 1, 5), 2)];
    for (k, tag) in &keys {
        put(&store, k, *tag);
    }
    let first = store.scan(&window(0, 10).with_columns(["tag", "date"])).unwrap();
    let read = store.stats().bytes_read;
    assert!(read > 0);
    let second = store.scan(&window(0, 10).with_columns(["date", "tag"])).unwrap();
    assert_eq!(store.stats().bytes_read, read, "the second scan comes from memory");
    assert_eq!(scan_rows(&first.data), expected_rows(&keys));
    assert_eq!(scan_rows(&second.data), expected_rows(&keys));
}

fn refused(store: &Store, request: &ScanRequest) -> (Status, String) {
    let e = store.scan(request).unwrap_err();
    (e.status(), e.message().to_string())
}

#[test]
fn hostile_requests_get_clear_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(embedded(dir.path())).unwrap();
    put(&store, &key("AAPL", 1, 5), 1);
    let cases: Vec<(ScanRequest, &str)> = vec![
        (window(0, 10).with_columns(["nope"]), "unknown column 'nope'"),
        (window(0, 10).with_columns(["tag", "tag"]), "column 'tag' is asked for twice"),
        (window(0, 10).with_columns([SYMBOL_COLUMN]), "is a key column"),
        (window(10, 0), "the window is inverted: end_date 0 is before start_date 10"),
        (window(0, i32::MAX), "end_date 2147483647 is outside"),
        (window(0, 10).with_symbols(Vec::<String>::new()), "the symbol list is empty"),
        (window(0, 10).with_symbols([""]), "symbol is empty"),
        (ScanRequest::new("", 0, 10), "feature_set is empty"),
        (window(0, 10).with_config("{"), "invalid config JSON"),
    ];
    for (request, why) in cases {
        let (status, message) = refused(&store, &request);
        assert_eq!(status, Status::InvalidArgument, "{message}");
        assert!(message.contains(why), "{message} lacks {why}");
    }
    // An unknown column names the entry that lacks it.
    assert!(refused(&store, &window(0, 10).with_columns(["nope"])).1.contains("returns/AAPL [1, 5]"));
    // No list is every symbol.
    assert_eq!(store.scan(&window(0, 10)).unwrap().data.num_rows(), 5);
}

#[test]
fn entries_with_different_columns_are_refused_naming_both_unless_projected_alike() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(embedded(dir.path())).unwrap();
    put(&store, &key("AAPL", 1, 3), 1);
    // Same columns but "value" is an int: a different schema.
    let schema = std::sync::Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("value", DataType::Int64, false),
        Field::new("tag", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            std::sync::Arc::new(Date32Array::from(vec![1, 2, 3])),
            std::sync::Arc::new(Int64Array::from(vec![1, 2, 3])),
            std::sync::Arc::new(Int64Array::from(vec![2, 2, 2])),
        ],
    )
    .unwrap();
    store.put(&key("MSFT", 1, 3), &mut reader(Data { schema, batches: vec![batch] })).unwrap();
    let (status, message) = refused(&store, &window(0, 10));
    assert_eq!(status, Status::InvalidData);
    assert!(message.contains("returns/AAPL [1, 3]") && message.contains("returns/MSFT [1, 3]"), "{message}");
    assert!(message.contains("value: Float64") && message.contains("value: Int64"), "{message}");
    // Projected to the columns they share, they scan.
    let shared = store.scan(&window(0, 10).with_columns(["date", "tag"])).unwrap();
    assert_eq!(scan_rows(&shared.data), expected_rows(&[(key("AAPL", 1, 3), 1), (key("MSFT", 1, 3), 2)]));
}

#[test]
fn a_feature_column_named_like_a_key_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(embedded(dir.path())).unwrap();
    let schema = std::sync::Arc::new(Schema::new(vec![Field::new(SYMBOL_COLUMN, DataType::Float64, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![std::sync::Arc::new(Float64Array::from(vec![1.0]))]).unwrap();
    store.put(&key("AAPL", 1, 3), &mut reader(Data { schema, batches: vec![batch] })).unwrap();
    let (status, message) = refused(&store, &window(0, 10));
    assert_eq!(status, Status::InvalidData);
    assert!(message.contains("has a column named 'fstore_symbol'"), "{message}");
}

/// The embedded manifest's listing is kept between scans while its files
/// are unchanged: an entry another store (another process) publishes after
/// a cached listing is still found by the next scan.
#[test]
fn a_scan_sees_entries_another_store_published_after_its_listing_was_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(embedded(dir.path())).unwrap();
    put(&store, &key("AAPL", 1, 5), 1);
    store.flush().unwrap();
    // Past the settling time, so that the next listing is kept and reused.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(store.scan(&window(0, 10)).unwrap().data.num_rows(), 5);
    assert_eq!(store.scan(&window(0, 10)).unwrap().data.num_rows(), 5);
    let other = Store::open(embedded(dir.path())).unwrap();
    put(&other, &key("MSFT", 1, 5), 2);
    other.flush().unwrap();
    let scan = store.scan(&window(0, 10)).unwrap();
    assert_eq!(scan_rows(&scan.data), expected_rows(&[(key("AAPL", 1, 5), 1), (key("MSFT", 1, 5), 2)]));
    // And one it invalidated is gone.
    other.invalidate(&key("AAPL", 1, 5)).unwrap();
    other.flush().unwrap();
    assert_eq!(scan_rows(&store.scan(&window(0, 10)).unwrap().data), expected_rows(&[(key("MSFT", 1, 5), 2)]));
}
