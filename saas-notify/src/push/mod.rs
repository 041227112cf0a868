//! Push delivery to mobile devices: the [`PushSender`] trait, and its Firebase Cloud Messaging (HTTP v1) and
//! Apple Push Notification service implementations, configured from the environment.

use std::sync::Arc;
use std::time::Duration;

use saas_core::{Config, ErrorKind, ServiceError, ServiceResult};

pub mod apns;
pub mod fcm;

pub use apns::ApnsSender;
pub use fcm::FcmSender;

/// The error code of every transient push failure (network, 5xx, 429, provider auth): retry later.
pub(crate) const PUSH_UNAVAILABLE_CODE: &str = "notify.push_unavailable";
/// Timeout of one request to a push provider or its token endpoint.
pub(crate) const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a provider's error body kept for logs.
const MAX_LOGGED_BODY_CHARS: usize = 300;

/// What a push says.
#[derive(Debug, Clone, PartialEq)]
pub struct PushMessage {
    /// The notification's title.
    pub title: String,
    /// The notification's text.
    pub body: String,
    /// Custom key-values the app receives with the notification.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// How a provider answered.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    /// Accepted; the provider's id of the message, if it gave one.
    Sent {
        /// FCM's message `name` or APNs' `apns-id`.
        provider_message_id: Option<String>,
    },
    /// The token is invalid or the app was uninstalled: the device must be removed.
    InvalidToken {
        /// The provider's reason, e.g. `UNREGISTERED` (FCM) or `BadDeviceToken` (APNs).
        reason: String,
    },
}

/// A push provider. `Err` means a transient failure (network, 5xx, 429, auth token exchange failure): the caller retries later.
#[async_trait::async_trait]
pub trait PushSender: Send + Sync + 'static {
    /// The device platform it serves: "fcm", "apns" (or an app's own).
    fn platform(&self) -> &'static str;

    /// Sends one message to one device token.
    async fn send(&self, token: &str, message: &PushMessage) -> ServiceResult<PushOutcome>;
}

/// The senders configured in `config` (FCM when FCM_PROJECT_ID and FCM_CREDENTIALS_FILE are set; APNs when APNS_KEY_FILE, APNS_KEY_ID, APNS_TEAM_ID and APNS_TOPIC are set).
pub fn configured_senders(config: &Config) -> ServiceResult<Vec<Arc<dyn PushSender>>> {
    let mut senders: Vec<Arc<dyn PushSender>> = Vec::new();
    if let Some(fcm) = FcmSender::from_config(config)? {
        senders.push(Arc::new(fcm));
    }
    if let Some(apns) = ApnsSender::from_config(config)? {
        senders.push(Arc::new(apns));
    }
    Ok(senders)
}

/// The transient-failure error of `provider`, with a human `message`.
pub(crate) fn push_unavailable(provider: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::unavailable(PUSH_UNAVAILABLE_CODE, message).with_detail("provider", provider)
}

/// A configuration error (bad key, bad credentials, unreadable file), with its message kept for the operator.
pub(crate) fn config_invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::Internal, "config.invalid", message)
}

/// The values of `names` in `config`: all of them, none of them (`None`), or a warning and `None` when only some are set.
pub(crate) fn config_group<'a, const N: usize>(
    config: &'a Config,
    provider: &str,
    names: [&str; N],
) -> Option<[&'a str; N]> {
    let values = names.map(|name| config.var(name));
    if values.iter().all(Option::is_some) {
        return Some(values.map(|value| value.unwrap_or_default()));
    }
    if values.iter().any(Option::is_some) {
        let missing: Vec<&str> =
            names.iter().zip(values.iter()).filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
        tracing::warn!(provider, missing = ?missing, "push provider partially configured; it stays disabled");
    }
    None
}

/// The text of the file named by the variable `variable` (a credentials or key file).
pub(crate) fn read_config_file(variable: &str, path: &str) -> ServiceResult<String> {
    std::fs::read_to_string(path).map_err(|err| {
        config_invalid(format!("{variable} names a file that cannot be read ({path}): {err}"))
            .with_detail("variable", variable)
    })
}

/// An HTTP client error with its causes, for logs; the URL is left out (an APNs URL holds the device token).
pub(crate) fn describe_http_error(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The start of a provider's error body, for logs (provider error bodies carry no secrets).
pub(crate) fn body_excerpt(body: &str) -> String {
    body.chars().take(MAX_LOGGED_BODY_CHARS).collect()
}
