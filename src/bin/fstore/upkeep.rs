//! `fstore gc` and `fstore verify`.

use std::time::Duration;

use fstore::maintenance::MaintainOptions;
use fstore::{Error, Result, Status, Store};
use serde_json::json;

use crate::dates::format_bytes;
use crate::output::{bar, emit, fields, spinner, table};

pub fn gc(store: &Store, max_age: Option<Duration>, grace: Duration, dry_run: bool, verify: bool, json: bool) -> Result<()> {
    let progress = spinner(if dry_run { "counting what gc would remove" } else { "collecting garbage" });
    let report = store.maintain(&MaintainOptions { max_age, grace, dry_run, verify });
    progress.finish_and_clear();
    let r = report?;
    let value = json!({
        "dry_run": dry_run,
        "expired_entries": r.expired_entries,
        "rows_without_file": r.rows_without_file,
        "corrupt_files": r.corrupt_files,
        "temp_files": r.temp_files,
        "reindexed_files": r.reindexed_files,
        "invalid_rows": r.invalid_rows,
        "lock_files": r.lock_files,
        "bytes_freed": r.bytes_freed,
    });
    emit(json, &value, || {
        let title = if dry_run { "dry run: nothing removed; would remove" } else { "removed" };
        format!(
            "{title}:\n{}",
            fields(&[
                ("expired entries", r.expired_entries.to_string()),
                ("rows without file", r.rows_without_file.to_string()),
                ("corrupt files", r.corrupt_files.to_string()),
                ("temporary files", r.temp_files.to_string()),
                ("invalid rows", r.invalid_rows.to_string()),
                ("unused lock files", r.lock_files.to_string()),
                ("re-indexed files", r.reindexed_files.to_string()),
                ("space freed", format_bytes(r.bytes_freed)),
            ])
        )
    });
    Ok(())
}

pub fn verify(store: &Store, json: bool) -> Result<()> {
    let progress = bar(0, "verifying");
    let report = store.verify_entries(&mut |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    });
    progress.finish_and_clear();
    let r = report?;
    let value = json!({
        "checked": r.checked,
        "bytes_checked": r.bytes_checked,
        "bad": r.bad.iter().map(|b| json!({"entry_id": b.entry_id, "path": b.path, "reason": b.reason})).collect::<Vec<_>>(),
    });
    emit(json, &value, || {
        let summary = format!("{} entries checked ({}), {} bad", r.checked, format_bytes(r.bytes_checked), r.bad.len());
        if r.bad.is_empty() {
            return summary;
        }
        let bad = table(["entry", "path", "reason"], r.bad.iter().map(|b| [b.entry_id.clone(), b.path.clone(), b.reason.clone()]));
        format!("{summary}\n{bad}")
    });
    if r.bad.is_empty() {
        Ok(())
    } else {
        Err(Error::new(
            Status::Corrupt,
            format!(
                "{} bad entries among {} files checked (`fstore gc --verify` removes them; a worker recomputes one it meets)",
                r.bad.len(),
                r.checked
            ),
        ))
    }
}
