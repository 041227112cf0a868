//! The `{{ name }}` strategy driven as the app's users drive it: an order over HTTP, paid
//! through the fake Stripe server the SDK's own tests use, with the ledger checked after each
//! step.

use saas_core::testing::{TestApp, TestDatabase};
use saas_payments::testing::{FakeStripe, deliver_event, wait_processed};
use saas_payments::{Account, PaymentsService};
use serde_json::json;
use uuid::Uuid;

use crate::support::{self, Client};

async fn start(db: &TestDatabase, stripe: &FakeStripe) -> TestApp {
    support::app()
        .var("PLATFORM_FEE_PERCENT", "10")
        .var("STRIPE_SECRET_KEY", FakeStripe::SECRET_KEY)
        .var("STRIPE_WEBHOOK_SECRET", FakeStripe::WEBHOOK_SECRET)
        .var("STRIPE_API_BASE", stripe.url())
        .start(db)
        .await
}

async fn balance(app: &TestApp, account: Account) -> i64 {
    PaymentsService::get(app.context()).expect("payments").ledger().balance(&account).await.expect("a balance")
}

#[tokio::test]
async fn a_paid_{{ name }}_order_credits_the_payee_and_a_refund_takes_it_back() {
    let db = TestDatabase::create().await;
    let stripe = FakeStripe::start().await;
    let app = start(&db, &stripe).await;
    let payer = Client::sign_up(&app, "payer@example.com").await;
    let payee = Client::sign_up(&app, "payee@example.com").await;

    let body = json!({"strategy_type": "{{ name }}", "amount_cents": 5000, "payee_id": payee.id});
    let order = payer.post("/api/v1/payments/orders/", &body).await;
    order.assert_status(201);
    let order = order.json();
    assert_eq!((&order["state"], &order["platform_fee_cents"]), (&json!("pending"), &json!(500)));

    let id: Uuid = order["id"].as_str().and_then(|id| id.parse().ok()).expect("an order id");
    let payments = PaymentsService::get(app.context()).expect("payments");
    let stored = payments.order(id).await.expect("the order").expect("a stored order");
    let event = stripe.succeed_payment_intent(&stored.stripe_payment_intent_id.expect("a payment intent"));
    deliver_event(&app, &event).await.assert_status(200);
    wait_processed(&app, &event).await;

    let path = format!("/api/v1/payments/orders/{id}/");
    assert_eq!(payer.get(&path).await.json()["state"], "settled");
    assert_eq!(balance(&app, Account::user(payee.id, "usd")).await, 4500);
    assert_eq!(balance(&app, Account::revenue("usd")).await, 500);

    let refund = payee.post(&format!("/api/v1/payments/orders/{id}/refund/"), &json!({"amount_cents": 1000})).await;
    refund.assert_status(200);
    assert_eq!(balance(&app, Account::user(payee.id, "usd")).await, 3500);
}

#[tokio::test]
async fn a_{{ name }}_order_needs_a_payee_other_than_the_payer() {
    let db = TestDatabase::create().await;
    let stripe = FakeStripe::start().await;
    let app = start(&db, &stripe).await;
    let payer = Client::sign_up(&app, "payer@example.com").await;

    for body in [
        json!({"strategy_type": "{{ name }}", "amount_cents": 5000}),
        json!({"strategy_type": "{{ name }}", "amount_cents": 5000, "payee_id": payer.id}),
    ] {
        payer.post("/api/v1/payments/orders/", &body).await.assert_error(400, "validation.failed");
    }
    assert_eq!(stripe.count("POST", "/v1/payment_intents"), 0, "nothing reached Stripe");
}
