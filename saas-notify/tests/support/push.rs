#![allow(dead_code)]
//! Fake push providers on loopback that speak the real wire formats:
//!
//! - [`FakeFcm`]: Google's OAuth token endpoint (JWT bearer grant, RS256 assertion checked against the test service
//!   account's public key) and FCM HTTP v1 `messages:send` (HTTP/1.1, axum);
//! - [`FakeApns`]: APNs `POST /3/device/{token}` over HTTP/2 cleartext (prior knowledge, hyper), checking the ES256
//!   provider token against the test `.p8` key.
//!
//! Both record what they receive and can be scripted per device token to fail. Servers stop when dropped.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation, decode, get_current_timestamp};
use saas_notify::push::{ApnsSender, FcmSender};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

// ---------------------------------------------------------------------------------------------------------------
// FCM
// ---------------------------------------------------------------------------------------------------------------

/// The Firebase project of the test service account (and the only project the fake serves).
pub const FCM_PROJECT_ID: &str = "demo-project";
/// The `client_email` of the test service account (the assertion's `iss`).
pub const FCM_CLIENT_EMAIL: &str = "push-sender@demo-project.iam.gserviceaccount.com";
/// The OAuth scope the assertion must ask for.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The grant type of the token request.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `@type` of FCM's error detail.
pub const FCM_ERROR_TYPE: &str = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
/// The `@type` of Google's field-violation detail.
pub const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";
/// Lifetime of the access tokens the fake issues, in seconds.
pub const FCM_ACCESS_TOKEN_TTL_SECS: u64 = 3600;

/// The test service account's private key: RSA 2048 in PKCS#8 PEM (`BEGIN PRIVATE KEY`), as Google issues them.
/// (The same key as saas-auth's `TEST_KEY_1`, converted with `openssl pkcs8 -topk8 -nocrypt`.)
pub const FCM_PRIVATE_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCaiXtTCsxdPo8W
wL1z6qCFz65oTW3ZKaoKd9CULkwMTBTU67dhl4rIMHpSCg/dSA8x1+XHxkqofeX6
gM3lK53OL0Bbr4Kd2p2ub7sEwcG54s+5FI7uiqimXvJmi28heGoOITzIOa3Onsqh
kXK5zVoObBD2c5JROKwTqEyKjs2dVU6CSj4IP4uASgMS/If3haVwlGaoDm+fLTy/
3TOoFu4DXqjxcXgfbSM1ayvKKejS815YK8rBcMRhy03iogH76fds3FZkqWVVpG+h
PDRGK/kRlkrntHb9HDDU4tZFxU+NKIc7YT7twOmRp1HBMy9ER5nj0z30tBw1s2Zx
QvAEbBpzAgMBAAECggEAFRwV95MFtZsNFXDrWuvq/5G4uPtoDP55rDJlEJ4pDz5O
qNiGKqj2cUAwsAeQgTa4X05RpMd70qZYBa8V8RR92vjDaYLWbH+82GOKKtfY1xlE
13sXxz1eVP5VTcKwQeSJVY10GG8gmeqWXW8D5Ujy4KjMbGNUfQ8pGl+mt6qoKwc8
zGMZx+ax3ODFS/bQ95I7ObUORLs67j7LjsvbVWykcmFJ5gC6UiexoIdNXz75XDn3
T61oPT3P7TUvleEdOmiDKmNXsNyQl19kHFiXDFqhh0xJ90Gj7yREm8TX9hHQV96L
s8AcpkKXmrRBMawQHA30FWh59sTTDrznsk7r29uuEQKBgQDLGZKjGtfum7ELVeZF
1XUoELECEUr7cCgedrarApogyU8l+ZNBnMKNqCz3PZbYv4xxOdEjGKNwK4SFWDYV
Jdb87YiZYhAvwWJwYHjlZeikBS2zYzUkTGfyFUlOU3czlG46n521LUhnxLZ2mtL6
hcTzAp1kJKJf0WgHEtEbfOAnSwKBgQDCyc2cFKc+1/9J03IZzUC6MLTeO3/t9cKB
SXGVsnryVYedrZFH3Kg+3JbOx5sGEi6iV0l9gAD35PTB1n7JK/btt8U5QORf/RdC
0EQEOShjgq+4rFe7NuiLbCm9A3DD5VB1gtyzWSWXo6vlK4tYK8/FZAe0mj0hYFvZ
tKJS9U+YeQKBgADYlWzKgtXCnkUu0Wu/DOLi1unsSoSrne8qjW4+74dtbz/4Py3J
ymGurqlE/2jdu2cJV56uzpd8BuxLRsZlxvR8xNHmv6yDQLa5ICfMeeCdCOizZBhH
nTM79Xc3D8sONjtWSODlVGTiQ+RQlspmXkCo5SDyqh5+D9HfuTFFHuXrAoGBAMBP
/W/b9ENXffSljkFrJDyvWeMPW37U5PRATqQ9UqVvTDWg547LjFCD+WCuMaAM0330
L9p4Rnx40C2QWBzGC0Un6tBcAR3EAvM0K/L/e6DDpjnt7bAoxe7hG1RB0VOXU5ix
WrS3jyXnsg7QrwKePsPjvrfQkAoj2ItYi+rbx3oBAoGAUmZA3ZBiuznQypd5GJAx
8PNpB7WWOCs9ce51JKXfYVnE2qc8WWzmMTHtAMfBAzneZQLxt4r+H+rWRD8SjCk3
z//Sx7c/vp+vVlVztTjfktHNaavKmbwBwRxYkJCkRv7drqcrvum3F5iCgs7ex8qO
cP2xX/dwpoT3LmaBSUPi0BM=
-----END PRIVATE KEY-----
";

/// How the fake FCM answers `messages:send` for one device token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FcmAnswer {
    /// 404 `NOT_FOUND` with the FcmError detail `UNREGISTERED` (the app was uninstalled), on every request.
    Unregistered,
    /// 400 `INVALID_ARGUMENT` with the FcmError detail `INVALID_ARGUMENT` (not a registration token), on every request.
    InvalidArgument,
    /// 500 `INTERNAL` for the next `times` requests, then success.
    ServerError {
        /// How many requests fail before the token works again.
        times: usize,
    },
    /// 429 `RESOURCE_EXHAUSTED` (`QUOTA_EXCEEDED`) for the next `times` requests, then success.
    QuotaExceeded {
        /// How many requests fail before the token works again.
        times: usize,
    },
}

/// One authenticated `messages:send` request the fake FCM received.
#[derive(Debug, Clone, PartialEq)]
pub struct FcmRequest {
    /// The project in the path.
    pub project: String,
    /// The bearer access token it carried.
    pub access_token: String,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
}

/// Shared between the test and the FCM server task.
struct FcmState {
    token_url: String,
    verifying_key: DecodingKey,
    issued: Mutex<HashSet<String>>,
    exchanges: AtomicUsize,
    rejected_exchanges: Mutex<Vec<String>>,
    messages: AtomicUsize,
    requests: Mutex<Vec<FcmRequest>>,
    unauthenticated: AtomicUsize,
    answers: Mutex<HashMap<String, FcmAnswer>>,
}

/// Google's OAuth token endpoint and FCM HTTP v1 on 127.0.0.1; stops when dropped.
pub struct FakeFcm {
    base_url: String,
    state: Arc<FcmState>,
    server: JoinHandle<()>,
}

impl FakeFcm {
    /// Starts the server (HTTP/1.1) on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake FCM server");
        let addr = listener.local_addr().expect("fake FCM server address");
        let base_url = format!("http://{addr}");
        let signing_key = EncodingKey::from_rsa_pem(FCM_PRIVATE_KEY_PEM.as_bytes()).expect("test service account key");
        let jwk = Jwk::from_encoding_key(&signing_key, Algorithm::RS256).expect("public half of the test key");
        let state = Arc::new(FcmState {
            token_url: format!("{base_url}/token"),
            verifying_key: DecodingKey::from_jwk(&jwk).expect("test verifying key"),
            issued: Mutex::new(HashSet::new()),
            exchanges: AtomicUsize::new(0),
            rejected_exchanges: Mutex::new(Vec::new()),
            messages: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            unauthenticated: AtomicUsize::new(0),
            answers: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/token", post(fcm_token))
            .route("/v1/projects/{project}/messages:send", post(fcm_send))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url, state, server }
    }

    /// `http://127.0.0.1:<port>`: the `api_base` of an [`FcmSender`] (`FCM_API_BASE`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://127.0.0.1:<port>/token`: the token endpoint (the credentials' `token_uri`, the assertion's `aud`).
    pub fn token_url(&self) -> &str {
        &self.state.token_url
    }

    /// The project the fake serves.
    pub fn project_id(&self) -> &'static str {
        FCM_PROJECT_ID
    }

    /// A service-account JSON file's content for the test key, with `token_uri` = [`FakeFcm::token_url`].
    pub fn credentials_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": FCM_PROJECT_ID,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": FCM_PRIVATE_KEY_PEM,
            "client_email": FCM_CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url(),
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        })
        .to_string()
    }

    /// Writes [`FakeFcm::credentials_json`] to `dir/fcm-service-account.json` and returns the path.
    pub fn write_credentials_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("fcm-service-account.json");
        std::fs::write(&path, self.credentials_json()).expect("write FCM credentials file");
        path
    }

    /// The configuration variables of a sender using this fake (writes the credentials file into `dir`).
    pub fn config_vars(&self, dir: &Path) -> Vec<(String, String)> {
        let credentials = self.write_credentials_file(dir);
        vec![
            ("FCM_PROJECT_ID".to_owned(), FCM_PROJECT_ID.to_owned()),
            ("FCM_CREDENTIALS_FILE".to_owned(), credentials.to_string_lossy().into_owned()),
            ("FCM_API_BASE".to_owned(), self.base_url.clone()),
        ]
    }

    /// An [`FcmSender`] pointed at this fake (token URL taken from the credentials' `token_uri`).
    pub fn sender(&self) -> FcmSender {
        FcmSender::new(FCM_PROJECT_ID, &self.credentials_json(), &self.base_url, None).expect("FCM sender for the fake")
    }

    /// Answers `messages:send` for `token` as scripted from now on (replacing any earlier script for it).
    pub fn fail_with(&self, token: &str, answer: FcmAnswer) {
        lock(&self.state.answers).insert(token.to_owned(), answer);
    }

    /// Forgets every access token issued so far: the next `messages:send` with one of them is answered 401.
    pub fn revoke_tokens(&self) {
        lock(&self.state.issued).clear();
    }

    /// How many access tokens were issued (successful token exchanges).
    pub fn token_exchanges(&self) -> usize {
        self.state.exchanges.load(Ordering::SeqCst)
    }

    /// Why token requests were refused, oldest first (empty when every exchange succeeded).
    pub fn rejected_exchanges(&self) -> Vec<String> {
        lock(&self.state.rejected_exchanges).clone()
    }

    /// How many `messages:send` requests were answered 401 (no or unknown access token).
    pub fn unauthenticated_requests(&self) -> usize {
        self.state.unauthenticated.load(Ordering::SeqCst)
    }

    /// Every authenticated `messages:send` request, oldest first, with the status answered.
    pub fn requests(&self) -> Vec<FcmRequest> {
        lock(&self.state.requests).clone()
    }

    /// The bodies of the messages the fake accepted (answered 200), oldest first.
    pub fn sent(&self) -> Vec<Value> {
        lock(&self.state.requests).iter().filter(|request| request.status == 200).map(|r| r.body.clone()).collect()
    }
}

impl Drop for FakeFcm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FcmState {
    /// Why `assertion` is not a valid RS256 JWT bearer assertion of the test service account for this endpoint.
    fn check_assertion(&self, assertion: &str) -> Result<(), String> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[self.token_url.as_str()]);
        validation.set_issuer(&[FCM_CLIENT_EMAIL]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = decode::<Value>(assertion, &self.verifying_key, &validation)
            .map_err(|err| format!("assertion refused: {err}"))?;
        if data.header.typ.as_deref() != Some("JWT") {
            return Err(format!("header typ must be JWT, got {:?}", data.header.typ));
        }
        let scope = data.claims.get("scope").and_then(Value::as_str);
        if scope != Some(FCM_SCOPE) {
            return Err(format!("scope must be {FCM_SCOPE}, got {scope:?}"));
        }
        let iat = data.claims.get("iat").and_then(Value::as_u64).ok_or("iat is missing")?;
        let exp = data.claims.get("exp").and_then(Value::as_u64).ok_or("exp is missing")?;
        if exp <= iat || exp - iat > 3600 {
            return Err(format!("the assertion must live at most one hour (iat {iat}, exp {exp})"));
        }
        if iat > get_current_timestamp() + 60 {
            return Err(format!("iat {iat} is in the future"));
        }
        Ok(())
    }

    /// The answer to an authenticated `messages:send` for `project` with `document`, recorded.
    fn answer_message(&self, project: String, access_token: String, body: &[u8]) -> Response {
        let document: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let response = self.message_response(&project, &document);
        let status = response.status().as_u16();
        lock(&self.requests).push(FcmRequest { project, access_token, body: document, status });
        response
    }

    /// What FCM would answer: checks the project and the message shape, then the token's script, else success.
    fn message_response(&self, project: &str, document: &Value) -> Response {
        if project != FCM_PROJECT_ID {
            return google_error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                &format!(
                    "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project}'"
                ),
                vec![],
            );
        }
        let Some(message) = document.get("message").and_then(Value::as_object) else {
            return google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Invalid JSON payload received.",
                vec![field_violation("message", "message is required")],
            );
        };
        let Some(token) = message.get("token").and_then(Value::as_str).filter(|token| !token.is_empty()) else {
            return google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Recipient of the message is not set.",
                vec![field_violation("message.token", "token is required")],
            );
        };
        if let Some(data) = message.get("data") {
            let Some(data) = data.as_object() else {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "Invalid value at 'message.data'",
                    vec![field_violation("message.data", "data must be a map of strings")],
                );
            };
            if let Some((index, (key, _))) = data.iter().enumerate().find(|(_, (_, value))| !value.is_string()) {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    &format!("Invalid value at 'message.data[{index}].value' (TYPE_STRING), for key {key}"),
                    vec![field_violation(&format!("message.data[{index}].value"), "data values must be strings")],
                );
            }
        }
        if let Some(response) = self.scripted_response(token) {
            return response;
        }
        let n = self.messages.fetch_add(1, Ordering::SeqCst) + 1;
        Json(json!({"name": format!("projects/{project}/messages/{n}")})).into_response()
    }

    /// The scripted failure for `token`, if any (consuming one of a limited number of failures).
    fn scripted_response(&self, token: &str) -> Option<Response> {
        let mut answers = lock(&self.answers);
        let answer = *answers.get(token)?;
        let fcm_detail = |code: &str| vec![json!({"@type": FCM_ERROR_TYPE, "errorCode": code})];
        match answer {
            FcmAnswer::Unregistered => Some(google_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "Requested entity was not found.",
                fcm_detail("UNREGISTERED"),
            )),
            FcmAnswer::InvalidArgument => Some(google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                fcm_detail("INVALID_ARGUMENT"),
            )),
            FcmAnswer::ServerError { times } | FcmAnswer::QuotaExceeded { times } => {
                if times <= 1 {
                    answers.remove(token);
                } else {
                    let left = times - 1;
                    let next = match answer {
                        FcmAnswer::ServerError { .. } => FcmAnswer::ServerError { times: left },
                        _ => FcmAnswer::QuotaExceeded { times: left },
                    };
                    answers.insert(token.to_owned(), next);
                }
                if times == 0 {
                    return None;
                }
                Some(match answer {
                    FcmAnswer::ServerError { .. } => google_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "INTERNAL",
                        "Internal error encountered.",
                        fcm_detail("INTERNAL"),
                    ),
                    _ => google_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "RESOURCE_EXHAUSTED",
                        "Quota exceeded for quota metric 'Send requests'.",
                        fcm_detail("QUOTA_EXCEEDED"),
                    ),
                })
            }
        }
    }
}

/// `POST /token`: the JWT bearer grant; issues `fake-access-<n>` for a valid assertion.
async fn fcm_token(State(state): State<Arc<FcmState>>, Form(form): Form<HashMap<String, String>>) -> Response {
    let refuse = |error: &str, description: String| {
        lock(&state.rejected_exchanges).push(format!("{error}: {description}"));
        (StatusCode::BAD_REQUEST, Json(json!({"error": error, "error_description": description}))).into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER_GRANT) {
        return refuse("unsupported_grant_type", format!("Invalid grant_type: {:?}", form.get("grant_type")));
    }
    let Some(assertion) = form.get("assertion") else {
        return refuse("invalid_request", "Missing required parameter: assertion".to_owned());
    };
    if let Err(reason) = state.check_assertion(assertion) {
        return refuse("invalid_grant", reason);
    }
    let n = state.exchanges.fetch_add(1, Ordering::SeqCst) + 1;
    let access_token = format!("fake-access-{n}");
    lock(&state.issued).insert(access_token.clone());
    Json(json!({"access_token": access_token, "expires_in": FCM_ACCESS_TOKEN_TTL_SECS, "token_type": "Bearer"}))
        .into_response()
}

/// `POST /v1/projects/{project}/messages:send`: 401 without an issued access token, else the message's answer.
async fn fcm_send(
    State(state): State<Arc<FcmState>>,
    UrlPath(project): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let access_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    if !lock(&state.issued).contains(&access_token) {
        state.unauthenticated.fetch_add(1, Ordering::SeqCst);
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            vec![],
        );
    }
    state.answer_message(project, access_token, &body)
}

/// A Google API error envelope: `{"error": {"code", "message", "status", "details"}}`.
fn google_error(status: StatusCode, code: &str, message: &str, details: Vec<Value>) -> Response {
    let mut error = json!({"code": status.as_u16(), "message": message, "status": code});
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    (status, Json(json!({"error": error}))).into_response()
}

/// A `google.rpc.BadRequest` detail blaming `field`.
fn field_violation(field: &str, description: &str) -> Value {
    json!({"@type": BAD_REQUEST_TYPE, "fieldViolations": [{"field": field, "description": description}]})
}

// ---------------------------------------------------------------------------------------------------------------
// APNs
// ---------------------------------------------------------------------------------------------------------------

/// The key id of the test `.p8` key (the provider token's `kid`).
pub const APNS_KEY_ID: &str = "ABC123DEFG";
/// The team of the test key (the provider token's `iss`).
pub const APNS_TEAM_ID: &str = "DEF123GHIJ";
/// The app the fake accepts pushes for (`apns-topic`).
pub const APNS_TOPIC: &str = "com.example.app";

/// The test `.p8` key: EC P-256 in PKCS#8 PEM, made with
/// `openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`.
pub const APNS_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAeUXndnbSaXua1/E
7JPQLDGotSrT2xvWJ1Lhj1RGvzShRANCAAQ0+jt7xRm14anza6AspbEAB7SlqQ10
VMu3dnlgs7uGzRARS60h8C26bmpyTjc6Qqav5K7kTtEY56+iMZSWI9jw
-----END PRIVATE KEY-----
";

/// Another P-256 key the fake does not know: provider tokens signed with it are refused (403 InvalidProviderToken).
pub const OTHER_APNS_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgb6XN2rCUfcghnQ1l
6Lpr+xRNJvSgCWrMeBgzkiI/yxihRANCAATIg6c1uvBPFs1IZqB9qal5pncwFeOt
7itk2KB00e0WDkTwJ8MXzNnTBM8Pz7eKY7hS+o9N6kZKRfl0SfLI17y1
-----END PRIVATE KEY-----
";

/// Apple's limit on an alert payload, in bytes.
pub const APNS_MAX_PAYLOAD_BYTES: usize = 4096;

/// How the fake APNs answers for one device token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApnsAnswer {
    /// 410 `{"reason":"Unregistered","timestamp":…}` on every request.
    Unregistered,
    /// 400 `{"reason":"BadDeviceToken"}` on every request.
    BadDeviceToken,
    /// 500 `{"reason":"InternalServerError"}` for the next `times` requests, then success.
    ServerError {
        /// How many requests fail before the token works again.
        times: usize,
    },
    /// 403 `{"reason":"ExpiredProviderToken"}` for the next `times` requests, then success.
    ExpiredProviderToken {
        /// How many requests fail before the token works again.
        times: usize,
    },
}

/// One request the fake APNs received (whatever it answered).
#[derive(Debug, Clone, PartialEq)]
pub struct ApnsRequest {
    /// The device token from the path.
    pub token: String,
    /// The HTTP version, `HTTP/2.0` (the server speaks nothing else).
    pub version: String,
    /// The `authorization` header (`bearer <provider token>`).
    pub authorization: Option<String>,
    /// The `apns-topic` header.
    pub topic: Option<String>,
    /// The `apns-push-type` header.
    pub push_type: Option<String>,
    /// The `apns-priority` header.
    pub priority: Option<String>,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
    /// The `reason` the fake answered with, if it refused.
    pub reason: Option<String>,
    /// The `apns-id` the fake answered with.
    pub apns_id: String,
}

impl ApnsRequest {
    /// The provider token (the JWT after `bearer `), if any.
    pub fn provider_token(&self) -> Option<&str> {
        self.authorization.as_deref().and_then(|value| value.split_once(' ')).map(|(_, token)| token)
    }
}

/// Shared between the test and the APNs server tasks.
struct ApnsState {
    verifying_key: DecodingKey,
    requests: Mutex<Vec<ApnsRequest>>,
    answers: Mutex<HashMap<String, ApnsAnswer>>,
}

/// APNs on 127.0.0.1, HTTP/2 cleartext with prior knowledge; stops (with its connections) when dropped.
pub struct FakeApns {
    base_url: String,
    state: Arc<ApnsState>,
    server: JoinHandle<()>,
}

impl FakeApns {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake APNs server");
        let addr = listener.local_addr().expect("fake APNs server address");
        let signing_key = EncodingKey::from_ec_pem(APNS_KEY_PEM.as_bytes()).expect("test APNs key");
        let jwk = Jwk::from_encoding_key(&signing_key, Algorithm::ES256).expect("public half of the test APNs key");
        let state = Arc::new(ApnsState {
            verifying_key: DecodingKey::from_jwk(&jwk).expect("test APNs verifying key"),
            requests: Mutex::new(Vec::new()),
            answers: Mutex::new(HashMap::new()),
        });
        let server = tokio::spawn(serve_apns(listener, Arc::clone(&state)));
        Self { base_url: format!("http://{addr}"), state, server }
    }

    /// `http://127.0.0.1:<port>`: the `api_base` of an [`ApnsSender`] (`APNS_API_BASE`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The `.p8` key whose provider tokens the fake accepts.
    pub fn key_pem(&self) -> &'static str {
        APNS_KEY_PEM
    }

    /// The key id the provider token must name.
    pub fn key_id(&self) -> &'static str {
        APNS_KEY_ID
    }

    /// The team id the provider token must be issued by.
    pub fn team_id(&self) -> &'static str {
        APNS_TEAM_ID
    }

    /// The topic (bundle id) the fake accepts.
    pub fn topic(&self) -> &'static str {
        APNS_TOPIC
    }

    /// Writes the key to `dir/AuthKey_<key id>.p8` (as Apple names it) and returns the path.
    pub fn write_key_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("AuthKey_{APNS_KEY_ID}.p8"));
        std::fs::write(&path, APNS_KEY_PEM).expect("write APNs key file");
        path
    }

    /// The configuration variables of a sender using this fake (writes the key file into `dir`).
    pub fn config_vars(&self, dir: &Path) -> Vec<(String, String)> {
        let key_file = self.write_key_file(dir);
        vec![
            ("APNS_KEY_FILE".to_owned(), key_file.to_string_lossy().into_owned()),
            ("APNS_KEY_ID".to_owned(), APNS_KEY_ID.to_owned()),
            ("APNS_TEAM_ID".to_owned(), APNS_TEAM_ID.to_owned()),
            ("APNS_TOPIC".to_owned(), APNS_TOPIC.to_owned()),
            ("APNS_API_BASE".to_owned(), self.base_url.clone()),
        ]
    }

    /// An [`ApnsSender`] pointed at this fake with the right key, key id, team and topic.
    pub fn sender(&self) -> ApnsSender {
        ApnsSender::new(APNS_KEY_PEM, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, &self.base_url)
            .expect("APNs sender for the fake")
    }

    /// Answers for `token` as scripted from now on (replacing any earlier script for it).
    pub fn fail_with(&self, token: &str, answer: ApnsAnswer) {
        lock(&self.state.answers).insert(token.to_owned(), answer);
    }

    /// Every request received, oldest first, with what was answered.
    pub fn requests(&self) -> Vec<ApnsRequest> {
        lock(&self.state.requests).clone()
    }

    /// The payloads the fake accepted (answered 200), oldest first.
    pub fn sent(&self) -> Vec<Value> {
        lock(&self.state.requests).iter().filter(|request| request.status == 200).map(|r| r.body.clone()).collect()
    }
}

impl Drop for FakeApns {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Accepts connections and serves each with hyper's HTTP/2 server; connections end when this task is aborted.
async fn serve_apns(listener: TcpListener, state: Arc<ApnsState>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(apns_request(state, request).await) }
            });
            let _ = http2::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Reads the body, then answers and records the request.
async fn apns_request(state: Arc<ApnsState>, request: hyper::Request<Incoming>) -> hyper::Response<Body> {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(Body::new(body), 64 * 1024).await {
        Ok(body) => state.answer(&parts, &body),
        Err(_) => apns_reply(StatusCode::PAYLOAD_TOO_LARGE, Some("PayloadTooLarge"), &new_apns_id()),
    }
}

impl ApnsState {
    /// APNs' answer to one request, recorded.
    fn answer(&self, parts: &request::Parts, body: &[u8]) -> hyper::Response<Body> {
        let apns_id = header_text(&parts.headers, "apns-id").unwrap_or_else(new_apns_id);
        let Some(token) = parts.uri.path().strip_prefix("/3/device/") else {
            return apns_reply(StatusCode::NOT_FOUND, Some("BadPath"), &apns_id);
        };
        if parts.method != Method::POST {
            return apns_reply(StatusCode::METHOD_NOT_ALLOWED, Some("MethodNotAllowed"), &apns_id);
        }
        let mut request = ApnsRequest {
            token: token.to_owned(),
            version: format!("{:?}", parts.version),
            authorization: header_text(&parts.headers, "authorization"),
            topic: header_text(&parts.headers, "apns-topic"),
            push_type: header_text(&parts.headers, "apns-push-type"),
            priority: header_text(&parts.headers, "apns-priority"),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
            status: 200,
            reason: None,
            apns_id,
        };
        let (status, reason) = match self.refusal(&request, body.len()) {
            Some((status, reason)) => (status, Some(reason)),
            None => (StatusCode::OK, None),
        };
        request.status = status.as_u16();
        request.reason = reason.map(str::to_owned);
        let response = apns_reply(status, reason, &request.apns_id);
        lock(&self.requests).push(request);
        response
    }

    /// Why APNs would refuse `request` (status and reason), `None` to accept it.
    fn refusal(&self, request: &ApnsRequest, body_len: usize) -> Option<(StatusCode, &'static str)> {
        let token = request.token.as_str();
        if token.is_empty() {
            return Some((StatusCode::BAD_REQUEST, "MissingDeviceToken"));
        }
        if !token.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_') {
            return Some((StatusCode::BAD_REQUEST, "BadDeviceToken"));
        }
        let Some(authorization) = request.authorization.as_deref() else {
            return Some((StatusCode::FORBIDDEN, "MissingProviderToken"));
        };
        if let Err(reason) = self.check_provider_token(authorization) {
            return Some((StatusCode::FORBIDDEN, reason));
        }
        match request.topic.as_deref() {
            None => return Some((StatusCode::BAD_REQUEST, "MissingTopic")),
            Some(topic) if topic != APNS_TOPIC => return Some((StatusCode::BAD_REQUEST, "TopicDisallowed")),
            Some(_) => {}
        }
        let push_types = ["alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity"];
        if !request.push_type.as_deref().is_some_and(|push_type| push_types.contains(&push_type)) {
            return Some((StatusCode::BAD_REQUEST, "InvalidPushType"));
        }
        if request.priority.as_deref().is_some_and(|priority| !["1", "5", "10"].contains(&priority)) {
            return Some((StatusCode::BAD_REQUEST, "BadPriority"));
        }
        if body_len == 0 {
            return Some((StatusCode::BAD_REQUEST, "PayloadEmpty"));
        }
        if body_len > APNS_MAX_PAYLOAD_BYTES {
            return Some((StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"));
        }
        // Not an APNs reason: the fake's way of saying the body is not a JSON object with an `aps` dictionary.
        if !request.body.get("aps").is_some_and(Value::is_object) {
            return Some((StatusCode::BAD_REQUEST, "BadPayload"));
        }
        self.scripted_refusal(token)
    }

    /// Whether `authorization` is `bearer <ES256 JWT>` by the test key, naming its `kid`, issued by the team within the hour.
    fn check_provider_token(&self, authorization: &str) -> Result<(), &'static str> {
        let invalid = "InvalidProviderToken";
        let (scheme, jwt) = authorization.split_once(' ').ok_or(invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(invalid);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[APNS_TEAM_ID]);
        validation.set_required_spec_claims(&["iss"]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        let data = decode::<Value>(jwt, &self.verifying_key, &validation).map_err(|_| invalid)?;
        if data.header.kid.as_deref() != Some(APNS_KEY_ID) {
            return Err(invalid);
        }
        let iat = data.claims.get("iat").and_then(Value::as_u64).ok_or(invalid)?;
        let now = get_current_timestamp();
        if iat > now + 60 {
            return Err(invalid);
        }
        if now - iat > 3600 {
            return Err("ExpiredProviderToken");
        }
        Ok(())
    }

    /// The scripted failure for `token`, if any (consuming one of a limited number of failures).
    fn scripted_refusal(&self, token: &str) -> Option<(StatusCode, &'static str)> {
        let mut answers = lock(&self.answers);
        let answer = *answers.get(token)?;
        match answer {
            ApnsAnswer::Unregistered => Some((StatusCode::GONE, "Unregistered")),
            ApnsAnswer::BadDeviceToken => Some((StatusCode::BAD_REQUEST, "BadDeviceToken")),
            ApnsAnswer::ServerError { times } | ApnsAnswer::ExpiredProviderToken { times } => {
                if times <= 1 {
                    answers.remove(token);
                } else {
                    let left = times - 1;
                    let next = match answer {
                        ApnsAnswer::ServerError { .. } => ApnsAnswer::ServerError { times: left },
                        _ => ApnsAnswer::ExpiredProviderToken { times: left },
                    };
                    answers.insert(token.to_owned(), next);
                }
                if times == 0 {
                    return None;
                }
                Some(match answer {
                    ApnsAnswer::ServerError { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
                    _ => (StatusCode::FORBIDDEN, "ExpiredProviderToken"),
                })
            }
        }
    }
}

/// An APNs answer: the `apns-id` header, and `{"reason"}` (plus `timestamp` for 410) when refused.
fn apns_reply(status: StatusCode, reason: Option<&str>, apns_id: &str) -> hyper::Response<Body> {
    let body = match reason {
        Some(reason) if status == StatusCode::GONE => {
            let millis = get_current_timestamp() * 1000;
            Body::from(json!({"reason": reason, "timestamp": millis}).to_string())
        }
        Some(reason) => Body::from(json!({"reason": reason}).to_string()),
        None => Body::empty(),
    };
    let mut response = hyper::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("apns-id", HeaderValue::from_str(apns_id).unwrap_or(HeaderValue::from_static("invalid-apns-id")));
    if reason.is_some() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

/// A new `apns-id`: an upper-case UUID, as Apple makes them.
fn new_apns_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// A header's value as text.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// Locks a mutex, ignoring poisoning (a panicking test must not hide the data from the others).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
