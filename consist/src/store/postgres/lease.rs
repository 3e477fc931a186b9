//! Leases on PostgreSQL: rows of `consist_lease`, taken with one upsert that only succeeds when
//! the lease is free, lapsed or already the caller's; expiry by the server's clock.

use std::collections::HashSet;
use std::time::Duration;

use super::PgStore;
use crate::error::Result;
use crate::store::{LeaseState, Leases};

impl Leases for PgStore {
    fn take(&self, name: &str, holder: &str, run_id: &str, host: &str, ttl: Duration) -> Result<LeaseState> {
        let mut conn = self.conn()?;
        let taken = conn
            .query_opt(
                "INSERT INTO consist_lease(name, holder, run_id, host, expires_at)
                   VALUES ($1, $2, $3, $4, now() + $5 * interval '1 second')
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, run_id = EXCLUDED.run_id,
                   host = EXCLUDED.host, expires_at = EXCLUDED.expires_at
                 WHERE consist_lease.expires_at < now() OR consist_lease.holder = EXCLUDED.holder
                 RETURNING holder",
                &[&name, &holder, &run_id, &host, &ttl.as_secs_f64()],
            )
            .map_err(self.err("taking a lease"))?;
        if taken.is_some() {
            return Ok(LeaseState::Taken);
        }
        let held = conn
            .query_opt("SELECT host, run_id FROM consist_lease WHERE name = $1", &[&name])
            .map_err(self.err("reading a lease"))?;
        Ok(match held {
            Some(row) => LeaseState::Held { host: row.get(0), run_id: row.get(1) },
            // Released in between: the caller asks again.
            None => LeaseState::Held { host: None, run_id: None },
        })
    }

    fn renew(&self, holders: &[String], ttl: Duration) -> Result<usize> {
        let renewed = self
            .conn()?
            .execute(
                "UPDATE consist_lease SET expires_at = now() + $2 * interval '1 second' WHERE holder = ANY($1)",
                &[&holders, &ttl.as_secs_f64()],
            )
            .map_err(self.err("renewing leases"))?;
        Ok(usize::try_from(renewed).unwrap_or(usize::MAX))
    }

    fn release(&self, name: &str, holder: &str) -> Result<()> {
        self.conn()?
            .execute("DELETE FROM consist_lease WHERE name = $1 AND holder = $2", &[&name, &holder])
            .map(drop)
            .map_err(self.err("releasing a lease"))
    }

    fn live_runs(&self) -> Result<HashSet<String>> {
        let rows = self
            .conn()?
            .query("SELECT run_id FROM consist_lease WHERE expires_at >= now() AND run_id IS NOT NULL", &[])
            .map_err(self.err("reading leases"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
