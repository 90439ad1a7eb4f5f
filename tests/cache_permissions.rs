//! Who may write a cache directory: what libfstore creates is private (or
//! shared with one group), and a directory that someone else could write,
//! or replace through a parent, is refused at open with the fix in the
//! message. Real directories, real `chmod`/`chown`, real processes.
//!
//! Root bypasses the kernel's permission checks, so these tests check
//! libfstore's checks, not the kernel's; the cases that give a directory to
//! another user need root (they skip loudly without). Cases that depend on
//! the umask or the environment run in a re-execution of this binary (the
//! `child_*` tests, which do nothing unless FSTORE_TEST_CHILD is set), so
//! that they change nothing for the other tests.

mod common;
#[path = "common/c_api.rs"]
mod c_api;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Mutex;

use common::hosts::is_root;
use common::{child_command, embedded_options, entry_files, key, reader, sample};
use fstore::{Options, Status, Store};

const NOBODY: u32 = 65534;

fn is_child() -> bool {
    std::env::var_os("FSTORE_TEST_CHILD").is_some()
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) {
    std::os::unix::fs::chown(path, uid, gid).unwrap();
}

/// A directory of ours, mode `mode` (set exactly, whatever the umask).
fn make_dir(path: &Path, mode: u32) -> PathBuf {
    fs::create_dir(path).unwrap();
    chmod(path, mode);
    path.to_path_buf()
}

/// A private scratch directory under the system's temporary directory.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Opens a store on `dir` with the embedded manifest and `extra` options.
fn open(dir: &Path, extra: &[(&str, &str)]) -> fstore::Result<Store> {
    let mut options = embedded_options(dir);
    for (name, value) in extra {
        options.set(name, value)?;
    }
    Store::open(options)
}

/// Opening `dir` is refused as unsafe; the message, which must name the
/// path and hold each of `wanted`.
fn refused(dir: &Path, extra: &[(&str, &str)], wanted: &[&str]) -> String {
    let e = open(dir, extra).err().unwrap_or_else(|| panic!("{} was opened", dir.display()));
    assert_eq!(e.status(), Status::PermissionDenied, "{e:?}");
    let message = e.message().to_string();
    assert!(!message.contains('\n'), "one paragraph: {message}");
    for w in wanted {
        assert!(message.contains(w), "no '{w}' in: {message}");
    }
    message
}

/// A group other than this process's own, with its name.
fn other_group() -> (u32, String) {
    // SAFETY: a plain getter.
    let own = unsafe { libc::getegid() };
    for name in ["users", "staff", "nogroup", "daemon"] {
        let c_name = std::ffi::CString::new(name).unwrap();
        // SAFETY: a valid C string; the result is read at once.
        let group = unsafe { libc::getgrnam(c_name.as_ptr()) };
        if !group.is_null() {
            let gid = unsafe { (*group).gr_gid };
            if gid != own {
                return (gid, name.to_string());
            }
        }
    }
    panic!("no group among users, staff, nogroup, daemon on this host");
}

fn skip_unless_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("\n*** {test}: skipped, it gives directories to other users and needs root ***\n");
    }
    !is_root()
}

fn put_one(store: &Store) {
    let k = key("PERM", 1, 5);
    store.put(&k, reader(sample(&k, 1)).as_mut()).unwrap();
}

/// Every directory and file under `dir`, with `dir` itself.
fn tree(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut files) = (vec![dir.to_path_buf()], Vec::new());
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                dirs.push(path.clone());
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    (dirs, files)
}

// ---------------------------------------------------------------------------
// A log of what the library warns, for the cases that must warn.

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Installs the capturing logger; before any C API call, which would
/// install the library's own.
fn capture_warnings() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// The warnings logged so far that mention `path`.
fn warnings_about(path: &Path) -> Vec<String> {
    let path = path.display().to_string();
    WARNINGS.lock().unwrap().iter().filter(|w| w.contains(&path)).cloned().collect()
}

// ---------------------------------------------------------------------------
// What libfstore creates.

/// In a child with umask `CHILD_UMASK`: opens a store on CHILD_CACHE (with
/// `cache.group` = CHILD_GROUP when set), writes an entry (which leaves its
/// lock file) and closes it.
#[test]
fn child_write_a_cache() {
    if !is_child() {
        return;
    }
    let umask = u32::from_str_radix(&common::env("CHILD_UMASK"), 8).unwrap();
    // SAFETY: this process runs only this test.
    unsafe { libc::umask(umask as libc::mode_t) };
    let dir = PathBuf::from(common::env("CHILD_CACHE"));
    let mut options = embedded_options(&dir);
    if let Ok(group) = std::env::var("CHILD_GROUP") {
        options.set("cache.group", &group).unwrap();
    }
    let store = Store::open(options).unwrap();
    put_one(&store);
    store.close().unwrap();
}

fn write_cache_in_child(cache: &Path, umask: &str, group: Option<&str>) {
    let mut env = vec![("CHILD_CACHE".to_string(), cache.display().to_string()), ("CHILD_UMASK".into(), umask.into())];
    if let Some(group) = group {
        env.push(("CHILD_GROUP".into(), group.into()));
    }
    let out = child_command("child_write_a_cache", &env, &[]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_new_cache_directory_and_its_subdirectories_are_private() {
    let scratch = scratch();
    let cache = scratch.path().join("new/cache");
    // umask 0 would give 0777 directories if the library relied on it.
    write_cache_in_child(&cache, "0", None);
    let (dirs, _) = tree(&cache);
    assert!(dirs.len() >= 4, "cache, data, data/xx, locks: {dirs:?}");
    assert_eq!(mode_of(&scratch.path().join("new")), 0o700, "a missing parent it created");
    for d in dirs {
        assert_eq!(mode_of(&d), 0o700, "{}", d.display());
    }
}

#[test]
fn files_in_a_new_cache_are_private() {
    let scratch = scratch();
    let cache = scratch.path().join("cache");
    write_cache_in_child(&cache, "0", None);
    let (_, files) = tree(&cache);
    let names: Vec<String> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["manifest.duckdb", "manifest.lock", "coordination.json"] {
        assert!(names.iter().any(|n| n == expected), "no {expected} among {names:?}");
    }
    assert_eq!(entry_files(&cache).len(), 1);
    for f in files {
        assert_eq!(mode_of(&f), 0o600, "{}", f.display());
    }
}

#[test]
fn lock_files_are_private() {
    let scratch = scratch();
    let cache = scratch.path().join("cache");
    let store = open(&cache, &[("wait.timeout_ms", "5000")]).unwrap();
    let k = key("LOCKED", 1, 5);
    // A compute holds its lock file while it runs.
    let locks = cache.join("locks");
    let mut seen = Vec::new();
    store
        .get_or_compute(&k, &fstore::Request::new(), |k| {
            seen = fs::read_dir(&locks).unwrap().map(|e| e.unwrap().path()).collect();
            Ok(reader(sample(k, 1)))
        })
        .unwrap();
    assert!(!seen.is_empty(), "no lock file while computing");
    for f in seen {
        assert_eq!(mode_of(&f), 0o600, "{}", f.display());
    }
    store.close().unwrap();
}

#[test]
fn a_group_cache_is_setgid_group_writable_and_owned_by_the_group() {
    if skip_unless_root("a_group_cache_is_setgid_group_writable_and_owned_by_the_group") {
        return;
    }
    let (gid, name) = other_group();
    let scratch = scratch();
    let cache = scratch.path().join("shared");
    // umask 077 would leave the group out if the library relied on it.
    write_cache_in_child(&cache, "077", Some(&name));
    let (dirs, files) = tree(&cache);
    assert!(files.len() >= 4, "{files:?}");
    for d in dirs {
        assert_eq!(mode_of(&d), 0o2770, "{}", d.display());
        assert_eq!(fs::metadata(&d).unwrap().gid(), gid, "{}", d.display());
    }
    for f in files {
        assert_eq!(mode_of(&f), 0o660, "{}", f.display());
        assert_eq!(fs::metadata(&f).unwrap().gid(), gid, "{}", f.display());
    }
    // Reopened by number, the same group: accepted.
    open(&cache, &[("cache.group", &gid.to_string())]).unwrap().close().unwrap();
}

// ---------------------------------------------------------------------------
// Directories refused.

#[test]
fn a_world_writable_cache_directory_is_refused_with_the_fix() {
    let scratch = scratch();
    let cache = make_dir(&scratch.path().join("cache"), 0o777);
    let real = fs::canonicalize(&cache).unwrap();
    refused(&cache, &[], &[&real.display().to_string(), "writable by every user", "0777", &format!("chmod 700 {}", real.display())]);
    // Nothing was created in it.
    assert_eq!(fs::read_dir(&cache).unwrap().count(), 0);
}

#[test]
fn a_cache_directory_owned_by_another_user_is_refused() {
    if skip_unless_root("a_cache_directory_owned_by_another_user_is_refused") {
        return;
    }
    let scratch = scratch();
    let cache = make_dir(&scratch.path().join("cache"), 0o700);
    chown(&cache, Some(NOBODY), None);
    let real = fs::canonicalize(&cache).unwrap();
    refused(&cache, &[], &[&real.display().to_string(), "owned by nobody (uid 65534)", &format!("chown root {}", real.display())]);
}

#[test]
fn a_cache_directory_writable_by_another_group_is_refused() {
    if skip_unless_root("a_cache_directory_writable_by_another_group_is_refused") {
        return;
    }
    let (gid, name) = other_group();
    let scratch = scratch();
    let cache = make_dir(&scratch.path().join("cache"), 0o770);
    chown(&cache, None, Some(gid));
    // No cache.group: a group-writable directory is refused.
    refused(&cache, &[], &[&format!("writable by group {name}"), "0770", "cache.group is not set", "chmod 700"]);
    // cache.group set to another group (root's): still refused.
    refused(&cache, &[("cache.group", "0")], &[&format!("writable by group {name}"), "cache.group is 'root'"]);
    // Its own group as cache.group: accepted.
    open(&cache, &[("cache.group", &name)]).unwrap().close().unwrap();
}

#[test]
fn a_world_writable_parent_without_the_sticky_bit_is_refused() {
    let scratch = scratch();
    let parent = make_dir(&scratch.path().join("open"), 0o777);
    let cache = make_dir(&parent.join("cache"), 0o700);
    let real_parent = fs::canonicalize(&parent).unwrap();
    refused(&cache, &[], &[&format!("{}, a parent of cache directory", real_parent.display()), "without the sticky bit", "0777", "chmod go-w"]);
    // A group-writable parent is refused too.
    chmod(&parent, 0o775);
    refused(&cache, &[], &["writable by group", "0775"]);
}

#[test]
fn a_sticky_world_writable_parent_is_accepted_when_the_next_component_is_ours() {
    let scratch = scratch();
    let parent = make_dir(&scratch.path().join("scratch"), 0o1777);
    let cache = make_dir(&parent.join("cache"), 0o700);
    open(&cache, &[]).unwrap().close().unwrap();
    // A new cache directory created there is ours too.
    open(&parent.join("fresh"), &[]).unwrap().close().unwrap();
    if is_root() {
        // The next component owned by someone else: refused, since the
        // sticky bit lets its owner replace what is below.
        let theirs = make_dir(&parent.join("theirs"), 0o755);
        chown(&theirs, Some(NOBODY), None);
        let cache = make_dir(&theirs.join("cache"), 0o700);
        refused(&cache, &[], &["a parent of cache directory", "owned by nobody (uid 65534)"]);
    }
}

#[test]
fn a_symlinked_cache_directory_is_checked_at_its_target() {
    let scratch = scratch();
    let unsafe_parent = make_dir(&scratch.path().join("open"), 0o777);
    let target = make_dir(&unsafe_parent.join("target"), 0o700);
    let link = scratch.path().join("link");
    symlink(&target, &link).unwrap();
    // The link sits in a private directory, its target does not.
    let real_parent = fs::canonicalize(&unsafe_parent).unwrap();
    let message = refused(&link, &[], &[&real_parent.display().to_string(), "without the sticky bit"]);
    assert!(!message.contains(&format!("{},", link.display())), "{message}");
    // A link to a safe directory opens.
    chmod(&unsafe_parent, 0o755);
    open(&link, &[]).unwrap().close().unwrap();
}

// ---------------------------------------------------------------------------
// Groups.

#[test]
fn an_unknown_group_is_an_invalid_argument_naming_the_option() {
    let mut options = Options::default();
    let e = options.set("cache.group", "no-such-group-fstore").unwrap_err();
    assert_eq!(e.status(), Status::InvalidArgument);
    assert!(e.message().contains("option cache.group") && e.message().contains("no-such-group-fstore"), "{e}");
    assert!(options.set("cache.group", "").is_err());
}

/// In a child: opens a store on CHILD_CACHE as it is configured by the
/// environment alone; prints the status and message.
#[test]
fn child_open_from_the_environment() {
    if !is_child() {
        return;
    }
    let mut options = Options::default();
    options.set("manifest", "duckdb").unwrap();
    match Store::open(options) {
        Ok(store) => {
            println!("FSTORE_OPENED");
            store.close().unwrap();
        }
        Err(e) => println!("FSTORE_ERROR {:?} {}", e.status(), e.message()),
    }
}

fn open_in_child(env: &[(&str, &str)], configure: impl FnOnce(&mut std::process::Command)) -> String {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    open_in(child_command("child_open_from_the_environment", &env, &[]), &env, configure)
}

/// As `open_in_child`, running `exe` (a copy of this test binary) instead:
/// for a child of another user, who may not reach the build directory
/// (`~/.cache` is private to root).
fn open_in_child_running(exe: &Path, env: &[(&str, &str)], configure: impl FnOnce(&mut std::process::Command)) -> String {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let base = child_command("child_open_from_the_environment", &env, &[]);
    let mut command = std::process::Command::new(exe);
    command.args(base.get_args());
    for (name, value) in base.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    open_in(command, &env, configure)
}

fn open_in(
    mut command: std::process::Command,
    env: &[(String, String)],
    configure: impl FnOnce(&mut std::process::Command),
) -> String {
    // Only what `env` says, whatever this process's environment holds.
    command.stdin(Stdio::null()).env_remove("FSTORE_CACHE_GROUP").envs(env.iter().map(|(k, v)| (k, v)));
    configure(&mut command);
    let out: Output = command.output().unwrap();
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The test harness may print its own text before ours on the line.
    let found = stdout.lines().find_map(|l| l.find("FSTORE_").map(|at| l[at..].to_string()));
    found.unwrap_or_else(|| panic!("no result: {stdout}"))
}

#[test]
fn fstore_cache_group_is_read_when_the_option_is_unset() {
    let scratch = scratch();
    let cache = scratch.path().join("cache");
    let dir = cache.to_str().unwrap();
    let line = open_in_child(&[("FSTORE_CACHE_DIR", dir), ("FSTORE_CACHE_GROUP", "no-such-group-fstore")], |_| {});
    assert!(line.starts_with("FSTORE_ERROR InvalidArgument"), "{line}");
    assert!(line.contains("FSTORE_CACHE_GROUP") && line.contains("no-such-group-fstore"), "{line}");
    // A group this process is in (its own): a shared cache.
    // SAFETY: a plain getter.
    let gid = unsafe { libc::getegid() }.to_string();
    let line = open_in_child(&[("FSTORE_CACHE_DIR", dir), ("FSTORE_CACHE_GROUP", &gid)], |_| {});
    assert_eq!(line, "FSTORE_OPENED");
    assert_eq!(mode_of(&cache), 0o2770);
}

#[test]
fn a_process_outside_the_group_is_refused() {
    if skip_unless_root("a_process_outside_the_group_is_refused") {
        return;
    }
    let (_, name) = other_group();
    // A directory nobody may use, as nobody (who is in no group but nogroup).
    let scratch = scratch();
    chmod(scratch.path(), 0o755);
    let cache = make_dir(&scratch.path().join("cache"), 0o700);
    chown(&cache, Some(NOBODY), Some(NOBODY));
    let group = if name == "nogroup" { "users" } else { name.as_str() };
    let exe = scratch.path().join("test-binary");
    fs::hard_link(std::env::current_exe().unwrap(), &exe)
        .or_else(|_| fs::copy(std::env::current_exe().unwrap(), &exe).map(drop))
        .unwrap();
    let env = [("FSTORE_CACHE_DIR", cache.to_str().unwrap()), ("FSTORE_CACHE_GROUP", group)];
    let line = open_in_child_running(&exe, &env, |c| {
        use std::os::unix::process::CommandExt;
        c.uid(NOBODY).gid(NOBODY).env("HOME", "/nonexistent");
    });
    assert!(line.starts_with("FSTORE_ERROR PermissionDenied"), "{line}");
    assert!(line.contains("not a member") && line.contains(&format!("usermod -aG {group} nobody")), "{line}");
}

// ---------------------------------------------------------------------------
// Older caches, and the escape hatch.

#[test]
fn a_cache_made_with_the_umask_opens_with_a_warning_and_is_left_as_it_was() {
    let scratch = scratch();
    let cache = make_dir(&scratch.path().join("old"), 0o755);
    let real = fs::canonicalize(&cache).unwrap();
    capture_warnings();
    assert!(warnings_about(&real).is_empty());
    let store = open(&cache, &[]).unwrap();
    put_one(&store);
    store.close().unwrap();
    open(&cache, &[]).unwrap().close().unwrap();
    let warned = warnings_about(&real);
    assert_eq!(warned.len(), 1, "warned once per directory: {warned:?}");
    assert!(warned[0].contains("0755") && warned[0].contains(&format!("chmod 700 {}", real.display())), "{}", warned[0]);
    assert_eq!(mode_of(&cache), 0o755, "not changed behind the user's back");
}

#[test]
fn check_permissions_false_opens_an_unsafe_directory_with_a_warning_each_time() {
    let scratch = scratch();
    let cache = make_dir(&scratch.path().join("nfs"), 0o777);
    capture_warnings();
    refused(&cache, &[], &["writable by every user"]);
    for _ in 0..2 {
        let store = open(&cache, &[("cache.check_permissions", "false")]).unwrap();
        put_one(&store);
        store.close().unwrap();
    }
    let warned = warnings_about(&cache);
    assert_eq!(warned.len(), 2, "one warning per open: {warned:?}");
    assert!(warned.iter().all(|w| w.contains("cache.check_permissions=false")), "{warned:?}");
    assert!(Options::default().set("cache.check_permissions", "maybe").is_err());
}

// ---------------------------------------------------------------------------
// Across the C API.

#[test]
fn the_c_api_returns_the_refusal_as_permission_denied_with_its_message() {
    use c_api::CError;
    use fstore::ffi::*;
    use std::ffi::CString;
    capture_warnings();
    let scratch = scratch();
    let cache = make_dir(&scratch.path().join("cache"), 0o777);
    let path = CString::new(cache.to_str().unwrap()).unwrap();
    let mut err = CError::new();
    let mut store = std::ptr::null_mut();
    unsafe {
        let mut options = fstore_options_new();
        assert_eq!(fstore_options_set(options, c"cache_dir".as_ptr(), path.as_ptr(), err.ptr()), FSTORE_STATUS_OK);
        assert_eq!(fstore_options_set(options, c"manifest".as_ptr(), c"duckdb".as_ptr(), err.ptr()), FSTORE_STATUS_OK);
        let status = fstore_store_open(options, &mut store, err.ptr());
        fstore_options_free(&mut options);
        assert_eq!(status, FSTORE_STATUS_PERMISSION_DENIED, "{}", err.message());
        assert_eq!(err.0.status, FSTORE_STATUS_PERMISSION_DENIED);
        let name = std::ffi::CStr::from_ptr(fstore_status_name(status)).to_str().unwrap();
        assert_eq!(name, "permission denied");
    }
    assert!(store.is_null());
    let real = fs::canonicalize(&cache).unwrap();
    assert!(err.message().contains(&format!("chmod 700 {}", real.display())), "{}", err.message());
}
