//! Shared helpers of the payments tests: an app with accounts and payments talking to a
//! fake Stripe, users (staff made in SQL), signed webhook deliveries and waiting for the
//! job that processes them, orders driven through the API, and ledger checks.
#![allow(dead_code)]

use std::time::Duration;

use reqwest::Method;
use saas_auth::AuthModule;
use saas_core::testing::{TestApp, TestAppBuilder, TestDatabase, TestResponse, wait_until};
use saas_core::with_pool;
use saas_payments::testing::{AccountUpdate, FakeStripe, stripe_signature};
use saas_payments::{Account, Order, PaymentsModule, PaymentsService, Payout, Refund, WebhookEvent};
use serde_json::{Value, json};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery";
pub const USD: &str = "usd";

/// A user of the test app.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub uuid: Uuid,
    pub email: String,
    pub access: String,
}

/// A test app with the auth and payments modules, pointed at its own fake Stripe.
pub struct PayApp {
    pub app: TestApp,
    pub fake: FakeStripe,
    /// Whether the job worker runs (otherwise events are processed in the test's task).
    worker: bool,
    /// Dropped after the app.
    _db: TestDatabase,
}

impl std::ops::Deref for PayApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// The app's builder: accounts, payments, the fake's keys, a 15 % fee, the job worker
/// (no cron scheduler: tests drive what cron would do).
pub fn builder(fake: &FakeStripe) -> TestAppBuilder {
    TestApp::builder()
        .module(AuthModule::default())
        .module(PaymentsModule::default())
        .var("STRIPE_SECRET_KEY", FakeStripe::SECRET_KEY)
        .var("STRIPE_WEBHOOK_SECRET", FakeStripe::WEBHOOK_SECRET)
        .var("STRIPE_API_BASE", fake.url())
        .var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
        .var("PLATFORM_FEE_PERCENT", "15")
        .background(true, false)
}

/// An app with the job worker on, on a database of its own.
pub async fn start() -> PayApp {
    start_with(true).await
}

/// An app without the job worker: every delivered event is processed before
/// [`PayApp::deliver`] returns, and queued payouts run only when a test runs them.
pub async fn start_without_worker() -> PayApp {
    start_with(false).await
}

async fn start_with(worker: bool) -> PayApp {
    let db = TestDatabase::create().await;
    let fake = FakeStripe::start().await;
    let app = builder(&fake).background(worker, false).start(&db).await;
    PayApp { app, fake, worker, _db: db }
}

/// The `id` of an API object.
pub fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("no id in {value}")).to_owned()
}

/// The `Stripe-Signature` header of `payload` signed now with the app's webhook secret.
pub fn sign_now(payload: &str) -> String {
    stripe_signature(FakeStripe::WEBHOOK_SECRET, payload, chrono::Utc::now().timestamp())
}

/// An account update that finishes onboarding: nothing due, charges and payouts enabled.
pub fn onboarded() -> AccountUpdate {
    AccountUpdate { charges_enabled: true, payouts_enabled: true, details_submitted: true, ..AccountUpdate::default() }
}

/// The transitions of a history answer as `(from, action, to)`.
pub fn steps(history: &Value) -> Vec<(String, String, String)> {
    history
        .as_array()
        .unwrap_or_else(|| panic!("a history is a list: {history}"))
        .iter()
        .map(|t| {
            let text = |field: &str| t[field].as_str().unwrap_or_else(|| panic!("{field} in {t}")).to_owned();
            (text("from_state"), text("action"), text("to_state"))
        })
        .collect()
}

/// `steps` for literals.
pub fn expected_steps(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter().map(|(from, action, to)| ((*from).to_owned(), (*action).to_owned(), (*to).to_owned())).collect()
}

/// The steps of an order paid at the first attempt, then `then`.
pub fn paid_steps(then: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut rows = vec![
        ("draft", "submit", "pending"),
        ("pending", "process", "processing"),
        ("processing", "capture", "captured"),
    ];
    rows.extend_from_slice(then);
    expected_steps(&rows)
}

impl PayApp {
    pub fn service(&self) -> PaymentsService {
        PaymentsService::get(self.context()).expect("payments service")
    }

    // ---- users ----------------------------------------------------------------------

    pub async fn register(&self, email: &str) -> User {
        let response = self.post("/api/v1/auth/registration/", &json!({"email": email, "password": PASSWORD})).await;
        response.assert_status(201);
        let body = response.json();
        let id = body["user"]["id"].as_str().expect("user id").to_owned();
        User {
            uuid: id.parse().expect("uuid"),
            id,
            email: email.to_owned(),
            access: body["access"].as_str().expect("access").to_owned(),
        }
    }

    /// A user made staff directly in the database.
    pub async fn register_staff(&self, email: &str) -> User {
        let user = self.register(email).await;
        let updated = with_pool!(self.context().db(), pool =>
            sqlx::query("UPDATE auth_users SET is_staff = TRUE WHERE id = $1").bind(user.uuid).execute(pool).await
                .map(|done| done.rows_affected()))
        .expect("make staff");
        assert_eq!(updated, 1);
        user
    }

    /// The usual cast: a payer, a payee and a stranger.
    pub async fn cast(&self) -> (User, User, User) {
        (
            self.register("payer@example.com").await,
            self.register("payee@example.com").await,
            self.register("stranger@example.com").await,
        )
    }

    // ---- requests -------------------------------------------------------------------

    pub async fn get_as(&self, user: &User, path: &str) -> TestResponse {
        self.request(Method::GET, path).bearer(&user.access).send().await
    }

    pub async fn post_as(&self, user: &User, path: &str, body: &Value) -> TestResponse {
        self.request(Method::POST, path).bearer(&user.access).json(body).send().await
    }

    /// A POST with a raw JSON-typed body (malformed JSON tests).
    pub async fn post_raw_as(&self, user: &User, path: &str, body: &'static str) -> TestResponse {
        self.request(Method::POST, path)
            .bearer(&user.access)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
    }

    // ---- webhooks -------------------------------------------------------------------

    /// Posts a raw payload to the webhook endpoint with this `Stripe-Signature` (or none).
    pub async fn post_webhook(&self, payload: &str, signature: Option<&str>) -> TestResponse {
        let mut request = self
            .request(Method::POST, "/api/v1/payments/webhooks/stripe/")
            .header("content-type", "application/json")
            .body(payload.to_owned());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        request.send().await
    }

    /// Posts an event signed now, as Stripe would.
    pub async fn post_event(&self, event: &Value) -> TestResponse {
        let payload = event.to_string();
        self.post_webhook(&payload, Some(&sign_now(&payload))).await
    }

    /// The stored event once it was processed or ignored (up to 10 s); panics when its
    /// processing keeps failing.
    pub async fn wait_event(&self, event_id: &str) -> WebhookEvent {
        let service = self.service();
        let mut last = None;
        for _ in 0..200 {
            if !self.worker {
                service.process_webhook(event_id).await.expect("process the event");
            }
            let stored = service.webhook_event(event_id).await.expect("read the event");
            match stored {
                Some(event) if event.state == "processed" || event.state == "ignored" => return event,
                other => last = other,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("event {event_id} was not processed: {last:?}");
    }

    /// Posts an event (200, not a duplicate) and waits until it was processed or ignored.
    pub async fn deliver(&self, event: &Value) -> WebhookEvent {
        let response = self.post_event(event).await;
        response.assert_status(200);
        assert_eq!(response.json(), json!({"received": true, "duplicate": false}));
        self.wait_event(event["id"].as_str().expect("event id")).await
    }

    /// Delivers an event that must be applied to something of ours.
    pub async fn deliver_processed(&self, event: &Value) -> WebhookEvent {
        let stored = self.deliver(event).await;
        assert_eq!(stored.state, "processed", "{} was not applied: {stored:?}", event["type"]);
        stored
    }

    // ---- orders ---------------------------------------------------------------------

    /// `POST orders/` (201) as `payer`; returns the order JSON.
    pub async fn create_order(&self, payer: &User, body: Value) -> Value {
        let response = self.post_as(payer, "/api/v1/payments/orders/", &body).await;
        response.assert_status(201);
        response.json()
    }

    /// A direct order of `amount` to `payee` (or nobody).
    pub async fn direct_order(&self, payer: &User, payee: Option<&User>, amount: i64) -> Value {
        let mut body = json!({"strategy_type": "direct", "amount_cents": amount});
        if let Some(payee) = payee {
            body["payee_id"] = json!(payee.id);
        }
        self.create_order(payer, body).await
    }

    /// An escrow order of `amount` to `payee`.
    pub async fn escrow_order(&self, payer: &User, payee: &User, amount: i64) -> Value {
        self.create_order(payer, json!({"strategy_type": "escrow", "amount_cents": amount, "payee_id": payee.id})).await
    }

    /// A direct order of 100.00 from `payer` to `payee`, paid and settled (payee +85.00).
    pub async fn settled_order(&self, payer: &User, payee: &User) -> String {
        let id = id_of(&self.direct_order(payer, Some(payee), 10_000).await);
        self.pay(&id).await;
        assert_eq!(self.state(&id).await, "settled");
        id
    }

    /// An escrow order of 100.00 from `payer` to `payee`, paid and held.
    pub async fn held_order(&self, payer: &User, payee: &User) -> String {
        let id = id_of(&self.escrow_order(payer, payee, 10_000).await);
        self.pay(&id).await;
        assert_eq!(self.state(&id).await, "held");
        id
    }

    /// The stored order.
    pub async fn order(&self, id: &str) -> Order {
        self.service().order(id.parse().expect("order id")).await.expect("read order").expect("the order exists")
    }

    /// The order's state as stored.
    pub async fn state(&self, id: &str) -> String {
        self.order(id).await.state.as_str().to_owned()
    }

    /// The order's PaymentIntent at the fake.
    pub async fn payment_intent(&self, order_id: &str) -> String {
        self.order(order_id).await.stripe_payment_intent_id.expect("the order has a PaymentIntent")
    }

    /// The payer pays at Stripe; the `payment_intent.succeeded` event is delivered.
    pub async fn pay(&self, order_id: &str) -> Value {
        let event = self.fake.succeed_payment_intent(&self.payment_intent(order_id).await);
        self.deliver_processed(&event).await;
        event
    }

    /// The card is declined; the `payment_intent.payment_failed` event is delivered.
    pub async fn decline(&self, order_id: &str) -> Value {
        let event = self.fake.fail_payment_intent(&self.payment_intent(order_id).await);
        self.deliver_processed(&event).await;
        event
    }

    /// `GET orders/{id}/history/` as `user` (200), as `(from, action, to)`.
    pub async fn history(&self, user: &User, order_id: &str) -> Vec<(String, String, String)> {
        let response = self.get_as(user, &format!("/api/v1/payments/orders/{order_id}/history/")).await;
        response.assert_status(200);
        steps(&response.json())
    }

    /// `POST orders/{id}/{action}/` as `user`.
    pub async fn act(&self, user: &User, order_id: &str, action: &str, body: Value) -> TestResponse {
        self.post_as(user, &format!("/api/v1/payments/orders/{order_id}/{action}/"), &body).await
    }

    // ---- refunds and payouts --------------------------------------------------------

    /// The order's refunds, oldest first.
    pub async fn refunds(&self, order_id: &str) -> Vec<Refund> {
        self.service().refunds(order_id.parse().expect("order id")).await.expect("read refunds")
    }

    /// Refunds (200) as `user`, then settles the refund at Stripe and delivers
    /// `charge.refunded`; returns the refund JSON as the API answered it.
    pub async fn refund_and_settle(&self, user: &User, order_id: &str, body: Value) -> Value {
        let response = self.act(user, order_id, "refund", body).await;
        response.assert_status(200);
        let refund = response.json();
        let stored = self
            .refunds(order_id)
            .await
            .into_iter()
            .find(|r| r.id.to_string() == refund["id"].as_str().expect("refund id"))
            .expect("the refund is stored");
        let stripe_id = stored.stripe_refund_id.expect("the refund was sent to Stripe");
        self.deliver_processed(&self.fake.refund_event(&stripe_id)).await;
        refund
    }

    /// The payouts of an order (at most one).
    pub async fn payouts_of(&self, order_id: &str) -> Vec<Payout> {
        let id: Uuid = order_id.parse().expect("order id");
        with_pool!(self.context().db(), pool =>
            sqlx::query_as::<_, Payout>("SELECT * FROM payment_payouts WHERE order_id = $1").bind(id).fetch_all(pool).await)
        .expect("read payouts")
    }

    /// The one payout of an order.
    pub async fn payout_of(&self, order_id: &str) -> Payout {
        let mut payouts = self.payouts_of(order_id).await;
        assert_eq!(payouts.len(), 1, "one payout of {order_id}: {payouts:?}");
        payouts.remove(0)
    }

    /// The payout once its transfer is stored (the execute job ran; up to 10 s).
    pub async fn transferred_payout(&self, order_id: &str) -> Payout {
        let mut found = None;
        wait_until("the payout's transfer", async || {
            found = self.payouts_of(order_id).await.into_iter().find(|p| p.stripe_transfer_id.is_some());
            found.is_some()
        })
        .await;
        found.expect("a transferred payout")
    }

    /// `user` onboards with Connect and Stripe reports the account ready for payouts.
    pub async fn onboard(&self, user: &User) -> String {
        let response = self.post_as(user, "/api/v1/payments/connect/onboarding/", &json!({})).await;
        response.assert_status(200);
        let account = self.connected_account(user).await;
        self.deliver_processed(&self.fake.account_event(&account, onboarded())).await;
        account
    }

    /// The user's Stripe account id.
    pub async fn connected_account(&self, user: &User) -> String {
        self.service()
            .connected_account(user.uuid)
            .await
            .expect("read the account")
            .expect("the user has a Connect account")
            .stripe_account_id
    }

    /// `GET connect/status/` as `user`.
    pub async fn connect_status(&self, user: &User) -> Value {
        let response = self.get_as(user, "/api/v1/payments/connect/status/").await;
        response.assert_status(200);
        response.json()
    }

    // ---- ledger ---------------------------------------------------------------------

    pub async fn balance(&self, account: &Account) -> i64 {
        self.service().ledger().balance(account).await.expect("balance")
    }

    pub async fn user_balance(&self, user: &User) -> i64 {
        self.balance(&Account::user(user.uuid, USD)).await
    }

    /// `(stripe, escrow, revenue)` in USD.
    pub async fn platform_balances(&self) -> (i64, i64, i64) {
        (
            self.balance(&Account::stripe(USD)).await,
            self.balance(&Account::escrow(USD)).await,
            self.balance(&Account::revenue(USD)).await,
        )
    }

    /// Every currency's balances sum to zero.
    pub async fn assert_balanced(&self) {
        let totals = self.service().ledger().totals().await.expect("totals");
        assert!(totals.iter().all(|(_, sum)| *sum == 0), "the ledger is unbalanced: {totals:?}");
    }

    pub async fn entry_count(&self) -> i64 {
        self.service().ledger().entry_count().await.expect("entry count")
    }

    /// How many ledger entries have a key matching the SQL `LIKE` pattern.
    pub async fn entries_like(&self, pattern: &str) -> i64 {
        with_pool!(self.context().db(), pool => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM payments_ledger_entries WHERE idempotency_key LIKE $1")
            .bind(pattern).fetch_one(pool).await)
        .expect("count entries")
    }

    /// The keys of the recorded Stripe requests `method path_prefix`, in order.
    pub fn stripe_keys(&self, method: &str, path_prefix: &str) -> Vec<Option<String>> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(path_prefix))
            .map(|r| r.idempotency_key)
            .collect()
    }
}
