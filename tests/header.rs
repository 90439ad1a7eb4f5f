//! include/fstore.h must be exactly what the pinned cbindgen generates today.

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    // The version macros come from Cargo.toml, so that the header a program
    // compiles against says which library it expects.
    let version = version_macros();
    config.after_includes = Some(format!("{version}{}", config.after_includes.unwrap_or_default()));
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let path = root.join("include/fstore.h");
    if std::env::var_os("FSTORE_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/fstore.h");
        return;
    }
    let committed = std::fs::read(&path).expect("include/fstore.h exists");
    assert!(
        committed == generated,
        "include/fstore.h differs from what cbindgen generates; regenerate with \
         FSTORE_BLESS_HEADER=1 cargo test --release --test header and commit it"
    );
}

fn version_macros() -> String {
    let (major, minor, patch) =
        (env!("CARGO_PKG_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MINOR"), env!("CARGO_PKG_VERSION_PATCH"));
    format!(
        "\n/* The version of libfstore this header describes. A program can compare\n * FSTORE_VERSION_NUMBER with fstore_version_number() at run time: the\n * library is compatible when the major versions match and the library's\n * number is not lower. */\n\
         #define FSTORE_VERSION_MAJOR {major}\n\
         #define FSTORE_VERSION_MINOR {minor}\n\
         #define FSTORE_VERSION_PATCH {patch}\n\
         #define FSTORE_VERSION_STRING \"{major}.{minor}.{patch}\"\n\
         #define FSTORE_VERSION_NUMBER \\\n  \
         (FSTORE_VERSION_MAJOR * 1000000 + FSTORE_VERSION_MINOR * 1000 + FSTORE_VERSION_PATCH)\n"
    )
}
