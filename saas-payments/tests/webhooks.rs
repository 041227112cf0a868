//! The Stripe webhook endpoint: signatures checked (secret, timestamp tolerance both ways)
//! before anything is read, events stored once and processed once, unknown types stored
//! and ignored, out-of-order events never moving an order backwards, and disputes flagged
//! for staff — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use reqwest::Method;
use saas_payments::testing::{FakeStripe, stripe_signature};
use serde_json::{Value, json};
use support::PayApp;

const WEBHOOK: &str = "/api/v1/payments/webhooks/stripe/";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A direct order of 100.00 to a payee, created (pending); returns its id.
async fn pending_order(app: &PayApp) -> String {
    let (payer, payee, _) = app.cast().await;
    let order = app.direct_order(&payer, Some(&payee), 10_000).await;
    order["id"].as_str().expect("order id").to_owned()
}

/// Nothing of a refused delivery was stored.
async fn assert_not_stored(app: &PayApp, event: &Value) {
    let id = event["id"].as_str().expect("event id");
    assert!(app.service().webhook_event(id).await.expect("read").is_none(), "{id} was stored");
}

#[tokio::test]
async fn deliveries_without_a_valid_signature_are_refused() {
    let app = support::start().await;
    let event = app.fake.event("customer.created", json!({"id": "cus_123", "object": "customer"}));
    let payload = event.to_string();

    let wrong_secret = stripe_signature("whsec_someone_else", &payload, now());
    app.post_webhook(&payload, Some(&wrong_secret)).await.assert_error(400, "payments.invalid_signature");
    app.post_webhook(&payload, None).await.assert_error(400, "payments.invalid_signature");
    app.post_webhook(&payload, Some("garbage")).await.assert_error(400, "payments.invalid_signature");
    let no_v1 = format!("t={}", now());
    app.post_webhook(&payload, Some(&no_v1)).await.assert_error(400, "payments.invalid_signature");

    // Signed for another body.
    let other = stripe_signature(FakeStripe::WEBHOOK_SECRET, "{}", now());
    app.post_webhook(&payload, Some(&other)).await.assert_error(400, "payments.invalid_signature");

    // Outside the five-minute tolerance, in the past or in the future.
    let stale = stripe_signature(FakeStripe::WEBHOOK_SECRET, &payload, now() - 301);
    app.post_webhook(&payload, Some(&stale)).await.assert_error(400, "payments.invalid_signature");
    let future = stripe_signature(FakeStripe::WEBHOOK_SECRET, &payload, now() + 310);
    app.post_webhook(&payload, Some(&future)).await.assert_error(400, "payments.invalid_signature");
    assert_not_stored(&app, &event).await;

    // Within the tolerance it is accepted.
    let late = stripe_signature(FakeStripe::WEBHOOK_SECRET, &payload, now() - 240);
    let response = app.post_webhook(&payload, Some(&late)).await;
    response.assert_status(200);
    assert_eq!(response.json(), json!({"received": true, "duplicate": false}));
}

#[tokio::test]
async fn a_signed_body_without_id_or_type_is_a_validation_error() {
    let app = support::start().await;

    let payload = json!({"object": "event", "data": {"object": {}}}).to_string();
    let error =
        app.post_webhook(&payload, Some(&support::sign_now(&payload))).await.assert_error(400, "validation.failed");
    assert!(error["details"]["fields"]["id"].is_array(), "{error}");
    assert!(error["details"]["fields"]["type"].is_array(), "{error}");

    let untyped = json!({"id": "evt_untyped", "object": "event"}).to_string();
    let error =
        app.post_webhook(&untyped, Some(&support::sign_now(&untyped))).await.assert_error(400, "validation.failed");
    assert!(error["details"]["fields"]["type"].is_array(), "{error}");
    assert!(app.service().webhook_event("evt_untyped").await.expect("read").is_none());

    let not_json = "this is not JSON";
    app.post_webhook(not_json, Some(&support::sign_now(not_json))).await.assert_error(400, "validation.failed");
}

#[tokio::test]
async fn the_endpoint_only_accepts_post() {
    let app = support::start().await;
    app.get(WEBHOOK).await.assert_error(405, "method_not_allowed");
    app.request(Method::PUT, WEBHOOK).json(&json!({})).send().await.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn an_unknown_event_type_is_stored_and_ignored() {
    let app = support::start().await;
    let event = app.fake.event("customer.created", json!({"id": "cus_123", "object": "customer"}));

    let stored = app.deliver(&event).await;
    assert_eq!(stored.state, "ignored");
    assert_eq!(stored.event_type, "customer.created");
    assert_eq!(stored.attempts, 1);
    assert!(stored.last_error.is_none());
    assert_eq!(app.entry_count().await, 0);

    // A handled type about nothing of ours is ignored as well.
    let stray = app.fake.event("payment_intent.succeeded", json!({"id": "pi_unknown", "object": "payment_intent"}));
    assert_eq!(app.deliver(&stray).await.state, "ignored");
}

#[tokio::test]
async fn a_duplicate_delivery_is_acknowledged_and_processed_once() {
    let app = support::start().await;
    let id = pending_order(&app).await;

    let event = app.pay(&id).await;
    let entries = app.entry_count().await;
    let balances = app.platform_balances().await;
    assert_eq!(balances, (-10_000, 0, 1_500));

    for _ in 0..3 {
        let response = app.post_event(&event).await;
        response.assert_status(200);
        assert_eq!(response.json(), json!({"received": true, "duplicate": true}));
    }
    // Give a wrongly queued job the time to run.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stored = app.wait_event(event["id"].as_str().expect("id")).await;
    assert_eq!((stored.state.as_str(), stored.attempts), ("processed", 1));
    assert_eq!(app.entry_count().await, entries);
    assert_eq!(app.platform_balances().await, balances);
    let captures = app.service().history(id.parse().expect("uuid")).await.expect("history");
    assert_eq!(captures.iter().filter(|t| t.action == "capture").count(), 1);

    // Processing the stored event again (a retry) changes nothing either.
    app.service().process_webhook(event["id"].as_str().expect("id")).await.expect("reprocess");
    assert_eq!(app.entry_count().await, entries);
}

#[tokio::test]
async fn a_late_failure_never_moves_a_paid_order_backwards() {
    let app = support::start().await;
    let id = pending_order(&app).await;
    let intent = app.payment_intent(&id).await;
    // A first attempt was declined, the second succeeded; Stripe delivers them out of order.
    let failed = app.fake.fail_payment_intent(&intent);
    let succeeded = app.fake.succeed_payment_intent(&intent);

    app.deliver_processed(&succeeded).await;
    assert_eq!(app.state(&id).await, "settled");
    let entries = app.entry_count().await;

    app.deliver(&failed).await;
    assert_eq!(app.state(&id).await, "settled");
    assert_eq!(app.entry_count().await, entries);
    assert_eq!(app.platform_balances().await, (-10_000, 0, 1_500));
    let history = app.service().history(id.parse().expect("uuid")).await.expect("history");
    assert!(history.iter().all(|t| t.action != "fail"), "{history:?}");

    // A late cancellation does not undo it either.
    let canceled = app.fake.event("payment_intent.canceled", app.fake.object(&intent).expect("intent"));
    app.deliver(&canceled).await;
    assert_eq!(app.state(&id).await, "settled");
    app.assert_balanced().await;
}

#[tokio::test]
async fn a_dispute_is_flagged_for_staff() {
    let app = support::start().await;
    let id = pending_order(&app).await;
    app.pay(&id).await;
    let staff = app.register_staff("staff@example.com").await;
    let user = app.register("someone@example.com").await;

    let before = app.get_as(&staff, "/api/v1/payments/reconciliation/").await;
    before.assert_status(200);
    assert_eq!(before.json(), json!([]));

    let intent = app.payment_intent(&id).await;
    let dispute = app.fake.event(
        "charge.dispute.created",
        json!({"id": "dp_123", "object": "dispute", "amount": 10_000, "currency": "usd",
               "payment_intent": intent, "reason": "fraudulent", "status": "needs_response"}),
    );
    assert_eq!(app.deliver(&dispute).await.state, "processed");

    let issues = app.get_as(&staff, "/api/v1/payments/reconciliation/").await;
    issues.assert_status(200);
    let issues = issues.json();
    let issues = issues.as_array().expect("a list");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0]["object_type"], "order");
    assert_eq!(issues[0]["object_id"], id.as_str());
    assert_eq!(issues[0]["kind"], "dispute");
    assert!(issues[0]["detail"].as_str().is_some_and(|d| d.contains("dp_123") && d.contains("fraudulent")));
    assert_eq!(issues[0]["resolved"], false);

    app.get_as(&user, "/api/v1/payments/reconciliation/").await.assert_error(403, "auth.permission_denied");
    app.get("/api/v1/payments/reconciliation/").await.assert_status(401);

    // A dispute about a payment that is not ours is ignored.
    let stray = app.fake.event("charge.dispute.created", json!({"id": "dp_456", "payment_intent": "pi_elsewhere"}));
    assert_eq!(app.deliver(&stray).await.state, "ignored");
    let issues = app.get_as(&staff, "/api/v1/payments/reconciliation/").await.json();
    assert_eq!(issues.as_array().map(Vec::len), Some(1));
}
