//! `saas new NAME`: renders the app template into a new folder `NAME/`.
//!
//! Everything is checked before anything is written; the app is rendered into a hidden
//! staging folder beside its destination and moved into place only when complete, so a
//! failure leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::app::Domains;
use crate::{CliResult, Failure, names, render, templates};

/// The SDK domains a new app composes when `--domains` is not given.
const DEFAULT_DOMAINS: &str = "auth,payments,chat,notify";

/// Version requirement of the SDK crates when they come from crates.io.
const SDK_VERSION: &str = "0.1";

/// Arguments of `saas new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The app's name: its folder and its package (lower-case letters, digits, `-`, `_`)
    name: String,
    /// SDK domains, comma-separated: auth, payments, chat, notify (auth comes with the others), or none
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_DOMAINS)]
    domains: Vec<String>,
    /// The database of the development set-up
    #[arg(long, value_enum, default_value_t = Database::Sqlite)]
    db: Database,
    /// Build against the SDK checkout in DIR (path dependencies); default when `saas` itself was built from one
    #[arg(long, value_name = "DIR")]
    sdk_path: Option<PathBuf>,
    /// Depend on the SDK crates from crates.io with this version requirement instead
    #[arg(long, value_name = "REQ", conflicts_with = "sdk_path")]
    sdk_version: Option<String>,
    /// Render the template in this folder instead of the built-in one
    #[arg(long, value_name = "PATH")]
    template: Option<PathBuf>,
    /// The folder in which to create NAME/
    #[arg(long, value_name = "DIR", default_value = ".")]
    output: PathBuf,
}

/// The database of the development set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Database {
    /// An embedded file, no server needed
    Sqlite,
    /// A PostgreSQL server
    Postgres,
}

impl Database {
    fn name(self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres => "postgres",
        }
    }
}

/// Where the app's SDK dependencies come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sdk {
    /// Path dependencies on a checkout.
    Path(PathBuf),
    /// Version requirements on crates.io.
    CratesIo(String),
}

/// Runs `saas new`.
pub fn run(args: NewArgs) -> CliResult<ExitCode> {
    let started = Instant::now();
    names::check_app_name(&args.name)?;
    let domains = choose_domains(&args.domains)?;
    if !args.output.is_dir() {
        return Err(Failure::new(format!("the output folder {} does not exist", args.output.display())));
    }
    let target = args.output.join(&args.name);
    if target.exists() {
        return Err(Failure::new(format!(
            "{} already exists: choose another name or remove it first",
            target.display()
        )));
    }
    let sdk = choose_sdk(args.sdk_path.as_deref(), args.sdk_version.as_deref())?;
    if let Some(template) = &args.template
        && !template.is_dir()
    {
        return Err(Failure::new(format!("--template {} is not a folder", template.display())));
    }

    println!("Creating {} in {}", args.name, target.display());
    println!("  domains: {}; database: {}", domains.list(), args.db.name());
    match &sdk {
        Sdk::Path(path) => println!("  SDK: path dependencies on {}", path.display()),
        Sdk::CratesIo(version) => println!("  SDK: crates.io, version {version}"),
    }

    let builtin;
    let template = match &args.template {
        Some(path) => {
            println!("  template: {}", path.display());
            path.clone()
        }
        None => {
            builtin = extract_builtin_template()?;
            builtin.path().to_path_buf()
        }
    };
    let stage = tempfile::Builder::new()
        .prefix(".saas-new-")
        .tempdir_in(&args.output)
        .map_err(|err| Failure::new(format!("cannot write in {}: {err}", args.output.display())))?;
    println!("  rendering the template");
    render::render_in_child(&template, stage.path(), &args.name, &defines(&domains, args.db, &sdk))?;
    std::fs::rename(stage.path().join(&args.name), &target)
        .map_err(|err| Failure::new(format!("cannot move the app into {}: {err}", target.display())))?;
    let files = count_files(&target);
    println!("Created {} ({files} files) in {:.2} s.", args.name, started.elapsed().as_secs_f64());
    print_next_steps(&args.output, &args.name, &domains);
    Ok(ExitCode::SUCCESS)
}

/// The chosen domains, auth added when another needs it (and said so).
fn choose_domains(requested: &[String]) -> CliResult<Domains> {
    let mut domains = Domains::default();
    let requested: Vec<&str> = requested.iter().map(|d| d.trim()).filter(|d| !d.is_empty()).collect();
    if requested == ["none"] {
        return Ok(domains);
    }
    if requested.is_empty() {
        return Err(Failure::new(format!("--domains is empty: choose from {}, or none", Domains::NAMES.join(", "))));
    }
    for name in requested {
        if !domains.set(name) {
            return Err(Failure::new(format!(
                "unknown domain `{name}`: the domains are {} (or none)",
                Domains::NAMES.join(", ")
            )));
        }
    }
    if !domains.auth {
        let needing: Vec<&str> = ["payments", "chat", "notify"].into_iter().filter(|d| domains.has(d)).collect();
        if !needing.is_empty() {
            domains.auth = true;
            println!("auth added: {} need{} accounts", needing.join(", "), if needing.len() == 1 { "s" } else { "" });
        }
    }
    Ok(domains)
}

/// Path dependencies on `--sdk-path`, else version `--sdk-version`, else the checkout `saas`
/// was built from (when there is one), else crates.io.
fn choose_sdk(path: Option<&Path>, version: Option<&str>) -> CliResult<Sdk> {
    if let Some(version) = version {
        if version.is_empty() || version.contains(['"', '\\', '\n']) {
            return Err(Failure::new(format!("--sdk-version {version:?} is not a version requirement")));
        }
        return Ok(Sdk::CratesIo(version.to_owned()));
    }
    if let Some(path) = path {
        let checkout =
            std::fs::canonicalize(path).map_err(|err| Failure::new(format!("--sdk-path {}: {err}", path.display())))?;
        if !is_sdk_checkout(&checkout) {
            return Err(Failure::new(format!(
                "--sdk-path {} is not a checkout of the SDK (no saas-core/Cargo.toml in it)",
                path.display()
            )));
        }
        return sdk_path(checkout);
    }
    match Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(std::fs::canonicalize) {
        Some(Ok(checkout)) if is_sdk_checkout(&checkout) => sdk_path(checkout),
        _ => Ok(Sdk::CratesIo(SDK_VERSION.to_owned())),
    }
}

fn sdk_path(checkout: PathBuf) -> CliResult<Sdk> {
    let text = checkout.to_string_lossy();
    if text.contains(['"', '\\', '\n']) {
        return Err(Failure::new(format!("the SDK path {text} cannot be written in Cargo.toml: move the checkout")));
    }
    Ok(Sdk::Path(checkout))
}

fn is_sdk_checkout(dir: &Path) -> bool {
    dir.join("saas-core").join("Cargo.toml").is_file()
}

/// The template values of the app.
fn defines(domains: &Domains, db: Database, sdk: &Sdk) -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> =
        Domains::NAMES.iter().map(|name| ((*name).to_owned(), domains.has(name).to_string())).collect();
    values.push(("db".into(), db.name().into()));
    let (source, version, path) = match sdk {
        Sdk::Path(path) => ("path", SDK_VERSION.to_owned(), path.display().to_string()),
        Sdk::CratesIo(version) => ("crates-io", version.clone(), String::new()),
    };
    values.push(("sdk_source".into(), source.into()));
    values.push(("sdk_version".into(), version));
    values.push(("sdk_path".into(), path));
    values
}

/// Writes the built-in template to a temporary folder for cargo-generate to read.
fn extract_builtin_template() -> CliResult<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("saas-template-")
        .tempdir()
        .map_err(|err| Failure::new(format!("cannot create a temporary folder: {err}")))?;
    templates::APP
        .extract(dir.path())
        .map_err(|err| Failure::new(format!("cannot write the template to {}: {err}", dir.path().display())))?;
    Ok(dir)
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => count_files(&entry.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

fn print_next_steps(output: &Path, name: &str, domains: &Domains) {
    let folder = if output == Path::new(".") { PathBuf::from(name) } else { output.join(name) };
    println!();
    println!("Next:");
    println!("  cd {}", folder.display());
    println!("  cp .env.example .env");
    println!("  saas doctor                  # checks the settings and the services they name");
    println!("  cargo run                    # then http://127.0.0.1:8080/docs/");
    println!("  cargo test");
    println!("  saas generate module notes   # a module of your own: files, migrations, tests, wiring");
    if domains.payments {
        println!("  saas generate strategy tip   # a payment strategy of your own, with a test");
    }
}
