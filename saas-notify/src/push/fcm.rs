//! Firebase Cloud Messaging through the HTTP v1 API, authenticated as a Google service account
//! (an RS256 JWT exchanged for an OAuth 2.0 access token, which is cached until shortly before it expires).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use saas_core::{Config, ServiceError, ServiceResult};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{
    HTTP_TIMEOUT, PushMessage, PushOutcome, PushSender, body_excerpt, config_group, config_invalid,
    describe_http_error, push_unavailable, read_config_file,
};

/// The FCM API, the default of `FCM_API_BASE`.
pub const FCM_API_BASE: &str = "https://fcm.googleapis.com";

/// Google's OAuth 2.0 token endpoint, used when neither `FCM_TOKEN_URL` nor the service account's `token_uri` is set.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// The OAuth scope that allows sending messages.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

/// The OAuth grant type of a signed JWT assertion (RFC 7523).
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `@type` of the FCM-specific detail in an error answer.
const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
/// The `@type` of the detail listing which request fields are wrong.
const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
/// The request field holding the device token.
const TOKEN_FIELD: &str = "message.token";
/// Lifetime of the signed assertion (Google accepts at most one hour).
const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// Assumed lifetime of an access token whose answer has no `expires_in`.
const DEFAULT_ACCESS_TOKEN_LIFETIME_SECS: u64 = 3600;
/// An access token is replaced this long before it expires.
const ACCESS_TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// The platform name, also used in logs and error details.
const PLATFORM: &str = "fcm";

/// Sends pushes to Android (and web/iOS via Firebase) devices through FCM HTTP v1.
pub struct FcmSender {
    project_id: String,
    client_email: String,
    signing_key: EncodingKey,
    send_url: String,
    token_url: String,
    http: reqwest::Client,
    /// The current access token; the lock is held during an exchange so racing sends share one.
    access_token: Mutex<Option<AccessToken>>,
}

/// An OAuth access token and when to stop using it.
struct AccessToken {
    value: String,
    refresh_at: Instant,
}

/// The fields of a service-account JSON file this sender uses.
#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default)]
    token_uri: Option<String>,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl FcmSender {
    /// A sender for the Firebase project `project_id`, authenticated by the service-account JSON `credentials_json`,
    /// calling `api_base` (usually [`FCM_API_BASE`]); `token_url` overrides the account's `token_uri`.
    pub fn new(
        project_id: &str,
        credentials_json: &str,
        api_base: &str,
        token_url: Option<&str>,
    ) -> ServiceResult<Self> {
        let project_id = project_id.trim();
        if project_id.is_empty() || !project_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
            return Err(config_invalid("The FCM project id is empty or malformed."));
        }
        let account: ServiceAccount = serde_json::from_str(credentials_json).map_err(|err| {
            config_invalid(format!(
                "The FCM credentials are not a service-account JSON with client_email and private_key: {err}"
            ))
        })?;
        let client_email = account.client_email.trim().to_owned();
        if client_email.is_empty() {
            return Err(config_invalid("The FCM service account has an empty client_email."));
        }
        let signing_key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|_| {
            config_invalid("The FCM service account's private_key is not an RSA private key in PEM form.")
        })?;
        // `from_rsa_pem` only unwraps the PEM; deriving the public key parses the RSA key itself, so a broken key
        // is refused here rather than at the first send.
        Jwk::from_encoding_key(&signing_key, Algorithm::RS256)
            .map_err(|_| config_invalid("The FCM service account's private_key is not a valid RSA key."))?;
        let token_url = non_blank(token_url)
            .or_else(|| non_blank(account.token_uri.as_deref()))
            .unwrap_or(GOOGLE_TOKEN_URL)
            .to_owned();
        let send_url = format!("{}/v1/projects/{project_id}/messages:send", api_base.trim().trim_end_matches('/'));
        for url in [&token_url, &send_url] {
            reqwest::Url::parse(url).map_err(|err| config_invalid(format!("The FCM URL {url} is invalid: {err}")))?;
        }
        let http = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build().map_err(ServiceError::internal)?;
        Ok(Self {
            project_id: project_id.to_owned(),
            client_email,
            signing_key,
            send_url,
            token_url,
            http,
            access_token: Mutex::new(None),
        })
    }

    /// The sender configured by `FCM_PROJECT_ID` and `FCM_CREDENTIALS_FILE` (with `FCM_API_BASE`, `FCM_TOKEN_URL`),
    /// `None` when FCM is not configured.
    pub fn from_config(config: &Config) -> ServiceResult<Option<Self>> {
        let Some([project_id, credentials_file]) =
            config_group(config, PLATFORM, ["FCM_PROJECT_ID", "FCM_CREDENTIALS_FILE"])
        else {
            return Ok(None);
        };
        let credentials = read_config_file("FCM_CREDENTIALS_FILE", credentials_file)?;
        let api_base = config.var("FCM_API_BASE").unwrap_or(FCM_API_BASE);
        Self::new(project_id, &credentials, api_base, config.var("FCM_TOKEN_URL")).map(Some)
    }

    /// The Firebase project messages are sent for.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// Where access tokens are obtained.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// A valid access token: the cached one, or a fresh one from the token endpoint.
    async fn access_token(&self) -> ServiceResult<String> {
        let mut cached = self.access_token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        *cached = None;
        let token = self.exchange_token().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Drops the cached access token if it is still `rejected` (FCM answered 401 to it).
    async fn forget_access_token(&self, rejected: &str) {
        let mut cached = self.access_token.lock().await;
        if cached.as_ref().is_some_and(|token| token.value == rejected) {
            *cached = None;
        }
    }

    /// Signs an assertion as the service account and exchanges it for an access token.
    async fn exchange_token(&self) -> ServiceResult<AccessToken> {
        let now = get_current_timestamp();
        let claims = json!({
            "iss": self.client_email,
            "scope": FCM_SCOPE,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let assertion = encode(&Header::new(Algorithm::RS256), &claims, &self.signing_key)
            .map_err(|err| ServiceError::internal(format!("signing the FCM token request failed: {err}")))?;
        let form = serde_urlencoded::to_string([("grant_type", JWT_BEARER_GRANT), ("assertion", assertion.as_str())])
            .map_err(ServiceError::internal)?;
        let requested_at = Instant::now();
        let response = self
            .http
            .post(&self.token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|err| {
                tracing::warn!(provider = PLATFORM, error = %describe_http_error(err), "FCM token exchange failed");
                push_unavailable(PLATFORM, "The FCM token endpoint could not be reached; try again shortly.")
            })?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            tracing::warn!(provider = PLATFORM, %status, body = %body_excerpt(&body), "FCM token exchange refused");
            return Err(push_unavailable(PLATFORM, format!("The FCM token endpoint answered {status}."))
                .with_detail("status", status.as_u16()));
        }
        let answer: TokenAnswer = response.json().await.map_err(|err| {
            tracing::warn!(provider = PLATFORM, error = %describe_http_error(err), "FCM token answer is not valid");
            push_unavailable(PLATFORM, "The FCM token endpoint answered something unexpected.")
        })?;
        if answer.access_token.is_empty() {
            return Err(push_unavailable(PLATFORM, "The FCM token endpoint answered an empty access token."));
        }
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME_SECS));
        tracing::debug!(provider = PLATFORM, lifetime_secs = lifetime.as_secs(), "FCM access token obtained");
        Ok(AccessToken {
            value: answer.access_token,
            refresh_at: requested_at + lifetime.saturating_sub(ACCESS_TOKEN_MARGIN),
        })
    }
}

impl fmt::Debug for FcmSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmSender")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("send_url", &self.send_url)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl PushSender for FcmSender {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    async fn send(&self, token: &str, message: &PushMessage) -> ServiceResult<PushOutcome> {
        let access_token = self.access_token().await?;
        let response = self
            .http
            .post(&self.send_url)
            .bearer_auth(&access_token)
            .json(&fcm_request(token, message))
            .send()
            .await
            .map_err(|err| {
                tracing::warn!(provider = PLATFORM, error = %describe_http_error(err), "FCM request failed");
                push_unavailable(PLATFORM, "FCM could not be reached; try again shortly.")
            })?;
        let status = response.status();
        if status.is_success() {
            // The message is accepted whatever the body says: an unreadable body must not cause a duplicate retry.
            let name = response.json::<Value>().await.ok().and_then(|answer| {
                answer.get("name").and_then(Value::as_str).filter(|name| !name.is_empty()).map(str::to_owned)
            });
            return Ok(PushOutcome::Sent { provider_message_id: name });
        }
        let body = response.text().await.unwrap_or_default();
        if status == StatusCode::UNAUTHORIZED {
            self.forget_access_token(&access_token).await;
            tracing::warn!(provider = PLATFORM, "FCM refused the access token; a new one will be obtained");
            return Err(push_unavailable(PLATFORM, "FCM refused the access token; try again shortly.")
                .with_detail("status", status.as_u16()));
        }
        if (status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND)
            && let Some(reason) = invalid_token_reason(&body)
        {
            return Ok(PushOutcome::InvalidToken { reason });
        }
        tracing::warn!(provider = PLATFORM, %status, body = %body_excerpt(&body), "FCM did not accept the message");
        Err(push_unavailable(PLATFORM, format!("FCM answered {status}.")).with_detail("status", status.as_u16()))
    }
}

/// The `messages:send` body: the token, the notification, and `data` with every value as a string
/// (FCM accepts only strings there; other JSON values travel as their JSON text).
fn fcm_request(token: &str, message: &PushMessage) -> Value {
    let data: Map<String, Value> =
        message.data.iter().map(|(key, value)| (key.clone(), Value::String(data_text(value)))).collect();
    json!({
        "message": {
            "token": token,
            "notification": {"title": message.title, "body": message.body},
            "data": data,
        }
    })
}

/// A data value as FCM carries it: strings as they are, anything else as JSON text.
fn data_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The reason when an FCM error body says the device token is unusable: the FcmError detail `UNREGISTERED`, or
/// `INVALID_ARGUMENT` (unless the body blames another field than the token), or the status `NOT_FOUND`.
fn invalid_token_reason(body: &str) -> Option<String> {
    let document: Value = serde_json::from_str(body).ok()?;
    let error = document.get("error")?;
    let details: &[Value] = error.get("details").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let blames_other_fields = details
        .iter()
        .filter(|detail| detail.get("@type").and_then(Value::as_str) == Some(BAD_REQUEST_TYPE))
        .flat_map(|detail| {
            detail.get("fieldViolations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
        })
        .filter_map(|violation| violation.get("field").and_then(Value::as_str))
        .any(|field| field != TOKEN_FIELD);
    for detail in details {
        let is_fcm_detail = detail.get("@type").and_then(Value::as_str).is_none_or(|kind| kind == FCM_ERROR_TYPE);
        match detail.get("errorCode").and_then(Value::as_str) {
            Some(code @ "UNREGISTERED") if is_fcm_detail => return Some(code.to_owned()),
            Some(code @ "INVALID_ARGUMENT") if is_fcm_detail && !blames_other_fields => return Some(code.to_owned()),
            _ => {}
        }
    }
    (error.get("status").and_then(Value::as_str) == Some("NOT_FOUND")).then(|| "NOT_FOUND".to_owned())
}

/// The trimmed text, or `None` when absent or blank.
fn non_blank(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_values_become_strings() {
        let mut data = Map::new();
        data.insert("conversation".into(), json!("c-1"));
        data.insert("count".into(), json!(3));
        data.insert("meta".into(), json!({"a": [1, true]}));
        let message = PushMessage { title: "Hi".into(), body: "There".into(), data };
        assert_eq!(
            fcm_request("tok", &message),
            json!({"message": {
                "token": "tok",
                "notification": {"title": "Hi", "body": "There"},
                "data": {"conversation": "c-1", "count": "3", "meta": "{\"a\":[1,true]}"},
            }})
        );
    }

    #[test]
    fn error_bodies_that_condemn_the_token() {
        let unregistered = json!({"error": {"code": 404, "status": "NOT_FOUND", "details": [
            {"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"}]}});
        assert_eq!(invalid_token_reason(&unregistered.to_string()).as_deref(), Some("UNREGISTERED"));

        let invalid = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [
            {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"}]}});
        assert_eq!(invalid_token_reason(&invalid.to_string()).as_deref(), Some("INVALID_ARGUMENT"));

        let not_found = json!({"error": {"code": 404, "status": "NOT_FOUND"}});
        assert_eq!(invalid_token_reason(&not_found.to_string()).as_deref(), Some("NOT_FOUND"));
    }

    #[test]
    fn error_bodies_that_do_not_condemn_the_token() {
        let bad_payload = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [
            {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"},
            {"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": "message.data[0].key"}]}]}});
        assert_eq!(invalid_token_reason(&bad_payload.to_string()), None);

        let no_fcm_detail = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [
            {"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": "message.data[0].value"}]}]}});
        assert_eq!(invalid_token_reason(&no_fcm_detail.to_string()), None);

        let quota = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [
            {"@type": FCM_ERROR_TYPE, "errorCode": "QUOTA_EXCEEDED"}]}});
        assert_eq!(invalid_token_reason(&quota.to_string()), None);
        assert_eq!(invalid_token_reason("<html>Not Found</html>"), None);
        assert_eq!(invalid_token_reason(""), None);
    }
}
