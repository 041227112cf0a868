//! JWT access and refresh tokens (HS256 with `SECRET_KEY` by default; RS256 or EdDSA with
//! key files), and the random one-time tokens of emails and challenges.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use saas_core::{Config, ErrorKind, ServiceError, ServiceResult};

/// Which of the two tokens a JWT is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Bearer token for API calls.
    Access,
    /// Exchanged for a new pair at `token/refresh/`.
    Refresh,
}

/// The claims of both tokens (`user_id`, `token_type`, `jti`, `exp` as clients of the
/// original stack expect, plus the session id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Access or refresh.
    pub token_type: TokenType,
    /// The user.
    pub user_id: Uuid,
    /// Unique id of this token.
    pub jti: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Issued at (milliseconds), for revocation checks finer than a second.
    pub iat_ms: i64,
    /// Expiry (seconds).
    pub exp: i64,
    /// The session: every refresh of one sign-in shares it.
    pub sid: String,
}

/// Signs and checks tokens.
#[derive(Clone)]
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
}

impl JwtKeys {
    /// Keys from the configuration: `JWT_ALGORITHM` (`HS256` default, `RS256`, `EdDSA`),
    /// with `JWT_PRIVATE_KEY_FILE` and `JWT_PUBLIC_KEY_FILE` (PEM) for the asymmetric ones.
    pub fn from_config(config: &Config) -> ServiceResult<Self> {
        let algorithm = config.var("JWT_ALGORITHM").unwrap_or("HS256");
        let (algorithm, encoding, decoding) = match algorithm {
            "HS256" => (
                Algorithm::HS256,
                EncodingKey::from_secret(config.secret_key.as_bytes()),
                DecodingKey::from_secret(config.secret_key.as_bytes()),
            ),
            "RS256" | "EdDSA" => {
                let private = read_key(config, "JWT_PRIVATE_KEY_FILE")?;
                let public = read_key(config, "JWT_PUBLIC_KEY_FILE")?;
                if algorithm == "RS256" {
                    (
                        Algorithm::RS256,
                        EncodingKey::from_rsa_pem(&private).map_err(key_error)?,
                        DecodingKey::from_rsa_pem(&public).map_err(key_error)?,
                    )
                } else {
                    (
                        Algorithm::EdDSA,
                        EncodingKey::from_ed_pem(&private).map_err(key_error)?,
                        DecodingKey::from_ed_pem(&public).map_err(key_error)?,
                    )
                }
            }
            other => return Err(config_error(&format!("JWT_ALGORITHM {other:?} is not HS256, RS256 or EdDSA"))),
        };
        Ok(Self {
            algorithm,
            encoding,
            decoding,
            access_ttl: config.jwt_access_ttl,
            refresh_ttl: config.jwt_refresh_ttl,
        })
    }

    /// Issues a token of `token_type` for `user_id` in session `sid`.
    pub fn issue(&self, token_type: TokenType, user_id: Uuid, sid: &str) -> ServiceResult<(String, Claims)> {
        let now = Utc::now();
        let ttl = match token_type {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            token_type,
            user_id,
            jti: Uuid::new_v4().simple().to_string(),
            iat: now.timestamp(),
            iat_ms: now.timestamp_millis(),
            exp: now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            sid: sid.to_owned(),
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|err| ServiceError::internal(format!("cannot sign a token: {err}")))?;
        Ok((token, claims))
    }

    /// Checks signature, algorithm (only the configured one; `none` never) and expiry.
    pub fn decode(&self, token: &str) -> ServiceResult<Claims> {
        let mut validation = Validation::new(self.algorithm);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|data| data.claims).map_err(|err| {
            let reason = match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "The token has expired.",
                _ => "The token is invalid.",
            };
            ServiceError::unauthenticated("auth.token_invalid", reason)
        })
    }
}

fn read_key(config: &Config, name: &str) -> ServiceResult<Vec<u8>> {
    let path = config.var(name).ok_or_else(|| config_error(&format!("{name} must be set for this JWT_ALGORITHM")))?;
    std::fs::read(path).map_err(|err| config_error(&format!("cannot read {name} ({path}): {err}")))
}

fn key_error(err: jsonwebtoken::errors::Error) -> ServiceError {
    config_error(&format!("invalid JWT key: {err}"))
}

fn config_error(message: &str) -> ServiceError {
    ServiceError::new(ErrorKind::Internal, "config.invalid", message)
}

/// A new one-time token: 64 hex characters (32 random bytes).
pub fn new_one_time_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The stored form of a token or challenge: SHA-256, hex.
pub fn token_hash(token: &[u8]) -> String {
    hex::encode(Sha256::digest(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::from_config(&Config::from_vars([("DEBUG", "true"), ("SECRET_KEY", "k1")]).unwrap()).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_tampering_is_refused() {
        let keys = keys();
        let id = Uuid::new_v4();
        let (token, claims) = keys.issue(TokenType::Access, id, "s1").unwrap();
        assert_eq!(keys.decode(&token).unwrap(), claims);
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(keys.decode(&tampered).unwrap_err().code(), "auth.token_invalid");
        let other =
            JwtKeys::from_config(&Config::from_vars([("DEBUG", "true"), ("SECRET_KEY", "k2")]).unwrap()).unwrap();
        assert!(other.decode(&token).is_err(), "another key's token");
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        use base64::Engine;
        let keys = keys();
        let (token, _) = keys.issue(TokenType::Access, Uuid::new_v4(), "s").unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!("{}.{payload}.", engine.encode(br#"{"alg":"none","typ":"JWT"}"#));
        assert!(keys.decode(&none).is_err());
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &keys.decode(&token).unwrap(),
            &EncodingKey::from_secret(b"k1"),
        )
        .unwrap();
        assert!(keys.decode(&hs512).is_err(), "only the configured algorithm");
    }

    #[test]
    fn expired_tokens_are_refused() {
        let config =
            Config::from_vars([("DEBUG", "true"), ("SECRET_KEY", "k"), ("JWT_ACCESS_TTL_SECONDS", "0")]).unwrap();
        let keys = JwtKeys::from_config(&config).unwrap();
        let (token, _) = keys.issue(TokenType::Access, Uuid::new_v4(), "s").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(keys.decode(&token).unwrap_err().message(), "The token has expired.");
    }

    #[test]
    fn one_time_tokens_are_64_hex_and_stored_hashed() {
        let token = new_one_time_token();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(token_hash(token.as_bytes()), token);
        assert_eq!(token_hash(token.as_bytes()).len(), 64);
    }
}
