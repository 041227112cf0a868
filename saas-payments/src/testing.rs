//! A fake Stripe for tests, examples and generated apps (feature `testing`): a real HTTP
//! server on loopback that speaks Stripe's wire format — form-encoded requests, bearer
//! authentication, idempotency keys, Stripe's error envelope and objects that async-stripe's
//! typed models accept — and simulates what happens at Stripe afterwards (a payment
//! succeeding, a refund settling, an account finishing onboarding), returning the webhook
//! event Stripe would send. Sign it with [`stripe_signature`] and post it to the app.
//!
//! ```no_run
//! # async fn demo() -> saas_core::ServiceResult<()> {
//! use saas_payments::stripe::{NewPaymentIntent, StripeApi};
//! use saas_payments::testing::FakeStripe;
//!
//! let fake = FakeStripe::start().await;
//! let stripe = StripeApi::new(FakeStripe::SECRET_KEY, &fake.url())?;
//! let new = NewPaymentIntent { amount_cents: 1000, currency: "usd", description: None, transfer_group: None, metadata: vec![] };
//! let intent = stripe.create_payment_intent(&new, "order-1-charge").await?;
//! let event = fake.succeed_payment_intent(&intent.id); // payment_intent.succeeded
//! # let _ = event; Ok(()) }
//! ```
//!
//! Only what the crate uses is served: PaymentIntents, refunds, customers, subscriptions,
//! Express accounts, account links and transfers, plus `GET` of any stored object.

mod objects;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::task::JoinHandle;

use objects::{API_VERSION, error, interval_secs};

/// A fake Stripe API on `127.0.0.1`, state in memory; stopped when dropped.
pub struct FakeStripe {
    base_url: String,
    state: Arc<Mutex<Fake>>,
    server: JoinHandle<()>,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// "GET", "POST" or "DELETE".
    pub method: String,
    /// The path, e.g. "/v1/payment_intents".
    pub path: String,
    /// The decoded query and form pairs, in order (`metadata[order_id]`, `expand[0]`, …).
    pub params: Vec<(String, String)>,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

impl RecordedRequest {
    /// The first value of the parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// A failure to answer the next matching request with (see [`FakeStripe::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 402 `card_error` / `card_declined`.
    CardDeclined,
    /// 400 `invalid_request_error` with this message.
    InvalidRequest(String),
    /// 429, Stripe's rate limit.
    RateLimited,
    /// 500 `api_error`.
    ServerError,
}

/// What changes on a connected account in [`FakeStripe::account_event`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    /// Whether it can take charges.
    pub charges_enabled: bool,
    /// Whether Stripe pays out to it.
    pub payouts_enabled: bool,
    /// Whether the owner finished onboarding.
    pub details_submitted: bool,
    /// `requirements.disabled_reason`, e.g. "requirements.past_due".
    pub disabled_reason: Option<String>,
    /// `requirements.currently_due`.
    pub currently_due: Vec<String>,
    /// `requirements.past_due`.
    pub past_due: Vec<String>,
}

/// The `Stripe-Signature` header for `payload` at `timestamp` (unix seconds):
/// `t={timestamp},v1={hex HMAC-SHA256(secret, "{timestamp}.{payload}")}`.
pub fn stripe_signature(secret: &str, payload: &str, timestamp: i64) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC-SHA256 takes keys of any length")
    };
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts `event` to the app's webhook endpoint (`/api/v1/payments/webhooks/stripe/`),
/// signed now with [`FakeStripe::WEBHOOK_SECRET`], as Stripe would deliver it.
pub async fn deliver_event(app: &saas_core::testing::TestApp, event: &Value) -> saas_core::testing::TestResponse {
    let payload = event.to_string();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    app.request(Method::POST, "/api/v1/payments/webhooks/stripe/")
        .header("content-type", "application/json")
        .header("stripe-signature", &stripe_signature(FakeStripe::WEBHOOK_SECRET, &payload, now))
        .body(payload)
        .send()
        .await
}

/// Waits (at most ten seconds) until the app's job worker has processed `event` (stored
/// as `processed` or `ignored`) and returns its stored record; panics otherwise.
pub async fn wait_processed(app: &saas_core::testing::TestApp, event: &Value) -> crate::models::WebhookEvent {
    let id = event["id"].as_str().expect("an event id");
    let service = crate::PaymentsService::get(app.context()).expect("the payments module is mounted");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stored = service.webhook_event(id).await.expect("read the event");
        if let Some(stored) = stored.filter(|e| e.state == "processed" || e.state == "ignored") {
            return stored;
        }
        assert!(tokio::time::Instant::now() < deadline, "event {id} was not processed in time");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

impl FakeStripe {
    /// The secret key the fake accepts (`STRIPE_SECRET_KEY`).
    pub const SECRET_KEY: &'static str = "sk_test_fake";
    /// A webhook signing secret to sign the fake's events with (`STRIPE_WEBHOOK_SECRET`).
    pub const WEBHOOK_SECRET: &'static str = "whsec_test_fake";

    /// Starts the server on a free loopback port, on the current tokio runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|err| panic!("FakeStripe: cannot bind a loopback port: {err}"));
        let addr = listener.local_addr().unwrap_or_else(|err| panic!("FakeStripe: no local address: {err}"));
        let base_url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(Fake::new(base_url.clone())));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url, state, server }
    }

    /// `http://127.0.0.1:PORT`: what `STRIPE_API_BASE` is set to.
    pub fn url(&self) -> String {
        self.base_url.clone()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// How many requests with `method` had a path starting with `path_prefix`, e.g.
    /// `count("POST", "/v1/transfers")`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|request| request.method.eq_ignore_ascii_case(method) && request.path.starts_with(path_prefix))
            .count()
    }

    /// The stored object (of any kind, events included) with this id.
    pub fn object(&self, id: &str) -> Option<Value> {
        self.lock().objects.get(id).cloned()
    }

    /// The next request whose path starts with `path_prefix` fails with `failure` (once).
    pub fn fail_next(&self, path_prefix: &str, failure: Failure) {
        self.lock().failures.push((path_prefix.to_owned(), failure));
    }

    /// Declares a recurring price (subscriptions to an undeclared price get 10.00 USD a month).
    pub fn add_price(&self, price_id: &str, unit_amount_cents: i64, currency: &str, interval: &str) {
        let mut fake = self.lock();
        let product = fake.new_id("prod");
        let created = now();
        let price =
            objects::price(price_id, unit_amount_cents, &currency.to_ascii_lowercase(), interval, &product, created);
        fake.objects.insert(price_id.to_owned(), price);
    }

    /// The customer pays: status `succeeded`, `amount_received` = `amount`, a new charge in
    /// `latest_charge`. Returns the `payment_intent.succeeded` event.
    pub fn succeed_payment_intent(&self, id: &str) -> Value {
        let mut fake = self.lock();
        let mut intent = fake.expect_object(id, "payment_intent");
        if intent["status"] != "succeeded" {
            let charge_id = fake.new_id("ch");
            let balance_transaction = fake.new_id("txn");
            let payment_method = fake.new_id("pm");
            intent["payment_method"] = json!(payment_method);
            let charge = objects::charge(&charge_id, &intent, true, now(), &balance_transaction);
            fake.objects.insert(charge_id.clone(), charge);
            intent["status"] = json!("succeeded");
            intent["amount_received"] = intent["amount"].clone();
            intent["latest_charge"] = json!(charge_id);
            intent["last_payment_error"] = Value::Null;
            fake.objects.insert(id.to_owned(), intent.clone());
        }
        fake.event("payment_intent.succeeded", intent, None)
    }

    /// The customer's card is declined: a failed charge, `last_payment_error` set, status back
    /// to `requires_payment_method`. Returns the `payment_intent.payment_failed` event.
    pub fn fail_payment_intent(&self, id: &str) -> Value {
        let mut fake = self.lock();
        let mut intent = fake.expect_object(id, "payment_intent");
        let charge_id = fake.new_id("ch");
        let payment_method = fake.new_id("pm");
        intent["payment_method"] = json!(payment_method);
        let charge = objects::charge(&charge_id, &intent, false, now(), "");
        fake.objects.insert(charge_id.clone(), charge);
        intent["status"] = json!("requires_payment_method");
        intent["latest_charge"] = json!(charge_id);
        intent["payment_method"] = Value::Null;
        intent["last_payment_error"] = json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
            "charge": charge_id,
            "param": null,
        });
        fake.objects.insert(id.to_owned(), intent.clone());
        fake.event("payment_intent.payment_failed", intent, None)
    }

    /// The refund settles: status `succeeded`, and its charge's `amount_refunded` is the sum
    /// of the succeeded refunds of its PaymentIntent. Returns the `charge.refunded` event.
    pub fn refund_event(&self, refund_id: &str) -> Value {
        let mut fake = self.lock();
        let mut refund = fake.expect_object(refund_id, "refund");
        if refund["status"] != "succeeded" {
            refund["status"] = json!("succeeded");
            refund["balance_transaction"] = json!(fake.new_id("txn"));
            fake.objects.insert(refund_id.to_owned(), refund.clone());
        }
        let intent_id = refund["payment_intent"].as_str().unwrap_or_default().to_owned();
        let refunded = fake.refunded_amount(&intent_id, &["succeeded"]);
        let charge_id = refund["charge"].as_str().unwrap_or_default().to_owned();
        let mut charge = fake.expect_object(&charge_id, "charge");
        charge["amount_refunded"] = json!(refunded);
        charge["refunded"] = json!(refunded >= charge["amount"].as_i64().unwrap_or(0));
        fake.objects.insert(charge_id, charge.clone());
        fake.event("charge.refunded", charge, None)
    }

    /// An event about a transfer: `transfer.created`, `transfer.paid` (no change), or
    /// `transfer.failed` / `transfer.reversed` (the funds come back: `reversed` = true,
    /// `amount_reversed` = `amount`). The event carries the Transfer object.
    pub fn transfer_event(&self, transfer_id: &str, kind: &str) -> Value {
        let mut fake = self.lock();
        let mut transfer = fake.expect_object(transfer_id, "transfer");
        match kind {
            "transfer.created" | "transfer.paid" | "transfer.updated" => {}
            "transfer.failed" | "transfer.reversed" => {
                transfer["reversed"] = json!(true);
                transfer["amount_reversed"] = transfer["amount"].clone();
                fake.objects.insert(transfer_id.to_owned(), transfer.clone());
            }
            other => panic!("FakeStripe: unknown transfer event {other:?}"),
        }
        fake.event(kind, transfer, None)
    }

    /// Onboarding progresses at Stripe: `update` is applied to the account (its `transfers`
    /// capability becomes active with payouts). Returns the `account.updated` event.
    pub fn account_event(&self, account_id: &str, update: AccountUpdate) -> Value {
        let mut fake = self.lock();
        let mut account = fake.expect_object(account_id, "account");
        let previous = json!({
            "charges_enabled": account["charges_enabled"],
            "payouts_enabled": account["payouts_enabled"],
            "details_submitted": account["details_submitted"],
            "requirements": account["requirements"],
        });
        account["charges_enabled"] = json!(update.charges_enabled);
        account["payouts_enabled"] = json!(update.payouts_enabled);
        account["details_submitted"] = json!(update.details_submitted);
        let mut eventually_due = update.currently_due.clone();
        eventually_due.extend(update.past_due.iter().filter(|field| !update.currently_due.contains(field)).cloned());
        let requirements = &mut account["requirements"];
        requirements["disabled_reason"] = json!(update.disabled_reason);
        requirements["currently_due"] = json!(update.currently_due);
        requirements["past_due"] = json!(update.past_due);
        requirements["eventually_due"] = json!(eventually_due);
        if let Some(capabilities) = account["capabilities"].as_object_mut() {
            let status = if update.payouts_enabled { "active" } else { "inactive" };
            for value in capabilities.values_mut() {
                *value = json!(status);
            }
        }
        fake.objects.insert(account_id.to_owned(), account.clone());
        let mut event = fake.event("account.updated", account, Some(previous));
        // Connect events name the connected account they are about.
        event["account"] = json!(account_id);
        fake.objects.insert(event["id"].as_str().unwrap_or_default().to_owned(), event.clone());
        event
    }

    /// An invoice of the subscription is paid for `amount_cents` — its open invoice, or a
    /// new renewal invoice that starts the next period — and the subscription becomes
    /// `active`. Returns the `invoice.paid` event.
    pub fn invoice_paid(&self, subscription_id: &str, amount_cents: i64) -> Value {
        let mut fake = self.lock();
        let mut invoice = fake.open_or_renewal_invoice(subscription_id, Some(amount_cents));
        let paid_at = now();
        let attempts = invoice["attempt_count"].as_u64().unwrap_or(0) + 1;
        invoice["status"] = json!("paid");
        invoice["amount_due"] = json!(amount_cents);
        invoice["amount_paid"] = json!(amount_cents);
        invoice["amount_remaining"] = json!(0);
        invoice["subtotal"] = json!(amount_cents);
        invoice["total"] = json!(amount_cents);
        invoice["attempted"] = json!(true);
        invoice["attempt_count"] = json!(attempts);
        invoice["status_transitions"]["paid_at"] = json!(paid_at);
        let invoice_id = invoice["id"].as_str().unwrap_or_default().to_owned();
        fake.objects.insert(invoice_id.clone(), invoice.clone());
        // The PaymentIntent behind the confirmation secret succeeded.
        if let Some(intent_id) = fake.invoice_intents.get(&invoice_id).cloned()
            && let Some(intent) = fake.objects.get_mut(&intent_id)
        {
            intent["status"] = json!("succeeded");
            intent["amount"] = json!(amount_cents);
            intent["amount_received"] = json!(amount_cents);
        }
        let mut subscription = fake.expect_object(subscription_id, "subscription");
        subscription["status"] = json!("active");
        subscription["latest_invoice"] = json!(invoice_id);
        fake.objects.insert(subscription_id.to_owned(), subscription);
        fake.event("invoice.paid", invoice, None)
    }

    /// Collecting an invoice of the subscription fails (its open invoice, or a new renewal
    /// invoice); an active subscription becomes `past_due` (an `incomplete` one stays so, as
    /// at Stripe). Returns the `invoice.payment_failed` event.
    pub fn invoice_payment_failed(&self, subscription_id: &str) -> Value {
        let mut fake = self.lock();
        let mut invoice = fake.open_or_renewal_invoice(subscription_id, None);
        let attempts = invoice["attempt_count"].as_u64().unwrap_or(0) + 1;
        invoice["attempted"] = json!(true);
        invoice["attempt_count"] = json!(attempts);
        let invoice_id = invoice["id"].as_str().unwrap_or_default().to_owned();
        fake.objects.insert(invoice_id.clone(), invoice.clone());
        let mut subscription = fake.expect_object(subscription_id, "subscription");
        if subscription["status"] == "active" || subscription["status"] == "trialing" {
            subscription["status"] = json!("past_due");
        }
        subscription["latest_invoice"] = json!(invoice_id);
        fake.objects.insert(subscription_id.to_owned(), subscription);
        fake.event("invoice.payment_failed", invoice, None)
    }

    /// A `customer.subscription.created|updated|deleted` event with the stored subscription
    /// (`deleted` cancels it first).
    pub fn subscription_event(&self, subscription_id: &str, kind: &str) -> Value {
        let mut fake = self.lock();
        let mut subscription = fake.expect_object(subscription_id, "subscription");
        let previous = match kind {
            "customer.subscription.created" => None,
            "customer.subscription.updated" => Some(json!({})),
            "customer.subscription.deleted" => {
                cancel_now(&mut subscription);
                fake.objects.insert(subscription_id.to_owned(), subscription.clone());
                None
            }
            other => panic!("FakeStripe: unknown subscription event {other:?}"),
        };
        fake.event(kind, subscription, previous)
    }

    /// Any event of type `kind` around `object`.
    pub fn event(&self, kind: &str, object: Value) -> Value {
        self.lock().event(kind, object, None)
    }

    fn lock(&self) -> MutexGuard<'_, Fake> {
        lock(&self.state)
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::fmt::Debug for FakeStripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeStripe").field("url", &self.base_url).finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<Fake>) -> MutexGuard<'_, Fake> {
    // A panicking test must not take the fake down for the others.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs() as i64).unwrap_or(0)
}

fn random_suffix(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

fn cancel_now(subscription: &mut Value) {
    let at = now();
    subscription["status"] = json!("canceled");
    subscription["ended_at"] = json!(at);
    if subscription["canceled_at"].is_null() {
        subscription["canceled_at"] = json!(at);
    }
    subscription["cancellation_details"]["reason"] = json!("cancellation_requested");
}

/// An answer: HTTP status and JSON body.
type Answer = (u16, Value);

/// The first answer stored under an idempotency key.
struct Replay {
    fingerprint: String,
    answer: Answer,
}

/// The fake's state.
struct Fake {
    base_url: String,
    objects: HashMap<String, Value>,
    requests: Vec<RecordedRequest>,
    replays: HashMap<String, Replay>,
    failures: Vec<(String, Failure)>,
    /// Client secrets of open subscription invoices (shown when expanded).
    invoice_secrets: HashMap<String, String>,
    /// The PaymentIntent behind each subscription invoice.
    invoice_intents: HashMap<String, String>,
    last_event_created: i64,
    invoice_count: u64,
}

/// Decoded request parameters.
struct Params<'a>(&'a [(String, String)]);

impl Params<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn require(&self, name: &str) -> Result<&str, Answer> {
        self.get(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| invalid(Some("parameter_missing"), &format!("Missing required param: {name}."), Some(name)))
    }

    fn amount(&self, name: &str) -> Result<Option<i64>, Answer> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => match raw.parse::<i64>() {
                Ok(value) if value > 0 => Ok(Some(value)),
                _ => Err(invalid(
                    Some("parameter_invalid_integer"),
                    &format!("Invalid positive integer: {raw}"),
                    Some(name),
                )),
            },
        }
    }

    fn required_amount(&self, name: &str) -> Result<i64, Answer> {
        self.require(name)?;
        Ok(self.amount(name)?.unwrap_or_default())
    }

    fn flag(&self, name: &str) -> Option<bool> {
        self.get(name).map(|value| value == "true")
    }

    /// The `name[key]=value` pairs as an object (`metadata[order_id]=…`).
    fn map(&self, name: &str) -> Map<String, Value> {
        let prefix = format!("{name}[");
        self.0
            .iter()
            .filter_map(|(key, value)| {
                let inner = key.strip_prefix(&prefix)?.strip_suffix(']')?;
                (!inner.contains('[')).then(|| (inner.to_owned(), json!(value)))
            })
            .collect()
    }

    /// `expand[]=…` and `expand[0]=…`.
    fn expand(&self) -> Vec<&str> {
        self.0.iter().filter(|(key, _)| key.starts_with("expand[")).map(|(_, value)| value.as_str()).collect()
    }
}

fn invalid(code: Option<&str>, message: &str, param: Option<&str>) -> Answer {
    (400, error("invalid_request_error", code, message, param))
}

fn missing(kind: &str, id: &str, param: &str) -> Answer {
    (404, error("invalid_request_error", Some("resource_missing"), &format!("No such {kind}: '{id}'"), Some(param)))
}

fn failure_answer(failure: &Failure) -> Answer {
    match failure {
        Failure::CardDeclined => (
            402,
            json!({ "error": { "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                               "message": "Your card was declined.", "param": null } }),
        ),
        Failure::InvalidRequest(message) => (400, error("invalid_request_error", None, message, None)),
        Failure::RateLimited => (
            429,
            error(
                "invalid_request_error",
                Some("rate_limit"),
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                None,
            ),
        ),
        Failure::ServerError => {
            (500, error("api_error", None, "An unknown error occurred. Please try again later.", None))
        }
    }
}

/// Every request: record, authenticate, inject failures, replay idempotent requests, route.
async fn handle(
    State(state): State<Arc<Mutex<Fake>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut params: Vec<(String, String)> = Vec::new();
    for source in [uri.query().unwrap_or_default().as_bytes(), &body[..]] {
        params.extend(form_urlencoded::parse(source).map(|(key, value)| (key.into_owned(), value.into_owned())));
    }
    let text_header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let request = RecordedRequest {
        method: method.as_str().to_owned(),
        path,
        params,
        idempotency_key: text_header("idempotency-key"),
        authorization: text_header("authorization"),
    };
    let (status, body) = {
        let mut fake = lock(&state);
        fake.requests.push(request.clone());
        if let Some(account) = request.path.strip_prefix("/connect/onboarding/") {
            let page = format!("<!doctype html><title>Fake Stripe onboarding</title><p>Onboarding {account}</p>");
            return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
        }
        fake.answer(&request)
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    let request_id = format!("req_{}", random_suffix(14));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

impl Fake {
    fn new(base_url: String) -> Self {
        Self {
            base_url,
            objects: HashMap::new(),
            requests: Vec::new(),
            replays: HashMap::new(),
            failures: Vec::new(),
            invoice_secrets: HashMap::new(),
            invoice_intents: HashMap::new(),
            last_event_created: 0,
            invoice_count: 0,
        }
    }

    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", random_suffix(24))
    }

    fn expect_object(&self, id: &str, object: &str) -> Value {
        match self.objects.get(id) {
            Some(value) if value["object"] == object => value.clone(),
            _ => panic!("FakeStripe: no {object} {id:?}"),
        }
    }

    fn stored(&self, id: &str, object: &str) -> Option<Value> {
        self.objects.get(id).filter(|value| value["object"] == object).cloned()
    }

    fn answer(&mut self, request: &RecordedRequest) -> Answer {
        let expected = format!("Bearer {}", FakeStripe::SECRET_KEY);
        if request.authorization.as_deref() != Some(expected.as_str()) {
            let message = "Invalid API Key provided. You did not provide a valid API key as a Bearer token.";
            return (401, error("invalid_request_error", None, message, None));
        }
        if let Some(position) = self.failures.iter().position(|(prefix, _)| request.path.starts_with(prefix.as_str())) {
            let (_, failure) = self.failures.remove(position);
            return failure_answer(&failure);
        }
        // Stripe honours idempotency keys on POST only.
        let key = request.idempotency_key.clone().filter(|_| request.method == "POST");
        let mut sorted = request.params.clone();
        sorted.sort();
        let fingerprint = format!("{} {} {sorted:?}", request.method, request.path);
        if let Some(key) = &key
            && let Some(replay) = self.replays.get(key)
        {
            if replay.fingerprint == fingerprint {
                return replay.answer.clone();
            }
            let message = format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                 Try using a key other than '{key}' if you meant to execute a different request."
            );
            return (400, error("idempotency_error", None, &message, None));
        }
        let answer = self.route(&request.method, &request.path, &Params(&request.params)).unwrap_or_else(|err| err);
        // Validation failures are not saved by Stripe; results of executed requests are.
        if let Some(key) = key
            && (answer.0 < 300 || answer.0 == 402)
        {
            self.replays.insert(key, Replay { fingerprint, answer: answer.clone() });
        }
        answer
    }

    fn route(&mut self, method: &str, path: &str, params: &Params<'_>) -> Result<Answer, Answer> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", ["v1", "payment_intents"]) => self.create_payment_intent(params),
            ("POST", ["v1", "payment_intents", id, "cancel"]) => self.cancel_payment_intent(id, params),
            ("POST", ["v1", "refunds"]) => self.create_refund(params),
            ("POST", ["v1", "customers"]) => self.create_customer(params),
            ("POST", ["v1", "subscriptions"]) => self.create_subscription(params),
            ("GET", ["v1", "subscriptions", id]) => self.show_subscription(id, params),
            ("POST", ["v1", "subscriptions", id]) => self.update_subscription(id, params),
            ("DELETE", ["v1", "subscriptions", id]) => self.delete_subscription(id, params),
            ("POST", ["v1", "accounts"]) => self.create_account(params),
            ("POST", ["v1", "account_links"]) => self.create_account_link(params),
            ("POST", ["v1", "transfers"]) => self.create_transfer(params),
            ("GET", ["v1", resource, id]) => self.show(resource, id),
            _ => Err((
                404,
                error("invalid_request_error", None, &format!("Unrecognized request URL ({method}: {path})."), None),
            )),
        }
    }

    /// `GET /v1/{resource}/{id}` of any stored object.
    fn show(&self, resource: &str, id: &str) -> Result<Answer, Answer> {
        let object = match resource {
            "payment_intents" => "payment_intent",
            "charges" => "charge",
            "refunds" => "refund",
            "customers" => "customer",
            "prices" => "price",
            "invoices" => "invoice",
            "accounts" => "account",
            "transfers" => "transfer",
            "events" => "event",
            other => {
                let message = format!("Unrecognized request URL (GET: /v1/{other}/{id}).");
                return Err((404, error("invalid_request_error", None, &message, None)));
            }
        };
        match self.stored(id, object) {
            Some(value) => Ok((200, value)),
            None => Err(missing(object, id, "id")),
        }
    }

    fn create_payment_intent(&mut self, params: &Params<'_>) -> Result<Answer, Answer> {
        let amount = params.required_amount("amount")?;
        let currency = params.require("currency")?.to_ascii_lowercase();
        let id = self.new_id("pi");
        let client_secret = format!("{id}_secret_{}", random_suffix(24));
        let intent = objects::payment_intent(objects::NewIntent {
            id: &id,
            amount,
            currency: &currency,
            description: params.get("description"),
            transfer_group: params.get("transfer_group"),
            metadata: params.map("metadata"),
            automatic_payment_methods: params.flag("automatic_payment_methods[enabled]").unwrap_or(false),
            client_secret,
            created: now(),
        });
        self.objects.insert(id, intent.clone());
        Ok((200, intent))
    }

    fn cancel_payment_intent(&mut self, id: &str, params: &Params<'_>) -> Result<Answer, Answer> {
        let mut intent = self.stored(id, "payment_intent").ok_or_else(|| missing("payment_intent", id, "intent"))?;
        let status = intent["status"].as_str().unwrap_or_default().to_owned();
        let cancelable =
            ["requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"];
        if !cancelable.contains(&status.as_str()) {
            let message = format!(
                "You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with \
                 one of the following statuses may be canceled: {}.",
                cancelable.join(", ")
            );
            return Err(invalid(Some("payment_intent_unexpected_state"), &message, None));
        }
        intent["status"] = json!("canceled");
        intent["canceled_at"] = json!(now());
        intent["cancellation_reason"] = json!(params.get("cancellation_reason"));
        self.objects.insert(id.to_owned(), intent.clone());
        Ok((200, intent))
    }

    /// The amount of the refunds of `intent_id` whose status is one of `statuses`.
    fn refunded_amount(&self, intent_id: &str, statuses: &[&str]) -> i64 {
        self.objects
            .values()
            .filter(|value| value["object"] == "refund" && value["payment_intent"] == intent_id)
            .filter(|refund| statuses.iter().any(|status| refund["status"] == *status))
            .map(|refund| refund["amount"].as_i64().unwrap_or(0))
            .sum()
    }

    fn create_refund(&mut self, params: &Params<'_>) -> Result<Answer, Answer> {
        let intent_id = params.require("payment_intent")?;
        let intent = self
            .stored(intent_id, "payment_intent")
            .ok_or_else(|| missing("payment_intent", intent_id, "payment_intent"))?;
        let charge_id = intent["latest_charge"].as_str().unwrap_or_default().to_owned();
        if intent["status"] != "succeeded" || charge_id.is_empty() {
            let message = format!("This PaymentIntent ({intent_id}) does not have a successful charge to refund.");
            return Err(invalid(None, &message, Some("payment_intent")));
        }
        let received = intent["amount_received"].as_i64().unwrap_or(0);
        let remaining = received - self.refunded_amount(intent_id, &["pending", "succeeded", "requires_action"]);
        let amount = params.amount("amount")?.unwrap_or(remaining);
        if remaining <= 0 {
            let message = format!("Charge {charge_id} has already been refunded.");
            return Err(invalid(Some("charge_already_refunded"), &message, None));
        }
        if amount > remaining {
            let message = format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining}) for {charge_id}."
            );
            return Err(invalid(Some("amount_too_large"), &message, Some("amount")));
        }
        let id = self.new_id("re");
        let refund = objects::refund(objects::NewRefund {
            id: &id,
            amount,
            intent: &intent,
            reason: params.get("reason"),
            metadata: params.map("metadata"),
            created: now(),
        });
        self.objects.insert(id, refund.clone());
        Ok((200, refund))
    }

    fn create_customer(&mut self, params: &Params<'_>) -> Result<Answer, Answer> {
        let id = self.new_id("cus");
        let customer = objects::customer(&id, params.get("email"), params.get("name"), params.map("metadata"), now());
        self.objects.insert(id, customer.clone());
        Ok((200, customer))
    }

    /// The subscription as Stripe answers it, with `latest_invoice` expanded when asked.
    fn render_subscription(&self, mut subscription: Value, params: &Params<'_>) -> Value {
        let expand = params.expand();
        let wants_invoice = expand.iter().any(|path| *path == "latest_invoice" || path.starts_with("latest_invoice."));
        let invoice_id = subscription["latest_invoice"].as_str().unwrap_or_default().to_owned();
        if wants_invoice && let Some(mut invoice) = self.stored(&invoice_id, "invoice") {
            if expand.contains(&"latest_invoice.confirmation_secret")
                && invoice["status"] == "open"
                && let Some(secret) = self.invoice_secrets.get(&invoice_id)
            {
                invoice["confirmation_secret"] = json!({ "client_secret": secret, "type": "payment_intent" });
            }
            subscription["latest_invoice"] = invoice;
        }
        subscription
    }

    fn create_subscription(&mut self, params: &Params<'_>) -> Result<Answer, Answer> {
        let customer = params.require("customer")?;
        if self.stored(customer, "customer").is_none() {
            return Err(invalid(
                Some("resource_missing"),
                &format!("No such customer: '{customer}'"),
                Some("customer"),
            ));
        }
        let price_id = params.require("items[0][price]")?;
        let created = now();
        let price = match self.stored(price_id, "price") {
            Some(price) => price,
            None => {
                let product = self.new_id("prod");
                let price = objects::price(price_id, 1000, "usd", "month", &product, created);
                self.objects.insert(price_id.to_owned(), price.clone());
                price
            }
        };
        let id = self.new_id("sub");
        let item_id = self.new_id("si");
        let invoice_id = self.new_id("in");
        let subscription = objects::subscription(objects::NewSubscription {
            id: &id,
            item_id: &item_id,
            customer,
            price: &price,
            metadata: params.map("metadata"),
            latest_invoice: &invoice_id,
            created,
        });
        let amount = price["unit_amount"].as_i64().unwrap_or(0);
        let period_end = subscription["items"]["data"][0]["current_period_end"].as_i64().unwrap_or(created);
        self.add_invoice(&invoice_id, &subscription, amount, "subscription_create", (created, period_end));
        self.objects.insert(id, subscription.clone());
        Ok((200, self.render_subscription(subscription, params)))
    }

    /// Stores an open invoice with the PaymentIntent that collects it.
    fn add_invoice(&mut self, id: &str, subscription: &Value, amount: i64, reason: &str, period: (i64, i64)) -> Value {
        self.invoice_count += 1;
        let line_id = self.new_id("il");
        let invoice = objects::invoice(objects::NewInvoice {
            id,
            line_id: &line_id,
            subscription,
            amount,
            billing_reason: reason,
            period_start: period.0,
            period_end: period.1,
            number: self.invoice_count,
            created: now(),
        });
        let intent_id = self.new_id("pi");
        let client_secret = format!("{intent_id}_secret_{}", random_suffix(24));
        let mut intent = objects::payment_intent(objects::NewIntent {
            id: &intent_id,
            amount,
            currency: subscription["currency"].as_str().unwrap_or("usd"),
            description: Some("Subscription creation"),
            transfer_group: None,
            metadata: Map::new(),
            automatic_payment_methods: false,
            client_secret: client_secret.clone(),
            created: now(),
        });
        intent["customer"] = subscription["customer"].clone();
        self.objects.insert(intent_id.clone(), intent);
        self.invoice_secrets.insert(id.to_owned(), client_secret);
        self.invoice_intents.insert(id.to_owned(), intent_id);
        self.objects.insert(id.to_owned(), invoice.clone());
        invoice
    }

    /// The subscription's open latest invoice, or a new renewal invoice for the next period.
    fn open_or_renewal_invoice(&mut self, subscription_id: &str, amount: Option<i64>) -> Value {
        let mut subscription = self.expect_object(subscription_id, "subscription");
        let latest = subscription["latest_invoice"].as_str().unwrap_or_default().to_owned();
        if let Some(invoice) = self.stored(&latest, "invoice")
            && invoice["status"] == "open"
        {
            return invoice;
        }
        let item = &mut subscription["items"]["data"][0];
        let interval = item["price"]["recurring"]["interval"].as_str().unwrap_or("month").to_owned();
        let start = item["current_period_end"].as_i64().unwrap_or_else(now);
        let end = start + interval_secs(&interval);
        item["current_period_start"] = json!(start);
        item["current_period_end"] = json!(end);
        let amount = amount.unwrap_or_else(|| item["price"]["unit_amount"].as_i64().unwrap_or(0));
        let invoice_id = self.new_id("in");
        let invoice = self.add_invoice(&invoice_id, &subscription, amount, "subscription_cycle", (start, end));
        self.objects.insert(subscription_id.to_owned(), subscription);
        invoice
    }

    fn show_subscription(&self, id: &str, params: &Params<'_>) -> Result<Answer, Answer> {
        let subscription = self.stored(id, "subscription").ok_or_else(|| missing("subscription", id, "id"))?;
        Ok((200, self.render_subscription(subscription, params)))
    }

    fn update_subscription(&mut self, id: &str, params: &Params<'_>) -> Result<Answer, Answer> {
        let mut subscription = self.stored(id, "subscription").ok_or_else(|| missing("subscription", id, "id"))?;
        if let Some(at_period_end) = params.flag("cancel_at_period_end") {
            if subscription["status"] == "canceled" {
                let message = "A canceled subscription can only update its cancellation_details and metadata.";
                return Err(invalid(None, message, Some("cancel_at_period_end")));
            }
            subscription["cancel_at_period_end"] = json!(at_period_end);
            if at_period_end {
                subscription["cancel_at"] = subscription["items"]["data"][0]["current_period_end"].clone();
                subscription["canceled_at"] = json!(now());
                subscription["cancellation_details"]["reason"] = json!("cancellation_requested");
            } else {
                subscription["cancel_at"] = Value::Null;
                subscription["canceled_at"] = Value::Null;
                subscription["cancellation_details"]["reason"] = Value::Null;
            }
        }
        if let Some(metadata) = subscription["metadata"].as_object_mut() {
            for (key, value) in params.map("metadata") {
                if value == "" {
                    metadata.remove(&key);
                } else {
                    metadata.insert(key, value);
                }
            }
        }
        self.objects.insert(id.to_owned(), subscription.clone());
        Ok((200, self.render_subscription(subscription, params)))
    }

    /// Cancels at once; canceling a canceled subscription answers it unchanged.
    fn delete_subscription(&mut self, id: &str, params: &Params<'_>) -> Result<Answer, Answer> {
        let mut subscription = self.stored(id, "subscription").ok_or_else(|| missing("subscription", id, "id"))?;
        if subscription["status"] != "canceled" {
            cancel_now(&mut subscription);
            self.objects.insert(id.to_owned(), subscription.clone());
        }
        Ok((200, self.render_subscription(subscription, params)))
    }

    fn create_account(&mut self, params: &Params<'_>) -> Result<Answer, Answer> {
        let kind = params.get("type").unwrap_or("standard");
        if !["express", "standard", "custom"].contains(&kind) {
            return Err(invalid(Some("parameter_invalid_string"), &format!("Invalid type: {kind}"), Some("type")));
        }
        let capabilities: Map<String, Value> = params
            .0
            .iter()
            .filter_map(|(key, value)| {
                let name = key.strip_prefix("capabilities[")?.strip_suffix("][requested]")?;
                (value == "true").then(|| (name.to_owned(), json!("inactive")))
            })
            .collect();
        let id = self.new_id("acct");
        let country = params.get("country").unwrap_or("US");
        let account =
            objects::account(&id, kind, params.get("email"), country, capabilities, params.map("metadata"), now());
        self.objects.insert(id, account.clone());
        Ok((200, account))
    }

    fn create_account_link(&mut self, params: &Params<'_>) -> Result<Answer, Answer> {
        let account = params.require("account")?;
        let kind = params.require("type")?;
        if !["account_onboarding", "account_update"].contains(&kind) {
            return Err(invalid(Some("parameter_invalid_string"), &format!("Invalid type: {kind}"), Some("type")));
        }
        params.require("refresh_url")?;
        params.require("return_url")?;
        if self.stored(account, "account").is_none() {
            return Err(invalid(Some("resource_missing"), &format!("No such account: '{account}'"), Some("account")));
        }
        let created = now();
        let url = format!("{}/connect/onboarding/{account}", self.base_url);
        Ok((200, json!({ "object": "account_link", "created": created, "expires_at": created + 300, "url": url })))
    }

    fn create_transfer(&mut self, params: &Params<'_>) -> Result<Answer, Answer> {
        let amount = params.required_amount("amount")?;
        let currency = params.require("currency")?.to_ascii_lowercase();
        let destination = params.require("destination")?;
        if self.stored(destination, "account").is_none() {
            let message = format!("No such destination: '{destination}'");
            return Err(invalid(Some("resource_missing"), &message, Some("destination")));
        }
        let id = self.new_id("tr");
        let destination_payment = self.new_id("py");
        let balance_transaction = self.new_id("txn");
        let transfer = objects::transfer(objects::NewTransfer {
            id: &id,
            amount,
            currency: &currency,
            destination,
            destination_payment: &destination_payment,
            balance_transaction: &balance_transaction,
            description: params.get("description"),
            transfer_group: params.get("transfer_group"),
            metadata: params.map("metadata"),
            created: now(),
        });
        self.objects.insert(id, transfer.clone());
        Ok((200, transfer))
    }

    /// A new event (stored, with a `created` later than every earlier event's).
    fn event(&mut self, kind: &str, object: Value, previous_attributes: Option<Value>) -> Value {
        let created = now().max(self.last_event_created + 1);
        self.last_event_created = created;
        let mut data = json!({ "object": object });
        if let Some(previous) = previous_attributes {
            data["previous_attributes"] = previous;
        }
        let id = self.new_id("evt");
        let event = json!({
            "id": id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": kind,
        });
        self.objects.insert(id, event.clone());
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use objects::list;

    #[test]
    fn list_counts_its_items() {
        let page = list("/v1/x".to_owned(), vec![json!(1), json!(2)]);
        assert_eq!(page["total_count"], 2);
        assert_eq!(page["object"], "list");
    }

    #[test]
    fn params_read_nested_maps_and_expansions() {
        let pairs = vec![
            ("metadata[order_id]".to_owned(), "42".to_owned()),
            ("metadata[a][b]".to_owned(), "nested".to_owned()),
            ("expand[0]".to_owned(), "latest_invoice".to_owned()),
            ("expand[]".to_owned(), "customer".to_owned()),
        ];
        let params = Params(&pairs);
        assert_eq!(params.map("metadata"), json!({ "order_id": "42" }).as_object().cloned().unwrap_or_default());
        assert_eq!(params.expand(), vec!["latest_invoice", "customer"]);
    }
}
