//! The tip split driven the way an app's users drive it: over HTTP, paid through the fake
//! Stripe, with the ledger checked after each step.

use reqwest::Method;
use saas_auth::AuthModule;
use saas_core::testing::{TestApp, TestDatabase, TestResponse};
use saas_payments::testing::{FakeStripe, deliver_event};
use saas_payments::{Account, PaymentsModule, PaymentsService};
use serde_json::{Value, json};
use tip_split::TipSplit;
use uuid::Uuid;

struct Tipping {
    app: TestApp,
    stripe: FakeStripe,
}

async fn start(db: &TestDatabase) -> Tipping {
    let stripe = FakeStripe::start().await;
    let app = TestApp::builder()
        .module(AuthModule::default())
        .module(PaymentsModule::default().strategy(TipSplit))
        .var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
        .var("PLATFORM_FEE_PERCENT", "15")
        .var("STRIPE_SECRET_KEY", FakeStripe::SECRET_KEY)
        .var("STRIPE_WEBHOOK_SECRET", FakeStripe::WEBHOOK_SECRET)
        .var("STRIPE_API_BASE", stripe.url())
        .start(db)
        .await;
    Tipping { app, stripe }
}

async fn register(app: &TestApp, email: &str) -> (Uuid, String) {
    let response =
        app.post("/api/v1/auth/registration/", &json!({"email": email, "password": "correct horse battery"})).await;
    response.assert_status(201);
    let body = response.json();
    (
        body["user"]["id"].as_str().and_then(|id| id.parse().ok()).expect("user id"),
        body["access"].as_str().expect("token").to_owned(),
    )
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> TestResponse {
    let request = app.request(method, path).bearer(token);
    match body {
        Some(body) => request.json(&body).send().await,
        None => request.send().await,
    }
}

fn expect(response: TestResponse, status: u16) -> Value {
    response.assert_status(status);
    response.json()
}

async fn balance(app: &TestApp, account: Account) -> i64 {
    PaymentsService::get(app.context()).expect("payments").ledger().balance(&account).await.expect("balance")
}

async fn tip(t: &Tipping, token: &str, payee: Uuid, with: Value, percent: Value) -> Value {
    let body = json!({
        "strategy_type": "tip_split", "amount_cents": 10_000, "payee_id": payee,
        "metadata": {"split_with": with, "split_percent": percent},
    });
    expect(call(&t.app, Method::POST, "/api/v1/payments/orders/", token, Some(body)).await, 201)
}

#[tokio::test]
async fn a_paid_tip_is_split_between_two_payees_and_a_refund_takes_it_back_from_both() {
    let db = TestDatabase::create().await;
    let t = start(&db).await;
    let (_, payer) = register(&t.app, "payer@example.com").await;
    let (cook, cook_token) = register(&t.app, "cook@example.com").await;
    let (waiter, _) = register(&t.app, "waiter@example.com").await;

    let order = tip(&t, &payer, cook, json!(waiter), json!(30)).await;
    assert_eq!(order["strategy_type"], "tip_split");
    assert_eq!(order["state"], "pending");
    assert_eq!(order["platform_fee_cents"], 1500);
    let intent =
        t.stripe.requests().iter().rev().find(|r| r.path == "/v1/payment_intents").map(|r| r.idempotency_key.clone());
    assert_eq!(intent.flatten(), Some(format!("order:{}:create", order["id"].as_str().unwrap())));

    let intent_id = order_intent(&t, &order).await;
    let event = t.stripe.succeed_payment_intent(&intent_id);
    deliver_event(&t.app, &event).await.assert_status(200);
    saas_payments::testing::wait_processed(&t.app, &event).await;

    let id = order["id"].as_str().unwrap();
    let path = format!("/api/v1/payments/orders/{id}/");
    let paid = expect(call(&t.app, Method::GET, &path, &payer, None).await, 200);
    assert_eq!(paid["state"], "settled");
    assert_eq!(balance(&t.app, Account::user(cook, "usd")).await, 5950);
    assert_eq!(balance(&t.app, Account::user(waiter, "usd")).await, 2550);
    assert_eq!(balance(&t.app, Account::revenue("usd")).await, 1500);

    // The cook refunds 1000: 700 comes back from the cook, 300 from the waiter.
    let refund_path = format!("/api/v1/payments/orders/{id}/refund/");
    let refund =
        expect(call(&t.app, Method::POST, &refund_path, &cook_token, Some(json!({"amount_cents": 1000}))).await, 200);
    assert_eq!(refund["amount_cents"], 1000);
    assert_eq!(balance(&t.app, Account::user(cook, "usd")).await, 5250);
    assert_eq!(balance(&t.app, Account::user(waiter, "usd")).await, 2250);
    let refund_id = t
        .stripe
        .requests()
        .iter()
        .rev()
        .find(|r| r.path == "/v1/refunds")
        .expect("refund sent")
        .idempotency_key
        .clone();
    assert_eq!(refund_id, Some(format!("refund:{}", refund["id"].as_str().unwrap())));
    let stripe_refund = stripe_refund_id(&t, &order).await;
    let event = t.stripe.refund_event(&stripe_refund);
    deliver_event(&t.app, &event).await.assert_status(200);
    saas_payments::testing::wait_processed(&t.app, &event).await;
    let refunded = expect(call(&t.app, Method::GET, &path, &payer, None).await, 200);
    assert_eq!(refunded["state"], "partially_refunded");
    assert_eq!(refunded["refunded_cents"], 1000);
    let totals = PaymentsService::get(t.app.context()).unwrap().ledger().totals().await.unwrap();
    assert!(totals.iter().all(|(_, sum)| *sum == 0), "the ledger balances: {totals:?}");
}

#[tokio::test]
async fn a_tip_needs_a_valid_second_payee_and_percentage() {
    let db = TestDatabase::create().await;
    let t = start(&db).await;
    let (payer_id, payer) = register(&t.app, "payer@example.com").await;
    let (cook, _) = register(&t.app, "cook@example.com").await;
    let (waiter, _) = register(&t.app, "waiter@example.com").await;
    for (with, percent) in [
        (json!("not-a-user-id"), json!(30)),
        (json!(waiter), json!(0)),
        (json!(waiter), json!(100)),
        (json!(cook), json!(30)),
        (json!(payer_id), json!(30)),
    ] {
        let body = json!({
            "strategy_type": "tip_split", "amount_cents": 10_000, "payee_id": cook,
            "metadata": {"split_with": with, "split_percent": percent},
        });
        let error = expect(call(&t.app, Method::POST, "/api/v1/payments/orders/", &payer, Some(body)).await, 400);
        assert_eq!(error["error"]["code"], "validation.failed", "{with} {percent}");
    }
    assert_eq!(t.stripe.count("POST", "/v1/payment_intents"), 0, "nothing reached Stripe");
}

async fn order_intent(t: &Tipping, order: &Value) -> String {
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    let service = PaymentsService::get(t.app.context()).unwrap();
    service.order(id).await.unwrap().and_then(|o| o.stripe_payment_intent_id).expect("payment intent")
}

async fn stripe_refund_id(t: &Tipping, order: &Value) -> String {
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    let service = PaymentsService::get(t.app.context()).unwrap();
    let refunds = service.refunds(id).await.unwrap();
    refunds.last().and_then(|r| r.stripe_refund_id.clone()).expect("a refund at Stripe")
}
