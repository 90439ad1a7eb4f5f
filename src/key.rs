//! Cache keys: validation, the entry id and the advisory lock key.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::jcs;

/// Longest symbol or feature-set name accepted, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// The earliest and latest dates accepted (days since 1970-01-01): what both
/// manifests can store, PostgreSQL's `date` range (4714-11-24 BC to
/// 5874897-12-31), which DuckDB's contains.
pub const MIN_DATE: i32 = -2_440_588;
pub const MAX_DATE: i32 = 2_145_042_905;

/// What a training worker asks for. Dates are days since 1970-01-01 (Arrow
/// `date32`); `config` is the caller's JSON text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub feature_set: String,
    pub symbol: String,
    pub start_date: i32,
    pub end_date: i32,
    pub config: String,
}

impl Key {
    pub fn new(
        feature_set: impl Into<String>,
        symbol: impl Into<String>,
        start_date: i32,
        end_date: i32,
        config: impl Into<String>,
    ) -> Self {
        Key {
            feature_set: feature_set.into(),
            symbol: symbol.into(),
            start_date,
            end_date,
            config: config.into(),
        }
    }
}

/// A key's parts borrowed from the caller (a C caller's strings, say), so
/// that a call served from the key cache copies nothing.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct KeyRef<'a> {
    pub feature_set: &'a str,
    pub symbol: &'a str,
    pub start_date: i32,
    pub end_date: i32,
    pub config: &'a str,
}

impl Key {
    pub(crate) fn borrowed(&self) -> KeyRef<'_> {
        KeyRef {
            feature_set: &self.feature_set,
            symbol: &self.symbol,
            start_date: self.start_date,
            end_date: self.end_date,
            config: &self.config,
        }
    }
}

impl KeyRef<'_> {
    pub(crate) fn to_key(self) -> Key {
        Key::new(self.feature_set, self.symbol, self.start_date, self.end_date, self.config)
    }
}

/// A key that passed validation, with everything derived from it once.
#[derive(Clone, Debug)]
pub struct ResolvedKey {
    pub key: Key,
    /// The RFC 8785 form of `key.config`.
    pub canonical_config: String,
    /// Hex SHA-256 over all five parts: names the entry and its file.
    pub entry_id: String,
}

impl ResolvedKey {
    pub fn resolve(key: &Key) -> Result<Self> {
        Self::resolve_borrowed(key.borrowed())
    }

    pub(crate) fn resolve_borrowed(key: KeyRef<'_>) -> Result<Self> {
        check_name("feature_set", &key.feature_set)?;
        check_name("symbol", &key.symbol)?;
        check_date("start_date", key.start_date)?;
        check_date("end_date", key.end_date)?;
        if key.end_date < key.start_date {
            return Err(Error::invalid_argument(format!(
                "end_date {} is before start_date {}",
                key.end_date, key.start_date
            )));
        }
        let config = if key.config.trim().is_empty() { "{}" } else { key.config };
        let canonical_config = jcs::canonicalize(config)?;
        let entry_id = entry_id(key, &canonical_config);
        Ok(ResolvedKey {
            key: key.to_key(),
            canonical_config,
            entry_id,
        })
    }

    /// The key as canonical JSON, written into each entry's Parquet footer so a
    /// reader can prove the file belongs to the key it asked for.
    pub fn footer_json(&self) -> String {
        let mut out = String::from("{\"config\":");
        out.push_str(&self.canonical_config);
        out.push_str(&format!(",\"end_date\":{},\"feature_set\":", self.key.end_date));
        jcs::write_string(&self.key.feature_set, &mut out);
        out.push_str(&format!(",\"start_date\":{},\"symbol\":", self.key.start_date));
        jcs::write_string(&self.key.symbol, &mut out);
        out.push('}');
        out
    }
}

/// Mixes `namespace` into a lock key; an empty namespace keeps the key as it
/// is, so that other programs locking the same symbols still interoperate.
pub(crate) fn namespaced(lock_key: i64, namespace: &str) -> i64 {
    if namespace.is_empty() {
        return lock_key;
    }
    let mut hasher = Sha256::new();
    hasher.update(b"fstore-lock-namespace-v1\0");
    hasher.update((namespace.len() as u64).to_be_bytes());
    hasher.update(namespace.as_bytes());
    hasher.update(lock_key.to_be_bytes());
    i64::from_be_bytes(hasher.finalize()[..8].try_into().expect("SHA-256 is 32 bytes"))
}

pub(crate) fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_argument(format!("{what} is empty")));
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(Error::invalid_argument(format!(
            "{what} is {} bytes long; the limit is {MAX_NAME_BYTES}",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(Error::invalid_argument(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

pub(crate) fn check_date(what: &str, days: i32) -> Result<()> {
    if !(MIN_DATE..=MAX_DATE).contains(&days) {
        return Err(Error::invalid_argument(format!(
            "{what} {days} is outside the dates a manifest can store: days {MIN_DATE} (4714-11-24 BC) to \
             {MAX_DATE} (5874897-12-31) since 1970-01-01"
        )));
    }
    Ok(())
}

/// Whether `id` is a well-formed entry id: 64 lowercase hex digits.
pub(crate) fn is_entry_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The advisory lock key of a symbol: the first 8 bytes of SHA-256 over its
/// UTF-8 bytes, read as a big-endian signed 64-bit integer. Programs outside
/// libfstore that lock the same symbols compute the same value.
pub fn lock_key(symbol: &str) -> Result<i64> {
    check_name("symbol", symbol)?;
    Ok(symbol_lock_key(symbol))
}

pub(crate) fn symbol_lock_key(symbol: &str) -> i64 {
    let digest = Sha256::digest(symbol.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("SHA-256 is 32 bytes"))
}

/// The lock key of an entry: the first 8 bytes of its id (a SHA-256), read
/// the same way as a symbol's. `entry_id` must be a well-formed id.
pub(crate) fn entry_lock_key(entry_id: &str) -> i64 {
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&entry_id[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    i64::from_be_bytes(bytes)
}

/// Length-prefixed parts, so that no two different keys share an encoding.
fn entry_id(key: KeyRef<'_>, canonical_config: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"fstore-entry-v1\0");
    for part in [key.feature_set.as_bytes(), key.symbol.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.update(key.start_date.to_be_bytes());
    hasher.update(key.end_date.to_be_bytes());
    hasher.update((canonical_config.len() as u64).to_be_bytes());
    hasher.update(canonical_config.as_bytes());
    hex(&hasher.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Status;

    fn key(config: &str) -> Key {
        Key::new("returns", "AAPL", 19000, 19100, config)
    }

    /// Every reference value in the shared vectors must be reproduced.
    #[test]
    fn lock_keys_match_reference_vectors() {
        let path = crate::test_support::lock_key_vectors_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let vectors = doc["lock_keys"].as_array().unwrap();
        assert!(vectors.len() >= 4);
        for v in vectors {
            let symbol = v["symbol"].as_str().unwrap();
            assert_eq!(lock_key(symbol).unwrap(), v["key"].as_i64().unwrap(), "{symbol}");
        }
    }

    #[test]
    fn equal_configs_name_the_same_entry() {
        let a = ResolvedKey::resolve(&key("{\"window\": 20, \"kind\": \"sma\"}")).unwrap();
        let b = ResolvedKey::resolve(&key("{\"kind\":\"sma\",\"window\":2.0e1}")).unwrap();
        let c = ResolvedKey::resolve(&key("{\"kind\":\"sma\",\"window\":21}")).unwrap();
        assert_eq!(a.entry_id, b.entry_id);
        assert_ne!(a.entry_id, c.entry_id);
        assert_eq!(ResolvedKey::resolve(&key("")).unwrap().entry_id, ResolvedKey::resolve(&key("{}")).unwrap().entry_id);
    }

    #[test]
    fn every_part_changes_the_entry() {
        let base = ResolvedKey::resolve(&key("{}")).unwrap().entry_id;
        let variants = [
            Key::new("returnsX", "AAPL", 19000, 19100, "{}"),
            Key::new("returns", "AAPM", 19000, 19100, "{}"),
            Key::new("returns", "AAPL", 19001, 19100, "{}"),
            Key::new("returns", "AAPL", 19000, 19101, "{}"),
            Key::new("returns", "AAPL", 19000, 19100, "[]"),
            // Moving bytes between parts must not collide.
            Key::new("returnsA", "APL", 19000, 19100, "{}"),
        ];
        for v in variants {
            assert_ne!(ResolvedKey::resolve(&v).unwrap().entry_id, base, "{v:?}");
        }
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let cases = [
            (Key::new("f", "", 0, 0, "{}"), "symbol is empty"),
            (Key::new("f", long.clone(), 0, 0, "{}"), "1025 bytes"),
            (Key::new("", "S", 0, 0, "{}"), "feature_set is empty"),
            (Key::new("f", "S", 5, 4, "{}"), "end_date 4 is before start_date 5"),
            (Key::new("f", "S", 0, 0, "{"), "invalid config JSON"),
            (Key::new("f", "S\0", 0, 0, "{}"), "NUL"),
            (Key::new("f", "S", 0, i32::MAX, "{}"), "end_date 2147483647 is outside"),
            (Key::new("f", "S", i32::MIN, 0, "{}"), "start_date -2147483648 is outside"),
            (Key::new("f", "S", 0, MAX_DATE + 1, "{}"), "outside the dates"),
            (Key::new("f", "S", MIN_DATE - 1, 0, "{}"), "outside the dates"),
        ];
        for (k, why) in cases {
            let err = ResolvedKey::resolve(&k).unwrap_err();
            assert_eq!(err.status(), Status::InvalidArgument);
            assert!(err.message().contains(why), "{}", err.message());
        }
        assert!(ResolvedKey::resolve(&Key::new("f", "x".repeat(MAX_NAME_BYTES), 0, 0, "")).is_ok());
        assert!(ResolvedKey::resolve(&Key::new("f", "S", MIN_DATE, MAX_DATE, "")).is_ok());
    }

    #[test]
    fn entry_ids_are_64_lowercase_hex_digits() {
        let id = ResolvedKey::resolve(&key("{}")).unwrap().entry_id;
        assert!(is_entry_id(&id));
        for bad in ["", "/etc/passwd", &id[..63], &id.to_uppercase(), &format!("{}g", &id[..63]), &format!("../{}", &id[3..])] {
            assert!(!is_entry_id(bad), "{bad}");
        }
    }

    #[test]
    fn namespaces_change_lock_keys_and_empty_keeps_them() {
        let k = lock_key("AAPL").unwrap();
        assert_eq!(namespaced(k, ""), k);
        assert_ne!(namespaced(k, "team-a"), k);
        assert_ne!(namespaced(k, "team-a"), namespaced(k, "team-b"));
        assert_eq!(namespaced(k, "team-a"), namespaced(k, "team-a"));
    }

    #[test]
    fn footer_json_is_canonical() {
        let r = ResolvedKey::resolve(&Key::new("f\"s", "AAPL", 1, 2, "{\"b\":1,\"a\":2}")).unwrap();
        assert_eq!(r.footer_json(), r#"{"config":{"a":2,"b":1},"end_date":2,"feature_set":"f\"s","start_date":1,"symbol":"AAPL"}"#);
        assert_eq!(entry_lock_key(&r.entry_id), i64::from_be_bytes(u64::from_str_radix(&r.entry_id[..16], 16).unwrap().to_be_bytes()));
    }
}
