//! Apple Push Notification service over HTTP/2, authenticated with a provider token: an ES256 JWT signed by the
//! team's `.p8` key, cached and re-made before Apple's one-hour limit.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use saas_core::{Config, ServiceError, ServiceResult};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{
    HTTP_TIMEOUT, PushMessage, PushOutcome, PushSender, body_excerpt, config_group, config_invalid,
    describe_http_error, push_unavailable, read_config_file,
};

/// Apple's production endpoint, the default of `APNS_API_BASE` (`https://api.sandbox.push.apple.com` for development builds).
pub const APNS_API_BASE: &str = "https://api.push.apple.com";

/// A provider token is re-made after this long (Apple refuses tokens older than an hour and more than one new token
/// every 20 minutes).
const PROVIDER_TOKEN_MAX_AGE: Duration = Duration::from_secs(50 * 60);
/// The `reason`s of a 400 answer that mean the device token must be dropped.
const INVALID_TOKEN_REASONS: [&str; 3] = ["BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"];
/// The `reason` given for a device token that cannot be one (it is never sent to Apple).
const BAD_DEVICE_TOKEN: &str = "BadDeviceToken";
/// The longest device token accepted (real ones are 64 hex digits, possibly longer in future).
const MAX_DEVICE_TOKEN_CHARS: usize = 512;
/// The platform name, also used in logs and error details.
const PLATFORM: &str = "apns";

/// Sends pushes to Apple devices through APNs.
pub struct ApnsSender {
    signing_key: EncodingKey,
    key_id: String,
    team_id: String,
    topic: String,
    api_base: String,
    http: reqwest::Client,
    /// The current provider token, shared by all sends.
    provider_token: Mutex<Option<ProviderToken>>,
}

/// A signed provider token and when it was made.
struct ProviderToken {
    value: String,
    made_at: Instant,
}

/// An APNs error body.
#[derive(Deserialize)]
struct ApnsError {
    #[serde(default)]
    reason: Option<String>,
}

impl ApnsSender {
    /// A sender signing with the PKCS#8 P-256 `key_pem` (the `.p8` file) named `key_id` of the team `team_id`,
    /// pushing to the app `topic` (its bundle id) through `api_base` (usually [`APNS_API_BASE`]).
    pub fn new(key_pem: &str, key_id: &str, team_id: &str, topic: &str, api_base: &str) -> ServiceResult<Self> {
        let signing_key = EncodingKey::from_ec_pem(key_pem.as_bytes()).map_err(|_| {
            config_invalid("The APNs key is not a PKCS#8 EC private key in PEM form (an AuthKey_<key id>.p8 file).")
        })?;
        // `from_ec_pem` only unwraps the PEM; deriving the public key parses it as a P-256 key.
        Jwk::from_encoding_key(&signing_key, Algorithm::ES256)
            .map_err(|_| config_invalid("The APNs key is not a valid P-256 (ES256) private key."))?;
        let (key_id, team_id, topic) = (key_id.trim(), team_id.trim(), topic.trim());
        if key_id.is_empty() || team_id.is_empty() || topic.is_empty() {
            return Err(config_invalid("The APNs key id, team id and topic must all be set."));
        }
        HeaderValue::from_str(topic).map_err(|_| config_invalid("The APNs topic is not a valid header value."))?;
        let api_base = api_base.trim().trim_end_matches('/').to_owned();
        reqwest::Url::parse(&api_base)
            .map_err(|err| config_invalid(format!("The APNs URL {api_base} is invalid: {err}")))?;
        // APNs speaks only HTTP/2: prior knowledge over cleartext (a local fake), ALPN offering only `h2` over TLS.
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .http2_prior_knowledge()
            .build()
            .map_err(ServiceError::internal)?;
        Ok(Self {
            signing_key,
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            topic: topic.to_owned(),
            api_base,
            http,
            provider_token: Mutex::new(None),
        })
    }

    /// The sender configured by `APNS_KEY_FILE`, `APNS_KEY_ID`, `APNS_TEAM_ID` and `APNS_TOPIC` (with
    /// `APNS_API_BASE`), `None` when APNs is not configured.
    pub fn from_config(config: &Config) -> ServiceResult<Option<Self>> {
        let Some([key_file, key_id, team_id, topic]) =
            config_group(config, PLATFORM, ["APNS_KEY_FILE", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"])
        else {
            return Ok(None);
        };
        let key_pem = read_config_file("APNS_KEY_FILE", key_file)?;
        let api_base = config.var("APNS_API_BASE").unwrap_or(APNS_API_BASE);
        Self::new(&key_pem, key_id, team_id, topic, api_base).map(Some)
    }

    /// The app (bundle id) pushes are addressed to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// A provider token younger than [`PROVIDER_TOKEN_MAX_AGE`]: the cached one, or a newly signed one.
    async fn provider_token(&self) -> ServiceResult<String> {
        let mut cached = self.provider_token.lock().await;
        if let Some(token) = cached.as_ref()
            && token.made_at.elapsed() < PROVIDER_TOKEN_MAX_AGE
        {
            return Ok(token.value.clone());
        }
        let value = self.sign_provider_token()?;
        *cached = Some(ProviderToken { value: value.clone(), made_at: Instant::now() });
        Ok(value)
    }

    /// Drops the cached provider token if it is still `rejected` (Apple called it expired or invalid).
    async fn forget_provider_token(&self, rejected: &str) {
        let mut cached = self.provider_token.lock().await;
        if cached.as_ref().is_some_and(|token| token.value == rejected) {
            *cached = None;
        }
    }

    /// A provider token issued now: header `{"alg":"ES256","kid":key_id}`, claims `{"iss":team_id,"iat":now}`.
    fn sign_provider_token(&self) -> ServiceResult<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = None;
        header.kid = Some(self.key_id.clone());
        let claims = json!({"iss": self.team_id, "iat": get_current_timestamp()});
        encode(&header, &claims, &self.signing_key)
            .map_err(|err| ServiceError::internal(format!("signing the APNs provider token failed: {err}")))
    }
}

impl fmt::Debug for ApnsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsSender")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("topic", &self.topic)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl PushSender for ApnsSender {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    async fn send(&self, token: &str, message: &PushMessage) -> ServiceResult<PushOutcome> {
        // The token goes into the URL path: one that cannot be a device token is refused without a request.
        if !is_device_token(token) {
            return Ok(PushOutcome::InvalidToken { reason: BAD_DEVICE_TOKEN.to_owned() });
        }
        let provider_token = self.provider_token().await?;
        let mut authorization =
            HeaderValue::from_str(&format!("bearer {provider_token}")).map_err(ServiceError::internal)?;
        authorization.set_sensitive(true);
        let response = self
            .http
            .post(format!("{}/3/device/{token}", self.api_base))
            .header(AUTHORIZATION, authorization)
            .header("apns-topic", self.topic.as_str())
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .json(&apns_payload(message))
            .send()
            .await
            .map_err(|err| {
                tracing::warn!(provider = PLATFORM, error = %describe_http_error(err), "APNs request failed");
                push_unavailable(PLATFORM, "APNs could not be reached; try again shortly.")
            })?;
        let status = response.status();
        if status.is_success() {
            let apns_id = response
                .headers()
                .get("apns-id")
                .and_then(|value| value.to_str().ok())
                .filter(|id| !id.is_empty())
                .map(str::to_owned);
            return Ok(PushOutcome::Sent { provider_message_id: apns_id });
        }
        let body = response.text().await.unwrap_or_default();
        let reason = serde_json::from_str::<ApnsError>(&body).ok().and_then(|error| error.reason).unwrap_or_default();
        match status.as_u16() {
            410 => {
                let reason = if reason.is_empty() { "Unregistered".to_owned() } else { reason };
                Ok(PushOutcome::InvalidToken { reason })
            }
            400 if INVALID_TOKEN_REASONS.contains(&reason.as_str()) => Ok(PushOutcome::InvalidToken { reason }),
            403 if matches!(reason.as_str(), "ExpiredProviderToken" | "InvalidProviderToken") => {
                self.forget_provider_token(&provider_token).await;
                tracing::warn!(provider = PLATFORM, %reason, "APNs refused the provider token; a new one will be made");
                Err(push_unavailable(
                    PLATFORM,
                    format!("APNs refused the provider token ({reason}); try again shortly."),
                )
                .with_detail("status", status.as_u16())
                .with_detail("reason", reason))
            }
            _ => {
                tracing::warn!(provider = PLATFORM, %status, body = %body_excerpt(&body), "APNs did not accept the push");
                Err(push_unavailable(PLATFORM, format!("APNs answered {status}."))
                    .with_detail("status", status.as_u16())
                    .with_detail("reason", reason))
            }
        }
    }
}

/// The APNs payload: `aps` with the alert and the default sound, and the message's data keys at the top level
/// (a data key named `aps` is ignored: it would replace the alert).
fn apns_payload(message: &PushMessage) -> Value {
    let mut payload: Map<String, Value> =
        message.data.iter().filter(|(key, _)| key.as_str() != "aps").map(|(k, v)| (k.clone(), v.clone())).collect();
    payload
        .insert("aps".to_owned(), json!({"alert": {"title": message.title, "body": message.body}, "sound": "default"}));
    Value::Object(payload)
}

/// Whether `token` can be put in the request path as a device token (letters, digits, `-` and `_`).
fn is_device_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_DEVICE_TOKEN_CHARS
        && token.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_puts_data_beside_aps() {
        let mut data = Map::new();
        data.insert("conversation".into(), json!("c-1"));
        data.insert("count".into(), json!(3));
        data.insert("aps".into(), json!({"badge": 99}));
        let message = PushMessage { title: "Hi".into(), body: "There".into(), data };
        assert_eq!(
            apns_payload(&message),
            json!({
                "aps": {"alert": {"title": "Hi", "body": "There"}, "sound": "default"},
                "conversation": "c-1",
                "count": 3,
            })
        );
    }

    #[test]
    fn device_tokens_must_be_path_safe() {
        assert!(is_device_token("a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"));
        assert!(is_device_token("device-token_1"));
        let too_long = "f".repeat(MAX_DEVICE_TOKEN_CHARS + 1);
        for bad in ["", "../x", "a/b", "a?b", "a b", "a%2f", "a.b", too_long.as_str()] {
            assert!(!is_device_token(bad), "{bad:?} must be refused");
        }
    }
}
