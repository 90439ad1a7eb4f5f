//! Scans: many entries of one feature set and config read at once, as one
//! Arrow stream with the key columns in front, for building a feature matrix.
//!
//! The rules:
//! - **Which entries.** The manifest's entries of the feature set and the
//!   one config asked for (canonicalised like a key's; the config is not a
//!   column of the result), of the symbols asked for (or every symbol), whose
//!   whole date range `[start_date, end_date]` lies within the window. An
//!   entry that only overlaps the window is left out, so no row of a scan
//!   lies outside what was asked for.
//! - **What comes back.** `fstore_symbol` (utf8), `fstore_start_date`,
//!   `fstore_end_date` (date32), then the entry's columns (or the projected
//!   ones, in the order asked), one batch per entry batch, entries ordered by
//!   symbol, start date and end date. A feature column with one of those
//!   three names is refused (`InvalidData`) rather than shadowed. A scan that
//!   finds no entry has the key columns only.
//! - **Never a compute.** An entry the manifest lists whose file is gone or
//!   fails verification (the same checks as a single get) is reported in
//!   [`Scan::missing`] with the reason, never dropped silently.
//! - **One schema.** Entries whose (projected) columns differ are refused
//!   (`InvalidData`, naming the first entry and the one that differs):
//!   unifying them would invent nulls the trainer never asked for.
//!
//! Entries are read by arrow-rs on up to [`READ_THREADS`] threads, each
//! verified like a single get, through the memory cache when it is on.
//! `examples/bench_scan.rs` (500 entries of 252x16 float64, medians of 7
//! runs on the 2-core development machine, shared with other builds): a
//! scan took 197 ms with the memory cache off, DuckDB's parallel
//! `read_parquet([...])` over the same files 475 ms on 2 threads without
//! even verifying them, so arrow-rs reads them; from memory the scan took
//! 8.8 ms. The manifest listing is the embedded manifest's kept snapshot
//! (47 ms to read afresh, a `stat` of its files when unchanged).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};

use crate::data::Data;
use crate::error::{Error, Result, Status};
use crate::key::{self, Key, ResolvedKey};
use crate::manifest::ManifestRow;
use crate::store::{describe, Store};

/// The names of the key columns a scan puts in front of the features.
pub const SYMBOL_COLUMN: &str = "fstore_symbol";
pub const START_DATE_COLUMN: &str = "fstore_start_date";
pub const END_DATE_COLUMN: &str = "fstore_end_date";

/// Entries read at once, at most: one per core this process may use, and
/// past eight a scan would crowd out the workers it feeds.
const READ_THREADS: usize = 8;

/// What to scan. See the module documentation for the rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanRequest {
    pub feature_set: String,
    /// `None`: every symbol. An empty list is refused: it is almost always a
    /// caller's bug, and "nothing" and "everything" must not look alike.
    pub symbols: Option<Vec<String>>,
    /// The window, in days since 1970-01-01, both ends included.
    pub start_date: i32,
    pub end_date: i32,
    /// JSON text; empty means `{}`.
    pub config: String,
    /// Feature columns to return, in this order; `None` or empty: all.
    pub columns: Option<Vec<String>>,
}

impl ScanRequest {
    pub fn new(feature_set: impl Into<String>, start_date: i32, end_date: i32) -> Self {
        ScanRequest { feature_set: feature_set.into(), start_date, end_date, ..Default::default() }
    }

    pub fn with_symbols<S: Into<String>>(mut self, symbols: impl IntoIterator<Item = S>) -> Self {
        self.symbols = Some(symbols.into_iter().map(Into::into).collect());
        self
    }

    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = config.into();
        self
    }

    pub fn with_columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }
}

/// An entry the manifest lists that the scan could not read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingEntry {
    pub key: Key,
    pub reason: String,
}

/// The result of a scan: the rows, and the entries that are listed but missing.
#[derive(Clone, Debug)]
pub struct Scan {
    pub data: Data,
    pub missing: Vec<MissingEntry>,
}

impl Scan {
    /// The missing entries as Arrow: feature_set, symbol (utf8), start_date,
    /// end_date (date32), config (canonical JSON), reason (utf8).
    pub fn missing_to_arrow(&self) -> Result<Data> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("feature_set", DataType::Utf8, false),
            Field::new("symbol", DataType::Utf8, false),
            Field::new("start_date", DataType::Date32, false),
            Field::new("end_date", DataType::Date32, false),
            Field::new("config", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
        ]));
        let m = &self.missing;
        let strings = |f: fn(&MissingEntry) -> &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(m.iter().map(f))) };
        let columns: Vec<ArrayRef> = vec![
            strings(|e| e.key.feature_set.as_str()),
            strings(|e| e.key.symbol.as_str()),
            Arc::new(Date32Array::from_iter_values(m.iter().map(|e| e.key.start_date))),
            Arc::new(Date32Array::from_iter_values(m.iter().map(|e| e.key.end_date))),
            strings(|e| e.key.config.as_str()),
            strings(|e| e.reason.as_str()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::internal(e.to_string()))?;
        Ok(Data { schema, batches: vec![batch] })
    }
}

/// A request checked and put in canonical form.
struct Checked {
    feature_set: String,
    symbols: Option<BTreeSet<String>>,
    start_date: i32,
    end_date: i32,
    canonical_config: String,
    columns: Option<Vec<String>>,
}

fn check(request: &ScanRequest) -> Result<Checked> {
    let context = |e: Error| e.context("scan");
    key::check_name("feature_set", &request.feature_set).map_err(context)?;
    key::check_date("start_date", request.start_date).map_err(context)?;
    key::check_date("end_date", request.end_date).map_err(context)?;
    if request.end_date < request.start_date {
        return Err(Error::invalid_argument(format!(
            "scan: the window is inverted: end_date {} is before start_date {}",
            request.end_date, request.start_date
        )));
    }
    let symbols = match &request.symbols {
        None => None,
        Some(list) if list.is_empty() => {
            return Err(Error::invalid_argument(
                "scan: the symbol list is empty; pass no list (NULL, None, nil) to scan every symbol",
            ))
        }
        Some(list) => {
            for symbol in list {
                key::check_name("symbol", symbol).map_err(context)?;
            }
            Some(list.iter().cloned().collect())
        }
    };
    let columns = request.columns.clone().filter(|c| !c.is_empty());
    if let Some(columns) = &columns {
        for (i, name) in columns.iter().enumerate() {
            if columns[..i].contains(name) {
                return Err(Error::invalid_argument(format!("scan: column '{name}' is asked for twice")));
            }
            if is_key_column(name) {
                return Err(Error::invalid_argument(format!(
                    "scan: column '{name}' is a key column, always returned; ask only for feature columns"
                )));
            }
        }
    }
    let config = if request.config.trim().is_empty() { "{}" } else { request.config.as_str() };
    let canonical_config = crate::jcs::canonicalize(config).map_err(context)?;
    Ok(Checked {
        feature_set: request.feature_set.clone(),
        symbols,
        start_date: request.start_date,
        end_date: request.end_date,
        canonical_config,
        columns,
    })
}

fn is_key_column(name: &str) -> bool {
    [SYMBOL_COLUMN, START_DATE_COLUMN, END_DATE_COLUMN].contains(&name)
}

impl Checked {
    /// Whether the scan covers the entry of `row` (the window rule: contained).
    fn covers(&self, row: &ManifestRow) -> bool {
        row.feature_set == self.feature_set
            && row.config == self.canonical_config
            && self.start_date <= row.start_date
            && row.end_date <= self.end_date
            && self.symbols.as_ref().is_none_or(|s| s.contains(&row.symbol))
    }

    /// The key of `row`'s entry, its id taken from the row: a row whose id
    /// does not match its key reads as a file whose footer names another key.
    fn resolved(&self, row: &ManifestRow) -> ResolvedKey {
        ResolvedKey {
            key: Key::new(&row.feature_set, &row.symbol, row.start_date, row.end_date, &self.canonical_config),
            canonical_config: self.canonical_config.clone(),
            entry_id: row.entry_id.clone(),
        }
    }
}

/// What reading one entry gave: its data, and its key columns (built on
/// the reading thread) as long as its longest batch.
enum Read {
    Found { data: Data, key_columns: [ArrayRef; 3] },
    Missing(String),
}

/// Runs a scan on `store`. See the module documentation.
pub(crate) fn run(store: &Store, request: &ScanRequest) -> Result<Scan> {
    let checked = check(request)?;
    let listed = store.manifest.rows_shared()?;
    let mut rows: Vec<&ManifestRow> = listed.iter().filter(|r| checked.covers(r)).collect();
    rows.sort_by(|a, b| (&a.symbol, a.start_date, a.end_date).cmp(&(&b.symbol, b.start_date, b.end_date)));
    let keys: Vec<ResolvedKey> = rows.iter().map(|r| checked.resolved(r)).collect();
    let reads = read_all(store, &keys, checked.columns.as_deref())?;
    assemble(&keys, reads)
}

/// Threads a scan reads on: the cores this process may use (read once:
/// asking costs tens of microseconds of cgroup files), at most [`READ_THREADS`].
fn read_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, READ_THREADS))
}

/// Reads every entry, verified, on up to [`READ_THREADS`] threads; results
/// in the order of `keys`. A file that is gone or fails verification is
/// `Missing`; any other failure (a file that cannot be opened, an unknown
/// column) fails the scan.
fn read_all(store: &Store, keys: &[ResolvedKey], columns: Option<&[String]>) -> Result<Vec<Read>> {
    let threads = read_threads().min(keys.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Read>>>> = keys.iter().map(|_| Mutex::new(None)).collect();
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(key) = keys.get(i) else { break };
        let read = match store.read(key, columns) {
            Ok(Some(data)) => with_key_columns(&key.key, data),
            Ok(None) => Ok(Read::Missing("its file is missing".into())),
            Err(e) if e.status() == Status::Corrupt => Ok(Read::Missing(e.message().to_string())),
            Err(e) => Err(e.context(format!("scan: {}", describe(&key.key)))),
        };
        *crate::sync::lock(&slots[i]) = Some(read);
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(|| Err(Error::internal("scan: an entry was not read"))))
        .collect()
}

/// Checks that every entry has one schema, and that no feature column is
/// named like a key column; puts the key columns in front of every batch.
fn assemble(keys: &[ResolvedKey], reads: Vec<Read>) -> Result<Scan> {
    let mut missing = Vec::new();
    let mut first: Option<(&ResolvedKey, SchemaRef, SchemaRef)> = None;
    let mut batches = Vec::new();
    for (key, read) in keys.iter().zip(reads) {
        let (data, key_columns) = match read {
            Read::Found { data, key_columns } => (data, key_columns),
            Read::Missing(reason) => {
                missing.push(MissingEntry { key: key.key.clone(), reason });
                continue;
            }
        };
        let (_, features, schema) = first.get_or_insert_with(|| {
            let schema = output_schema(&data.schema);
            (key, data.schema.clone(), schema)
        });
        if let Some(name) = features.fields().iter().map(|f| f.name()).find(|n| is_key_column(n)) {
            return Err(Error::invalid_data(format!(
                "scan: entry {} has a column named '{name}', which a scan uses for its key",
                describe(&key.key)
            )));
        }
        if !Arc::ptr_eq(features, &data.schema) && features.fields() != data.schema.fields() {
            let first_key = first.as_ref().map(|f| f.0).expect("set above");
            return Err(Error::invalid_data(format!(
                "scan: entries have different columns: {} has {}, but {} has {}",
                describe(&first_key.key),
                columns_of(&first.as_ref().expect("set above").1),
                describe(&key.key),
                columns_of(&data.schema)
            )));
        }
        for batch in &data.batches {
            let n = batch.num_rows();
            let mut columns: Vec<ArrayRef> = key_columns.iter().map(|c| c.slice(0, n)).collect();
            columns.extend(batch.columns().iter().cloned());
            batches.push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::internal(format!("scan: {e}")))?);
        }
    }
    let schema = first.map_or_else(|| output_schema(&Arc::new(Schema::empty())), |(_, _, schema)| schema);
    Ok(Scan { data: Data { schema, batches }, missing })
}

/// The key columns, then the entry's own.
fn output_schema(features: &SchemaRef) -> SchemaRef {
    let keys = [
        Field::new(SYMBOL_COLUMN, DataType::Utf8, false),
        Field::new(START_DATE_COLUMN, DataType::Date32, false),
        Field::new(END_DATE_COLUMN, DataType::Date32, false),
    ];
    let fields: Vec<FieldRef> = keys.into_iter().map(Arc::new).chain(features.fields().iter().cloned()).collect();
    Arc::new(Schema::new(fields))
}

/// The entry's key columns, as long as its longest batch.
fn with_key_columns(key: &Key, data: Data) -> Result<Read> {
    let longest = data.batches.iter().map(|b| b.num_rows()).max().unwrap_or(0);
    let key_columns: [ArrayRef; 3] = [
        Arc::new(StringArray::new_repeated(&key.symbol, longest)),
        Arc::new(Date32Array::from_value(key.start_date, longest)),
        Arc::new(Date32Array::from_value(key.end_date, longest)),
    ];
    Ok(Read::Found { data, key_columns })
}

fn columns_of(schema: &SchemaRef) -> String {
    let names: Vec<String> = schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect();
    format!("[{}]", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(symbol: &str, start: i32, end: i32) -> ManifestRow {
        ManifestRow {
            entry_id: "0".repeat(64),
            feature_set: "f".into(),
            symbol: symbol.into(),
            start_date: start,
            end_date: end,
            config: "{}".into(),
            path: String::new(),
            rows: 0,
            bytes: 0,
            checksum: String::new(),
            created_at_us: 0,
        }
    }

    #[test]
    fn the_window_covers_only_entries_that_lie_within_it() {
        let checked = check(&ScanRequest::new("f", 10, 20)).unwrap();
        assert!(checked.covers(&row("A", 10, 20)));
        assert!(checked.covers(&row("A", 12, 12)));
        assert!(!checked.covers(&row("A", 9, 15)), "starts before the window");
        assert!(!checked.covers(&row("A", 15, 21)), "ends after it");
        assert!(!checked.covers(&row("A", 0, 30)), "contains the window");
        let mut other_config = row("A", 12, 12);
        other_config.config = "{\"a\":1}".into();
        assert!(!checked.covers(&other_config));
        let only_b = check(&ScanRequest::new("f", 10, 20).with_symbols(["B"])).unwrap();
        assert!(!only_b.covers(&row("A", 12, 12)) && only_b.covers(&row("B", 12, 12)));
    }

    #[test]
    fn configs_are_compared_canonically() {
        let checked = check(&ScanRequest::new("f", 0, 1).with_config("{ \"b\": 1.0, \"a\": 2 }")).unwrap();
        assert_eq!(checked.canonical_config, "{\"a\":2,\"b\":1}");
    }
}
