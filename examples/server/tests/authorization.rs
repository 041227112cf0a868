//! The authorization matrix: for every endpoint that takes an id, another user's id answers
//! 404 and changes nothing — every table of the database reads the same before and after.
//! The matrix is checked against the OpenAPI document, so an endpoint added without a row
//! here fails the test. On SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::pkcs8::EncodePublicKey;
use reqwest::Method;
use saas_core::Db;
use saas_core::testing::{TestApp, TestDatabase, WsEvent};
use saas_payments::testing::{FakeStripe, deliver_event, wait_processed};
use serde_json::{Value, json};
use support::register;

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

/// The snapshot once background work has settled (two equal readings 200 ms apart).
async fn settled(db: &Db) -> Vec<(String, Vec<String>)> {
    let mut last = snapshot(db).await;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = snapshot(db).await;
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the database kept changing");
}

async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<&Value>) -> Value {
    let mut request = app.request(method.clone(), path).bearer(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await;
    assert!(
        (200..300).contains(&response.status),
        "{method} {path} as its owner: {} {}",
        response.status,
        response.text()
    );
    if response.text().is_empty() { Value::Null } else { response.json() }
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("an id in {value}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_ids_answer_404_and_change_nothing() {
    let db = TestDatabase::create().await;
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_pro", 2_000, "usd", "month");
    let app = support::app_with_stripe(&stripe).start(&db).await;
    let payments = saas_payments::PaymentsService::get(app.context()).expect("payments");
    let (ann_id, ann) = register(&app, "ann@example.com").await;
    let (bob_id, bob) = register(&app, "bob@example.com").await;
    let (mallory_id, mallory) = register(&app, "mallory@example.com").await;
    let _ = ann_id;

    // Ann's things.
    let link = call(&app, &ann, Method::GET, "/api/v1/auth/linked-accounts/", None).await;
    let link = id(&link[0]);
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("a key");
    let public = STANDARD.encode(key.verifying_key().to_public_key_der().expect("der").as_bytes());
    let body = json!({"device_id": "phone", "public_key": public, "algorithm": "ES256"});
    let credential = call(&app, &ann, Method::POST, "/api/v1/auth/biometric/enroll/", Some(&body)).await;
    let credential = credential["credential_id"].as_str().expect("credential id").to_owned();

    let body = json!({"conversation_type": "group", "title": "Ann and Bob", "participant_ids": [bob_id]});
    let conversation = id(&call(&app, &ann, Method::POST, "/api/v1/chat/conversations/", Some(&body)).await);
    let messages = format!("/api/v1/chat/conversations/{conversation}/messages/");
    let message = id(&call(&app, &ann, Method::POST, &messages, Some(&json!({"content": "Ann's words"}))).await);
    call(&app, &bob, Method::POST, &messages, Some(&json!({"content": "Bob's answer"}))).await;
    let body = json!({"conversation_type": "direct", "participant_ids": [bob_id]});
    let mallorys = id(&call(&app, &mallory, Method::POST, "/api/v1/chat/conversations/", Some(&body)).await);

    let mut notification = Value::Null;
    for _ in 0..100 {
        notification = call(&app, &ann, Method::GET, "/api/v1/notifications/", None).await["results"][0].clone();
        if !notification.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let notification = id(&notification);
    let body = json!({"platform": "fcm", "token": "ann-device-token"});
    let device = id(&call(&app, &ann, Method::POST, "/api/v1/notifications/devices/", Some(&body)).await);

    let mut orders = Vec::new();
    for _ in 0..3 {
        let body = json!({"strategy_type": "escrow", "amount_cents": 5_000, "payee_id": bob_id});
        orders.push(id(&call(&app, &ann, Method::POST, "/api/v1/payments/orders/", Some(&body)).await));
    }
    for order in &orders[..2] {
        let stored = payments.order(order.parse().expect("uuid")).await.expect("read").expect("the order");
        let event = stripe.succeed_payment_intent(&stored.stripe_payment_intent_id.expect("an intent"));
        deliver_event(&app, &event).await.assert_status(200);
        wait_processed(&app, &event).await;
    }
    let (released, held, pending) = (&orders[0], &orders[1], &orders[2]);
    call(&app, &ann, Method::POST, &format!("/api/v1/payments/orders/{released}/release/"), None).await;
    let payout = id(&call(&app, &bob, Method::GET, "/api/v1/payments/payouts/", None).await["results"][0]);
    let body = json!({"price_id": "price_pro"});
    let subscription = id(&call(&app, &ann, Method::POST, "/api/v1/payments/subscriptions/", Some(&body)).await);

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
        probe_with(M::POST, "/api/v1/payments/orders/{id}/refund/", order(released, "refund/"), json!({})),
        probe(M::POST, "/api/v1/payments/orders/{id}/cancel/", order(pending, "cancel/")),
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

    let before = settled(app.context().db()).await;
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

    let after = settled(app.context().db()).await;
    for ((table, rows), (_, rows_after)) in before.iter().zip(&after) {
        assert_eq!(rows, rows_after, "another user's requests changed {table}");
    }
    assert_eq!(before.len(), after.len());

    // The owners still see everything as it was.
    call(&app, &ann, Method::GET, &conv(&format!("messages/{message}/")), None).await;
    assert_eq!(call(&app, &ann, Method::GET, &order(held, ""), None).await["state"], "held");
}
