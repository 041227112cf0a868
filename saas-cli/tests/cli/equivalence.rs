//! The template is a plain cargo-generate template: cargo-generate's own binary renders the
//! same files as `saas new` (when it is installed; the test says so and passes otherwise).

use std::process::Command;

use crate::support::{assert_ok, files, read, saas, temp, workspace};

#[test]
fn cargo_generate_renders_the_same_app_as_saas_new() {
    let installed =
        Command::new("cargo").args(["generate", "--version"]).output().is_ok_and(|out| out.status.success());
    if !installed {
        println!("skipped: the cargo-generate binary is not installed (cargo install cargo-generate)");
        return;
    }
    let dir = temp();
    let checkout = std::fs::canonicalize(workspace()).unwrap();
    let sdk = checkout.to_str().unwrap();
    assert_ok(&saas(dir.path(), &["new", "demo", "--db", "postgres", "--domains", "auth,payments", "--sdk-path", sdk]));

    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let defines = [
        "db=postgres",
        "auth=true",
        "payments=true",
        "chat=false",
        "notify=false",
        "sdk_source=path",
        "sdk_version=0.1",
        &format!("sdk_path={sdk}"),
    ];
    let mut command = Command::new("cargo");
    command.args(["generate", "--path"]).arg(checkout.join("saas-cli/templates/app"));
    command.args(["--name", "demo", "--force", "--silent", "--vcs", "none", "--no-workspace", "--destination"]);
    command.arg(&theirs);
    for define in defines {
        command.args(["--define", define]);
    }
    if std::env::var_os("USER").is_none() {
        command.env("USER", "saas");
    }
    let output = command.output().expect("run cargo generate");
    assert!(output.status.success(), "cargo generate failed: {}", String::from_utf8_lossy(&output.stderr));

    let ours = dir.path().join("demo");
    let theirs = theirs.join("demo");
    assert_eq!(files(&ours), files(&theirs));
    for file in files(&ours) {
        assert_eq!(read(&ours, &file), read(&theirs, &file), "{file} differs");
    }
}
