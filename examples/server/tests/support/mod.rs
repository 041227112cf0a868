//! What the reference server's tests share: the composed app (with the fake Stripe when
//! payments are exercised) and users registered over HTTP.

use saas_core::testing::{TestApp, TestAppBuilder};
use saas_payments::testing::FakeStripe;
use serde_json::json;

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
