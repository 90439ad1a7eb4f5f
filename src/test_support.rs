//! Helpers shared by the unit tests.

use std::path::PathBuf;

/// The shared lock-key vectors: `FSTORE_LOCK_KEY_VECTORS`, else the copy in
/// the project beside the shared folder, else the repository's own copy.
pub fn lock_key_vectors_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FSTORE_LOCK_KEY_VECTORS") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/vectors/lock_keys.json");
    if shared.exists() {
        shared
    } else {
        root.join("tests/vectors/lock_keys.json")
    }
}
