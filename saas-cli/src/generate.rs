//! `saas generate module NAME` and `saas generate strategy NAME`: new files rendered with
//! minijinja, wired into the app at its marker comments (`// saas:modules`, …).
//!
//! A plan is made and checked in full first — no file to create may exist, every marker
//! must be found — and only then is anything written.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior, Value, context};

use crate::app::App;
use crate::{CliResult, Failure, names, templates};

/// Arguments of `saas generate`.
#[derive(Debug, clap::Subcommand)]
pub enum GenerateCommand {
    /// A module of the app's own: model, store, service, routes, migrations for both databases and tests, mounted by `compose`
    Module {
        /// Its name, plural and snake_case (`notes`, `blog_posts`): the table, the URL and the folder
        name: String,
        /// The name of one record, when it is not NAME without its plural ending (`--singular person`)
        #[arg(long)]
        singular: Option<String>,
    },
    /// A payment strategy of the app's own, registered with the payments module, with a test through the fake Stripe
    Strategy {
        /// Its name, snake_case (`tip`): orders choose it with `"strategy_type": "NAME"`
        name: String,
    },
}

/// Names a module of the app cannot take: files of the test harness, folders of the app,
/// tables of the platform.
const RESERVED_MODULES: &[&str] =
    &["app", "health", "jobs", "main", "modules", "owner", "strategies", "support", "workers"];

/// SQL keywords that cannot name a table unquoted (in SQLite or PostgreSQL).
const SQL_KEYWORDS: &[&str] = &[
    "all",
    "and",
    "as",
    "asc",
    "by",
    "case",
    "check",
    "column",
    "constraint",
    "default",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "index",
    "is",
    "join",
    "limit",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "order",
    "primary",
    "references",
    "select",
    "table",
    "then",
    "to",
    "union",
    "unique",
    "user",
    "using",
    "when",
    "where",
    "with",
];

/// Type names the module's code imports: its record cannot take one of them.
const TAKEN_TYPES: &[&str] = &[
    "AppContext",
    "DateTime",
    "Db",
    "Deserialize",
    "Json",
    "Module",
    "Owner",
    "Page",
    "PageParams",
    "Path",
    "Query",
    "Router",
    "Serialize",
    "ServiceError",
    "ServiceResult",
    "State",
    "StatusCode",
    "Utc",
    "Uuid",
    "ValidationErrors",
];

/// The strategies the SDK ships, by name.
const SDK_STRATEGIES: &[&str] = &["direct", "escrow", "subscription"];

/// Where the example module's files are in the app template.
const EXAMPLE_MODULE: &str = "projects";

/// Runs `saas generate …` in the app around the current folder.
pub fn run(command: GenerateCommand) -> CliResult<ExitCode> {
    let here = std::env::current_dir().map_err(|err| Failure::new(format!("no current folder: {err}")))?;
    let app = App::find(&here)?;
    let plan = match command {
        GenerateCommand::Module { name, singular } => module_plan(&app, &name, singular.as_deref())?,
        GenerateCommand::Strategy { name } => strategy_plan(&app, &name)?,
    };
    plan.apply(&app)?;
    Ok(ExitCode::SUCCESS)
}

/// A line to insert before a marker comment.
struct Insertion {
    /// The file, relative to the app.
    file: &'static str,
    /// The marker comment, alone on its line.
    marker: &'static str,
    /// The line, without indentation (the marker's is used).
    line: String,
}

/// What a generator writes.
struct Plan {
    /// What is generated, for the messages (`module notes`).
    what: String,
    /// New files, relative to the app, with their text.
    files: Vec<(PathBuf, String)>,
    /// Lines wired into existing files.
    insertions: Vec<Insertion>,
    /// The commands to run next.
    next: Vec<String>,
}

fn module_plan(app: &App, name: &str, singular: Option<&str>) -> CliResult<Plan> {
    names::check_identifier(name, "module name")?;
    if RESERVED_MODULES.contains(&name) {
        return Err(Failure::new(format!("`{name}` is taken by the app's own files: choose another module name")));
    }
    let singular = match singular {
        Some(singular) => {
            names::check_identifier(singular, "singular name")?;
            singular.to_owned()
        }
        None => names::singular(name),
    };
    if SQL_KEYWORDS.contains(&name) {
        return Err(Failure::new(format!("`{name}` is an SQL keyword and cannot name a table: choose another name")));
    }
    let (plural_type, singular_type) = (names::pascal_case(name), names::pascal_case(&singular));
    if TAKEN_TYPES.contains(&singular_type.as_str()) {
        return Err(Failure::new(format!(
            "the record of `{name}` would be `{singular_type}`, a name the module's code already uses: \
             choose another name or --singular"
        )));
    }
    let values = context! {
        plural => name,
        Plural => plural_type.clone(),
        singular => singular,
        Singular => singular_type,
        auth => app.domains.auth,
        crate_name => app.crate_name(),
    };
    let env = environment()?;
    let example = format!("src/modules/{EXAMPLE_MODULE}");
    let sources =
        templates::APP.get_dir(&example).ok_or_else(|| Failure::new(format!("the app template has no {example}/")))?;
    let mut files = Vec::new();
    for file in sources.files() {
        let file_name = file.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let source = file.contents_utf8().unwrap_or_default();
        files.push((PathBuf::from(format!("src/modules/{name}/{file_name}")), render(&env, source, &values)?));
    }
    let test = format!("tests/api/{EXAMPLE_MODULE}.rs");
    files.push((PathBuf::from(format!("tests/api/{name}.rs")), render(&env, example_source(&test)?, &values)?));
    let number = next_migration_number(&app.root)?;
    for db in ["sqlite", "postgres"] {
        let source = example_source(&format!("migrations/{db}/0001_{EXAMPLE_MODULE}.sql"))?;
        let path = PathBuf::from(format!("migrations/{db}/{number:04}_{name}.sql"));
        files.push((path, render(&env, source, &values)?));
    }
    Ok(Plan {
        what: format!("module {name}"),
        files,
        insertions: vec![
            Insertion { file: "src/lib.rs", marker: "// saas:module-files", line: format!("pub mod {name};") },
            Insertion {
                file: "src/lib.rs",
                marker: "// saas:modules",
                line: format!("let builder = builder.module(modules::{name}::{plural_type}Module);"),
            },
            Insertion { file: "tests/api/main.rs", marker: "// saas:tests", line: format!("mod {name};") },
        ],
        next: vec![
            "cargo test".to_owned(),
            format!("cargo run, then /api/v1/{name}/ (and /docs/)"),
            format!("add fields: migrations/*/{number:04}_{name}.sql and src/modules/{name}/model.rs, store.rs"),
        ],
    })
}

fn strategy_plan(app: &App, name: &str) -> CliResult<Plan> {
    names::check_identifier(name, "strategy name")?;
    if !app.domains.payments {
        return Err(Failure::new(format!(
            "{} has no payments domain: a payment strategy needs saas-payments (create the app with \
             `--domains payments`, or add saas-payments and `// saas:strategies` to src/lib.rs)",
            app.package
        )));
    }
    if SDK_STRATEGIES.contains(&name) {
        return Err(Failure::new(format!("`{name}` is a strategy of the SDK: choose another name")));
    }
    let type_name = names::pascal_case(name);
    let values = context! { name => name, Name => type_name.clone(), crate_name => app.crate_name() };
    let env = environment()?;
    let source = |path: &str| {
        templates::text(&templates::STRATEGY, path)
            .ok_or_else(|| Failure::new(format!("the strategy template has no {path}")))
    };
    Ok(Plan {
        what: format!("strategy {name}"),
        files: vec![
            (PathBuf::from(format!("src/strategies/{name}.rs")), render(&env, source("strategy.rs")?, &values)?),
            (
                PathBuf::from(format!("tests/api/{name}_strategy.rs")),
                render(&env, source("strategy_test.rs")?, &values)?,
            ),
        ],
        insertions: vec![
            Insertion { file: "src/lib.rs", marker: "// saas:strategy-files", line: format!("pub mod {name};") },
            Insertion {
                file: "src/lib.rs",
                marker: "// saas:strategies",
                line: format!("let payments = payments.strategy(strategies::{name}::{type_name});"),
            },
            Insertion { file: "tests/api/main.rs", marker: "// saas:tests", line: format!("mod {name}_strategy;") },
        ],
        next: vec![
            "cargo test".to_owned(),
            format!("decide where the money goes: on_paid and refund_takeback in src/strategies/{name}.rs"),
            format!("orders choose it with \"strategy_type\": \"{name}\""),
        ],
    })
}

fn environment() -> CliResult<Environment<'static>> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|err| Failure::new(format!("bad template syntax settings: {err}")))?;
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    Ok(env)
}

fn render(env: &Environment<'static>, source: &str, values: &Value) -> CliResult<String> {
    env.render_str(source, values).map_err(|err| Failure::new(format!("a template did not render: {err:#}")))
}

fn example_source(path: &str) -> CliResult<&'static str> {
    templates::text(&templates::APP, path).ok_or_else(|| Failure::new(format!("the app template has no {path}")))
}

/// One more than the highest number of the app's migrations (both databases).
fn next_migration_number(root: &Path) -> CliResult<u32> {
    let mut highest = 0;
    for db in ["sqlite", "postgres"] {
        let folder = root.join("migrations").join(db);
        let entries = std::fs::read_dir(&folder)
            .map_err(|err| Failure::new(format!("cannot read {}: {err}", folder.display())))?;
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(number) = file.split('_').next().and_then(|n| n.parse::<u32>().ok()) {
                highest = highest.max(number);
            }
        }
    }
    Ok(highest + 1)
}

impl Plan {
    /// Checks the whole plan, then writes it, formats the new files and says what was done.
    fn apply(self, app: &App) -> CliResult<()> {
        let existing: Vec<String> = self
            .files
            .iter()
            .filter(|(path, _)| app.root.join(path).exists())
            .map(|(path, _)| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(Failure::new(format!("refusing to overwrite {}; nothing was written", existing.join(", "))));
        }
        let mut edited: Vec<(&'static str, String)> = Vec::new();
        for insertion in &self.insertions {
            let text = match edited.iter().position(|(file, _)| *file == insertion.file) {
                Some(index) => edited.remove(index).1,
                None => std::fs::read_to_string(app.root.join(insertion.file)).map_err(|err| {
                    Failure::new(format!("cannot read {}: {err}; nothing was written", insertion.file))
                })?,
            };
            edited.push((insertion.file, insert_before_marker(&text, insertion)?));
        }

        println!("Generating {} in {}", self.what, app.root.display());
        for (path, text) in &self.files {
            let full = app.root.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|err| Failure::new(format!("cannot create {}: {err}", parent.display())))?;
            }
            std::fs::write(&full, text)
                .map_err(|err| Failure::new(format!("cannot write {}: {err}", path.display())))?;
            println!("  created {}", path.display());
        }
        for (file, text) in &edited {
            std::fs::write(app.root.join(file), text)
                .map_err(|err| Failure::new(format!("cannot write {file}: {err}")))?;
            println!("  updated {file}");
        }
        format_rust_files(app, &self.files);
        println!();
        println!("Next:");
        for step in &self.next {
            println!("  {step}");
        }
        Ok(())
    }
}

/// `text` with `insertion.line` added just above its marker (at the marker's indentation),
/// in alphabetical order among the lines of the same kind right above it, as rustfmt
/// orders `mod` lines.
fn insert_before_marker(text: &str, insertion: &Insertion) -> CliResult<String> {
    let lines: Vec<&str> = text.lines().collect();
    let marker = lines.iter().position(|line| line.trim() == insertion.marker).ok_or_else(|| {
        Failure::new(format!(
            "{} has no `{}` line, where the generator wires what it adds: put it back; nothing was written",
            insertion.file, insertion.marker
        ))
    })?;
    if lines.iter().any(|line| line.trim() == insertion.line) {
        return Err(Failure::new(format!("{} already has `{}`; nothing was written", insertion.file, insertion.line)));
    }
    let indent = &lines[marker][..lines[marker].len() - lines[marker].trim_start().len()];
    let mut at = marker;
    if let Some(prefix) = ["pub mod ", "mod "].into_iter().find(|prefix| insertion.line.starts_with(prefix)) {
        let declares = |line: &str| line.trim().starts_with(prefix) && line.trim().ends_with(';');
        while at > 0 && declares(lines[at - 1]) && lines[at - 1].trim() > insertion.line.as_str() {
            at -= 1;
        }
    }
    let mut out: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();
    out.insert(at, format!("{indent}{}", insertion.line));
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Ok(joined)
}

/// Formats the new Rust files with rustfmt (following the app's `rustfmt.toml`), when it is
/// installed; a module's `mod.rs` brings its other files along.
fn format_rust_files(app: &App, files: &[(PathBuf, String)]) {
    let rust: Vec<&Path> = files
        .iter()
        .map(|(path, _)| path.as_path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    let module_dirs: Vec<&Path> =
        rust.iter().filter(|path| path.ends_with("mod.rs")).filter_map(|path| path.parent()).collect();
    let roots: Vec<&Path> = rust
        .into_iter()
        .filter(|path| path.ends_with("mod.rs") || !path.parent().is_some_and(|dir| module_dirs.contains(&dir)))
        .collect();
    let outcome =
        Command::new("rustfmt").arg("--edition").arg(&app.edition).args(&roots).current_dir(&app.root).output();
    match outcome {
        Ok(output) if output.status.success() => {}
        Ok(output) => println!("  (rustfmt failed: {})", String::from_utf8_lossy(&output.stderr).trim()),
        Err(_) => println!("  (rustfmt is not installed: the new files are not formatted)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insertion(marker: &'static str, line: &str) -> Insertion {
        Insertion { file: "src/lib.rs", marker, line: line.to_owned() }
    }

    #[test]
    fn lines_go_above_their_marker_in_order() {
        let text = "pub mod modules {\n    pub mod projects;\n    // saas:module-files\n}\n";
        let notes = insert_before_marker(text, &insertion("// saas:module-files", "pub mod notes;")).unwrap();
        assert_eq!(
            notes,
            "pub mod modules {\n    pub mod notes;\n    pub mod projects;\n    // saas:module-files\n}\n"
        );
        let tasks = insert_before_marker(&notes, &insertion("// saas:module-files", "pub mod tasks;")).unwrap();
        assert!(tasks.contains("    pub mod projects;\n    pub mod tasks;\n    // saas:module-files"), "{tasks}");
        let wired = "    let builder = builder.module(A);\n    // saas:modules\n    builder\n";
        let wired =
            insert_before_marker(wired, &insertion("// saas:modules", "let builder = builder.module(B);")).unwrap();
        assert_eq!(
            wired,
            "    let builder = builder.module(A);\n    let builder = builder.module(B);\n    // saas:modules\n    builder\n"
        );
    }

    #[test]
    fn a_missing_marker_or_a_line_already_there_is_refused() {
        let missing = insert_before_marker("fn main() {}\n", &insertion("// saas:modules", "x;")).unwrap_err();
        assert!(missing.0.contains("// saas:modules"), "{}", missing.0);
        let twice = insert_before_marker("mod a;\n// saas:tests\n", &insertion("// saas:tests", "mod a;")).unwrap_err();
        assert!(twice.0.contains("already"), "{}", twice.0);
    }
}
