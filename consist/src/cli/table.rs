//! Table output of the CLI: one preset, no colours (so pipes and `NO_COLOR` need no care).

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::run::Run;

/// A table with `header`.
pub(super) fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    table
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

/// `yes` / `no`.
pub(super) fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}
