//! Arrow data as it moves through the store: a schema and its batches.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchIterator, RecordBatchReader};

use crate::error::{Error, Result};

/// The data of one entry, held in memory.
#[derive(Clone, Debug)]
pub struct Data {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl Data {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// Reads a whole stream, checking that every batch has the stream's schema.
    pub fn collect(reader: &mut dyn RecordBatchReader) -> Result<Data> {
        let schema = reader.schema();
        let mut batches = Vec::new();
        for (index, batch) in reader.enumerate() {
            let batch = batch.map_err(|e| Error::invalid_data(format!("stream failed at batch {index}: {e}")))?;
            if batch.schema().fields() != schema.fields() {
                return Err(Error::invalid_data(format!(
                    "batch {index} has schema {:?}, but the stream declared {:?}",
                    field_list(&batch.schema()),
                    field_list(&schema)
                )));
            }
            batches.push(batch);
        }
        Ok(Data { schema, batches })
    }

    /// Keeps only `columns`, in the order asked; `None` or empty keeps all.
    pub fn project(&self, columns: Option<&[String]>) -> Result<Data> {
        let Some(columns) = columns.filter(|c| !c.is_empty()) else {
            return Ok(self.clone());
        };
        let indices = column_indices(&self.schema, columns)?;
        let schema = Arc::new(self.schema.project(&indices).map_err(|e| Error::internal(e.to_string()))?);
        let batches = self
            .batches
            .iter()
            .map(|b| b.project(&indices).map_err(|e| Error::internal(e.to_string())))
            .collect::<Result<_>>()?;
        Ok(Data { schema, batches })
    }

    /// A reader over the batches, for export through the C stream interface.
    pub fn into_reader(self) -> RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, arrow::error::ArrowError>>> {
        let batches: Vec<_> = self.batches.into_iter().map(Ok).collect();
        RecordBatchIterator::new(batches.into_iter(), self.schema)
    }
}

/// Positions of `columns` in `schema`; unknown or repeated names are refused.
pub(crate) fn column_indices(schema: &SchemaRef, columns: &[String]) -> Result<Vec<usize>> {
    let mut indices = Vec::with_capacity(columns.len());
    for name in columns {
        let index = schema.index_of(name).map_err(|_| {
            Error::invalid_argument(format!(
                "unknown column '{name}'; the entry has columns {:?}",
                field_list(schema)
            ))
        })?;
        if indices.contains(&index) {
            return Err(Error::invalid_argument(format!("column '{name}' is asked for twice")));
        }
        indices.push(index);
    }
    Ok(indices)
}

fn field_list(schema: &SchemaRef) -> Vec<String> {
    schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect()
}
