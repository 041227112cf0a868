//! Sign-in with an identity provider (Google, Apple, or one an app adds).

use saas_core::{ServiceError, ServiceResult};

use super::{AuthService, normalize_email};
use crate::models::TokenPair;
use crate::store::NewUser;

impl AuthService {
    /// Verifies `id_token` with `provider` and signs its user in: the account linked to that
    /// identity, else the account with the same (provider-verified) email, which gets linked
    /// and verified (if that email was never verified, its password, sessions and devices are
    /// dropped: the provider proved who owns it), else a new account. `first_name`/`last_name` fill a new profile (Apple
    /// sends names only on the first sign-in). Returns the pair and whether it was created.
    pub async fn social_login(
        &self,
        provider: &str,
        id_token: &str,
        first_name: Option<&str>,
        last_name: Option<&str>,
    ) -> ServiceResult<(TokenPair, bool)> {
        let verifier = self.inner.providers.get(provider).cloned().ok_or_else(|| {
            ServiceError::bad_request(
                "auth.provider_not_configured",
                format!("Sign-in with {provider} is not configured."),
            )
        })?;
        let identity = verifier.verify(id_token).await?;
        if let Some(row) = self.store().user_by_link(provider, &identity.subject).await? {
            if !row.is_active {
                return Err(ServiceError::forbidden("auth.inactive", "This account is inactive."));
            }
            return Ok((self.start_session(row).await?, false));
        }
        let email = identity
            .email
            .as_deref()
            .ok_or_else(|| ServiceError::unauthenticated("auth.invalid_social_token", "The token carries no email."))?;
        if !identity.email_verified {
            return Err(ServiceError::unauthenticated(
                "auth.invalid_social_token",
                "The provider has not verified this email.",
            ));
        }
        let email = normalize_email(email, "id_token")?;
        if let Some(row) = self.store().user_by_email(&email).await? {
            if !row.is_active {
                return Err(ServiceError::forbidden("auth.inactive", "This account is inactive."));
            }
            if !row.is_email_verified {
                // Nobody proved owning this email before; the provider just did. Whoever
                // registered it may not come back with a password, sessions or devices.
                self.store().set_password(row.id, None).await?;
                self.store().delete_credentials(row.id).await?;
                self.revoke_everything(row.id).await?;
            }
            self.store().link(row.id, provider, &identity.subject).await?;
            self.store().mark_verified(row.id).await?;
            let row = self.store().user(row.id).await?.ok_or_else(|| ServiceError::not_found("User"))?;
            return Ok((self.start_session(row).await?, false));
        }
        let first =
            first_name.or(identity.first_name.as_deref()).unwrap_or("").trim().chars().take(150).collect::<String>();
        let last =
            last_name.or(identity.last_name.as_deref()).unwrap_or("").trim().chars().take(150).collect::<String>();
        let new = NewUser {
            email: &email,
            password_hash: None,
            is_email_verified: true,
            is_staff: false,
            first_name: &first,
            last_name: &last,
            linked: (provider, &identity.subject),
        };
        match self.store().create_user(&new).await? {
            Some(row) => Ok((self.start_session(row).await?, true)),
            // Two first sign-ins raced: the other created the account; sign in to it.
            None => {
                let row = self.store().user_by_link(provider, &identity.subject).await?.ok_or_else(|| {
                    ServiceError::conflict("auth.email_taken", "A user with that email already exists.")
                })?;
                Ok((self.start_session(row).await?, false))
            }
        }
    }
}
