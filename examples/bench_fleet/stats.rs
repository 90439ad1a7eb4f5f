//! Percentiles, medians of runs, and how figures print.

use std::collections::BTreeMap;
use std::time::Duration;

/// The value at quantile `q` of `values` (sorted here); 0 when empty.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a figure measures, which decides how it prints and which way is better.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Unit {
    Millis,
    PerSecond,
    Count,
    MiB,
}

pub fn show(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Millis if value.abs() < 1.0 => format!("{:.1} us", value * 1e3),
        Unit::Millis if value.abs() < 100.0 => format!("{value:.2} ms"),
        Unit::Millis => format!("{value:.0} ms"),
        Unit::PerSecond => format!("{value:.0}/s"),
        Unit::Count => format!("{value:.0}"),
        Unit::MiB => format!("{value:.1} MiB"),
    }
}

/// Every figure of every run, by name (`scenario / mode / design / what`),
/// so that the report prints the median of the runs.
#[derive(Default)]
pub struct Figures {
    values: BTreeMap<String, (Unit, Vec<f64>)>,
    order: Vec<String>,
}

impl Figures {
    pub fn add(&mut self, name: &str, unit: Unit, value: f64) {
        if !self.values.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.values.entry(name.to_string()).or_insert((unit, Vec::new())).1.push(value);
    }

    /// The median of the runs of `name`, if it was measured.
    pub fn median(&self, name: &str) -> Option<f64> {
        self.values.get(name).map(|(_, v)| median(v))
    }

    pub fn unit(&self, name: &str) -> Option<Unit> {
        self.values.get(name).map(|(u, _)| *u)
    }

    pub fn names(&self) -> &[String] {
        &self.order
    }
}

impl Figures {
    /// The latest value of `name` (this run's).
    pub fn last(&self, name: &str) -> Option<f64> {
        self.values.get(name).and_then(|(_, v)| v.last().copied())
    }
}
