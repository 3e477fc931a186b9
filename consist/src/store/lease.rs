//! Leases in a catalog shared by many hosts: a signature executes on one host at a time, and a
//! run is known to be alive while its lease is.
//!
//! A lease is a named row (`consist_lease`: name, holder, run id, host, expiry) that one tracker
//! holds until it releases it or its expiry passes. The holder renews all of its leases well
//! before they expire (a heartbeat), so a host that is killed, loses its network or freezes lets
//! its leases lapse after at most one time-to-live, and another host takes over. Expiry is judged
//! by the catalog server's clock alone, so hosts' clocks need not agree.

use std::collections::HashSet;
use std::time::Duration;

use crate::error::Result;

/// What taking a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// The lease is now held by the caller (it was free, had lapsed, or was already the caller's).
    Taken,
    /// Another live holder has it.
    Held {
        /// The holder's host, as it recorded it.
        host: Option<String>,
        /// The run it is executing.
        run_id: Option<String>,
    },
}

/// The lease table of a shared catalog.
pub trait Leases: Send + Sync {
    /// Take lease `name` for `holder`, executing `run_id` on `host`, for `ttl` from now (server
    /// time), unless another holder's lease has not lapsed.
    fn take(&self, name: &str, holder: &str, run_id: &str, host: &str, ttl: Duration) -> Result<LeaseState>;

    /// Extend the leases held by `holders` to `ttl` from now (a lease another holder took
    /// after it lapsed is not theirs any more); returns how many were renewed.
    fn renew(&self, holders: &[String], ttl: Duration) -> Result<usize>;

    /// Release lease `name` if `holder` holds it.
    fn release(&self, name: &str, holder: &str) -> Result<()>;

    /// The runs named by leases that have not lapsed: the runs executing somewhere now.
    fn live_runs(&self) -> Result<HashSet<String>>;
}
