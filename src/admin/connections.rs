//! The fleet's connections to the manifest's server, from
//! `pg_stat_activity`: what a pool's size must be weighed against.

use crate::error::Result;
use crate::pg::pg_error;
use crate::request::Request;
use crate::store::Store;

/// Connections of libfstore (application name `libfstore`) in one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionState {
    /// `active`, `idle`, `idle in transaction` (a held lock), ...
    pub state: String,
    pub connections: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConnections {
    /// The server's `max_connections`.
    pub max_connections: u64,
    /// Connections to the server, from every program.
    pub total: u64,
    /// libfstore's connections to the manifest's database, per state.
    pub libfstore: Vec<ConnectionState>,
}

impl Store {
    /// The server's connection figures; `None` without PostgreSQL.
    pub fn server_connections(&self) -> Result<Option<ServerConnections>> {
        let Some(pool) = self.pg_pool() else { return Ok(None) };
        let request = Request::new();
        let mut conn = pool.get(&self.default_wait(&request))?;
        let fail = |e: postgres::Error| pg_error(pool.target(), "cannot read pg_stat_activity", &e);
        let totals = conn
            .query_one(
                "SELECT current_setting('max_connections')::int8,
                        (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
                &[],
            )
            .map_err(fail)?;
        let states = conn
            .query(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
                 WHERE application_name = 'libfstore' AND datname = current_database()
                 GROUP BY 1 ORDER BY 1",
                &[],
            )
            .map_err(fail)?;
        Ok(Some(ServerConnections {
            max_connections: totals.get::<_, i64>(0) as u64,
            total: totals.get::<_, i64>(1) as u64,
            libfstore: states
                .iter()
                .map(|r| ConnectionState { state: r.get(0), connections: r.get::<_, i64>(1) as u64 })
                .collect(),
        }))
    }
}
