//! The keys the workers ask for and the features a compute produces: one
//! trading year (252 days) of 16 float64 columns, as in the original scenario.

use std::ffi::CString;
use std::sync::Arc;

use fstore::arrow::array::{ArrayRef, Date32Array, Float64Array, RecordBatch};
use fstore::arrow::datatypes::{DataType, Field, Schema};
use fstore::arrow::error::ArrowError;
use fstore::arrow::record_batch::RecordBatchIterator;

pub const FEATURE_SET: &str = "returns";
pub const COLUMNS: i32 = 16;
pub const DAYS: i32 = 252;

/// A key, with the C strings the C API takes.
pub struct BenchKey {
    pub feature_set: CString,
    pub symbol: CString,
    pub start_date: i32,
    pub end_date: i32,
    pub config: CString,
}

impl BenchKey {
    /// The `index`th date range of `symbol` (ranges do not overlap).
    pub fn range(symbol: &str, index: usize) -> BenchKey {
        Self::with_days(symbol, index, DAYS)
    }

    pub fn with_days(symbol: &str, index: usize, days: i32) -> BenchKey {
        let start = 19000 + index as i32 * 300;
        BenchKey {
            feature_set: CString::new(FEATURE_SET).expect("no NUL"),
            symbol: CString::new(symbol).expect("a symbol without NUL"),
            start_date: start,
            end_date: start + days - 1,
            config: CString::new("{}").expect("no NUL"),
        }
    }

    pub fn symbol(&self) -> &str {
        self.symbol.to_str().expect("UTF-8 symbol")
    }

    /// One text naming the key, for the baselines' own entry ids.
    pub fn text(&self) -> String {
        format!("{}|{}|{}|{}|{}", FEATURE_SET, self.symbol(), self.start_date, self.end_date, "{}")
    }
}

pub type Batches = RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, ArrowError>>>;

/// The features of the dates `start..=end`: `date`, then `f0..f15` = sin(day * (c + 1)).
pub fn features(start: i32, end: i32) -> Batches {
    let days: Vec<i32> = (start..=end).collect();
    let mut fields = vec![Field::new("date", DataType::Date32, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Date32Array::from(days.clone()))];
    for c in 0..COLUMNS {
        fields.push(Field::new(format!("f{c}"), DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from_iter_values(days.iter().map(|d| ((d * (c + 1)) as f64).sin()))));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema");
    RecordBatchIterator::new(vec![Ok(batch)].into_iter(), schema)
}
