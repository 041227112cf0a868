//! Direct orders through the API against the fake Stripe: creation and its PaymentIntent,
//! payment by webhook with its ledger postings and recorded transitions, validation,
//! visibility, pagination, cancellation, and a failed payment retried — on SQLite, or
//! PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use serde_json::json;
use support::{expected_steps, id_of, paid_steps};

const ORDERS: &str = "/api/v1/payments/orders/";

#[tokio::test]
async fn creating_a_direct_order_makes_a_payment_intent_and_waits_for_payment() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;

    let order = app.direct_order(&payer, Some(&payee), 10_000).await;
    let id = id_of(&order);
    assert_eq!(order["state"], "pending");
    assert_eq!(order["strategy_type"], "direct");
    assert_eq!(order["amount_cents"], 10_000);
    assert_eq!(order["platform_fee_cents"], 1_500);
    assert_eq!(order["currency"], "usd");
    assert_eq!(order["payer_id"], payer.id.as_str());
    assert_eq!(order["payee_id"], payee.id.as_str());
    let intent = app.payment_intent(&id).await;
    let secret = order["client_secret"].as_str().expect("a client secret");
    assert!(secret.starts_with(&format!("{intent}_secret_")), "{secret} is the secret of {intent}");

    let created: Vec<_> =
        app.fake.requests().into_iter().filter(|r| r.method == "POST" && r.path == "/v1/payment_intents").collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].idempotency_key.as_deref(), Some(format!("order:{id}:create").as_str()));
    assert_eq!(created[0].param("amount"), Some("10000"));
    assert_eq!(created[0].param("currency"), Some("usd"));
    assert_eq!(created[0].param("metadata[order_id]"), Some(id.as_str()));
    assert_eq!(app.fake.object(&intent).expect("the intent exists")["amount"], 10_000);

    // Nothing moved in the ledger before the payment.
    assert_eq!(app.entry_count().await, 0);
}

#[tokio::test]
async fn a_paid_direct_order_with_a_payee_settles_with_the_fee_to_revenue_and_the_rest_to_the_payee() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = id_of(&app.direct_order(&payer, Some(&payee), 10_000).await);

    app.pay(&id).await;

    let response = app.get_as(&payer, &format!("{ORDERS}{id}/")).await;
    response.assert_status(200);
    assert_eq!(response.json()["state"], "settled");
    assert_eq!(app.platform_balances().await, (-10_000, 0, 1_500));
    assert_eq!(app.user_balance(&payee).await, 8_500);
    assert_eq!(app.user_balance(&payer).await, 0);
    app.assert_balanced().await;
    assert_eq!(app.entries_like(&format!("payment:{id}:%")).await, 3);

    let balance = app.get_as(&payee, "/api/v1/payments/ledger/balance/").await;
    balance.assert_status(200);
    assert_eq!(balance.json(), json!({"balances": [{"currency": "usd", "available_cents": 8_500}]}));

    assert_eq!(app.history(&payer, &id).await, paid_steps(&[("captured", "settle", "settled")]));
}

#[tokio::test]
async fn a_paid_direct_order_without_a_payee_is_all_revenue() {
    let app = support::start().await;
    let (payer, _, _) = app.cast().await;
    let order = app.direct_order(&payer, None, 10_000).await;
    assert!(order["payee_id"].is_null());
    let id = id_of(&order);

    app.pay(&id).await;

    assert_eq!(app.state(&id).await, "settled");
    assert_eq!(app.platform_balances().await, (-10_000, 0, 10_000));
    assert_eq!(app.user_balance(&payer).await, 0);
    app.assert_balanced().await;
}

#[tokio::test]
async fn fees_are_rounded_down() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    for (amount, fee) in [(9_999, 1_499), (100, 15), (1, 0)] {
        let order = app.direct_order(&payer, Some(&payee), amount).await;
        assert_eq!(order["platform_fee_cents"], fee, "fee of {amount}");
    }
}

#[tokio::test]
async fn invalid_orders_are_refused_with_the_field_at_fault() {
    let app = support::start().await;
    let (payer, _, _) = app.cast().await;

    let cases = [
        (json!({"strategy_type": "direct", "amount_cents": 0}), "amount_cents"),
        (json!({"strategy_type": "direct", "amount_cents": -500}), "amount_cents"),
        (json!({"strategy_type": "barter", "amount_cents": 1_000}), "strategy_type"),
        (json!({"strategy_type": "subscription", "amount_cents": 1_000}), "strategy_type"),
        (json!({"strategy_type": "escrow", "amount_cents": 1_000}), "payee_id"),
        (json!({"strategy_type": "escrow", "amount_cents": 1_000, "payee_id": payer.id}), "payee_id"),
        (json!({"strategy_type": "direct", "amount_cents": 1_000, "currency": "dollars"}), "currency"),
    ];
    for (body, field) in cases {
        let error = app.post_as(&payer, ORDERS, &body).await.assert_error(400, "validation.failed");
        let messages = &error["details"]["fields"][field];
        assert!(messages.as_array().is_some_and(|m| !m.is_empty()), "{field} is named for {body}: {error}");
    }

    let malformed = app.post_raw_as(&payer, ORDERS, "{\"strategy_type\": \"direct\", ").await;
    malformed.assert_error(400, "validation.failed");
    let missing = app.post_as(&payer, ORDERS, &json!({"strategy_type": "direct"})).await;
    missing.assert_error(400, "validation.failed");

    // Nothing was stored or sent to Stripe.
    assert_eq!(app.fake.count("POST", "/v1/payment_intents"), 0);
    let list = app.get_as(&payer, ORDERS).await;
    list.assert_status(200);
    assert_eq!(list.json()["results"], json!([]));
}

#[tokio::test]
async fn an_order_is_visible_to_its_payer_its_payee_and_staff_only() {
    let app = support::start().await;
    let (payer, payee, stranger) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    let id = id_of(&app.direct_order(&payer, Some(&payee), 2_500).await);
    let path = format!("{ORDERS}{id}/");

    for user in [&payer, &payee, &staff] {
        let response = app.get_as(user, &path).await;
        response.assert_status(200);
        assert_eq!(response.json()["id"], id.as_str());
    }
    app.get_as(&stranger, &path).await.assert_error(404, "not_found");
    app.get_as(&stranger, &format!("{path}history/")).await.assert_error(404, "not_found");
    app.get_as(&payer, &format!("{ORDERS}{}/", uuid::Uuid::new_v4())).await.assert_error(404, "not_found");
    app.get(&path).await.assert_status(401);
}

#[tokio::test]
async fn orders_are_listed_newest_first_a_page_at_a_time() {
    let app = support::start().await;
    let (payer, payee, stranger) = app.cast().await;
    let mut created = Vec::new();
    for amount in [1_000, 2_000, 3_000] {
        created.push(id_of(&app.direct_order(&payer, Some(&payee), amount).await));
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut path = format!("{ORDERS}?limit=1");
    for page in 0.. {
        assert!(page < 5, "pagination never ends");
        let response = app.get_as(&payer, &path).await;
        response.assert_status(200);
        let body = response.json();
        let results = body["results"].as_array().expect("results");
        assert_eq!(results.len(), 1, "{body}");
        seen.push(id_of(&results[0]));
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("{ORDERS}?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);

    // The payee sees them too; a stranger sees none.
    let payee_view = app.get_as(&payee, ORDERS).await.json();
    let ids: Vec<String> = payee_view["results"].as_array().expect("results").iter().map(id_of).collect();
    assert_eq!(ids, created);
    assert!(payee_view["next_cursor"].is_null());
    assert_eq!(app.get_as(&stranger, ORDERS).await.json()["results"], json!([]));
}

#[tokio::test]
async fn the_payer_cancels_a_pending_order_and_its_payment_intent() {
    let app = support::start().await;
    let (payer, payee, stranger) = app.cast().await;
    let id = id_of(&app.direct_order(&payer, Some(&payee), 4_000).await);
    let intent = app.payment_intent(&id).await;

    app.act(&payee, &id, "cancel", json!({})).await.assert_error(403, "payments.permission_denied");
    app.act(&stranger, &id, "cancel", json!({})).await.assert_error(404, "not_found");
    assert_eq!(app.state(&id).await, "pending");

    let response = app.act(&payer, &id, "cancel", json!({})).await;
    response.assert_status(200);
    assert_eq!(response.json()["state"], "cancelled");
    assert_eq!(app.fake.object(&intent).expect("intent")["status"], "canceled");
    assert_eq!(
        app.stripe_keys("POST", &format!("/v1/payment_intents/{intent}/cancel")),
        vec![Some(format!("order:{id}:cancel"))]
    );
    assert_eq!(app.history(&payer, &id).await.last().expect("a step").1, "cancel");

    // Cancelled is final.
    app.act(&payer, &id, "cancel", json!({})).await.assert_error(409, "payments.invalid_transition");
    assert_eq!(app.entry_count().await, 0);
}

#[tokio::test]
async fn a_settled_order_cannot_be_cancelled() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = id_of(&app.direct_order(&payer, Some(&payee), 4_000).await);
    app.pay(&id).await;

    let error = app.act(&payer, &id, "cancel", json!({})).await.assert_error(409, "payments.invalid_transition");
    assert_eq!(error["details"]["state"], "settled");
    assert_eq!(app.state(&id).await, "settled");
    assert_eq!(app.fake.count("POST", &format!("/v1/payment_intents/{}/cancel", app.payment_intent(&id).await)), 0);
    assert_eq!(app.user_balance(&payee).await, 3_400);
}

#[tokio::test]
async fn a_failed_payment_is_retried_and_then_settles() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = id_of(&app.direct_order(&payer, Some(&payee), 10_000).await);

    app.decline(&id).await;
    assert_eq!(app.state(&id).await, "failed");
    assert_eq!(app.entry_count().await, 0, "a failed payment moves no money");

    app.pay(&id).await;
    assert_eq!(app.state(&id).await, "settled");
    assert_eq!(app.user_balance(&payee).await, 8_500);
    assert_eq!(app.platform_balances().await, (-10_000, 0, 1_500));
    app.assert_balanced().await;
    assert_eq!(
        app.history(&payee, &id).await,
        expected_steps(&[
            ("draft", "submit", "pending"),
            ("pending", "process", "processing"),
            ("processing", "fail", "failed"),
            ("failed", "retry", "pending"),
            ("pending", "process", "processing"),
            ("processing", "capture", "captured"),
            ("captured", "settle", "settled"),
        ])
    );
}
