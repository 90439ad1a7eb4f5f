//! Which entry a command means: an id (or a unique prefix of one, as `ls`
//! shows it), or the key's parts.

use fstore::{Error, Key, Result, Store};

use crate::args::KeyArgs;

/// Shortest id prefix accepted: shorter ones match too much by accident.
const MIN_PREFIX: usize = 6;

/// The key of the entry that `args` name. An id is looked up in the
/// manifest, else (a whole id) in the entry's own file.
pub fn resolve(store: &Store, args: &KeyArgs) -> Result<Key> {
    let parts = [&args.feature_set, &args.symbol].iter().filter(|p| p.is_some()).count()
        + [args.start, args.end].iter().filter(|p| p.is_some()).count();
    match (&args.id, parts) {
        (Some(_), n) if n > 0 => Err(Error::invalid_argument(
            "name an entry by its id or by --feature-set, --symbol, --start and --end, not both",
        )),
        (Some(id), _) => by_id(store, id),
        (None, 4) => Ok(Key::new(
            args.feature_set.clone().expect("counted"),
            args.symbol.clone().expect("counted"),
            args.start.expect("counted"),
            args.end.expect("counted"),
            args.config.clone(),
        )),
        (None, _) => {
            let missing: Vec<&str> = [
                ("--feature-set", args.feature_set.is_none()),
                ("--symbol", args.symbol.is_none()),
                ("--start", args.start.is_none()),
                ("--end", args.end.is_none()),
            ]
            .iter()
            .filter(|(_, absent)| *absent)
            .map(|(name, _)| *name)
            .collect();
            Err(Error::invalid_argument(format!(
                "name an entry by its id, or give its key in full (missing {})",
                missing.join(", ")
            )))
        }
    }
}

fn by_id(store: &Store, id: &str) -> Result<Key> {
    let id = id.to_ascii_lowercase();
    if id.len() < MIN_PREFIX || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid_argument(format!(
            "'{id}' is not an entry id: expected {MIN_PREFIX} to 64 hex digits"
        )));
    }
    let rows = store.manifest_rows()?;
    let matches: Vec<_> = rows.iter().filter(|r| r.entry_id.starts_with(&id)).collect();
    match matches.as_slice() {
        [row] => Ok(Key::new(&row.feature_set, &row.symbol, row.start_date, row.end_date, &row.config)),
        [] if id.len() == 64 => Ok(store.entry_details(&id)?.key),
        [] => Err(Error::not_found(format!("no entry whose id starts with {id}"))),
        _ => Err(Error::invalid_argument(format!(
            "{} entries have ids starting with {id}: give more digits",
            matches.len()
        ))),
    }
}
