//! Verification of OpenID Connect ID tokens (Google, Apple, or any OIDC provider) against the provider's JWKS.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use saas_core::{ServiceError, ServiceResult};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

/// Google's published signing keys, the default of `GOOGLE_JWKS_URL`.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// Apple's published signing keys, the default of `APPLE_JWKS_URL`.
pub const APPLE_JWKS_URL: &str = "https://appleid.apple.com/auth/keys";

/// The `iss` values Google puts in its ID tokens.
pub const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// The `iss` value Apple puts in its ID tokens.
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// How long a fetched key set is trusted before it is fetched again.
const KEYS_MAX_AGE: Duration = Duration::from_secs(60 * 60);
/// The shortest interval between two fetches caused by an unknown `kid` (so forged kids cannot hammer the provider).
const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Timeout of one JWKS request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;
/// Longer tokens are rejected before any parsing (real ID tokens are 1–2 KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The error code of every rejected token.
const INVALID_TOKEN_CODE: &str = "auth.invalid_social_token";
/// The error code of a key set that could not be fetched.
const UNAVAILABLE_CODE: &str = "auth.provider_unavailable";

/// Who a provider says signed in: its stable subject id and the profile facts its token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The provider's name, e.g. `google` or `apple` (what a linked account records).
    pub provider: String,
    /// The provider's stable user id (`sub`).
    pub subject: String,
    /// The email in the token, if any.
    pub email: Option<String>,
    /// Whether the provider vouches for the email (false when there is no email).
    pub email_verified: bool,
    /// `given_name`, when the token carries it.
    pub first_name: Option<String>,
    /// `family_name`, when the token carries it.
    pub last_name: Option<String>,
}

/// A sign-in provider that turns an ID token into a verified identity; implement it to add a provider.
#[async_trait]
pub trait IdentityProvider: Send + Sync + 'static {
    /// The provider's name, e.g. `google`.
    fn name(&self) -> &str;

    /// Verifies `id_token` and returns who it identifies; a bad token is 401 `auth.invalid_social_token`.
    async fn verify(&self, id_token: &str) -> ServiceResult<ExternalIdentity>;
}

/// An OpenID Connect provider whose ID tokens are checked against its JWKS (keys cached, refetched on rotation).
pub struct OidcProvider {
    name: String,
    issuers: Vec<String>,
    audience: String,
    jwks_url: String,
    http: reqwest::Client,
    cache: RwLock<Option<CachedKeys>>,
    /// Serialises fetches; holds the outcome of the last one so waiters can share it.
    refresh: Mutex<RefreshState>,
    /// Number of fetches finished, readable without waiting for `refresh`.
    fetches_done: AtomicU64,
    keys_max_age: Duration,
    unknown_kid_refetch_interval: Duration,
}

/// A fetched key set and when it was fetched.
struct CachedKeys {
    keys: JwkSet,
    fetched_at: Instant,
    /// Fetched because a fresh set lacked a `kid`: further unknown kids wait for the interval.
    after_unknown_kid: bool,
}

/// The outcome of the last finished fetch.
struct RefreshState {
    fetches_done: u64,
    last_failed: bool,
}

/// What the cached key set says about a `kid`.
enum Lookup {
    Found(Box<Jwk>),
    /// Not known, and the set was fetched too recently to fetch again.
    Unknown,
    /// Missing, stale or not known: fetch the set.
    Refetch,
}

/// The claims of an ID token this module reads (`exp`, `iss`, `aud` are checked by `Validation`).
#[derive(Debug, Deserialize)]
struct IdTokenClaims {
    sub: String,
    email: Option<String>,
    /// A boolean for Google; Apple may send the string `"true"`/`"false"`.
    email_verified: Option<Value>,
    given_name: Option<String>,
    family_name: Option<String>,
}

/// The JWKS document; keys are parsed one by one so one exotic key cannot hide the others.
#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

impl OidcProvider {
    /// A provider named `name` that accepts tokens from `issuers`, for the client id `audience`, keys at `jwks_url`.
    /// Fails only if the HTTP client (TLS backend) cannot be initialised.
    pub fn new(
        name: impl Into<String>,
        issuers: impl IntoIterator<Item = impl Into<String>>,
        audience: impl Into<String>,
        jwks_url: impl Into<String>,
    ) -> ServiceResult<Self> {
        let http = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build().map_err(ServiceError::internal)?;
        Ok(Self {
            name: name.into(),
            issuers: issuers.into_iter().map(Into::<String>::into).collect(),
            audience: audience.into(),
            jwks_url: jwks_url.into(),
            http,
            cache: RwLock::new(None),
            refresh: Mutex::new(RefreshState { fetches_done: 0, last_failed: false }),
            fetches_done: AtomicU64::new(0),
            keys_max_age: KEYS_MAX_AGE,
            unknown_kid_refetch_interval: UNKNOWN_KID_REFETCH_INTERVAL,
        })
    }

    /// Google Sign-In for the OAuth client id `client_id`; `jwks_url` is usually [`GOOGLE_JWKS_URL`].
    pub fn google(client_id: impl Into<String>, jwks_url: impl Into<String>) -> ServiceResult<Self> {
        Self::new("google", GOOGLE_ISSUERS, client_id, jwks_url)
    }

    /// Sign in with Apple for the app's bundle or services id `client_id`; `jwks_url` is usually [`APPLE_JWKS_URL`].
    pub fn apple(client_id: impl Into<String>, jwks_url: impl Into<String>) -> ServiceResult<Self> {
        Self::new("apple", [APPLE_ISSUER], client_id, jwks_url)
    }

    /// Overrides how long keys are trusted (default 1 h) and how often an unknown `kid` may trigger a fetch (10 s).
    pub fn with_key_cache(mut self, max_age: Duration, unknown_kid_refetch_interval: Duration) -> Self {
        self.keys_max_age = max_age;
        self.unknown_kid_refetch_interval = unknown_kid_refetch_interval;
        self
    }

    /// The client id tokens must be issued for (`aud`).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The issuers (`iss`) accepted.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// Where the provider's signing keys are fetched from.
    pub fn jwks_url(&self) -> &str {
        &self.jwks_url
    }

    /// The key named `kid`, from the cache or, when missing or stale, from a fresh fetch.
    async fn signing_key(&self, kid: &str) -> ServiceResult<Jwk> {
        let seen = self.fetches_done.load(Ordering::Acquire);
        if let Some(jwk) = self.cached_key(kid).await? {
            return Ok(jwk);
        }
        let mut state = self.refresh.lock().await;
        // Another caller may have fetched while this one waited: use its result rather than fetch again.
        if let Some(jwk) = self.cached_key(kid).await? {
            return Ok(jwk);
        }
        if state.fetches_done != seen && state.last_failed {
            return Err(provider_unavailable());
        }
        let after_unknown_kid =
            self.cache.read().await.as_ref().is_some_and(|cached| cached.fetched_at.elapsed() < self.keys_max_age);
        let fetched = self.fetch_keys().await;
        state.fetches_done += 1;
        state.last_failed = fetched.is_err();
        self.fetches_done.store(state.fetches_done, Ordering::Release);
        let keys = fetched?;
        let found = keys.find(kid).cloned();
        *self.cache.write().await = Some(CachedKeys { keys, fetched_at: Instant::now(), after_unknown_kid });
        found.ok_or_else(unknown_key)
    }

    /// `Some(key)` when cached and fresh, `None` when a fetch is due, an error for a recently confirmed unknown kid.
    async fn cached_key(&self, kid: &str) -> ServiceResult<Option<Jwk>> {
        let cache = self.cache.read().await;
        match cache.as_ref().map(|cached| self.lookup(cached, kid)) {
            Some(Lookup::Found(jwk)) => Ok(Some(*jwk)),
            Some(Lookup::Unknown) => Err(unknown_key()),
            Some(Lookup::Refetch) | None => Ok(None),
        }
    }

    /// What `cached` says about `kid`, given the cache policy.
    fn lookup(&self, cached: &CachedKeys, kid: &str) -> Lookup {
        let age = cached.fetched_at.elapsed();
        if age >= self.keys_max_age {
            return Lookup::Refetch;
        }
        match cached.keys.find(kid) {
            Some(jwk) => Lookup::Found(Box::new(jwk.clone())),
            None if cached.after_unknown_kid && age < self.unknown_kid_refetch_interval => Lookup::Unknown,
            None => Lookup::Refetch,
        }
    }

    /// Downloads and parses the key set; any failure is 503 `auth.provider_unavailable`.
    async fn fetch_keys(&self) -> ServiceResult<JwkSet> {
        let response = self.http.get(self.jwks_url.as_str()).send().await.map_err(|err| {
            tracing::warn!(provider = %self.name, url = %self.jwks_url, error = %err, "JWKS request failed");
            provider_unavailable()
        })?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            tracing::warn!(provider = %self.name, url = %self.jwks_url, %status, "JWKS request answered an error");
            return Err(provider_unavailable());
        }
        let document: JwksDocument = response.json().await.map_err(|err| {
            tracing::warn!(provider = %self.name, url = %self.jwks_url, error = %err, "JWKS document is not valid");
            provider_unavailable()
        })?;
        let keys: Vec<Jwk> = document.keys.into_iter().filter_map(|key| serde_json::from_value(key).ok()).collect();
        tracing::debug!(provider = %self.name, keys = keys.len(), "JWKS fetched");
        Ok(JwkSet { keys })
    }

    /// The checks for a token signed with `alg`: signature, `aud`, `iss`, `exp` (and `nbf` if present), 60 s leeway.
    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_audience(&[self.audience.as_str()]);
        validation.set_issuer(self.issuers.as_slice());
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation
    }

    /// Logs why a token was refused (never the token) and returns the 401.
    fn reject(&self, err: ServiceError) -> ServiceError {
        tracing::debug!(provider = %self.name, reason = %err.message(), "social sign-in refused");
        err
    }
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("name", &self.name)
            .field("issuers", &self.issuers)
            .field("audience", &self.audience)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl IdentityProvider for OidcProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn verify(&self, id_token: &str) -> ServiceResult<ExternalIdentity> {
        let id_token = id_token.trim();
        if id_token.is_empty() || id_token.len() > MAX_TOKEN_BYTES {
            return Err(self.reject(invalid_token("The sign-in token is missing or malformed.")));
        }
        let header = decode_header(id_token).map_err(|err| self.reject(token_error(&err)))?;
        let alg = header.alg;
        if !matches!(alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(self.reject(invalid_token("The sign-in token uses an unsupported signing algorithm.")));
        }
        let kid = match header.kid.as_deref() {
            Some(kid) if !kid.is_empty() => kid,
            _ => return Err(self.reject(invalid_token("The sign-in token does not name its signing key."))),
        };
        let jwk = self.signing_key(kid).await.map_err(|err| self.reject(err))?;
        let key = decoding_key(&jwk, alg).map_err(|err| self.reject(err))?;
        let data = decode::<IdTokenClaims>(id_token, &key, &self.validation(alg))
            .map_err(|err| self.reject(token_error(&err)))?;
        identity_from_claims(&self.name, data.claims).map_err(|err| self.reject(err))
    }
}

/// A decoding key for `alg` from `jwk`, refusing keys published for another use, algorithm or curve.
fn decoding_key(jwk: &Jwk, alg: Algorithm) -> ServiceResult<DecodingKey> {
    let mismatch = || invalid_token("The provider's signing key does not fit the token's algorithm.");
    if jwk.common.public_key_use.as_ref().is_some_and(|key_use| *key_use != PublicKeyUse::Signature) {
        return Err(mismatch());
    }
    if jwk.common.key_algorithm.is_some_and(|key_alg| key_alg != KeyAlgorithm::from(alg)) {
        return Err(mismatch());
    }
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(params), Algorithm::ES256) => params.curve == EllipticCurve::P256,
        _ => false,
    };
    if !fits {
        return Err(mismatch());
    }
    DecodingKey::from_jwk(jwk).map_err(|_| mismatch())
}

/// The identity the verified claims describe.
fn identity_from_claims(provider: &str, claims: IdTokenClaims) -> ServiceResult<ExternalIdentity> {
    if claims.sub.trim().is_empty() {
        return Err(invalid_token("The sign-in token has no subject."));
    }
    let email = non_blank(claims.email);
    let email_verified = email.is_some() && claims.email_verified.as_ref().is_some_and(claim_is_true);
    Ok(ExternalIdentity {
        provider: provider.to_owned(),
        subject: claims.sub,
        email,
        email_verified,
        first_name: non_blank(claims.given_name),
        last_name: non_blank(claims.family_name),
    })
}

/// Whether a boolean claim is true, accepting `true` and the string `"true"` (Apple sends both forms).
fn claim_is_true(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::String(text) => text.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The trimmed text, or `None` when absent or blank.
fn non_blank(text: Option<String>) -> Option<String> {
    text.map(|text| text.trim().to_owned()).filter(|text| !text.is_empty())
}

/// The 401 for a token that cannot be accepted, with a human `reason`.
fn invalid_token(reason: impl Into<String>) -> ServiceError {
    ServiceError::unauthenticated(INVALID_TOKEN_CODE, reason)
}

/// The 401 for a token signed by a key the provider does not publish.
fn unknown_key() -> ServiceError {
    invalid_token("The sign-in token is signed with a key the provider does not publish.")
}

/// The 503 for a key set that could not be fetched.
fn provider_unavailable() -> ServiceError {
    ServiceError::unavailable(UNAVAILABLE_CODE, "The sign-in provider could not be reached; try again shortly.")
}

/// The 401 for a token jsonwebtoken refused, with the reason in words.
fn token_error(err: &jsonwebtoken::errors::Error) -> ServiceError {
    use jsonwebtoken::errors::ErrorKind as Jwt;
    let reason = match err.kind() {
        Jwt::ExpiredSignature => "The sign-in token has expired.".to_owned(),
        Jwt::ImmatureSignature => "The sign-in token is not valid yet.".to_owned(),
        Jwt::InvalidSignature => "The sign-in token's signature is invalid.".to_owned(),
        Jwt::InvalidAudience => "The sign-in token was issued for another application.".to_owned(),
        Jwt::InvalidIssuer => "The sign-in token was not issued by the expected provider.".to_owned(),
        Jwt::MissingRequiredClaim(claim) => format!("The sign-in token lacks the `{claim}` claim."),
        Jwt::InvalidClaimFormat(claim) => format!("The sign-in token's `{claim}` claim is malformed."),
        Jwt::InvalidAlgorithm | Jwt::UnsupportedAlgorithm | Jwt::MissingAlgorithm | Jwt::InvalidAlgorithmName => {
            "The sign-in token uses an unsupported signing algorithm.".to_owned()
        }
        Jwt::InvalidKeyFormat | Jwt::InvalidRsaKey(_) | Jwt::InvalidEcdsaKey | Jwt::InvalidEddsaKey => {
            "The provider's signing key is unusable.".to_owned()
        }
        _ => "The sign-in token is malformed.".to_owned(),
    };
    invalid_token(reason)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use saas_core::ErrorKind;
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> IdTokenClaims {
        serde_json::from_value(value).expect("claims deserialize")
    }

    fn provider() -> OidcProvider {
        // The URL is never contacted: every token below is refused before any key is needed.
        OidcProvider::google("client-123", "http://127.0.0.1:9/certs").expect("client builds")
    }

    fn assert_invalid(result: ServiceResult<ExternalIdentity>) -> ServiceError {
        let err = result.expect_err("token must be refused");
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
        assert_eq!(err.code(), "auth.invalid_social_token");
        err
    }

    #[test]
    fn email_verified_accepts_booleans_and_strings() {
        assert!(claim_is_true(&json!(true)));
        assert!(claim_is_true(&json!("true")));
        assert!(claim_is_true(&json!("TRUE")));
        assert!(!claim_is_true(&json!(false)));
        assert!(!claim_is_true(&json!("false")));
        assert!(!claim_is_true(&json!("yes")));
        assert!(!claim_is_true(&json!(1)));
        assert!(!claim_is_true(&Value::Null));
    }

    #[test]
    fn google_claims_map_to_an_identity() {
        let identity = identity_from_claims(
            "google",
            claims(json!({
                "sub": "1081", "email": "ada@example.com", "email_verified": true,
                "given_name": "Ada", "family_name": "Lovelace",
            })),
        )
        .expect("identity");
        assert_eq!(
            identity,
            ExternalIdentity {
                provider: "google".into(),
                subject: "1081".into(),
                email: Some("ada@example.com".into()),
                email_verified: true,
                first_name: Some("Ada".into()),
                last_name: Some("Lovelace".into()),
            }
        );
    }

    #[test]
    fn apple_string_flags_and_missing_names_map_to_an_identity() {
        let verified = identity_from_claims(
            "apple",
            claims(json!({"sub": "001.abc", "email": "x@privaterelay.appleid.com", "email_verified": "true"})),
        )
        .expect("identity");
        assert!(verified.email_verified);
        assert_eq!(verified.first_name, None);
        assert_eq!(verified.last_name, None);

        let unverified = identity_from_claims(
            "apple",
            claims(json!({"sub": "001.abc", "email": "x@y.z", "email_verified": "false"})),
        )
        .expect("identity");
        assert!(!unverified.email_verified);
    }

    #[test]
    fn no_email_means_not_verified_and_blank_names_are_dropped() {
        let identity = identity_from_claims(
            "google",
            claims(json!({"sub": "42", "email_verified": true, "given_name": "  ", "family_name": ""})),
        )
        .expect("identity");
        assert_eq!(identity.email, None);
        assert!(!identity.email_verified);
        assert_eq!(identity.first_name, None);
        assert_eq!(identity.last_name, None);
    }

    #[test]
    fn an_empty_subject_is_refused() {
        let err = identity_from_claims("google", claims(json!({"sub": " "}))).expect_err("refused");
        assert_eq!(err.code(), "auth.invalid_social_token");
    }

    #[test]
    fn key_must_fit_the_algorithm() {
        let rsa: Jwk = serde_json::from_value(json!({
            "kty": "RSA", "kid": "k", "use": "sig", "alg": "RS256", "n": "sXch", "e": "AQAB"
        }))
        .expect("jwk");
        assert!(decoding_key(&rsa, Algorithm::RS256).is_ok());
        assert!(decoding_key(&rsa, Algorithm::ES256).is_err());

        let encryption: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "kid": "k", "use": "enc", "n": "sXch", "e": "AQAB"}))
                .expect("jwk");
        assert!(decoding_key(&encryption, Algorithm::RS256).is_err());

        let other_alg: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "kid": "k", "alg": "RS512", "n": "sXch", "e": "AQAB"}))
                .expect("jwk");
        assert!(decoding_key(&other_alg, Algorithm::RS256).is_err());
    }

    #[test]
    fn validation_error_kinds_become_invalid_social_token() {
        use jsonwebtoken::errors::ErrorKind as Jwt;
        for kind in [Jwt::ExpiredSignature, Jwt::InvalidAudience, Jwt::InvalidIssuer, Jwt::InvalidSignature] {
            let err = token_error(&kind.into());
            assert_eq!(err.kind(), ErrorKind::Unauthenticated);
            assert_eq!(err.code(), "auth.invalid_social_token");
        }
        let missing = token_error(&Jwt::MissingRequiredClaim("aud".into()).into());
        assert!(missing.message().contains("aud"));
    }

    #[tokio::test]
    async fn malformed_tokens_are_refused_without_a_fetch() {
        let provider = provider();
        assert_invalid(provider.verify("").await);
        assert_invalid(provider.verify("not-a-jwt").await);
        assert_invalid(provider.verify("a.b.c").await);
        assert_invalid(provider.verify(&"x".repeat(MAX_TOKEN_BYTES + 1)).await);
    }

    #[tokio::test]
    async fn symmetric_or_kid_less_tokens_are_refused_without_a_fetch() {
        let provider = provider();
        let claims =
            json!({"sub": "1", "aud": "client-123", "iss": "https://accounts.google.com", "exp": 4_102_444_800u64});
        let secret = EncodingKey::from_secret(b"attacker-chosen");

        let mut hs256 = Header::new(Algorithm::HS256);
        hs256.kid = Some("test-key-1".into());
        let token = encode(&hs256, &claims, &secret).expect("encode");
        let err = assert_invalid(provider.verify(&token).await);
        assert!(err.message().contains("algorithm"));

        let part = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
        let none = format!("{}.{}.", part(json!({"alg": "none", "kid": "test-key-1"})), part(claims.clone()));
        assert_invalid(provider.verify(&none).await);

        let kid_less = format!("{}.{}.c2ln", part(json!({"alg": "RS256", "typ": "JWT"})), part(claims));
        let err = assert_invalid(provider.verify(&kid_less).await);
        assert!(err.message().contains("signing key"));
    }

    #[test]
    fn google_and_apple_presets() {
        let google = provider();
        assert_eq!(google.name(), "google");
        assert_eq!(google.audience(), "client-123");
        assert_eq!(google.issuers(), ["https://accounts.google.com", "accounts.google.com"]);

        let apple = OidcProvider::apple("com.example.app", APPLE_JWKS_URL).expect("client builds");
        assert_eq!(apple.name(), "apple");
        assert_eq!(apple.issuers(), ["https://appleid.apple.com"]);
        assert_eq!(apple.jwks_url(), "https://appleid.apple.com/auth/keys");
    }
}
