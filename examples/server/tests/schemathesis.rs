//! Hostile input: schemathesis (from PyPI) generates requests for every operation of the
//! reference server's OpenAPI document — valid, boundary and malformed — signed in as a
//! real user, with Stripe faked on loopback. No answer may be a 5xx, and every answer must
//! be documented: its status code, content type and body schema.
//!
//! Runs when `SAAS_SCHEMATHESIS=1` (`.ci/run` installs schemathesis and sets it); then a
//! missing `schemathesis` fails. `SCHEMATHESIS_EXAMPLES` sets the examples per operation
//! [25]. On SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

use saas_core::testing::{TestApp, TestDatabase};
use saas_payments::testing::FakeStripe;
use support::{Owned, register};

mod support;

/// The operations that end the caller's session: tested last, each run with a fresh user.
const SESSION_ENDING: &[&str] = &["/api/v1/auth/logout/", "/api/v1/auth/password/change/", "/api/v1/auth/deactivate/"];

/// What one run covers.
enum Scope<'a> {
    /// Every operation but the session-ending ones; ids are generated (so mostly unknown).
    Everything,
    /// The operations whose path names an object, with the ids of the caller's own objects
    /// (`config`: a schemathesis.toml binding them).
    OwnObjects(&'a std::path::Path),
    /// One session-ending operation.
    Only(&'a str),
}

/// Runs schemathesis against the app as `token`; returns whether it passed, and its output.
async fn schemathesis(app: &TestApp, token: &str, scope: Scope<'_>, dir: &std::path::Path) -> (bool, String) {
    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".to_owned());
    let mut command = tokio::process::Command::new("schemathesis");
    // Its caches stay out of the source tree.
    command.current_dir(dir);
    if let Scope::OwnObjects(config) = scope {
        command.arg("--config-file").arg(config);
    }
    command
        .arg("run")
        .arg(app.url("/schema/?format=json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &examples])
        .args(["--workers", "1", "--seed", "1", "--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "30"]);
    match scope {
        Scope::Everything => {
            for path in SESSION_ENDING {
                command.args(["--exclude-path", path]);
            }
        }
        Scope::OwnObjects(_) => {
            command.args(["--include-path-regex", "[{]"]);
        }
        Scope::Only(path) => {
            command.args(["--include-path", path]);
        }
    }
    let output = command.output().await.unwrap_or_else(|err| {
        panic!("SAAS_SCHEMATHESIS=1 but schemathesis does not start ({err}); `pip install schemathesis`")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Creates one object of each kind for `owner` (with `other` where it takes two) and returns
/// a schemathesis.toml that binds each path's ids to them.
async fn own_objects(app: &TestApp, stripe: &FakeStripe, owner: &str, other: (&str, &str)) -> String {
    let other_id = other.0;
    let Owned { link, credential, conversation, message, notification, device, held_order, subscription } =
        support::own_one_of_each(app, stripe, owner, other).await;
    let bind = |regex: &str, parameters: &str| {
        format!("[[operations]]\ninclude-path-regex = '{regex}'\nparameters = {{ {parameters} }}\n\n")
    };
    [
        bind("^/api/v1/auth/linked-accounts/", &format!("id = '{link}'")),
        bind("^/api/v1/auth/biometric/credentials/", &format!("id = '{credential}'")),
        bind(
            "^/api/v1/chat/conversations/",
            &format!("id = '{conversation}', message_id = '{message}', user_id = '{other_id}'"),
        ),
        bind("^/api/v1/notifications/devices/", &format!("id = '{device}'")),
        bind("^/api/v1/notifications/[^d]", &format!("id = '{notification}'")),
        bind("^/api/v1/payments/orders/", &format!("id = '{held_order}'")),
        bind("^/api/v1/payments/subscriptions/", &format!("id = '{subscription}'")),
        // Leaving or deleting the conversation would leave every other operation on it a 404.
        "[[operations]]\ninclude-name = 'POST /api/v1/chat/conversations/{id}/leave/'\nenabled = false\n\n".to_owned(),
        "[[operations]]\ninclude-name = 'DELETE /api/v1/chat/conversations/{id}/'\nenabled = false\n".to_owned(),
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_as_documented_and_never_with_a_server_error() {
    if std::env::var("SAAS_SCHEMATHESIS").as_deref() != Ok("1") {
        eprintln!("skipped: set SAAS_SCHEMATHESIS=1 (with schemathesis installed) to run");
        return;
    }
    let db = TestDatabase::create().await;
    let stripe = FakeStripe::start().await;
    let app = support::app_with_stripe(&stripe).start(&db).await;
    let check = |(passed, output): (bool, String)| {
        println!("{output}");
        assert!(passed, "schemathesis found answers that break the contract (above)");
    };

    let dir = tempfile::tempdir().expect("a temporary directory");
    let dir = dir.path();
    let (_, token) = register(&app, "schemathesis@example.com").await;
    check(schemathesis(&app, &token, Scope::Everything, dir).await);

    let (other_id, other) = register(&app, "other@example.com").await;
    let config = own_objects(&app, &stripe, &token, (&other_id, &other)).await;
    let path = dir.join("schemathesis.toml");
    std::fs::write(&path, config).expect("write the config");
    check(schemathesis(&app, &token, Scope::OwnObjects(&path), dir).await);

    for (n, operation) in SESSION_ENDING.iter().enumerate() {
        let (_, token) = register(&app, &format!("leaving{n}@example.com")).await;
        check(schemathesis(&app, &token, Scope::Only(operation), dir).await);
    }
}
