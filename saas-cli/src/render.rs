//! Rendering a cargo-generate template through the cargo-generate library, offline.
//!
//! `saas new` runs it in a child process of its own (`saas render-template …`) so that the
//! library's own output stays out of the user's terminal unless it fails, and so that the
//! child can be given the `$USER` cargo-generate needs.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;

use crate::{CliResult, Failure};

/// Arguments of the hidden `render-template` command.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The template folder.
    #[arg(long)]
    template: PathBuf,
    /// The folder in which the project's folder is created.
    #[arg(long)]
    destination: PathBuf,
    /// The project's name (its folder and package name, as given).
    #[arg(long)]
    name: String,
    /// Template values, `key=value`.
    #[arg(long = "define")]
    defines: Vec<String>,
}

/// Renders the template (the `render-template` command).
pub fn render(args: RenderArgs) -> CliResult<ExitCode> {
    let mut argv: Vec<String> = ["cargo", "generate", "--path"].map(str::to_owned).into();
    argv.push(args.template.display().to_string());
    argv.extend(["--destination".to_owned(), args.destination.display().to_string()]);
    argv.extend(["--name".to_owned(), args.name]);
    // --force keeps the name as given; --silent takes every value from the defines or the
    // template's defaults; the app is a workspace of its own.
    argv.extend(["--force", "--silent", "--vcs", "none", "--no-workspace"].map(str::to_owned));
    for define in args.defines {
        argv.extend(["--define".to_owned(), define]);
    }
    let cargo_generate::Cli::Generate(generate) = cargo_generate::Cli::try_parse_from(argv)
        .map_err(|err| Failure::new(format!("bad cargo-generate arguments: {err}")))?;
    cargo_generate::generate(generate).map_err(|err| Failure::new(format!("{err:#}")))?;
    Ok(ExitCode::SUCCESS)
}

/// Renders `template` into `destination/name` with `defines`, in a child process.
pub fn render_in_child(template: &Path, destination: &Path, name: &str, defines: &[(String, String)]) -> CliResult<()> {
    let exe = std::env::current_exe().map_err(|err| Failure::new(format!("cannot find the saas binary: {err}")))?;
    let mut command = Command::new(exe);
    command
        .arg("render-template")
        .arg("--template")
        .arg(template)
        .arg("--destination")
        .arg(destination)
        .arg("--name")
        .arg(name)
        .stdin(Stdio::null());
    for (key, value) in defines {
        command.arg("--define").arg(format!("{key}={value}"));
    }
    // cargo-generate fills its `authors` variable from these and fails when none is set.
    let named = ["CARGO_NAME", "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME", "USER", "USERNAME", "NAME"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    if !named {
        command.env("USER", "saas");
    }
    let output = command.output().map_err(|err| Failure::new(format!("cannot run the template renderer: {err}")))?;
    if output.status.success() {
        return Ok(());
    }
    let detail = String::from_utf8_lossy(&output.stderr);
    Err(Failure::new(format!("the template did not render:\n{}", detail.trim())))
}
