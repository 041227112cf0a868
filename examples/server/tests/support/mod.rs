//! What the reference server's tests share: the composed app (with the fake Stripe when
//! payments are exercised), users registered over HTTP, and one object of each kind a user
//! can own.

#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::pkcs8::EncodePublicKey;
use reqwest::Method;
use saas_core::testing::{TestApp, TestAppBuilder};
use saas_payments::testing::{FakeStripe, deliver_event, wait_processed};
use serde_json::{Value, json};

/// The password of every registered test user.
pub const PASSWORD: &str = "correct horse battery";

/// The reference server's composition, without its sign-in rate limits.
pub fn app() -> TestAppBuilder {
    TestApp::builder().customize(saas_server::compose).var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
}

/// [`app`] talking to `stripe`.
pub fn app_with_stripe(stripe: &FakeStripe) -> TestAppBuilder {
    app()
        .var("STRIPE_SECRET_KEY", FakeStripe::SECRET_KEY)
        .var("STRIPE_WEBHOOK_SECRET", FakeStripe::WEBHOOK_SECRET)
        .var("STRIPE_API_BASE", stripe.url())
}

/// Registers `email`; returns its id and access token.
pub async fn register(app: &TestApp, email: &str) -> (String, String) {
    let response = app.post("/api/v1/auth/registration/", &json!({"email": email, "password": PASSWORD})).await;
    response.assert_status(201);
    let body = response.json();
    (body["user"]["id"].as_str().unwrap().to_owned(), body["access"].as_str().unwrap().to_owned())
}

/// A request as `token` that must succeed (2xx); its JSON body (null when empty).
pub async fn call(app: &TestApp, token: &str, method: Method, path: &str, body: Option<&Value>) -> Value {
    let mut request = app.request(method.clone(), path).bearer(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await;
    assert!((200..300).contains(&response.status), "{method} {path}: {} {}", response.status, response.text());
    if response.text().is_empty() { Value::Null } else { response.json() }
}

/// The `id` of an object.
pub fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("an id in {value}")).to_owned()
}

/// The `kind` notifications of a user.
pub async fn notifications_of(app: &TestApp, access: &str, kind: &str) -> Vec<Value> {
    let page = call(app, access, Method::GET, &format!("/api/v1/notifications/?type={kind}"), None).await;
    page["results"].as_array().unwrap().clone()
}

/// Waits (≤ 5 s) for the `kind` notifications of a user.
pub async fn await_notifications(app: &TestApp, access: &str, kind: &str) -> Vec<Value> {
    let mut found = Vec::new();
    for _ in 0..100 {
        found = notifications_of(app, access, kind).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    found
}

/// Creates an escrow order of `payer` for `payee`; returns its id.
pub async fn escrow_order(app: &TestApp, payer: &str, payee_id: &str) -> String {
    let body = json!({"strategy_type": "escrow", "amount_cents": 5_000, "payee_id": payee_id});
    id(&call(app, payer, Method::POST, "/api/v1/payments/orders/", Some(&body)).await)
}

/// The customer pays `order` at the fake Stripe; the event is delivered and processed.
pub async fn pay(app: &TestApp, stripe: &FakeStripe, order: &str) {
    let payments = saas_payments::PaymentsService::get(app.context()).expect("payments");
    let stored = payments.order(order.parse().expect("uuid")).await.expect("read").expect("the order");
    let event = stripe.succeed_payment_intent(&stored.stripe_payment_intent_id.expect("an intent"));
    deliver_event(app, &event).await.assert_status(200);
    wait_processed(app, &event).await;
}

/// One object of each kind a user owns, by id.
pub struct Owned {
    pub link: String,
    pub credential: String,
    /// A group with the other user, holding `message` (the owner's) and an answer.
    pub conversation: String,
    pub message: String,
    /// The owner's `new_message` notification of that answer.
    pub notification: String,
    pub device: String,
    /// An escrow order to the other user, paid and held.
    pub held_order: String,
    /// A subscription to the fake Stripe's `price_owned`.
    pub subscription: String,
}

/// Creates [`Owned`] for `owner`, with `other` (id, token) where it takes two.
pub async fn own_one_of_each(app: &TestApp, stripe: &FakeStripe, owner: &str, other: (&str, &str)) -> Owned {
    let (other_id, other_token) = other;
    let link = id(&call(app, owner, Method::GET, "/api/v1/auth/linked-accounts/", None).await[0]);
    let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("a key");
    let public = STANDARD.encode(key.verifying_key().to_public_key_der().expect("der").as_bytes());
    let body = json!({"device_id": "phone", "public_key": public, "algorithm": "ES256"});
    let enrolled = call(app, owner, Method::POST, "/api/v1/auth/biometric/enroll/", Some(&body)).await;
    let credential = enrolled["credential_id"].as_str().expect("credential id").to_owned();

    let body = json!({"conversation_type": "group", "title": "Owned", "participant_ids": [other_id]});
    let conversation = id(&call(app, owner, Method::POST, "/api/v1/chat/conversations/", Some(&body)).await);
    let messages = format!("/api/v1/chat/conversations/{conversation}/messages/");
    let message = id(&call(app, owner, Method::POST, &messages, Some(&json!({"content": "The owner's words"}))).await);
    call(app, other_token, Method::POST, &messages, Some(&json!({"content": "An answer"}))).await;
    let notification = id(await_notifications(app, owner, "new_message").await.first().expect("a notification"));
    let body = json!({"platform": "fcm", "token": "owned-device-token"});
    let device = id(&call(app, owner, Method::POST, "/api/v1/notifications/devices/", Some(&body)).await);

    let held_order = escrow_order(app, owner, other_id).await;
    pay(app, stripe, &held_order).await;
    stripe.add_price("price_owned", 1_000, "usd", "month");
    let body = json!({"price_id": "price_owned"});
    let subscription = id(&call(app, owner, Method::POST, "/api/v1/payments/subscriptions/", Some(&body)).await);
    Owned { link, credential, conversation, message, notification, device, held_order, subscription }
}
