//! Biometric sign-in: challenge–response over device keys (ES256 from Secure Enclave or
//! Android Keystore, or EdDSA).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult};

use super::tokens::token_hash;
use super::{AuthService, normalize_email};
use crate::models::{BiometricCredential, TokenPair};

/// Seconds a challenge stays valid.
pub const CHALLENGE_TTL_SECONDS: i64 = 300;

/// Whose challenge is asked for.
#[derive(Debug, Clone)]
pub enum ChallengeFor {
    /// One enrolled credential.
    Credential(Uuid),
    /// Any credential of the account with this email.
    Email(String),
}

/// A challenge for the device to sign.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedChallenge {
    /// Base64 of 32 random bytes.
    pub challenge: String,
    /// Seconds it stays valid (300).
    pub expires_in: i64,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Checks that `der` is a key of `algorithm`.
fn check_key(algorithm: &str, der: &[u8]) -> Result<(), &'static str> {
    match algorithm {
        "ES256" => {
            use p256::pkcs8::DecodePublicKey;
            p256::ecdsa::VerifyingKey::from_public_key_der(der).map(|_| ()).map_err(|_| "Not a P-256 public key.")
        }
        "EdDSA" => {
            use ed25519_dalek::pkcs8::DecodePublicKey;
            ed25519_dalek::VerifyingKey::from_public_key_der(der).map(|_| ()).map_err(|_| "Not an Ed25519 public key.")
        }
        _ => Err("Use ES256 or EdDSA."),
    }
}

/// Whether `signature` over `message` verifies with the key (ES256: DER or raw r‖s).
fn signature_valid(algorithm: &str, der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    match algorithm {
        "ES256" => {
            use p256::ecdsa::signature::Verifier;
            use p256::pkcs8::DecodePublicKey;
            let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(der) else { return false };
            let parsed =
                p256::ecdsa::Signature::from_der(signature).or_else(|_| p256::ecdsa::Signature::from_slice(signature));
            parsed.is_ok_and(|sig| key.verify(message, &sig).is_ok())
        }
        "EdDSA" => {
            use ed25519_dalek::Verifier;
            use ed25519_dalek::pkcs8::DecodePublicKey;
            let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_der(der) else { return false };
            ed25519_dalek::Signature::from_slice(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
        }
        _ => false,
    }
}

fn biometric_failed() -> ServiceError {
    ServiceError::unauthenticated("auth.biometric_failed", "Biometric authentication failed.")
}

fn not_enabled() -> ServiceError {
    ServiceError::new(saas_core::ErrorKind::NotFound, "auth.biometric_not_enabled", "Biometric sign-in is not enabled.")
}

impl AuthService {
    /// Enrols (or re-enrols) a device key for the caller.
    pub async fn enroll_device(
        &self,
        user_id: Uuid,
        device_id: &str,
        device_name: Option<&str>,
        public_key: &str,
        algorithm: &str,
    ) -> ServiceResult<BiometricCredential> {
        let mut errors = saas_core::ValidationErrors::default();
        let device_id = device_id.trim();
        if device_id.is_empty() || device_id.len() > 255 {
            errors.add("device_id", "Enter a device id of 1 to 255 characters.");
        }
        if !matches!(algorithm, "ES256" | "EdDSA") {
            errors.add("algorithm", "Use ES256 or EdDSA.");
        }
        let der = STANDARD.decode(public_key.trim()).ok();
        match &der {
            None => errors.add("public_key", "Enter the base64 DER SubjectPublicKeyInfo of the key."),
            Some(der) if matches!(algorithm, "ES256" | "EdDSA") => {
                if let Err(message) = check_key(algorithm, der) {
                    errors.add("public_key", message);
                }
            }
            Some(_) => {}
        }
        errors.into_result()?;
        let name = device_name.unwrap_or("").trim().chars().take(255).collect::<String>();
        let der = der.unwrap_or_default();
        self.store().upsert_credential(user_id, device_id, &name, algorithm, &der).await
    }

    /// Issues a single-use challenge (32 random bytes, 5 minutes) for a credential or an
    /// account; unknown and not-enrolled answer alike (`auth.biometric_not_enabled`).
    pub async fn biometric_challenge(&self, target: ChallengeFor) -> ServiceResult<IssuedChallenge> {
        let (user_id, credential_id) = self.resolve_target(&target).await?.ok_or_else(not_enabled)?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let expires_at = Utc::now() + chrono::Duration::seconds(CHALLENGE_TTL_SECONDS);
        self.store().insert_challenge(&token_hash(&bytes), user_id, credential_id, expires_at).await?;
        Ok(IssuedChallenge { challenge: STANDARD.encode(bytes), expires_in: CHALLENGE_TTL_SECONDS, expires_at })
    }

    async fn resolve_target(&self, target: &ChallengeFor) -> ServiceResult<Option<(Uuid, Option<Uuid>)>> {
        let keys = match target {
            ChallengeFor::Credential(id) => self.store().credential_keys(Some(*id), None).await?,
            ChallengeFor::Email(email) => {
                let Ok(email) = normalize_email(email, "email") else { return Ok(None) };
                let Some(user) = self.store().user_by_email(&email).await? else { return Ok(None) };
                self.store().credential_keys(None, Some(user.id)).await?
            }
        };
        let Some((credential_id, user_id, _, _)) = keys.first() else { return Ok(None) };
        let credential = matches!(target, ChallengeFor::Credential(_)).then_some(*credential_id);
        Ok(Some((*user_id, credential)))
    }

    /// Signs in with a signature over a challenge. A replayed or expired challenge, a
    /// challenge of someone else, a bad signature or an inactive user all answer
    /// `auth.biometric_failed`; the challenge is spent by the attempt.
    pub async fn biometric_authenticate(
        &self,
        target: ChallengeFor,
        challenge: &str,
        signature: &str,
    ) -> ServiceResult<TokenPair> {
        let challenge = STANDARD.decode(challenge.trim()).map_err(|_| biometric_failed())?;
        let signature = STANDARD.decode(signature.trim()).map_err(|_| biometric_failed())?;
        let (user_id, credential) = self.resolve_target(&target).await?.ok_or_else(biometric_failed)?;
        let (challenge_user, challenge_credential) =
            self.store().consume_challenge(&token_hash(&challenge)).await?.ok_or_else(biometric_failed)?;
        if challenge_user != user_id {
            return Err(biometric_failed());
        }
        let pinned = match (challenge_credential, credential) {
            (Some(issued), Some(asked)) if issued != asked => return Err(biometric_failed()),
            (Some(issued), _) => Some(issued),
            (None, asked) => asked,
        };
        let candidates = self.store().credential_keys(pinned, Some(user_id)).await?;
        let matched = candidates
            .iter()
            .find(|(_, _, algorithm, key)| signature_valid(algorithm, key, &challenge, &signature))
            .map(|(id, ..)| *id)
            .ok_or_else(biometric_failed)?;
        let row = self.store().user(user_id).await?.filter(|u| u.is_active).ok_or_else(biometric_failed)?;
        self.store().touch_credential(matched).await?;
        self.start_session(row).await
    }

    /// Whether the account with `email` can sign in biometrically (false for unknown emails).
    pub async fn biometric_enabled(&self, email: &str) -> ServiceResult<bool> {
        Ok(self.resolve_target(&ChallengeFor::Email(email.to_owned())).await?.is_some())
    }

    /// The caller's enrolled devices.
    pub async fn biometric_credentials(&self, user_id: Uuid) -> ServiceResult<Vec<BiometricCredential>> {
        self.store().credentials(user_id).await
    }

    /// Removes one of the caller's devices (404 when not theirs).
    pub async fn remove_biometric_credential(&self, user_id: Uuid, credential_id: Uuid) -> ServiceResult<()> {
        if self.store().delete_credential(user_id, credential_id).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found("Credential"))
        }
    }

    /// Removes every device of the caller (idempotent).
    pub async fn disable_biometric(&self, user_id: Uuid) -> ServiceResult<()> {
        self.store().delete_credentials(user_id).await
    }
}
