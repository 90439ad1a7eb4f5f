//! include/fstore.h must be exactly what the pinned cbindgen generates today.

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
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
