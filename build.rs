//! Gives the shared library a SONAME naming its major version
//! (`libfstore.so.0` for 0.x), so that a program linked against one major
//! version records it and never silently loads another.
//!
//! No symbol map is added here: rustc already links a cdylib with a version
//! script of its own that exports only the `#[no_mangle] extern "C"` items
//! (all `fstore_*`), and GNU ld refuses a second script beside that anonymous
//! one ("anonymous version tag cannot be combined with other version tags").
//! `tests/packaging/shared_library.sh` checks the exports instead.
use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if !is_elf_target() {
        return;
    }
    // Cargo.toml's version is the only place the major version is written.
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    let name = env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,lib{name}.so.{major}");
}

/// Unix targets other than Apple's link ELF shared objects, which carry a SONAME.
fn is_elf_target() -> bool {
    let family = env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    let vendor = env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    family.split(',').any(|f| f == "unix") && vendor != "apple"
}
