//! `fstore migrate`, `fstore rollback` and `fstore rebind`: moving a cache
//! directory between coordination settings.

use fstore::{Error, Options, Result};
use serde_json::json;

use crate::output::{emit, fields, spinner};

pub fn migrate(options: &Options, schema: bool, manifest: bool, json: bool) -> Result<()> {
    if !schema && !manifest {
        return Err(Error::invalid_argument(
            "say what to migrate: --schema (the PostgreSQL schema), --manifest (the embedded manifest into PostgreSQL), or both",
        ));
    }
    let mut value = json!({});
    let mut lines = Vec::new();
    if schema {
        let progress = spinner("migrating the PostgreSQL schema");
        let applied = fstore::migrate_schema(options);
        progress.finish_and_clear();
        let applied = applied?;
        value["schema"] = json!({"name": options.postgres.schema, "applied_versions": applied});
        lines.push(("schema", format!("{}: applied versions {applied:?}", options.postgres.schema)));
    }
    if manifest {
        let progress = spinner("copying the embedded manifest into PostgreSQL");
        let report = fstore::migrate_manifest(options);
        progress.finish_and_clear();
        let r = report?;
        let backup = r.backup.as_ref().map(|b| b.display().to_string());
        value["manifest"] = json!({
            "rows_read": r.rows_read,
            "inserted": r.inserted,
            "already_present": r.already_present,
            "backup": backup,
        });
        lines.push(("rows read", r.rows_read.to_string()));
        lines.push(("inserted", r.inserted.to_string()));
        lines.push(("already present", r.already_present.to_string()));
        lines.push(("backup", backup.unwrap_or_else(|| "none (no embedded manifest)".into())));
    }
    emit(json, &value, || fields(&lines));
    Ok(())
}

pub fn rollback(options: &Options, json: bool) -> Result<()> {
    let progress = spinner("rolling back to the embedded manifest");
    let report = fstore::admin::rollback_manifest(options);
    progress.finish_and_clear();
    let r = report?;
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let value = json!({
        "backup": path(&r.backup),
        "set_aside": path(&r.set_aside),
        "rows_from_postgres": r.rows_from_postgres,
        "rows_dropped": r.rows_dropped,
        "reindexed_files": r.reindexed_files,
        "rows": r.rows,
        "binding": r.binding,
    });
    emit(json, &value, || {
        fields(&[
            ("restored", path(&r.backup).unwrap_or_else(|| "no backup: rebuilt from PostgreSQL and the files".into())),
            ("set aside", path(&r.set_aside).unwrap_or_else(|| "nothing".into())),
            ("rows from postgres", r.rows_from_postgres.to_string()),
            ("rows dropped", format!("{} (their files are gone)", r.rows_dropped)),
            ("re-indexed files", r.reindexed_files.to_string()),
            ("rows now", r.rows.to_string()),
            ("bound to", r.binding.clone()),
        ])
    });
    Ok(())
}

pub fn rebind(options: &Options, json: bool) -> Result<()> {
    let binding = fstore::rebind(options)?;
    emit(json, &json!({"binding": binding}), || format!("cache directory bound to {binding}"));
    Ok(())
}
