//! What commands print: one JSON document for scripts, or tables and lines
//! for people; and progress, drawn only on a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{LineStyle, Table, TableStyle};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Prints `json` (with `--json`) or what `human` renders.
pub fn emit(json: bool, value: &Value, human: impl FnOnce() -> String) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).expect("a JSON value serialises"));
    } else {
        let text = human();
        if !text.is_empty() {
            println!("{}", text.trim_end());
        }
    }
}

/// Columns under a rule, nothing between rows: easy to read and to grep.
const PLAIN: TableStyle = TableStyle::new().header_separator(LineStyle::none().fill('─').junction('─'));

/// A table with a header row.
pub fn table<const N: usize>(header: [&str; N], rows: impl IntoIterator<Item = [String; N]>) -> String {
    let mut table = Table::new();
    table.load_style(PLAIN).set_header(header);
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
}

/// `name: value` lines, the names aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    pairs.iter().map(|(n, v)| format!("{n:>width$}: {v}\n")).collect()
}

fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar over `total` steps, on stderr when it is a terminal.
pub fn bar(total: u64, what: &str) -> ProgressBar {
    if !on_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
        .expect("a valid template")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// A spinner for work whose length is unknown, on stderr when it is a terminal.
pub fn spinner(what: &str) -> ProgressBar {
    if !on_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_message(what.to_string());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}
