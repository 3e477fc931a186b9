//! Table output of the CLI: one preset; colours only on a terminal and never with `NO_COLOR`
//! (comfy-table styles cells only when stdout is a terminal; we switch that off for `NO_COLOR`).

use comfy_table::{Cell, Color, Table, presets::UTF8_FULL_CONDENSED};

use crate::run::Run;

/// A table with `header`.
pub(super) fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        table.force_no_tty();
    }
    table.set_header(header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    table
}

/// A plain cell.
pub(super) fn cell(text: impl Into<String>) -> Cell {
    Cell::new(text.into())
}

/// A run status: completed green, failed red, running yellow.
pub(super) fn status(text: &str) -> Cell {
    let color = match text {
        "completed" => Color::Green,
        "failed" => Color::Red,
        _ => Color::Yellow,
    };
    Cell::new(text).fg(color)
}

/// `yes` (cyan: a cache hit) / `no`.
pub(super) fn hit(flag: bool) -> Cell {
    if flag { Cell::new("yes").fg(Color::Cyan) } else { Cell::new("no") }
}

/// `yes` / `no` (red: something is missing or wrong).
pub(super) fn ok(flag: bool) -> Cell {
    if flag { Cell::new("yes") } else { Cell::new("no").fg(Color::Red) }
}

/// A cell flagging a problem (red).
pub(super) fn problem(text: &str) -> Cell {
    Cell::new(text).fg(Color::Red)
}

/// The first 12 characters of a hash (or all of a shorter text).
pub(super) fn short(text: &str) -> String {
    text.chars().take(12).collect()
}

/// A run's duration as `1.3 ms` / `2.41 s`, or `-` while it has not ended.
pub(super) fn duration(run: &Run) -> String {
    match run.duration() {
        Some(d) => {
            let ms = d.num_microseconds().unwrap_or(0) as f64 / 1000.0;
            if ms < 1000.0 { format!("{ms:.1} ms") } else { format!("{:.2} s", ms / 1000.0) }
        }
        None => "-".to_owned(),
    }
}

/// A UTC time to the second, as tables show it (columns say `(UTC)`).
pub(super) fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// An optional number as text, `-` when absent.
pub(super) fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
