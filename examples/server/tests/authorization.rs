//! The authorization matrix: for every endpoint that takes an id, another user's id answers
//! 404 and changes nothing — every table of the database reads the same before and after.
//! The matrix is checked against the OpenAPI document, so an endpoint added without a row
//! here fails the test. On SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use saas_core::testing::{TestDatabase, WsEvent};
use saas_core::{AppContext, Db};
use saas_payments::testing::FakeStripe;
use serde_json::{Value, json};
use support::{Owned, call, id, register};

mod support;

/// One request of the matrix: the route's template (as the OpenAPI document spells it) and
/// the concrete path naming someone else's object.
struct Probe {
    method: Method,
    template: &'static str,
    path: String,
    body: Option<Value>,
    /// What a user who is not the owner gets: 404, or 403 on a staff-only route.
    refusal: (u16, &'static str),
}

fn probe(method: Method, template: &'static str, path: String) -> Probe {
    Probe { method, template, path, body: None, refusal: (404, "not_found") }
}

fn probe_with(method: Method, template: &'static str, path: String, body: Value) -> Probe {
    Probe { method, template, path, body: Some(body), refusal: (404, "not_found") }
}

/// A staff-only route: 403 for every other user, whatever the id.
fn staff_only(probe: Probe) -> Probe {
    Probe { refusal: (403, "auth.permission_denied"), ..probe }
}

/// Every row of every table, as text, table by table.
async fn snapshot(db: &Db) -> Vec<(String, Vec<String>)> {
    let tables: Vec<String> = match db {
        Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
        )
        .fetch_all(pool)
        .await
        .expect("tables"),
        Db::Sqlite(pool) => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .expect("tables"),
    };
    let mut rows = Vec::new();
    for table in tables {
        let dump: Vec<String> = match db {
            Db::Postgres(pool) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t ORDER BY 1")))
                    .fetch_all(pool)
                    .await
                    .expect("rows")
            }
            Db::Sqlite(pool) => {
                let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
                    .bind(&table)
                    .fetch_all(pool)
                    .await
                    .expect("columns");
                let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {row} FROM \"{table}\" ORDER BY 1")))
                    .fetch_all(pool)
                    .await
                    .expect("rows")
            }
        };
        rows.push((table, dump));
    }
    rows
}

/// The snapshot once background work has settled (two equal readings 200 ms apart, no job
/// waiting or running).
async fn settled(ctx: &AppContext) -> Vec<(String, Vec<String>)> {
    let mut last = snapshot(ctx.db()).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = snapshot(ctx.db()).await;
        let stats = ctx.jobs().stats().await.expect("job counts");
        let idle = stats.pending == 0 && stats.running == 0;
        if now == last && idle {
            return now;
        }
        last = now;
    }
    panic!("the database kept changing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_ids_answer_404_and_change_nothing() {
    let db = TestDatabase::create().await;
    let stripe = FakeStripe::start().await;
    let app = support::app_with_stripe(&stripe).start(&db).await;
    let (_, ann) = register(&app, "ann@example.com").await;
    let (bob_id, bob) = register(&app, "bob@example.com").await;
    let (mallory_id, mallory) = register(&app, "mallory@example.com").await;

    // Ann's things: one of each kind, an order released (so Bob has a payout) and one pending.
    let Owned { link, credential, conversation, message, notification, device, held_order, subscription } =
        support::own_one_of_each(&app, &stripe, &ann, (&bob_id, &bob)).await;
    let body = json!({"conversation_type": "direct", "participant_ids": [bob_id]});
    let mallorys = id(&call(&app, &mallory, Method::POST, "/api/v1/chat/conversations/", Some(&body)).await);
    let released = support::escrow_order(&app, &ann, &bob_id).await;
    support::pay(&app, &stripe, &released).await;
    call(&app, &ann, Method::POST, &format!("/api/v1/payments/orders/{released}/release/"), None).await;
    let payout = id(&call(&app, &bob, Method::GET, "/api/v1/payments/payouts/", None).await["results"][0]);
    let pending = support::escrow_order(&app, &ann, &bob_id).await;
    let held = &held_order;

    use Method as M;
    let conv = |rest: &str| format!("/api/v1/chat/conversations/{conversation}/{rest}");
    let order = |order: &str, rest: &str| format!("/api/v1/payments/orders/{order}/{rest}");
    let probes = vec![
        probe(M::DELETE, "/api/v1/auth/linked-accounts/{id}/", format!("/api/v1/auth/linked-accounts/{link}/")),
        probe(
            M::DELETE,
            "/api/v1/auth/biometric/credentials/{id}/",
            format!("/api/v1/auth/biometric/credentials/{credential}/"),
        ),
        probe(M::GET, "/api/v1/chat/conversations/{id}/", conv("")),
        probe_with(M::PATCH, "/api/v1/chat/conversations/{id}/", conv(""), json!({"title": "Mine now"})),
        probe(M::DELETE, "/api/v1/chat/conversations/{id}/", conv("")),
        probe(M::POST, "/api/v1/chat/conversations/{id}/read/", conv("read/")),
        probe(M::POST, "/api/v1/chat/conversations/{id}/leave/", conv("leave/")),
        probe_with(
            M::POST,
            "/api/v1/chat/conversations/{id}/transfer-ownership/",
            conv("transfer-ownership/"),
            json!({"user_id": mallory_id}),
        ),
        probe(M::GET, "/api/v1/chat/conversations/{id}/participants/", conv("participants/")),
        probe_with(
            M::POST,
            "/api/v1/chat/conversations/{id}/participants/",
            conv("participants/"),
            json!({"user_id": mallory_id}),
        ),
        probe_with(
            M::PATCH,
            "/api/v1/chat/conversations/{id}/participants/{user_id}/",
            conv(&format!("participants/{bob_id}/")),
            json!({"role": "admin"}),
        ),
        probe(
            M::DELETE,
            "/api/v1/chat/conversations/{id}/participants/{user_id}/",
            conv(&format!("participants/{bob_id}/")),
        ),
        probe(M::GET, "/api/v1/chat/conversations/{id}/messages/", conv("messages/")),
        probe_with(
            M::POST,
            "/api/v1/chat/conversations/{id}/messages/",
            conv("messages/"),
            json!({"content": "let me in"}),
        ),
        probe(M::GET, "/api/v1/chat/conversations/{id}/messages/{message_id}/", conv(&format!("messages/{message}/"))),
        probe_with(
            M::PATCH,
            "/api/v1/chat/conversations/{id}/messages/{message_id}/",
            conv(&format!("messages/{message}/")),
            json!({"content": "rewritten"}),
        ),
        probe(
            M::DELETE,
            "/api/v1/chat/conversations/{id}/messages/{message_id}/",
            conv(&format!("messages/{message}/")),
        ),
        // Ann's message through a conversation Mallory is in.
        probe(
            M::GET,
            "/api/v1/chat/conversations/{id}/messages/{message_id}/",
            format!("/api/v1/chat/conversations/{mallorys}/messages/{message}/"),
        ),
        probe_with(
            M::PATCH,
            "/api/v1/chat/conversations/{id}/messages/{message_id}/",
            format!("/api/v1/chat/conversations/{mallorys}/messages/{message}/"),
            json!({"content": "rewritten"}),
        ),
        probe(
            M::DELETE,
            "/api/v1/chat/conversations/{id}/messages/{message_id}/",
            format!("/api/v1/chat/conversations/{mallorys}/messages/{message}/"),
        ),
        probe(M::GET, "/api/v1/notifications/{id}/", format!("/api/v1/notifications/{notification}/")),
        probe(M::POST, "/api/v1/notifications/{id}/read/", format!("/api/v1/notifications/{notification}/read/")),
        probe(M::DELETE, "/api/v1/notifications/devices/{id}/", format!("/api/v1/notifications/devices/{device}/")),
        probe(M::GET, "/api/v1/payments/orders/{id}/", order(held, "")),
        probe(M::GET, "/api/v1/payments/orders/{id}/history/", order(held, "history/")),
        probe(M::POST, "/api/v1/payments/orders/{id}/release/", order(held, "release/")),
        probe_with(M::POST, "/api/v1/payments/orders/{id}/refund/", order(held, "refund/"), json!({})),
        probe_with(M::POST, "/api/v1/payments/orders/{id}/refund/", order(&released, "refund/"), json!({})),
        probe(M::POST, "/api/v1/payments/orders/{id}/cancel/", order(&pending, "cancel/")),
        probe_with(
            M::POST,
            "/api/v1/payments/subscriptions/{id}/cancel/",
            format!("/api/v1/payments/subscriptions/{subscription}/cancel/"),
            json!({"immediately": true}),
        ),
        staff_only(probe(
            M::POST,
            "/api/v1/payments/payouts/{id}/retry/",
            format!("/api/v1/payments/payouts/{payout}/retry/"),
        )),
    ];

    // Every documented route that takes an id has a row.
    let schema = app.get("/schema/?format=json").await;
    schema.assert_status(200);
    let covered: BTreeSet<(String, String)> =
        probes.iter().map(|p| (p.method.as_str().to_owned(), p.template.to_owned())).collect();
    let mut missing = Vec::new();
    for (path, operations) in schema.json()["paths"].as_object().expect("paths") {
        if !path.contains('{') {
            continue;
        }
        for method in operations.as_object().expect("operations").keys() {
            let method = method.to_ascii_uppercase();
            if !covered.contains(&(method.clone(), path.clone())) {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(missing.is_empty(), "routes taking an id without a row in the matrix: {missing:?}");

    let before = settled(app.context()).await;
    for probe in &probes {
        let mut request = app.request(probe.method.clone(), &probe.path).bearer(&mallory);
        if let Some(body) = &probe.body {
            request = request.json(body);
        }
        let response = request.send().await;
        let (status, code) = probe.refusal;
        assert_eq!(response.status, status, "{} {} as another user: {}", probe.method, probe.path, response.text());
        assert_eq!(response.json()["error"]["code"], code, "{} {}", probe.method, probe.path);
    }
    let mut socket = app.websocket(&format!("/ws/chat/{conversation}/?token={mallory}")).await;
    assert_eq!(socket.next_within(Duration::from_secs(5)).await, Some(WsEvent::Closed(Some(4404))));

    let after = settled(app.context()).await;
    for ((table, rows), (_, rows_after)) in before.iter().zip(&after) {
        assert_eq!(rows, rows_after, "another user's requests changed {table}");
    }
    assert_eq!(before.len(), after.len());

    // The owners still see everything as it was.
    call(&app, &ann, Method::GET, &conv(&format!("messages/{message}/")), None).await;
    assert_eq!(call(&app, &ann, Method::GET, &order(held, ""), None).await["state"], "held");
}
