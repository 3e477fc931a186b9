//! What the benchmark examples share: reading this process's memory figures.

/// A size from `/proc/self/status` (`VmRSS:` now, `VmHWM:` the peak so far), MiB (Linux; 0
/// elsewhere).
pub fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}
