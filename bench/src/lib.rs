//! What the load tools of `bench/` share: reaching the reference server (registration,
//! base URLs, 201 answers) and reporting latencies.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The password of every user the tools register.
pub const PASSWORD: &str = "bench-password-123";

/// The part of `POST /api/v1/auth/registration/`'s answer the tools use.
#[derive(Deserialize)]
pub struct TokenPair {
    /// Access JWT.
    pub access: String,
    /// The new user.
    pub user: UserRef,
}

/// A user's id.
#[derive(Deserialize)]
pub struct UserRef {
    /// Id.
    pub id: String,
}

/// `http://host:port` (a `ws://` form is accepted too), without a trailing slash.
pub fn http_base(node: &str) -> String {
    let node = node.trim_end_matches('/');
    if let Some(rest) = node.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = node.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        node.to_owned()
    }
}

/// `ws://host:port`, without a trailing slash.
pub fn ws_base(node: &str) -> String {
    let node = node.trim_end_matches('/');
    if let Some(rest) = node.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = node.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        node.to_owned()
    }
}

/// An HTTP client with a generous timeout.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))
}

/// The body of a 201 answer, or an error naming the step, the status and the body.
pub async fn expect_created<T: DeserializeOwned>(resp: reqwest::Response, what: &str) -> Result<T, String> {
    let status = resp.status();
    let body = resp.text().await.map_err(|err| format!("{what}: reading the answer: {err}"))?;
    let short: String = body.chars().take(300).collect();
    if status != reqwest::StatusCode::CREATED {
        return Err(format!("{what}: HTTP {status}: {short}"));
    }
    serde_json::from_str(&body).map_err(|err| format!("{what}: unexpected answer ({err}): {short}"))
}

/// Registers `email` with [`PASSWORD`].
pub async fn register(http: &reqwest::Client, base: &str, email: &str) -> Result<TokenPair, String> {
    let what = format!("registration of {email}");
    let resp = http
        .post(format!("{base}/api/v1/auth/registration/"))
        .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .map_err(|err| format!("{what}: {err}"))?;
    expect_created(resp, &what).await
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
pub fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// `value` rounded to `decimals` places.
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
