//! A cache directory's coordination settings, recorded when it is first used.
//!
//! Processes that share a cache directory exclude each other only if they
//! coordinate the same way: the same manifest backend (and, for PostgreSQL,
//! the same database and schema), the same lock granularity and the same
//! lock namespace. Otherwise they compute twice and write rows the other
//! side never sees. So the first store to use a directory records its
//! settings in `coordination.json`, and a store whose settings differ is
//! refused. Changing them is an explicit step (`fstore rebind`, or a
//! manifest migration, which moves the directory to PostgreSQL).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::cache_dir::Modes;
use crate::error::{Error, Result};
use crate::jcs::{self, Value};
use crate::manifest::{Backend, Identity};
use crate::options::{LockGranularity, Options};

pub(crate) const FILE: &str = "coordination.json";

/// How the processes on one cache directory coordinate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Binding {
    pub backend: Backend,
    pub granularity: LockGranularity,
    pub namespace: String,
    /// The PostgreSQL manifest, for the `postgres` backend.
    pub postgres: Option<Identity>,
}

impl Binding {
    pub fn new(options: &Options, backend: Backend, postgres: Option<Identity>) -> Binding {
        Binding {
            backend,
            granularity: options.lock_granularity,
            namespace: options.lock_namespace.clone(),
            postgres,
        }
    }

    /// The record's text: JSON, one member per line, for people who look.
    fn to_json(&self) -> String {
        let string = |s: &str| {
            let mut out = String::new();
            jcs::write_string(s, &mut out);
            out
        };
        let mut members = vec![
            format!("\"format\": 1"),
            format!("\"backend\": {}", string(self.backend.name())),
            format!("\"lock.granularity\": {}", string(self.granularity.name())),
            format!("\"lock.namespace\": {}", string(&self.namespace)),
        ];
        if let Some(pg) = &self.postgres {
            members.push(format!(
                "\"postgres\": {{\"database\": {}, \"schema\": {}, \"installation\": {}}}",
                string(&pg.database),
                string(&pg.schema),
                string(&pg.installation)
            ));
        }
        format!("{{\n  {}\n}}\n", members.join(",\n  "))
    }

    fn from_json(doc: &Value) -> std::result::Result<Binding, String> {
        let text = |v: &Value, name: &str| v.get(name).and_then(|v| v.as_str()).map(str::to_string).ok_or(format!("no '{name}'"));
        let backend = match text(doc, "backend")?.as_str() {
            "duckdb" => Backend::DuckDb,
            "postgres" => Backend::Postgres,
            other => return Err(format!("unknown backend '{other}'")),
        };
        let granularity = match text(doc, "lock.granularity")?.as_str() {
            "symbol" => LockGranularity::Symbol,
            "entry" => LockGranularity::Entry,
            other => return Err(format!("unknown lock.granularity '{other}'")),
        };
        let postgres = match doc.get("postgres") {
            Some(pg) => Some(Identity {
                database: text(pg, "database")?,
                schema: text(pg, "schema")?,
                installation: text(pg, "installation")?,
            }),
            None => None,
        };
        if (backend == Backend::Postgres) != postgres.is_some() {
            return Err("'postgres' must be present exactly for the postgres backend".into());
        }
        Ok(Binding { backend, granularity, namespace: text(doc, "lock.namespace")?, postgres })
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.postgres {
            Some(pg) => write!(
                f,
                "manifest postgres (database {}, schema {}, installation {})",
                pg.database, pg.schema, pg.installation
            )?,
            None => write!(f, "manifest {}", self.backend.name())?,
        }
        write!(f, ", lock.granularity={}, lock.namespace='{}'", self.granularity.name(), self.namespace)
    }
}

pub(crate) fn path(cache_dir: &Path) -> PathBuf {
    cache_dir.join(FILE)
}

/// The directory's recorded binding, if it has one.
pub(crate) fn read(cache_dir: &Path) -> Result<Option<Binding>> {
    let path = path(cache_dir);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let doc = jcs::parse(&text)
        .map_err(|e| Error::invalid_state(format!("{} is not valid JSON ({e}); fix it or rebind the directory", path.display())))?;
    Binding::from_json(&doc)
        .map(Some)
        .map_err(|why| Error::invalid_state(format!("{} is not a valid binding ({why}); fix it or rebind the directory", path.display())))
}

/// Checks `wanted` against the directory's binding, recording it if the
/// directory has none. Two processes binding a new directory at once agree
/// on one of them: the record is created with a link, which fails if the
/// file exists.
pub(crate) fn check_or_bind(cache_dir: &Path, wanted: &Binding, modes: Modes) -> Result<()> {
    loop {
        if let Some(bound) = read(cache_dir)? {
            if &bound == wanted {
                return Ok(());
            }
            return Err(mismatch(cache_dir, &bound, wanted));
        }
        match write(cache_dir, wanted, false, modes) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue, // another process won: compare with it
            Err(e) => return Err(Error::io(format!("cannot record {}", path(cache_dir).display()), e)),
        }
    }
}

/// Records `binding`, replacing any: the explicit rebind.
pub(crate) fn rebind(cache_dir: &Path, binding: &Binding, modes: Modes) -> Result<()> {
    write(cache_dir, binding, true, modes).map_err(|e| Error::io(format!("cannot record {}", path(cache_dir).display()), e))
}

pub(crate) fn mismatch(cache_dir: &Path, bound: &Binding, wanted: &Binding) -> Error {
    Error::invalid_state(format!(
        "cache directory {} is bound to {bound} (recorded in {FILE}), but this store is configured for {wanted}: \
         processes coordinating differently on one directory would compute entries twice. Use the directory's \
         settings, or change them for every process with `fstore rebind` (or `fstore migrate --manifest` \
         to move it to PostgreSQL)",
        cache_dir.display()
    ))
}

fn write(cache_dir: &Path, binding: &Binding, replace: bool, modes: Modes) -> io::Result<()> {
    use std::io::Write;
    let final_path = path(cache_dir);
    let temp = cache_dir.join(format!(".{FILE}.{}.{}.tmp", std::process::id(), crate::storage::random_hex()));
    let result = modes
        .create_new_file(&temp)
        .and_then(|mut file| file.write_all(binding.to_json().as_bytes()).and_then(|_| file.sync_all()))
        .and_then(|_| if replace { fs::rename(&temp, &final_path) } else { fs::hard_link(&temp, &final_path) })
        .and_then(|_| fs::File::open(cache_dir)?.sync_all());
    let _ = fs::remove_file(&temp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(installation: &str) -> Option<Identity> {
        Some(Identity { database: "db".into(), schema: "fstore".into(), installation: installation.into() })
    }

    #[test]
    fn the_first_binding_sticks_and_a_different_one_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default();
        let embedded = Binding::new(&options, Backend::DuckDb, None);
        check_or_bind(dir.path(), &embedded, Modes::PRIVATE).unwrap();
        check_or_bind(dir.path(), &embedded, Modes::PRIVATE).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(embedded.clone()));

        let mut entry = options.clone();
        entry.set("lock.granularity", "entry").unwrap();
        let mut namespaced = options.clone();
        namespaced.set("lock.namespace", "team-a").unwrap();
        for other in [
            Binding::new(&options, Backend::Postgres, pg("a")),
            Binding::new(&entry, Backend::DuckDb, None),
            Binding::new(&namespaced, Backend::DuckDb, None),
        ] {
            let e = check_or_bind(dir.path(), &other, Modes::PRIVATE).unwrap_err();
            assert_eq!(e.status(), crate::Status::InvalidState);
            assert!(e.message().contains(&embedded.to_string()) && e.message().contains(&other.to_string()), "{e}");
        }
        let moved = Binding::new(&options, Backend::Postgres, pg("a"));
        rebind(dir.path(), &moved, Modes::PRIVATE).unwrap();
        check_or_bind(dir.path(), &moved, Modes::PRIVATE).unwrap();
        assert!(check_or_bind(dir.path(), &Binding::new(&options, Backend::Postgres, pg("b")), Modes::PRIVATE).is_err());
    }

    #[test]
    fn concurrent_first_uses_agree_on_one_binding() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default();
        let mut entry = options.clone();
        entry.set("lock.granularity", "entry").unwrap();
        let outcomes: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let b = Binding::new(if i % 2 == 0 { &options } else { &entry }, Backend::DuckDb, None);
                    let dir = dir.path();
                    s.spawn(move || check_or_bind(dir, &b, Modes::PRIVATE).is_ok())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winner = read(dir.path()).unwrap().unwrap();
        let expected: Vec<bool> =
            (0..16).map(|i| (i % 2 == 0) == (winner.granularity == LockGranularity::Symbol)).collect();
        assert_eq!(outcomes, expected);
    }

    #[test]
    fn a_damaged_record_is_refused_with_a_way_out() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(path(dir.path()), "{\"backend\": \"sqlite\"}").unwrap();
        let e = read(dir.path()).unwrap_err();
        assert!(e.message().contains("rebind"), "{e}");
    }
}
