#![allow(dead_code)]
//! Test support for social sign-in: two fixed RSA test keys, RS256 token signing, and a fake JWKS server on
//! loopback that speaks the wire format of Google's and Apple's key endpoints.
//!
//! Include it with `#[path = "support/oidc.rs"] mod oidc;` (or from `support/mod.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

/// The `iss` of Google ID tokens.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The `iss` of Apple ID tokens.
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";
/// The `given_name` that [`google_claims`] puts in its tokens.
pub const GIVEN_NAME: &str = "Ada";
/// The `family_name` that [`google_claims`] puts in its tokens.
pub const FAMILY_NAME: &str = "Lovelace";

/// An RSA 2048 key pair for tests: the private key (PKCS#1 PEM) and the public JWK's `n` and `e`.
#[derive(Debug)]
pub struct TestKey {
    /// The `kid` under which the key is published and which signed tokens name.
    pub kid: &'static str,
    /// The private key, PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`).
    pub private_pem: &'static str,
    /// The public modulus, base64url without padding (JWK `n`).
    pub n: &'static str,
    /// The public exponent, base64url without padding (JWK `e`).
    pub e: &'static str,
}

/// The first test key, published as `test-key-1`.
pub static TEST_KEY_1: TestKey = TestKey {
    kid: "test-key-1",
    private_pem: TEST_KEY_1_PEM,
    n: "mol7UwrMXT6PFsC9c-qghc-uaE1t2SmqCnfQlC5MDEwU1Ou3YZeKyDB6UgoP3UgPMdflx8ZKqH3l-oDN5Sudzi9AW6-Cndqdrm-7BMHBueLPuRSO7oqopl7yZotvIXhqDiE8yDmtzp7KoZFyuc1aDmwQ9nOSUTisE6hMio7NnVVOgko-CD-LgEoDEvyH94WlcJRmqA5vny08v90zqBbuA16o8XF4H20jNWsryino0vNeWCvKwXDEYctN4qIB--n3bNxWZKllVaRvoTw0Riv5EZZK57R2_Rww1OLWRcVPjSiHO2E-7cDpkadRwTMvREeZ49M99LQcNbNmcULwBGwacw",
    e: "AQAB",
};

/// The second test key, published as `test-key-2` (for rotation and wrong-key tests).
pub static TEST_KEY_2: TestKey = TestKey {
    kid: "test-key-2",
    private_pem: TEST_KEY_2_PEM,
    n: "8cW95s9cu8kjxV2kOtjrCjqXpd-HaLZQJEAJI5ckBIN1uIZBXsDEO7XFlCmn2Fr2CVpskgu1ztQx0j1iT6CXOedTT5KlTf_pidjbd6BPpcYTLByTt0mozNZz62qGnNFsQqKIr4BGNyw_uv07MNoFOXt4WDMg68h19yfInsaBVYrbLXKzb6xb8TWtmLVcWcGIDx8P22fHW-K5cgLeiZQbhfrBYyWb8umRUATg-6XjLwPjQNMA9Fhj-R4DmCPNrhD2ag8v2LeJ0zHCUIAMioFvnEXSxsR4quSUd428DHFITzSPCzKy-9iLb3jKLrLL-iSV0KImgX5vr360pGPR0CI1jw",
    e: "AQAB",
};

const TEST_KEY_1_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAmol7UwrMXT6PFsC9c+qghc+uaE1t2SmqCnfQlC5MDEwU1Ou3
YZeKyDB6UgoP3UgPMdflx8ZKqH3l+oDN5Sudzi9AW6+Cndqdrm+7BMHBueLPuRSO
7oqopl7yZotvIXhqDiE8yDmtzp7KoZFyuc1aDmwQ9nOSUTisE6hMio7NnVVOgko+
CD+LgEoDEvyH94WlcJRmqA5vny08v90zqBbuA16o8XF4H20jNWsryino0vNeWCvK
wXDEYctN4qIB++n3bNxWZKllVaRvoTw0Riv5EZZK57R2/Rww1OLWRcVPjSiHO2E+
7cDpkadRwTMvREeZ49M99LQcNbNmcULwBGwacwIDAQABAoIBABUcFfeTBbWbDRVw
61rr6v+RuLj7aAz+eawyZRCeKQ8+TqjYhiqo9nFAMLAHkIE2uF9OUaTHe9KmWAWv
FfEUfdr4w2mC1mx/vNhjiirX2NcZRNd7F8c9XlT+VU3CsEHkiVWNdBhvIJnqll1v
A+VI8uCozGxjVH0PKRpfpreqqCsHPMxjGcfmsdzgxUv20PeSOzm1DkS7Ou4+y47L
21VspHJhSeYAulInsaCHTV8++Vw590+taD09z+01L5XhHTpogypjV7DckJdfZBxY
lwxaoYdMSfdBo+8kRJvE1/YR0Ffei7PAHKZCl5q0QTGsEBwN9BVoefbE0w6857JO
69vbrhECgYEAyxmSoxrX7puxC1XmRdV1KBCxAhFK+3AoHna2qwKaIMlPJfmTQZzC
jags9z2W2L+McTnRIxijcCuEhVg2FSXW/O2ImWIQL8FicGB45WXopAUts2M1JExn
8hVJTlN3M5RuOp+dtS1IZ8S2dprS+oXE8wKdZCSiX9FoBxLRG3zgJ0sCgYEAwsnN
nBSnPtf/SdNyGc1AujC03jt/7fXCgUlxlbJ68lWHna2RR9yoPtyWzsebBhIuoldJ
fYAA9+T0wdZ+ySv27bfFOUDkX/0XQtBEBDkoY4KvuKxXuzboi2wpvQNww+VQdYLc
s1kll6Or5SuLWCvPxWQHtJo9IWBb2bSiUvVPmHkCgYAA2JVsyoLVwp5FLtFrvwzi
4tbp7EqEq53vKo1uPu+HbW8/+D8tycphrq6pRP9o3btnCVeers6XfAbsS0bGZcb0
fMTR5r+sg0C2uSAnzHngnQjos2QYR50zO/V3Nw/LDjY7Vkjg5VRk4kPkUJbKZl5A
qOUg8qoefg/R37kxRR7l6wKBgQDAT/1v2/RDV330pY5BayQ8r1njD1t+1OT0QE6k
PVKlb0w1oOeOy4xQg/lgrjGgDNN99C/aeEZ8eNAtkFgcxgtFJ+rQXAEdxALzNCvy
/3ugw6Y57e2wKMXu4RtUQdFTl1OYsVq0t48l57IO0K8Cnj7D47630JAKI9iLWIvq
28d6AQKBgFJmQN2QYrs50MqXeRiQMfDzaQe1ljgrPXHudSSl32FZxNqnPFls5jEx
7QDHwQM53mUC8beK/h/q1kQ/EowpN8//0se3P76fr1ZVc7U435LRzWmrypm8AcEc
WJCQpEb+3a6nK77ptxeYgoLO3sfKjnD9sV/3cKaE9y5mgUlD4tAT
-----END RSA PRIVATE KEY-----
";

const TEST_KEY_2_PEM: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEA8cW95s9cu8kjxV2kOtjrCjqXpd+HaLZQJEAJI5ckBIN1uIZB
XsDEO7XFlCmn2Fr2CVpskgu1ztQx0j1iT6CXOedTT5KlTf/pidjbd6BPpcYTLByT
t0mozNZz62qGnNFsQqKIr4BGNyw/uv07MNoFOXt4WDMg68h19yfInsaBVYrbLXKz
b6xb8TWtmLVcWcGIDx8P22fHW+K5cgLeiZQbhfrBYyWb8umRUATg+6XjLwPjQNMA
9Fhj+R4DmCPNrhD2ag8v2LeJ0zHCUIAMioFvnEXSxsR4quSUd428DHFITzSPCzKy
+9iLb3jKLrLL+iSV0KImgX5vr360pGPR0CI1jwIDAQABAoIBAFSam2UI/Ez0SnG2
3pD/NmSac1XGvlY8she1Vt1e9uojbI75YCe9sg2pAq5h00vpLL7CJ0sGEQWDCLom
49+0dSb8lZE7YmBEpN8phUc70JNUmIHvsBtMCedARklDuj5nJIi+4rDzZN7Ku7R+
B/gE2x4t4EORBLytpeYqxFAXa8vYQNHFPNjPNrRjRAR4DM15RnWEP17KW4f0FfSV
a8SRSVsEI1UwRyuEHBeLL/nUjjxMMfKwG3WNvVmsJfkVwlc/IesUYTMRqGPslH1e
DgPtr4SDisAuq71RI3KYjwx/sN2TdyENOsN/DVuJtXes5p9vdShh48cjnn/nHtMZ
1bUr3QECgYEA+t7qVuQGFAs9O7nidj5WHB60s9H3hmSvh8uiShE6D9ZGmtHbL6g3
vR1/Wf4TfnpNHB6p76QPhqplYuYZaboVwEnskFiA9fdNxQxzOM2YbNxC1auQimM1
3kX0Y1jl08brSmBuUXDgE+jLEk8IkLtuizmr+jiAIc4m7dbKLJ+wsQECgYEA9rc0
aqeW0JQ4gMloTCrhDKgULGqUVWmIYKpUiuo7rDsK1K4J/lGt67W7BM+Qe9voMrFq
m5tLupH0R5S5h1JwwL9NDhLZH7LpoKCIXEwQamvmZeY2337BS25UZI+jIJMcPynl
LG2b72x6nYUTUcXskfYvQHBni3E9cmCIfBf5Vo8CgYBdSVs2qGAiP/OrK/osIg3/
MuPbIi67COHEy1Iz3KgMj499rp+k3xaq+jcLDdHN7EiUNkrW09j6KI6+8fVtPUct
U8/l9SMvU6DVr0WBT+JoSJeJwNxkuXOkjbrM3pfH4mZIKAedvS11+dDZpA35U9lN
aEqtJyluaKxNMNvJMDCSAQKBgQD0vjdkWk4VKgSHVcV+UcchHBevHCd8N42Pf0kQ
6V468/NBmkjVnkdvHb+h/RpylGta5n9AUCUmtqVi4RnPMSwjOWMCRBZaCM0UiEvd
a6OZPuK3UVI8Ee1Em/ViMM99gBI0YqYylaVsNOvKGXpZ04NkJJkpTpiZTsPLFBIx
MEMr5wKBgQC8GcdnqDavXqYcD0VdKHBew6gp/YeVYjvF9GvxG6vp/ssLyv0edo+d
6gdTQkrWHZZlMwqArvEDBrjlCljCw3fUkNeyWGdBd+NuO04Qo9u4kKOO2wcuZEvX
J1GPy/IZ37uHU/suPrgL7NulPqfPIOar9Fv4t9gQbwDOLWGQ6HPiBQ==
-----END RSA PRIVATE KEY-----
";

impl TestKey {
    /// The public key as a JWK entry of a key set.
    pub fn jwk(&self) -> Value {
        json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": self.n, "e": self.e})
    }

    /// The private key for signing (PKCS#1 DER, which jsonwebtoken's RustCrypto signer expects).
    pub fn encoding_key(&self) -> EncodingKey {
        let body: String = self
            .private_pem
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(body).expect("test key PEM holds base64");
        EncodingKey::from_rsa_der(&der)
    }
}

/// The JWKS document publishing `keys`.
pub fn jwks_document(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>()})
}

/// An RS256 JWT over `claims`, signed by `key`, with header `kid` = `key.kid`.
pub fn sign(key: &TestKey, claims: &Value) -> String {
    sign_with_kid(key, Some(key.kid), claims)
}

/// An RS256 JWT over `claims`, signed by `key` but naming `kid` (or no kid): for unknown-key and wrong-key tests.
pub fn sign_with_kid(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key.encoding_key()).expect("sign test token")
}

/// The current time as a JWT timestamp (seconds since the epoch).
pub fn now() -> u64 {
    get_current_timestamp()
}

/// Claims of a valid Google ID token for the client id `aud`: verified email, given and family name, 1 h lifetime.
pub fn google_claims(aud: &str, sub: &str, email: &str) -> Value {
    let now = now();
    json!({
        "iss": GOOGLE_ISSUER,
        "azp": aud,
        "aud": aud,
        "sub": sub,
        "email": email,
        "email_verified": true,
        "name": format!("{GIVEN_NAME} {FAMILY_NAME}"),
        "given_name": GIVEN_NAME,
        "family_name": FAMILY_NAME,
        "iat": now,
        "exp": now + 3600,
    })
}

/// Claims of a valid Apple ID token for the client id `aud`: `email_verified` is the string `"true"`, no names.
pub fn apple_claims(aud: &str, sub: &str, email: &str) -> Value {
    let now = now();
    json!({
        "iss": APPLE_ISSUER,
        "aud": aud,
        "sub": sub,
        "email": email,
        "email_verified": "true",
        "is_private_email": "false",
        "auth_time": now,
        "nonce_supported": true,
        "iat": now,
        "exp": now + 3600,
    })
}

/// What the fake server answers to `GET /certs`.
enum Reply {
    /// 200 with this JSON document.
    Document(Value),
    /// This status with a plain-text body.
    Status(StatusCode),
    /// 200 `application/json` with this raw body (e.g. broken JSON).
    Raw(String),
}

/// Shared between the test and the server task.
struct JwksState {
    reply: RwLock<Reply>,
    fetches: AtomicUsize,
}

/// A JWKS endpoint on 127.0.0.1 serving `GET /certs`; stops when dropped.
pub struct FakeJwks {
    /// The full URL of the key set, `http://127.0.0.1:<port>/certs`.
    pub url: String,
    state: Arc<JwksState>,
    server: JoinHandle<()>,
}

impl FakeJwks {
    /// Starts the server publishing `keys`.
    pub async fn start(keys: &[&TestKey]) -> Self {
        let state = Arc::new(JwksState {
            reply: RwLock::new(Reply::Document(jwks_document(keys))),
            fetches: AtomicUsize::new(0),
        });
        let app = Router::new().route("/certs", get(certs)).with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake JWKS server");
        let addr = listener.local_addr().expect("fake JWKS server address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url: format!("http://{addr}/certs"), state, server }
    }

    /// Publishes `keys` from now on (key rotation); also ends a failure set by `fail_with` or `serve_raw`.
    pub async fn set_keys(&self, keys: &[&TestKey]) {
        *self.state.reply.write().await = Reply::Document(jwks_document(keys));
    }

    /// Answers every request with `status` (e.g. 500) until `set_keys` is called.
    pub async fn fail_with(&self, status: u16) {
        let status = StatusCode::from_u16(status).expect("valid HTTP status");
        *self.state.reply.write().await = Reply::Status(status);
    }

    /// Answers 200 with `body` as `application/json` (e.g. `"{not json"`) until `set_keys` is called.
    pub async fn serve_raw(&self, body: &str) {
        *self.state.reply.write().await = Reply::Raw(body.to_owned());
    }

    /// How many times `GET /certs` was requested.
    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for FakeJwks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `GET /certs`: counts the request and answers the current reply.
async fn certs(State(state): State<Arc<JwksState>>) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let reply = state.reply.read().await;
    match &*reply {
        Reply::Document(document) => Json(document.clone()).into_response(),
        Reply::Status(status) => (*status, "JWKS unavailable").into_response(),
        Reply::Raw(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
    }
}
