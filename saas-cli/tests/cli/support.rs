//! Running `saas` and looking at what it wrote.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `saas` with `args`, run in `dir`.
pub fn saas(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saas")).args(args).current_dir(dir).output().expect("run saas")
}

/// What a run printed on stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a run printed on stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the run succeeded, showing its output otherwise.
#[track_caller]
pub fn assert_ok(output: &Output) {
    assert!(output.status.success(), "saas failed:\n{}\n{}", stdout(output), stderr(output));
}

/// Asserts that the run failed with exit code 1 and an `error:` line containing `expected`.
#[track_caller]
pub fn assert_refused(output: &Output, expected: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "expected a refusal; stdout:\n{}\nstderr:\n{err}", stdout(output));
    assert!(err.starts_with("error: ") && err.contains(expected), "expected {expected:?} in: {err}");
}

/// `saas new name args…` in `dir`; the app's folder.
pub fn new_app(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let mut all = vec!["new", name];
    all.extend_from_slice(args);
    assert_ok(&saas(dir, &all));
    dir.join(name)
}

/// Every file under `dir`, as paths relative to it.
pub fn files(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read a folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.insert(path.strip_prefix(dir).expect("under dir").display().to_string());
            }
        }
    }
    found
}

/// The text of `path` under `dir`.
pub fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

/// The SDK checkout these tests run in.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// A fresh temporary folder.
pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}
