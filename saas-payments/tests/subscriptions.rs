//! Subscriptions through the API against the fake Stripe: creation (customer once, keyed
//! requests, the first invoice's client secret), paid invoices becoming one settled order
//! each with fee and payee postings, failed invoices, cancellation at period end or at
//! once, and subscription events applied in order only — on SQLite, or PostgreSQL with
//! SAAS_TEST_DATABASE_URL.

mod support;

use serde_json::{Value, json};
use support::{PayApp, User, id_of};

const SUBSCRIPTIONS: &str = "/api/v1/payments/subscriptions/";

/// `POST subscriptions/` (201) for the 20.00 a month price, optionally paying `payee`.
async fn subscribe(app: &PayApp, user: &User, payee: Option<&User>) -> Value {
    app.fake.add_price("price_monthly", 2_000, "usd", "month");
    let mut body = json!({"price_id": "price_monthly"});
    if let Some(payee) = payee {
        body["payee_id"] = json!(payee.id);
    }
    let response = app.post_as(user, SUBSCRIPTIONS, &body).await;
    response.assert_status(201);
    response.json()
}

/// A subscription whose first invoice (20.00) was paid: `(id, Stripe id)`.
async fn active_subscription(app: &PayApp, user: &User, payee: Option<&User>) -> (String, String) {
    let subscription = subscribe(app, user, payee).await;
    let (id, stripe) = (id_of(&subscription), stripe_id(&subscription));
    app.deliver_processed(&app.fake.invoice_paid(&stripe, 2_000)).await;
    assert_eq!(stored(app, &id).await.state.as_str(), "active");
    (id, stripe)
}

fn stripe_id(subscription: &Value) -> String {
    subscription["stripe_subscription_id"].as_str().expect("a Stripe subscription").to_owned()
}

/// The subscription as stored, by our id.
async fn stored(app: &PayApp, id: &str) -> saas_payments::Subscription {
    app.service().subscription(id.parse().expect("uuid")).await.expect("read").expect("the subscription exists")
}

/// The subscriber's subscription orders, newest first.
async fn invoice_orders(app: &PayApp, user: &User) -> Vec<Value> {
    let response = app.get_as(user, "/api/v1/payments/orders/").await;
    response.assert_status(200);
    let body = response.json();
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|order| order["strategy_type"] == "subscription")
        .cloned()
        .collect()
}

#[tokio::test]
async fn subscribing_creates_the_customer_once_and_answers_the_first_invoice_secret() {
    let app = support::start().await;
    let (user, payee, stranger) = app.cast().await;

    let subscription = subscribe(&app, &user, Some(&payee)).await;
    let id = id_of(&subscription);
    assert_eq!(subscription["state"], "pending");
    assert_eq!(subscription["user_id"], user.id.as_str());
    assert_eq!(subscription["payee_id"], payee.id.as_str());
    assert_eq!(subscription["price_id"], "price_monthly");
    assert_eq!(subscription["cancel_at_period_end"], false);
    assert!(subscription["current_period_end"].is_string(), "{subscription}");
    let secret = subscription["client_secret"].as_str().expect("the first invoice's client secret");
    assert!(secret.contains("_secret_"), "{secret}");
    let stripe_subscription = app.fake.object(&stripe_id(&subscription)).expect("the subscription exists at Stripe");
    assert_eq!(stripe_subscription["metadata"]["subscription_id"], id.as_str());

    assert_eq!(app.stripe_keys("POST", "/v1/customers"), vec![Some(format!("customer:{}", user.id))]);
    let created: Vec<_> =
        app.fake.requests().into_iter().filter(|r| r.method == "POST" && r.path == "/v1/subscriptions").collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].idempotency_key.as_deref(), Some(format!("subscription:{id}:create").as_str()));
    assert_eq!(created[0].param("items[0][price]"), Some("price_monthly"));
    assert_eq!(created[0].param("payment_behavior"), Some("default_incomplete"));

    // A second subscription reuses the customer.
    let second = subscribe(&app, &user, None).await;
    assert_eq!(app.fake.count("POST", "/v1/customers"), 1);
    assert_eq!(app.fake.count("POST", "/v1/subscriptions"), 2);

    let listed = app.get_as(&user, SUBSCRIPTIONS).await;
    listed.assert_status(200);
    let ids: Vec<String> = listed.json()["results"].as_array().expect("results").iter().map(id_of).collect();
    assert_eq!(ids, vec![id_of(&second), id]);
    assert_eq!(app.get_as(&stranger, SUBSCRIPTIONS).await.json()["results"], json!([]));
}

#[tokio::test]
async fn invalid_subscriptions_are_refused() {
    let app = support::start().await;
    let (user, _, _) = app.cast().await;
    for (body, field) in [
        (json!({"price_id": ""}), "price_id"),
        (json!({"price_id": "price with spaces"}), "price_id"),
        (json!({"price_id": "price_monthly", "payee_id": user.id}), "payee_id"),
        (json!({"price_id": "price_monthly", "payee_id": uuid::Uuid::new_v4()}), "payee_id"),
    ] {
        let error = app.post_as(&user, SUBSCRIPTIONS, &body).await.assert_error(400, "validation.failed");
        assert!(error["details"]["fields"][field].is_array(), "{field} for {body}: {error}");
    }
    app.post_as(&user, SUBSCRIPTIONS, &json!({})).await.assert_error(400, "validation.failed");
    assert_eq!(app.fake.count("POST", "/v1/"), 0, "nothing reached Stripe");
}

#[tokio::test]
async fn each_paid_invoice_becomes_one_settled_order_with_fee_and_payee_share() {
    let app = support::start().await;
    let (user, payee, _) = app.cast().await;
    let subscription = subscribe(&app, &user, Some(&payee)).await;
    let id = id_of(&subscription);
    let stripe = stripe_id(&subscription);

    let paid = app.fake.invoice_paid(&stripe, 2_000);
    app.deliver_processed(&paid).await;
    assert_eq!(stored(&app, &id).await.state.as_str(), "active");
    let orders = invoice_orders(&app, &user).await;
    assert_eq!(orders.len(), 1, "{orders:?}");
    let order = &orders[0];
    assert_eq!(order["state"], "settled");
    assert_eq!(order["amount_cents"], 2_000);
    assert_eq!(order["platform_fee_cents"], 300);
    assert_eq!(order["subscription_id"], id.as_str());
    assert_eq!(order["payee_id"], payee.id.as_str());
    assert_eq!(order["payer_id"], user.id.as_str());
    assert_eq!(app.user_balance(&payee).await, 1_700);
    assert_eq!(app.platform_balances().await, (-2_000, 0, 300));
    let invoice = paid["data"]["object"]["id"].as_str().expect("invoice id");
    assert_eq!(app.entries_like(&format!("invoice:{invoice}:%")).await, 3);

    // The same event again, and the same invoice in another event: still one order.
    let again = app.post_event(&paid).await;
    again.assert_status(200);
    assert_eq!(again.json()["duplicate"], true);
    let redelivered = app.fake.event("invoice.paid", paid["data"]["object"].clone());
    app.deliver_processed(&redelivered).await;
    assert_eq!(invoice_orders(&app, &user).await.len(), 1);
    assert_eq!(app.user_balance(&payee).await, 1_700);

    // The next period's invoice: a second order.
    app.deliver_processed(&app.fake.invoice_paid(&stripe, 2_000)).await;
    let orders = invoice_orders(&app, &user).await;
    assert_eq!(orders.len(), 2);
    assert!(orders.iter().all(|o| o["state"] == "settled" && o["subscription_id"] == id.as_str()));
    assert_eq!(app.user_balance(&payee).await, 3_400);
    assert_eq!(app.platform_balances().await, (-4_000, 0, 600));
    assert_eq!(stored(&app, &id).await.state.as_str(), "active");
    app.assert_balanced().await;
}

#[tokio::test]
async fn an_invoice_without_a_payee_is_all_revenue() {
    let app = support::start().await;
    let (user, _, _) = app.cast().await;
    active_subscription(&app, &user, None).await;
    assert_eq!(app.platform_balances().await, (-2_000, 0, 2_000));
    assert_eq!(invoice_orders(&app, &user).await[0]["platform_fee_cents"], 300);
    app.assert_balanced().await;
}

#[tokio::test]
async fn a_failed_invoice_makes_the_subscription_past_due_until_one_is_paid() {
    let app = support::start().await;
    let (user, payee, _) = app.cast().await;
    let (id, stripe) = active_subscription(&app, &user, Some(&payee)).await;

    app.deliver_processed(&app.fake.invoice_payment_failed(&stripe)).await;
    assert_eq!(stored(&app, &id).await.state.as_str(), "past_due");
    assert_eq!(invoice_orders(&app, &user).await.len(), 1, "a failed invoice makes no order");

    app.deliver_processed(&app.fake.invoice_paid(&stripe, 2_000)).await;
    assert_eq!(stored(&app, &id).await.state.as_str(), "active");
    assert_eq!(invoice_orders(&app, &user).await.len(), 2);
    assert_eq!(app.user_balance(&payee).await, 3_400);
    let actions: Vec<String> = app
        .service()
        .history(id.parse().expect("uuid"))
        .await
        .expect("history")
        .into_iter()
        .map(|t| t.action)
        .collect();
    assert_eq!(actions, ["activate", "mark_past_due", "reactivate"]);
}

#[tokio::test]
async fn cancelling_at_period_end_keeps_it_active_until_stripe_ends_it() {
    let app = support::start().await;
    let (user, payee, stranger) = app.cast().await;
    let subscription = subscribe(&app, &user, Some(&payee)).await;
    let id = id_of(&subscription);
    let stripe = stripe_id(&subscription);
    let cancel = format!("{SUBSCRIPTIONS}{id}/cancel/");

    // A pending subscription cannot be cancelled yet.
    app.post_as(&user, &cancel, &json!({})).await.assert_error(409, "payments.invalid_transition");
    app.deliver_processed(&app.fake.invoice_paid(&stripe, 2_000)).await;

    app.post_as(&payee, &cancel, &json!({})).await.assert_error(403, "payments.permission_denied");
    app.post_as(&stranger, &cancel, &json!({})).await.assert_error(404, "not_found");

    let response = app.post_as(&user, &cancel, &json!({})).await;
    response.assert_status(200);
    let body = response.json();
    assert_eq!((body["state"].as_str(), body["cancel_at_period_end"].as_bool()), (Some("active"), Some(true)));
    assert_eq!(app.fake.object(&stripe).expect("subscription")["cancel_at_period_end"], true);
    assert_eq!(
        app.stripe_keys("POST", &format!("/v1/subscriptions/{stripe}")),
        vec![Some(format!("subscription:{id}:cancel:period_end"))]
    );

    // At the end of the period Stripe deletes it.
    app.deliver_processed(&app.fake.subscription_event(&stripe, "customer.subscription.deleted")).await;
    let ended = stored(&app, &id).await;
    assert_eq!(ended.state.as_str(), "cancelled");
    assert!(ended.cancel_at_period_end);
    app.post_as(&user, &cancel, &json!({})).await.assert_error(409, "payments.invalid_transition");
}

#[tokio::test]
async fn cancelling_immediately_ends_the_subscription_now() {
    let app = support::start().await;
    let (user, _, _) = app.cast().await;
    let (id, stripe) = active_subscription(&app, &user, None).await;

    let response = app.post_as(&user, &format!("{SUBSCRIPTIONS}{id}/cancel/"), &json!({"immediately": true})).await;
    response.assert_status(200);
    assert_eq!(response.json()["state"], "cancelled");
    assert_eq!(app.fake.count("DELETE", &format!("/v1/subscriptions/{stripe}")), 1);
    assert_eq!(app.fake.object(&stripe).expect("subscription")["status"], "canceled");

    // Stripe's own deletion event arriving afterwards changes nothing.
    app.deliver(&app.fake.subscription_event(&stripe, "customer.subscription.deleted")).await;
    assert_eq!(stored(&app, &id).await.state.as_str(), "cancelled");
    let cancels = app.service().history(id.parse().expect("uuid")).await.expect("history");
    assert_eq!(cancels.iter().filter(|t| t.action == "cancel").count(), 1);
}

#[tokio::test]
async fn an_older_subscription_event_never_overwrites_a_newer_one() {
    let app = support::start().await;
    let (user, _, _) = app.cast().await;
    let (id, stripe) = active_subscription(&app, &user, None).await;

    // Stripe sees the subscription active, then past due; the events arrive newest first.
    let older = app.fake.subscription_event(&stripe, "customer.subscription.updated");
    app.fake.invoice_payment_failed(&stripe);
    let newer = app.fake.subscription_event(&stripe, "customer.subscription.updated");
    assert!(older["created"].as_i64() < newer["created"].as_i64());
    assert_eq!(
        (older["data"]["object"]["status"].as_str(), newer["data"]["object"]["status"].as_str()),
        (Some("active"), Some("past_due"))
    );

    app.deliver_processed(&newer).await;
    assert_eq!(stored(&app, &id).await.state.as_str(), "past_due");
    app.deliver(&older).await;
    let current = stored(&app, &id).await;
    assert_eq!(current.state.as_str(), "past_due", "the older event was not applied");
    assert_eq!(current.stripe_status, "past_due");
    assert_eq!(Some(current.stripe_event_created), newer["created"].as_i64());
}
