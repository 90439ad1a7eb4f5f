//! What the operating guides (docs/) promise and the library must keep: a
//! worker role with only the rights docs/deployment.md grants can use a
//! cache with the default options; the guide and `.env.example` name every
//! option and environment variable; and the Grafana dashboard queries only
//! series the library emits.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::pg::{dsn, dsn_for_database, TestDatabase};
use common::{check_sample, key, reader, sample};
use fstore::{Options, Request, Status, Store};

const DATABASE: &str = "fstore_roles_test";
const OWNER: &str = "fstore_roles_test_owner";
const WORKER: &str = "fstore_roles_test_worker";

/// `dsn` of the test database, logging in as `role` with `password`.
fn dsn_as(database: &TestDatabase, role: &str, password: &str) -> String {
    let superuser = dsn_for_database(&dsn(), &database.name);
    let mut parts: Vec<String> =
        superuser.split(' ').filter(|p| !p.starts_with("user=") && !p.starts_with("password=")).map(String::from).collect();
    parts.push(format!("user={role} password={password}"));
    parts.join(" ")
}

fn options_as(cache: &Path, dsn: &str) -> Options {
    let mut o = Options::default();
    o.set("cache_dir", cache.to_str().unwrap()).unwrap();
    o.set("manifest", "postgres").unwrap();
    o.set("postgres.dsn", dsn).unwrap();
    o
}

fn drop_roles() {
    let mut admin = common::pg::admin();
    admin.batch_execute(&format!("DROP ROLE IF EXISTS {WORKER}; DROP ROLE IF EXISTS {OWNER};")).unwrap();
}

/// The deployment guide's roles: an owner that owns the database and runs
/// the migration, and a worker with DML on the entries and read access to
/// the schema's bookkeeping, nothing more. A worker opening a store with
/// the default options (`postgres.auto_migrate` on) against a current
/// schema must not need DDL rights.
#[test]
fn a_worker_role_without_ddl_rights_computes_reads_and_invalidates() {
    let database = TestDatabase::create(&dsn(), DATABASE, &[]);
    drop_roles();
    let mut admin = postgres::Client::connect(&dsn_for_database(&dsn(), DATABASE), postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {OWNER} LOGIN PASSWORD 'owner-secret';
             CREATE ROLE {WORKER} LOGIN PASSWORD 'worker-secret';
             ALTER DATABASE {DATABASE} OWNER TO {OWNER};
             REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC;
             REVOKE CREATE ON SCHEMA public FROM PUBLIC;
             GRANT CONNECT ON DATABASE {DATABASE} TO {WORKER};"
        ))
        .unwrap();
    let owner_dsn = dsn_as(&database, OWNER, "owner-secret");
    let worker_dsn = dsn_as(&database, WORKER, "worker-secret");
    let cache = tempfile::tempdir().unwrap();

    let applied = fstore::migrate_schema(&options_as(cache.path(), &owner_dsn)).expect("the owner migrates");
    assert_eq!(applied, vec![1, 2]);
    let mut owner = postgres::Client::connect(&owner_dsn, postgres::NoTls).unwrap();
    owner
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA fstore TO {WORKER};
             GRANT SELECT, INSERT, UPDATE, DELETE ON fstore.entries TO {WORKER};
             GRANT SELECT ON fstore.schema_version, fstore.installation TO {WORKER};"
        ))
        .unwrap();

    // The worker may not run DDL: the explicit migration is refused.
    let refused = fstore::migrate_schema(&options_as(cache.path(), &worker_dsn)).unwrap_err();
    assert!(refused.message().contains("permission denied"), "{refused}");

    // With the default options the worker opens, computes, hits and invalidates.
    let store = Store::open(options_as(cache.path(), &worker_dsn)).expect("a worker opens a store with auto_migrate on");
    let k = key("AAPL", 19358, 19400);
    let data = store.get_or_compute(&k, &Request::new(), |k| Ok(reader(sample(k, 7)))).unwrap();
    assert_eq!(check_sample(&k, &data), Ok(7));
    let hit = store.get(&k, &Request::new()).unwrap().expect("a hit");
    assert_eq!(check_sample(&k, &hit), Ok(7));
    assert_eq!(store.manifest_rows().unwrap().len(), 1);
    store.invalidate(&k).unwrap();
    assert!(store.get(&k, &Request::new()).unwrap().is_none());
    store.close().unwrap();

    drop(owner);
    drop(admin);
    drop(database);
    drop_roles();
}

/// A worker whose schema is older than the library still fails with a
/// clear message naming the migrate step, not a bare permission error.
#[test]
fn a_worker_role_on_a_missing_schema_is_told_to_run_the_migration() {
    let database = TestDatabase::create(&dsn(), "fstore_roles_test_empty", &[]);
    let mut admin = postgres::Client::connect(&dsn_for_database(&dsn(), &database.name), postgres::NoTls).unwrap();
    let worker = "fstore_roles_test_bare";
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {worker}; CREATE ROLE {worker} LOGIN PASSWORD 'bare-secret';
             REVOKE ALL ON DATABASE {0} FROM PUBLIC; REVOKE CREATE ON SCHEMA public FROM PUBLIC;
             GRANT CONNECT ON DATABASE {0} TO {worker};",
            database.name
        ))
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut options = options_as(cache.path(), &dsn_as(&database, worker, "bare-secret"));
    options.set("postgres.auto_migrate", "false").unwrap();
    let e = Store::open(options).err().expect("no schema: refused");
    assert_eq!(e.status(), Status::InvalidState, "{e}");
    assert!(e.message().contains("fstore migrate --schema"), "{e}");
    drop(admin);
    drop(database);
    common::pg::admin().batch_execute(&format!("DROP ROLE IF EXISTS {worker}")).unwrap();
}

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every option the parser accepts is in the deployment guide's table.
#[test]
fn the_deployment_guide_lists_every_option() {
    let guide = read("docs/deployment.md");
    let missing: Vec<&str> =
        fstore::OPTION_NAMES.iter().copied().filter(|name| !guide.contains(&format!("| `{name}` |"))).collect();
    assert!(missing.is_empty(), "docs/deployment.md's option table lacks a row `| `NAME` |` for: {missing:?}");
    // And nothing the parser refuses is listed as an option.
    let section = guide.split("## Every option and environment variable").nth(1).expect("the guide's option section");
    let section = section.split("\n## ").next().unwrap();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let name = row.trim_start_matches("| `").split('`').next().unwrap();
        let is_option = fstore::OPTION_NAMES.contains(&name);
        let is_env = name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        assert!(is_option || is_env, "docs/deployment.md lists `{name}`, which is no option");
    }
}

/// The environment variables the library reads (every `env("NAME")`,
/// `var("NAME")` and `var_os("NAME")` in src/ outside its tests, HOME
/// aside) are in the guide's table and in `.env.example`.
#[test]
fn the_deployment_guide_and_env_example_list_every_environment_variable() {
    let mut names = BTreeSet::new();
    collect_env_names(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut names);
    names.remove("HOME");
    for expected in ["FSTORE_CACHE_DIR", "FSTORE_LOG", "PG_MANIFEST_DSN", "PG_PASSWORD"] {
        assert!(names.contains(expected), "the scan of src/ misses {expected}: found {names:?}");
    }
    let guide = read("docs/deployment.md");
    let example = read(".env.example");
    for name in &names {
        assert!(guide.contains(&format!("| `{name}` |")), "docs/deployment.md's table lacks `{name}`");
        let in_example = example.lines().any(|l| l.trim_start_matches("# ").starts_with(&format!("{name}=")));
        assert!(in_example, ".env.example lacks a line `{name}=...` (or `# {name}=...`)");
    }
}

fn collect_env_names(dir: &Path, names: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_env_names(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("test_support.rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            // A module's unit tests read variables of the test setup's own.
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for call in ["env(\"", "var(\"", "var_os(\""] {
                for piece in text.split(call).skip(1) {
                    let name = piece.split('"').next().unwrap();
                    if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                        names.insert(name.to_string());
                    }
                }
            }
        }
    }
}

/// Every `expr` of the dashboard's panels (and of its variables' queries).
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (name, v) in map {
                match (name.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(q)) => out.push(q.clone()),
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for piece in text.split("featurestore_").skip(1) {
        let name: String = piece.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        names.insert(format!("featurestore_{name}"));
    }
    names
}

/// The Grafana dashboard is valid JSON whose queries use only series a
/// PostgreSQL store emits after some activity (suffixes included), and it
/// covers what the guides point at.
#[test]
fn the_grafana_dashboard_queries_only_series_the_library_emits() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("docs/grafana/libfstore.json")).expect("docs/grafana/libfstore.json is JSON");
    assert_eq!(dashboard["uid"], "libfstore");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard["panels"], &mut queries);
    dashboard_queries(&dashboard["templating"], &mut queries);
    assert!(queries.len() >= 10, "the dashboard has {} queries", queries.len());
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(q)).collect();

    let cache = tempfile::tempdir().unwrap();
    let schema = common::pg::fresh_schema("fstore_grafana_test");
    let store = Store::open(common::pg::pg_options(cache.path(), &schema)).unwrap();
    let k = key("AAPL", 19358, 19400);
    store.get_or_compute(&k, &Request::new(), |k| Ok(reader(sample(k, 1)))).unwrap();
    store.get_or_compute(&k, &Request::new(), |_| panic!("a hit computes nothing")).unwrap();
    let failed = store.get_or_compute(&key("MSFT", 19358, 19400), &Request::new(), |_| {
        Err(fstore::Error::new(Status::CallbackFailed, "no data for MSFT"))
    });
    assert!(failed.is_err());
    let exposition = store.metrics().unwrap();
    store.close().unwrap();
    let emitted: BTreeSet<String> = exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();

    let unknown: Vec<&String> = used.difference(&emitted).collect();
    assert!(unknown.is_empty(), "the dashboard queries series the library does not emit: {unknown:?}\nemitted: {emitted:?}");
    for (needed, why) in [
        ("featurestore_get_seconds_bucket", "get latency quantiles"),
        ("featurestore_compute_seconds_bucket", "compute quantiles"),
        ("featurestore_lock_wait_seconds_bucket", "lock wait quantiles"),
        ("featurestore_waits_total", "waits per symbol"),
        ("featurestore_errors_total", "errors by status"),
        ("featurestore_pool_connections", "pool gauges"),
        ("featurestore_hits_total", "hit ratio"),
    ] {
        assert!(used.contains(needed), "the dashboard lacks {needed} ({why})");
    }
    for bucket in ["get_seconds", "compute_seconds", "lock_wait_seconds"] {
        assert!(
            queries.iter().any(|q| q.contains("histogram_quantile(0.99") && q.contains(&format!("featurestore_{bucket}_bucket"))),
            "no p99 of featurestore_{bucket}"
        );
    }
    assert!(queries.iter().any(|q| q.contains("by (symbol)") && q.contains("featurestore_waits_total")), "no waits per symbol");
    assert!(queries.iter().any(|q| q.contains("by (status)") && q.contains("featurestore_errors_total")), "no errors by status");
}
