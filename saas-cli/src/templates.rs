//! The templates, embedded in the binary so that `saas` works offline from anywhere.

use include_dir::{Dir, include_dir};

/// `templates/app`: the cargo-generate template of a new app. Its manifest is
/// `Cargo.toml.liquid` (cargo-generate drops the `.liquid` suffix when it renders), so that
/// cargo does not take the template for a package of its own.
pub static APP: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/app");

/// `templates/strategy`: the files of a payment strategy (minijinja).
pub static STRATEGY: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/strategy");

/// The text of `path` in `dir`, when it exists and is UTF-8.
pub fn text(dir: &'static Dir<'static>, path: &str) -> Option<&'static str> {
    dir.get_file(path).and_then(|file| file.contents_utf8())
}
