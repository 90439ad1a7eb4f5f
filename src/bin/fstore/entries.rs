//! Commands on entries: `ls`, `show`, `get`, `invalidate`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use fstore::arrow::array::{ArrayRef, RecordBatch};
use fstore::arrow::compute::cast;
use fstore::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use fstore::{Data, Error, ManifestRow, Request, Result, Store};
use serde_json::{json, Value};

use crate::args::{Filter, Format, KeyArgs};
use crate::dates::{age_seconds, format_age, format_bytes, format_date, format_time_us, system_time_us};
use crate::keys::resolve;
use crate::output::{emit, fields, table};

fn row_json(r: &ManifestRow) -> Value {
    json!({
        "entry_id": r.entry_id,
        "feature_set": r.feature_set,
        "symbol": r.symbol,
        "start_date": format_date(r.start_date),
        "end_date": format_date(r.end_date),
        "config": r.config,
        "path": r.path,
        "rows": r.rows,
        "bytes": r.bytes,
        "checksum": r.checksum,
        "created_at": format_time_us(r.created_at_us),
        "age_seconds": age_seconds(r.created_at_us),
    })
}

pub fn ls(store: &Store, filter: &Filter, json: bool) -> Result<()> {
    let rows: Vec<ManifestRow> = store
        .manifest_rows()?
        .into_iter()
        .filter(|r| filter.feature_set.as_ref().is_none_or(|f| &r.feature_set == f))
        .filter(|r| filter.symbol.as_ref().is_none_or(|s| &r.symbol == s))
        .filter(|r| filter.from.is_none_or(|from| r.end_date >= from))
        .filter(|r| filter.to.is_none_or(|to| r.start_date <= to))
        .collect();
    let value = Value::Array(rows.iter().map(row_json).collect());
    emit(json, &value, || {
        table(
            ["id", "feature set", "symbol", "start", "end", "config", "rows", "size", "age"],
            rows.iter().map(|r| {
                [
                    r.entry_id[..r.entry_id.len().min(12)].to_string(),
                    r.feature_set.clone(),
                    r.symbol.clone(),
                    format_date(r.start_date),
                    format_date(r.end_date),
                    r.config.clone(),
                    r.rows.to_string(),
                    format_bytes(r.bytes),
                    format_age(age_seconds(r.created_at_us)),
                ]
            }),
        )
    });
    Ok(())
}

pub fn show(store: &Store, args: &KeyArgs, json: bool) -> Result<()> {
    let key = resolve(store, args)?;
    let details = store.entry_details(&fstore::admin::entry_id(&key)?)?;
    let k = &details.key;
    let columns: Vec<Value> = details
        .schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()}))
        .collect();
    let value = json!({
        "entry_id": details.entry_id,
        "feature_set": k.feature_set,
        "symbol": k.symbol,
        "start_date": format_date(k.start_date),
        "end_date": format_date(k.end_date),
        "config": k.config,
        "path": details.path.display().to_string(),
        "rows": details.rows,
        "bytes": details.bytes,
        "checksum": details.checksum,
        "verified": true,
        "modified": format_time_us(system_time_us(details.modified)),
        "created_at": details.row.as_ref().map(|r| format_time_us(r.created_at_us)),
        "in_manifest": details.row.is_some(),
        "schema": columns,
    });
    emit(json, &value, || {
        let info = fields(&[
            ("entry", details.entry_id.clone()),
            ("feature set", k.feature_set.clone()),
            ("symbol", k.symbol.clone()),
            ("dates", format!("{} to {}", format_date(k.start_date), format_date(k.end_date))),
            ("config", k.config.clone()),
            ("path", details.path.display().to_string()),
            ("rows", details.rows.to_string()),
            ("size", format_bytes(details.bytes)),
            ("checksum", format!("{} (verified)", details.checksum)),
            ("created", details.row.as_ref().map_or("not in the manifest".into(), |r| format_time_us(r.created_at_us))),
        ]);
        let schema = table(
            ["column", "type", "nullable"],
            details.schema.fields().iter().map(|f| [f.name().clone(), f.data_type().to_string(), f.is_nullable().to_string()]),
        );
        format!("{info}\n{schema}")
    });
    Ok(())
}

pub fn get(store: &Store, args: &KeyArgs, output: &Path, format: Option<Format>, json: bool) -> Result<()> {
    let format = match format {
        Some(f) => f,
        None => format_of(output)?,
    };
    let key = resolve(store, args)?;
    let entry_id = fstore::admin::entry_id(&key)?;
    let data = store
        .get(&key, &Request::new())?
        .ok_or_else(|| Error::not_found(format!("no entry {entry_id} ({}/{})", key.feature_set, key.symbol)))?;
    if let Err(e) = write(&data, output, format) {
        let _ = std::fs::remove_file(output); // no half-written file left behind
        return Err(e);
    }
    let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    let name = match format {
        Format::Parquet => "parquet",
        Format::Arrow => "arrow",
        Format::Csv => "csv",
    };
    let value = json!({
        "entry_id": entry_id,
        "output": output.display().to_string(),
        "format": name,
        "rows": data.num_rows(),
        "bytes": bytes,
    });
    emit(json, &value, || format!("wrote {} rows of {entry_id} to {} ({name}, {})", data.num_rows(), output.display(), format_bytes(bytes)));
    Ok(())
}

fn format_of(output: &Path) -> Result<Format> {
    let ext = output.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "parquet" | "pq" => Ok(Format::Parquet),
        "arrow" | "ipc" | "feather" => Ok(Format::Arrow),
        "csv" => Ok(Format::Csv),
        _ => Err(Error::invalid_argument(format!(
            "cannot tell the format of {} from its extension: pass --format parquet, arrow or csv",
            output.display()
        ))),
    }
}

fn write(data: &Data, output: &Path, format: Format) -> Result<()> {
    let file = File::create(output).map_err(|e| Error::io(format!("cannot create {}", output.display()), e))?;
    let failed = |e: &dyn std::fmt::Display| Error::io(format!("cannot write {}", output.display()), std::io::Error::other(e.to_string()));
    match format {
        Format::Parquet => {
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, data.schema.clone(), Some(props))
                .map_err(|e| failed(&e))?;
            for batch in &data.batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.close().map_err(|e| failed(&e))?;
        }
        Format::Arrow => {
            let mut writer = fstore::arrow::ipc::writer::FileWriter::try_new(file, &data.schema).map_err(|e| failed(&e))?;
            for batch in &data.batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.finish().map_err(|e| failed(&e))?;
        }
        Format::Csv => {
            let mut writer = fstore::arrow::csv::WriterBuilder::new().with_header(true).build(file);
            for batch in &data.batches {
                writer.write(&utc_offsets(batch)?).map_err(|e| failed(&e))?;
            }
        }
    }
    Ok(())
}

/// CSV prints timestamps in their time zone, and the library carries no
/// time-zone database: a zone given by name (`UTC`, `America/New_York`)
/// is written as the same instants at offset `+00:00`.
fn utc_offsets(batch: &RecordBatch) -> Result<RecordBatch> {
    let named = |t: &DataType| matches!(t, DataType::Timestamp(_, Some(tz)) if tz.starts_with(char::is_alphabetic));
    if !batch.schema().fields().iter().any(|f| named(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Timestamp(unit, Some(_)) if named(field.data_type()) => {
                let to = DataType::Timestamp(*unit, Some("+00:00".into()));
                columns.push(cast(column, &to).map_err(|e| Error::internal(e.to_string()))?);
                fields.push(Field::new(field.name(), to, field.is_nullable()));
            }
            _ => {
                columns.push(column.clone());
                fields.push(field.as_ref().clone());
            }
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, columns).map_err(|e| Error::internal(e.to_string()))
}

pub fn invalidate(store: &Store, args: &KeyArgs, json: bool) -> Result<()> {
    let key = resolve(store, args)?;
    let entry_id = fstore::admin::entry_id(&key)?;
    store.invalidate(&key)?;
    let value = json!({"entry_id": entry_id, "invalidated": true});
    emit(json, &value, || format!("invalidated {entry_id} ({}/{} {} to {})", key.feature_set, key.symbol, format_date(key.start_date), format_date(key.end_date)));
    Ok(())
}
