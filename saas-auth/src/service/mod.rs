//! The accounts service: every rule of sign-up, sign-in, sessions, profiles and recovery.
//! HTTP handlers, the admin and apps call it directly (`AuthService::get(&ctx)?`).

mod accounts;
mod biometric;
pub mod password;
mod profile;
mod social_login;
pub mod tokens;

use std::collections::HashMap;
use std::sync::Arc;

use saas_core::{AppContext, ServiceError, ServiceResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::models::{ProfileRow, TokenPair, User, UserRow};
use crate::social::{IdentityProvider, OidcProvider};
use crate::store::AccountStore;
use crate::user_cache::{self, UserObjects};
use password::PasswordHasher;
use tokens::{Claims, JwtKeys, TokenType};

pub use accounts::{RegisterInput, UserUpdate};
pub use biometric::{ChallengeFor, IssuedChallenge};
pub use profile::ProfileUpdate;

/// The name of the job that sends the service's emails.
pub const SEND_EMAIL_JOB: &str = "auth.send_email";
/// The name of the job that deletes expired tokens and challenges.
pub const CLEAN_UP_JOB: &str = "auth.clean_up_tokens";
/// The name of the job that sends a password reset link.
pub const PASSWORD_RESET_JOB: &str = "auth.send_password_reset";
/// The name of the job that deactivates accounts left unverified (when configured).
pub const DEACTIVATE_UNVERIFIED_JOB: &str = "auth.deactivate_unverified";

/// The accounts service; cheap to clone.
#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: AppContext,
    store: AccountStore,
    keys: JwtKeys,
    hasher: PasswordHasher,
    providers: HashMap<String, Arc<dyn IdentityProvider>>,
    objects: UserObjects,
}

impl AuthService {
    /// Builds the service from the context's configuration (JWT keys, Google and Apple
    /// when their client ids are set) plus `extra` identity providers.
    pub fn new(ctx: &AppContext, extra: Vec<Arc<dyn IdentityProvider>>) -> ServiceResult<Self> {
        let config = ctx.config();
        let mut providers: HashMap<String, Arc<dyn IdentityProvider>> = HashMap::new();
        if let Some(client_id) = config.var("GOOGLE_CLIENT_ID") {
            let jwks = config.var("GOOGLE_JWKS_URL").unwrap_or(crate::social::GOOGLE_JWKS_URL);
            providers.insert("google".into(), Arc::new(OidcProvider::google(client_id, jwks)?));
        }
        if let Some(client_id) = config.var("APPLE_CLIENT_ID") {
            let jwks = config.var("APPLE_JWKS_URL").unwrap_or(crate::social::APPLE_JWKS_URL);
            providers.insert("apple".into(), Arc::new(OidcProvider::apple(client_id, jwks)?));
        }
        for provider in extra {
            providers.insert(provider.name().to_owned(), provider);
        }
        let inner = Inner {
            ctx: ctx.clone(),
            store: AccountStore::new(ctx.db().clone(), ctx.cache().clone()),
            objects: UserObjects::default(),
            keys: JwtKeys::from_config(config)?,
            hasher: PasswordHasher::default(),
            providers,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The app's service: the one the auth module installed, else one built from the
    /// configuration (and kept in the context).
    pub fn get(ctx: &AppContext) -> ServiceResult<Self> {
        if let Some(service) = ctx.get::<AuthService>() {
            return Ok(service);
        }
        let service = AuthService::new(ctx, Vec::new())?;
        ctx.insert(service.clone());
        Ok(service)
    }

    fn ctx(&self) -> &AppContext {
        &self.inner.ctx
    }

    pub(crate) fn store(&self) -> &AccountStore {
        &self.inner.store
    }

    /// The JWT keys (for apps issuing or checking tokens themselves).
    pub fn keys(&self) -> &JwtKeys {
        &self.inner.keys
    }

    /// Checks an access token: signature, expiry, type, and that the user's sessions were
    /// not revoked after it was issued (a cache lookup, no database query).
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Claims> {
        let claims = self.access_claims(token)?;
        let revoked = self.ctx().cache().get(&revocation_key(claims.user_id)).await?;
        check_not_revoked(&claims, revoked)?;
        Ok(claims)
    }

    /// The object of the user an access token signs in: the checks of
    /// [`AuthService::authenticate`] and [`AuthService::user`] with one cache round trip.
    pub async fn signed_in_user(&self, token: &str) -> ServiceResult<User> {
        let claims = self.access_claims(token)?;
        let keys = [revocation_key(claims.user_id), user_cache::version_key(claims.user_id)];
        let mut values = self.ctx().cache().get_many(&[&keys[0], &keys[1]]).await?.into_iter();
        let (revoked, version) = (values.next().flatten(), values.next().flatten());
        check_not_revoked(&claims, revoked)?;
        self.user_under(claims.user_id, version).await
    }

    /// A token's claims when it is a valid access token (signature, expiry, type).
    fn access_claims(&self, token: &str) -> ServiceResult<Claims> {
        let claims = self.keys().decode(token)?;
        if claims.token_type != TokenType::Access {
            return Err(ServiceError::unauthenticated("auth.token_invalid", "An access token is required."));
        }
        Ok(claims)
    }

    /// The API user object of `id` (404 when absent): this node's copy while the user has
    /// not changed since it was read (one cache lookup), else one query.
    pub async fn user(&self, id: Uuid) -> ServiceResult<User> {
        let version = self.store().user_version(id).await?;
        self.user_under(id, version).await
    }

    /// The user object of `id`, `version` being the user's version read just before.
    async fn user_under(&self, id: Uuid, version: Option<bytes::Bytes>) -> ServiceResult<User> {
        if let Some(user) = self.inner.objects.get(id, &version) {
            return Ok(user);
        }
        let (row, profile, providers) =
            self.store().user_object_row(id).await?.ok_or_else(|| ServiceError::not_found("User"))?;
        let user = user_object(row, Some(profile), providers);
        self.inner.objects.keep(version, &user);
        Ok(user)
    }

    /// The raw user row of `id`, if any (for extractors and other crates).
    pub async fn user_row(&self, id: Uuid) -> ServiceResult<Option<UserRow>> {
        self.store().user(id).await
    }

    /// Starts a new session for `row`: a token pair in a new family.
    async fn start_session(&self, row: UserRow) -> ServiceResult<TokenPair> {
        let sid = Uuid::new_v4().simple().to_string();
        let (access, refresh) = self.issue_pair(row.id, &sid).await?;
        self.store().touch_login(row.id).await?;
        Ok(TokenPair { access, refresh, user: self.user(row.id).await? })
    }

    async fn issue_pair(&self, user_id: Uuid, sid: &str) -> ServiceResult<(String, String)> {
        let (access, _) = self.keys().issue(TokenType::Access, user_id, sid)?;
        let (refresh, claims) = self.keys().issue(TokenType::Refresh, user_id, sid)?;
        let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(chrono::Utc::now);
        self.store().insert_refresh(&claims.jti, user_id, sid, expires_at).await?;
        Ok((access, refresh))
    }

    /// Revokes every session of a user, access tokens included (deactivation, reset).
    async fn revoke_everything(&self, user_id: Uuid) -> ServiceResult<()> {
        self.store().revoke_user_tokens(user_id, None).await?;
        let now = chrono::Utc::now().timestamp_millis().to_string();
        self.ctx().cache().set(&revocation_key(user_id), now.into_bytes().into(), Some(self.keys().access_ttl)).await
    }

    async fn send_email(&self, to: &str, subject: &str, text: String) -> ServiceResult<()> {
        let job = EmailJob { id: Some(Uuid::now_v7()), to: to.to_owned(), subject: subject.to_owned(), text };
        self.ctx().jobs().enqueue(SEND_EMAIL_JOB, &job).await
    }

    fn link(&self, path: &str, token: &str) -> String {
        format!("{}/{path}?token={token}", self.ctx().config().frontend_url)
    }

    /// Deactivates accounts unverified for `AUTH_DEACTIVATE_UNVERIFIED_AFTER_DAYS` days
    /// (unset or 0: never, the default); returns how many.
    pub async fn deactivate_unverified(&self) -> ServiceResult<u64> {
        let days: i64 = self.ctx().config().var_or("AUTH_DEACTIVATE_UNVERIFIED_AFTER_DAYS", 0)?;
        if days <= 0 {
            return Ok(0);
        }
        let ids = self.store().deactivate_unverified(chrono::Utc::now() - chrono::Duration::days(days)).await?;
        for id in &ids {
            self.revoke_everything(*id).await?;
        }
        Ok(ids.len() as u64)
    }

    /// Deletes expired one-time tokens, refresh tokens and challenges.
    pub async fn clean_up_expired(&self) -> ServiceResult<u64> {
        self.store().delete_expired().await
    }
}

fn user_object(row: UserRow, profile: Option<ProfileRow>, providers: Vec<String>) -> User {
    let (full_name, username) = match profile {
        Some(profile) => (profile.full_name(), profile.username),
        None => (String::new(), None),
    };
    User {
        id: row.id,
        email: row.email,
        is_email_verified: row.is_email_verified,
        is_active: row.is_active,
        date_joined: row.date_joined,
        profile_completed: username.is_some(),
        full_name,
        username,
        linked_providers: providers,
    }
}

fn revocation_key(user_id: Uuid) -> String {
    format!("auth:revoked:{user_id}")
}

/// 401 when the user's sessions were revoked (`revoked`: the time, in ms) after the token
/// was issued.
fn check_not_revoked(claims: &Claims, revoked: Option<bytes::Bytes>) -> ServiceResult<()> {
    let revoked_ms: i64 = revoked.and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok()).unwrap_or(0);
    if claims.iat_ms < revoked_ms {
        return Err(ServiceError::unauthenticated("auth.token_invalid", "The session has been revoked."));
    }
    Ok(())
}

/// Trimmed, lower-cased email, or 400 `validation.failed` on `field`.
pub fn normalize_email(raw: &str, field: &str) -> ServiceResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
                && email.matches('@').count() == 1
        });
    if valid { Ok(email) } else { Err(ServiceError::invalid_field(field, "Enter a valid email address.")) }
}

/// The payload of the email job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailJob {
    /// Identifies the mail, so that a re-run of its job does not send it twice (absent in
    /// jobs queued by earlier versions).
    #[serde(default)]
    pub id: Option<Uuid>,
    /// Recipient.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::normalize_email;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(normalize_email("  Ann@Example.COM ", "email").unwrap(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@x.io", "ann@localhost", "a b@x.io", "a@b@c.io", "ann@.io"] {
            assert!(normalize_email(bad, "email").is_err(), "{bad}");
        }
    }
}
