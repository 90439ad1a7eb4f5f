//! A store's metrics and their Prometheus text exposition (format 0.0.4).
//!
//! Names keep the `featurestore_` prefix of the design libfstore replaces,
//! so that existing dashboards keep working. Series are kept per symbol and
//! per feature set up to a cap each; later ones fold into the label value
//! `other`, so that a fleet with millions of symbols cannot blow up a
//! scrape. The series of a key are found once, when the key is first
//! resolved, and then cost a call only its atomic increments.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Status;
use crate::sync::lock;

/// The label value that series beyond a cap fold into.
pub const OTHER: &str = "other";

/// Counters of one symbol.
#[derive(Default)]
pub(crate) struct SymbolSeries {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub waits: AtomicU64,
}

/// Counters and latencies of one feature set.
#[derive(Default)]
pub(crate) struct FeatureSetSeries {
    pub computes: AtomicU64,
    pub compute_failures: AtomicU64,
    pub get_seconds: Histogram,
    pub compute_seconds: Histogram,
}

/// The series a key's calls count in, found when the key is resolved.
pub(crate) struct KeySeries {
    pub symbol: Arc<SymbolSeries>,
    pub feature_set: Arc<FeatureSetSeries>,
}

/// Series by label value, at most `cap` of them plus `other`.
struct Labelled<T> {
    cap: usize,
    by_value: Mutex<BTreeMap<String, Arc<T>>>,
}

impl<T: Default> Labelled<T> {
    fn new(cap: usize) -> Self {
        Labelled { cap, by_value: Mutex::new(BTreeMap::new()) }
    }

    fn series(&self, value: &str) -> Arc<T> {
        let mut by_value = lock(&self.by_value);
        if let Some(found) = by_value.get(value) {
            return Arc::clone(found);
        }
        // `other` counts once the cap is reached; it is itself not counted
        // against the cap.
        let named = by_value.keys().filter(|k| k.as_str() != OTHER).count();
        let value = if named < self.cap && value != OTHER { value } else { OTHER };
        Arc::clone(by_value.entry(value.to_string()).or_default())
    }

    fn snapshot(&self) -> Vec<(String, Arc<T>)> {
        lock(&self.by_value).iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect()
    }
}

/// Bucket bounds in seconds: from a memory hit (microseconds) to a long
/// compute (minutes).
const BOUNDS: [f64; 16] =
    [0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0, 120.0];

/// A latency histogram: a count per bucket (not cumulative; the exposition
/// sums them), the count and the sum.
pub(crate) struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), count: AtomicU64::new(0), sum_nanos: AtomicU64::new(0) }
    }
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BOUNDS.iter().position(|&bound| seconds <= bound).unwrap_or(BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// Every status a call can fail with, for `featurestore_errors_total`.
const STATUSES: [Status; 12] = [
    Status::InvalidArgument,
    Status::NotFound,
    Status::Timeout,
    Status::Cancelled,
    Status::CallbackFailed,
    Status::InvalidData,
    Status::Io,
    Status::Database,
    Status::Corrupt,
    Status::InvalidState,
    Status::Unavailable,
    Status::Internal,
];

/// The metrics of one store.
pub(crate) struct Metrics {
    symbols: Labelled<SymbolSeries>,
    feature_sets: Labelled<FeatureSetSeries>,
    errors: [AtomicU64; STATUSES.len()],
    lock_wait_seconds: Histogram,
}

impl Metrics {
    pub fn new(max_symbols: usize, max_feature_sets: usize) -> Self {
        Metrics {
            symbols: Labelled::new(max_symbols),
            feature_sets: Labelled::new(max_feature_sets),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            lock_wait_seconds: Histogram::default(),
        }
    }

    /// The series a key of `feature_set` and `symbol` counts in.
    pub fn key_series(&self, feature_set: &str, symbol: &str) -> KeySeries {
        KeySeries { symbol: self.symbols.series(symbol), feature_set: self.feature_sets.series(feature_set) }
    }

    pub fn error(&self, status: Status) {
        if let Some(at) = STATUSES.iter().position(|&s| s == status) {
            self.errors[at].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn lock_waited(&self, elapsed: Duration) {
        self.lock_wait_seconds.observe(elapsed);
    }

    /// The exposition of these metrics and of `state`'s figures.
    pub fn render(&self, state: &StoreFigures) -> String {
        let mut out = Exposition::default();
        let symbols = self.symbols.snapshot();
        let feature_sets = self.feature_sets.snapshot();
        let per_symbol = |pick: fn(&SymbolSeries) -> &AtomicU64| {
            symbols.iter().map(move |(name, s)| (vec![("symbol", name.as_str())], load(pick(s)))).collect::<Vec<_>>()
        };
        let per_feature_set = |pick: fn(&FeatureSetSeries) -> &AtomicU64| {
            feature_sets
                .iter()
                .map(move |(name, s)| (vec![("feature_set", name.as_str())], load(pick(s))))
                .collect::<Vec<_>>()
        };

        out.family("featurestore_info", "gauge", "The library's version and the store's manifest backend.");
        out.sample("featurestore_info", &[("version", env!("CARGO_PKG_VERSION")), ("backend", state.backend)], 1.0);

        let hits: u64 = symbols.iter().map(|(_, s)| load(&s.hits)).sum();
        let misses: u64 = symbols.iter().map(|(_, s)| load(&s.misses)).sum();
        out.counter_family("featurestore_hits_total", "Calls answered from an existing entry without waiting.", per_symbol(|s| &s.hits));
        out.counter_family("featurestore_misses_total", "Calls that found no entry at first look.", per_symbol(|s| &s.misses));
        out.family("featurestore_hit_ratio", "gauge", "Hits over hits and misses since the store opened (0 before any call).");
        let ratio = if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 };
        out.sample("featurestore_hit_ratio", &[], ratio);
        out.counter_family("featurestore_waits_total", "Calls that waited for another caller's compute.", per_symbol(|s| &s.waits));
        out.counter_family("featurestore_computes_total", "Compute callbacks run.", per_feature_set(|s| &s.computes));
        out.counter_family(
            "featurestore_compute_failures_total",
            "Compute callbacks that failed or produced invalid data.",
            per_feature_set(|s| &s.compute_failures),
        );
        out.counter_family("featurestore_timeouts_total", "Calls that gave up waiting.", vec![(vec![], state.timeouts)]);
        out.counter_family("featurestore_cancellations_total", "Calls cancelled while waiting.", vec![(vec![], state.cancellations)]);
        out.counter_family("featurestore_read_bytes_total", "Bytes of entry files read.", vec![(vec![], state.bytes_read)]);
        out.counter_family("featurestore_written_bytes_total", "Bytes of entry files written.", vec![(vec![], state.bytes_written)]);
        let errors: Vec<_> =
            STATUSES.iter().zip(&self.errors).map(|(status, n)| (vec![("status", status_label(*status))], load(n))).collect();
        out.counter_family("featurestore_errors_total", "Failed calls, by status.", errors);

        out.family("featurestore_get_seconds", "histogram", "Latency of reads (get, get_or_compute), waits and computes included.");
        for (name, s) in &feature_sets {
            out.histogram("featurestore_get_seconds", &[("feature_set", name)], &s.get_seconds);
        }
        out.family("featurestore_compute_seconds", "histogram", "Duration of compute callbacks.");
        for (name, s) in &feature_sets {
            out.histogram("featurestore_compute_seconds", &[("feature_set", name)], &s.compute_seconds);
        }
        out.family("featurestore_lock_wait_seconds", "histogram", "Time to take an entry's lock before a compute.");
        out.histogram("featurestore_lock_wait_seconds", &[], &self.lock_wait_seconds);

        out.family("featurestore_memory_cache_bytes", "gauge", "Arrow data held by the memory cache.");
        out.sample("featurestore_memory_cache_bytes", &[], state.memory_bytes as f64);
        out.family("featurestore_memory_cache_entries", "gauge", "Entries held by the memory cache.");
        out.sample("featurestore_memory_cache_entries", &[], state.memory_entries as f64);

        if let Some(pool) = &state.pool {
            out.family("featurestore_pool_connections", "gauge", "PostgreSQL connections of the store's pool.");
            out.sample("featurestore_pool_connections", &[("state", "idle")], pool.idle as f64);
            out.sample("featurestore_pool_connections", &[("state", "in_use")], pool.in_use as f64);
            out.counter_family("featurestore_pool_waits_total", "Check-outs that waited for a connection.", vec![(vec![], pool.waits)]);
        }
        if let Some(locks) = &state.locks {
            out.family("featurestore_advisory_locks", "gauge", "Advisory locks in the manifest's database (pg_locks).");
            out.sample("featurestore_advisory_locks", &[("state", "held")], locks.held as f64);
            out.sample("featurestore_advisory_locks", &[("state", "waiting")], locks.waiting as f64);
        }
        out.text
    }
}

/// What a store knows of itself at a scrape, beside its metrics.
pub(crate) struct StoreFigures {
    pub backend: &'static str,
    pub timeouts: u64,
    pub cancellations: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub memory_bytes: usize,
    pub memory_entries: usize,
    pub pool: Option<crate::pg::PoolStats>,
    pub locks: Option<crate::pg::LockStats>,
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A status as a label value: its name in snake case ("invalid_argument").
fn status_label(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::InvalidArgument => "invalid_argument",
        Status::NotFound => "not_found",
        Status::Timeout => "timeout",
        Status::Cancelled => "cancelled",
        Status::CallbackFailed => "callback_failed",
        Status::InvalidData => "invalid_data",
        Status::Io => "io",
        Status::Database => "database",
        Status::Corrupt => "corrupt",
        Status::InvalidState => "invalid_state",
        Status::Unavailable => "unavailable",
        Status::Internal => "internal",
        Status::PermissionDenied => "permission_denied",
    }
}

/// Text exposition format 0.0.4, written line by line.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn counter_family(&mut self, name: &str, help: &str, samples: Vec<(Vec<(&str, &str)>, u64)>) {
        self.family(name, "counter", help);
        for (labels, value) in samples {
            self.sample(name, &labels, value as f64);
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        write_labels(&mut self.text, labels);
        let _ = writeln!(self.text, " {}", number(value));
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0;
        for (i, bound) in BOUNDS.iter().map(|b| number(*b)).chain(["+Inf".to_string()]).enumerate() {
            cumulative += load(&h.buckets[i]);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &bound));
            self.sample(&format!("{name}_bucket"), &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, load(&h.sum_nanos) as f64 / 1e9);
        // The count is the buckets' total, so that a scrape racing an
        // observation never shows a count below its +Inf bucket.
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as Prometheus reads it (Go's float syntax).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> StoreFigures {
        StoreFigures {
            backend: "duckdb",
            timeouts: 0,
            cancellations: 0,
            bytes_read: 0,
            bytes_written: 0,
            memory_bytes: 0,
            memory_entries: 0,
            pool: None,
            locks: None,
        }
    }

    #[test]
    fn symbols_beyond_the_cap_fold_into_other() {
        let metrics = Metrics::new(2, 1);
        for symbol in ["A", "B", "C", "D", "A"] {
            metrics.key_series("fs", symbol).symbol.hits.fetch_add(1, Ordering::Relaxed);
        }
        metrics.key_series("fs2", "A");
        let text = metrics.render(&figures());
        assert!(text.contains("featurestore_hits_total{symbol=\"A\"} 2\n"), "{text}");
        assert!(text.contains("featurestore_hits_total{symbol=\"B\"} 1\n"), "{text}");
        assert!(text.contains("featurestore_hits_total{symbol=\"other\"} 2\n"), "{text}");
        assert!(!text.contains("symbol=\"C\""), "{text}");
        assert!(text.contains("featurestore_computes_total{feature_set=\"other\"} 0\n"), "{text}");
        // A symbol literally named "other" shares the folded series.
        assert!(Arc::ptr_eq(&metrics.symbols.series("other"), &metrics.symbols.series("E")));
    }

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let metrics = Metrics::new(10, 10);
        let series = metrics.key_series("we\"ird\\fs\n", "S");
        series.feature_set.get_seconds.observe(Duration::from_micros(3));
        series.feature_set.get_seconds.observe(Duration::from_millis(3));
        series.feature_set.get_seconds.observe(Duration::from_secs(1000));
        let text = metrics.render(&figures());
        let label = "feature_set=\"we\\\"ird\\\\fs\\n\"";
        assert!(text.contains(&format!("featurestore_get_seconds_bucket{{{label},le=\"0.00001\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("featurestore_get_seconds_bucket{{{label},le=\"0.005\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("featurestore_get_seconds_bucket{{{label},le=\"120\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("featurestore_get_seconds_bucket{{{label},le=\"+Inf\"}} 3\n")), "{text}");
        assert!(text.contains(&format!("featurestore_get_seconds_count{{{label}}} 3\n")), "{text}");
        assert!(text.contains(&format!("featurestore_get_seconds_sum{{{label}}} 1000.003003\n")), "{text}");
    }
}
