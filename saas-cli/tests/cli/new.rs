//! `saas new`: what it renders for each choice and what it refuses.

use crate::support::{assert_ok, assert_refused, files, new_app, read, saas, stdout, temp, workspace};

/// The files of every new app, whatever its domains and database.
const APP_FILES: &[&str] = &[
    ".dockerignore",
    ".env.example",
    ".github/workflows/ci.yml",
    ".gitignore",
    "Cargo.toml",
    "Dockerfile",
    "README.md",
    "build.rs",
    "docker-compose.yml",
    "migrations/postgres/0001_projects.sql",
    "migrations/sqlite/0001_projects.sql",
    "rustfmt.toml",
    "src/lib.rs",
    "src/main.rs",
    "src/modules/projects/admin.rs",
    "src/modules/projects/mod.rs",
    "src/modules/projects/model.rs",
    "src/modules/projects/routes.rs",
    "src/modules/projects/service.rs",
    "src/modules/projects/store.rs",
    "src/owner.rs",
    "tests/api/health.rs",
    "tests/api/main.rs",
    "tests/api/projects.rs",
    "tests/api/support.rs",
];

fn manifest(app: &std::path::Path) -> toml::Table {
    toml::from_str(&read(app, "Cargo.toml")).expect("Cargo.toml is TOML")
}

/// The Compose file and the CI workflow are YAML.
fn assert_yaml(app: &std::path::Path) {
    for file in ["docker-compose.yml", ".github/workflows/ci.yml"] {
        let parsed: Result<yaml_serde::Value, _> = yaml_serde::from_str(&read(app, file));
        assert!(parsed.is_ok(), "{file} is not YAML: {parsed:?}");
    }
}

#[test]
fn a_new_app_composes_every_domain_by_default_on_path_dependencies() {
    let dir = temp();
    let output = saas(dir.path(), &["new", "demo", "--sdk-path", workspace().to_str().unwrap()]);
    assert_ok(&output);
    let app = dir.path().join("demo");
    let expected: std::collections::BTreeSet<String> = APP_FILES.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(files(&app), expected);
    assert_eq!(files(dir.path()).len(), APP_FILES.len(), "nothing but the app is left in the output folder");

    let cargo = manifest(&app);
    assert_eq!(cargo["package"]["name"].as_str(), Some("demo"));
    let saas_meta = &cargo["package"]["metadata"]["saas"];
    for domain in ["auth", "payments", "chat", "notify"] {
        assert_eq!(saas_meta[domain].as_bool(), Some(true), "{domain}");
        assert!(cargo["dependencies"].get(format!("saas-{domain}")).is_some(), "saas-{domain}");
    }
    assert_eq!(saas_meta["db"].as_str(), Some("sqlite"));
    let patch = cargo["patch"]["crates-io"].as_table().expect("path dependencies");
    let checkout = std::fs::canonicalize(workspace()).unwrap();
    assert_eq!(patch["saas-core"]["path"].as_str(), Some(checkout.join("saas-core").to_str().unwrap()));
    assert_eq!(patch.len(), 7, "the six crates and the admin site");
    assert!(cargo["dependencies"].get("saas-admin").is_some());

    let lib = read(&app, "src/lib.rs");
    for module in [
        "saas_auth::AuthModule",
        "saas_admin::AdminModule",
        "saas_chat::ChatModule",
        "saas_notify::NotifyModule",
        "module(payments)",
    ] {
        assert!(lib.contains(module), "{module} in {lib}");
    }
    for marker in ["// saas:modules", "// saas:module-files", "// saas:strategies", "// saas:strategy-files"] {
        assert!(lib.contains(marker), "{marker}");
    }
    assert!(read(&app, "tests/api/main.rs").contains("// saas:tests"));
    assert!(read(&app, ".env.example").contains("\nDATABASE_URL=sqlite://data/app.db\n"));
    assert!(!read(&app, "docker-compose.yml").contains("postgres:17"));
    assert_yaml(&app);
    for file in APP_FILES {
        let text = read(&app, file);
        assert!(!text.contains("{{") && !text.contains("{%"), "template syntax left in {file}");
    }

    let printed = stdout(&output);
    for step in ["Next:", "cd demo", "cargo run", "cargo test", "saas generate module", "saas generate strategy"] {
        assert!(printed.contains(step), "{step} in {printed}");
    }
    assert!(printed.contains("rendering the template"), "progress is shown: {printed}");
}

#[test]
fn the_domains_and_database_chosen_shape_the_app() {
    let dir = temp();
    let output = saas(dir.path(), &["new", "talk", "--domains", "chat", "--db", "postgres", "--sdk-version", "0.2"]);
    assert_ok(&output);
    assert!(stdout(&output).contains("auth added: chat needs accounts"), "{}", stdout(&output));
    let app = dir.path().join("talk");
    let cargo = manifest(&app);
    let deps = cargo["dependencies"].as_table().unwrap();
    assert_eq!(deps["saas-chat"].as_str(), Some("0.2"));
    assert_eq!(deps["saas-auth"].as_str(), Some("0.2"));
    assert!(!deps.contains_key("saas-payments") && !deps.contains_key("saas-notify"));
    assert!(cargo.get("patch").is_none(), "crates.io versions, no path");
    let lib = read(&app, "src/lib.rs");
    assert!(lib.contains("saas_chat::ChatModule") && !lib.contains("payments") && !lib.contains("NotifyModule"));
    assert!(!lib.contains("saas:strategies"), "no strategies without payments");
    assert!(read(&app, ".env.example").contains("\nDATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/talk\n"));
    let compose = read(&app, "docker-compose.yml");
    assert!(compose.contains("postgres:17") && compose.contains("POSTGRES_DB: talk"), "{compose}");
    assert_yaml(&app);
    assert!(!stdout(&output).contains("generate strategy"), "no strategy step without payments");

    let plain = new_app(dir.path(), "plain-api", &["--domains", "none"]);
    let cargo = manifest(&plain);
    assert!(cargo["dependencies"].get("saas-auth").is_none());
    assert!(cargo["dependencies"].get("saas-admin").is_none(), "no staff accounts, no admin site");
    assert!(!read(&plain, "tests/api/projects.rs").contains("saas_admin"));
    let owner = read(&plain, "src/owner.rs");
    assert!(owner.contains("Uuid::nil()") && !owner.contains("saas_auth"), "{owner}");
    assert!(read(&plain, "tests/api/support.rs").contains("plain_api::compose"), "crate name of a dashed app");
    assert!(!read(&plain, "tests/api/projects.rs").contains("private_to_their_owner"));
}

#[test]
fn bad_names_are_refused_and_nothing_is_written() {
    let dir = temp();
    for (name, expected) in [
        ("2fast", "must start with a lower-case letter"),
        ("My-App", "must start with a lower-case letter"),
        ("my app", "` ` is not allowed"),
        ("my.app", "`.` is not allowed"),
        ("fn", "Rust keyword"),
        ("self", "Rust keyword"),
        ("test", "a crate the app depends on"),
        ("saas-core", "a crate the app depends on"),
    ] {
        assert_refused(&saas(dir.path(), &["new", name]), expected);
    }
    assert!(files(dir.path()).is_empty());
}

#[test]
fn an_existing_folder_is_left_alone() {
    let dir = temp();
    std::fs::create_dir(dir.path().join("demo")).unwrap();
    std::fs::write(dir.path().join("demo/notes.txt"), "mine").unwrap();
    assert_refused(&saas(dir.path(), &["new", "demo"]), "already exists");
    assert_eq!(files(dir.path()), ["demo/notes.txt".to_owned()].into());
}

#[test]
fn unknown_domains_and_bad_options_are_refused_and_nothing_is_written() {
    let dir = temp();
    let out = dir.path().to_str().unwrap();
    let unknown = saas(dir.path(), &["new", "demo", "--domains", "auth,billing"]);
    assert_refused(&unknown, "unknown domain `billing`: the domains are auth, payments, chat, notify");
    assert_refused(&saas(dir.path(), &["new", "demo", "--domains", ""]), "--domains is empty");
    assert_refused(&saas(dir.path(), &["new", "demo", "--sdk-path", out]), "not a checkout of the SDK");
    assert_refused(&saas(dir.path(), &["new", "demo", "--sdk-path", "/no/such/folder"]), "--sdk-path");
    assert_refused(&saas(dir.path(), &["new", "demo", "--output", "/no/such/folder"]), "does not exist");
    assert_refused(&saas(dir.path(), &["new", "demo", "--template", "/no/such/folder"]), "is not a folder");
    let bad_db = saas(dir.path(), &["new", "demo", "--db", "mysql"]);
    assert!(!bad_db.status.success() && crate::support::stderr(&bad_db).contains("mysql"));
    assert!(files(dir.path()).is_empty());
}

#[test]
fn another_template_folder_can_be_rendered() {
    let dir = temp();
    let template = dir.path().join("tpl");
    std::fs::create_dir_all(template.join("src")).unwrap();
    std::fs::write(template.join("cargo-generate.toml"), "[template]\ncargo_generate_version = \">=0.26\"\n").unwrap();
    std::fs::write(template.join("notes.md"), "{{crate_name}} on {{db}}, chat={{chat}}\n").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let output = saas(
        dir.path(),
        &["new", "my-app", "--template", template.to_str().unwrap(), "--db", "postgres", "--output", "out"],
    );
    assert_ok(&output);
    assert_eq!(read(&out, "my-app/notes.md"), "my_app on postgres, chat=true\n");
    assert_eq!(files(&out), ["my-app/notes.md".to_owned()].into());
}

#[test]
fn the_app_builds_like_the_workspace_so_they_share_a_target_folder() {
    // The profile and the dependency requirements of the template are the workspace's own:
    // a generated app built in the workspace's target folder reuses what it compiled.
    let dir = temp();
    let app = new_app(dir.path(), "demo", &["--sdk-path", workspace().to_str().unwrap()]);
    let app = manifest(&app);
    let root: toml::Table = toml::from_str(&read(&workspace(), "Cargo.toml")).unwrap();
    assert_eq!(app["profile"], root["profile"]);
    let shared = root["workspace"]["dependencies"].as_table().unwrap();
    for (name, requirement) in app["dependencies"].as_table().unwrap() {
        if name.starts_with("saas-") {
            continue;
        }
        assert_eq!(Some(requirement), shared.get(name), "{name} as the workspace has it");
    }
}
