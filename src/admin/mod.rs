//! Operations for people who run a cache rather than use it: entry details,
//! verification of every file, advisory locks and server connections, and
//! rolling a PostgreSQL manifest back to the embedded one. The `fstore`
//! command-line tool is built on these.

mod connections;
mod details;
mod locks;
mod rollback;
mod verify;

pub use connections::{ConnectionState, ServerConnections};
pub use details::EntryDetails;
pub use locks::{AdvisoryLock, LockedObject};
pub use rollback::{rollback_manifest, RollbackReport};
pub use verify::{BadEntry, VerifyReport};

/// The entry id of `key`: hex SHA-256 over its parts, the config in
/// canonical form. Fails for a key the store would refuse.
pub fn entry_id(key: &crate::Key) -> crate::Result<String> {
    Ok(crate::key::ResolvedKey::resolve(key)?.entry_id)
}
