//! `saas generate module` and `saas generate strategy` in an app made by `saas new`.

use crate::support::{assert_ok, assert_refused, files, new_app, read, saas, stdout, temp};

#[test]
fn a_module_gets_its_files_migrations_tests_and_wiring() {
    let dir = temp();
    let app = new_app(dir.path(), "demo", &[]);
    let before = files(&app);
    let output = saas(&app.join("src"), &["generate", "module", "blog_posts"]);
    assert_ok(&output);

    let added: Vec<String> = files(&app).difference(&before).cloned().collect();
    assert_eq!(
        added,
        [
            "migrations/postgres/0002_blog_posts.sql",
            "migrations/sqlite/0002_blog_posts.sql",
            "src/modules/blog_posts/admin.rs",
            "src/modules/blog_posts/mod.rs",
            "src/modules/blog_posts/model.rs",
            "src/modules/blog_posts/routes.rs",
            "src/modules/blog_posts/service.rs",
            "src/modules/blog_posts/store.rs",
            "tests/api/blog_posts.rs",
        ]
    );
    for file in &added {
        let text = read(&app, file);
        assert!(!text.contains("{{") && !text.contains("{%"), "template syntax left in {file}");
        assert!(!text.to_lowercase().contains("project"), "the example's names left in {file}:\n{text}");
    }
    assert!(read(&app, "src/modules/blog_posts/model.rs").contains("pub struct BlogPost {"));
    assert!(read(&app, "src/modules/blog_posts/routes.rs").contains("\"/api/v1/blog_posts/\""));
    assert!(read(&app, "migrations/sqlite/0002_blog_posts.sql").contains("CREATE TABLE blog_posts ("));
    let lib = read(&app, "src/lib.rs");
    assert!(lib.contains("    pub mod blog_posts;\n    pub mod projects;\n    // saas:module-files"), "{lib}");
    assert!(lib.contains("let builder = builder.module(modules::blog_posts::BlogPostsModule);\n    // saas:modules"));
    assert!(read(&app, "tests/api/main.rs").contains("mod blog_posts;\nmod health;"));
    let printed = stdout(&output);
    assert!(printed.contains("created src/modules/blog_posts/mod.rs") && printed.contains("Next:"), "{printed}");

    // The next module's migration comes after.
    assert_ok(&saas(&app, &["generate", "module", "people", "--singular", "person"]));
    assert!(read(&app, "migrations/postgres/0003_people.sql").contains("CREATE TABLE people ("));
    assert!(read(&app, "src/modules/people/model.rs").contains("pub struct Person {"));
}

#[test]
fn generators_refuse_to_overwrite_and_write_nothing() {
    let dir = temp();
    let app = new_app(dir.path(), "demo", &[]);
    assert_ok(&saas(&app, &["generate", "module", "notes"]));
    let before: Vec<(String, String)> = files(&app).into_iter().map(|f| (read(&app, &f), f)).collect();

    assert_refused(
        &saas(&app, &["generate", "module", "notes"]),
        "refusing to overwrite src/modules/notes/admin.rs, src/modules/notes/mod.rs",
    );
    assert_refused(&saas(&app, &["generate", "module", "projects"]), "refusing to overwrite");
    assert_ok(&saas(&app, &["generate", "strategy", "tip"]));
    assert_refused(&saas(&app, &["generate", "strategy", "tip"]), "refusing to overwrite src/strategies/tip.rs");

    let lib = read(&app, "src/lib.rs");
    assert_eq!(lib.matches("pub mod notes;").count(), 1);
    assert_eq!(lib.matches("strategies::tip::Tip").count(), 1);
    for (text, file) in before {
        if file != "src/lib.rs" && file != "tests/api/main.rs" {
            assert_eq!(read(&app, &file), text, "{file} changed");
        }
    }
}

#[test]
fn a_missing_marker_is_reported_and_nothing_is_written() {
    let dir = temp();
    let app = new_app(dir.path(), "demo", &[]);
    let lib = read(&app, "src/lib.rs").replace("// saas:modules\n", "");
    std::fs::write(app.join("src/lib.rs"), &lib).unwrap();
    let before = files(&app);
    assert_refused(&saas(&app, &["generate", "module", "notes"]), "src/lib.rs has no `// saas:modules` line");
    assert_eq!(files(&app), before);
    assert_eq!(read(&app, "src/lib.rs"), lib);
}

#[test]
fn a_strategy_is_registered_with_a_test_through_the_fake_stripe() {
    let dir = temp();
    let app = new_app(dir.path(), "demo", &[]);
    assert_ok(&saas(&app, &["generate", "strategy", "tip_split"]));
    let strategy = read(&app, "src/strategies/tip_split.rs");
    assert!(strategy.contains("pub struct TipSplit;") && strategy.contains("\"tip_split\""), "{strategy}");
    let test = read(&app, "tests/api/tip_split_strategy.rs");
    assert!(test.contains("FakeStripe::start()") && test.contains("wait_processed"), "{test}");
    let lib = read(&app, "src/lib.rs");
    assert!(lib.contains("    pub mod tip_split;\n    // saas:strategy-files"));
    assert!(lib.contains("let payments = payments.strategy(strategies::tip_split::TipSplit);\n    // saas:strategies"));
    assert!(read(&app, "tests/api/main.rs").contains("mod tip_split_strategy;\n// saas:tests"));
}

#[test]
fn a_strategy_needs_the_payments_domain() {
    let dir = temp();
    let app = new_app(dir.path(), "talk", &["--domains", "chat"]);
    let before = files(&app);
    assert_refused(&saas(&app, &["generate", "strategy", "tip"]), "talk has no payments domain");
    assert_eq!(files(&app), before);
}

#[test]
fn bad_names_and_folders_without_an_app_are_refused() {
    let dir = temp();
    assert_refused(&saas(dir.path(), &["generate", "module", "notes"]), "run this in the folder of an app");
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"other\"\n").unwrap();
    assert_refused(&saas(dir.path(), &["generate", "module", "notes"]), "no [package.metadata.saas] table");

    let app = new_app(dir.path(), "demo", &[]);
    let before = files(&app);
    for (command, name, expected) in [
        ("module", "Notes", "must start with a lower-case letter"),
        ("module", "blog-posts", "`-` is not allowed"),
        ("module", "type", "Rust keyword"),
        ("module", "support", "taken by the app's own files"),
        ("module", "notes_", "no leading, trailing or doubled `_`"),
        ("module", "order", "an SQL keyword"),
        ("module", "pages", "would be `Page`, a name the module's code already uses"),
        ("strategy", "escrow", "a strategy of the SDK"),
        ("strategy", "Tip", "must start with a lower-case letter"),
    ] {
        assert_refused(&saas(&app, &["generate", command, name]), expected);
    }
    assert_eq!(files(&app), before);
}
