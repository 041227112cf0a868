//! Sign-up, sign-in, sessions, passwords, email verification, the user object and linked
//! accounts.

use serde::Deserialize;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult};

use super::password::{Verification, validate_password};
use super::tokens::{TokenType, new_one_time_token, token_hash};
use super::{AuthService, normalize_email};
use crate::models::{LinkedAccount, RefreshedTokens, TokenPair, TokenPurpose, User, UserRow};
use crate::store::NewUser;

/// Registration input: `{email, password}` or dj-rest-auth's `{email, password1, password2}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RegisterInput {
    /// The login.
    pub email: String,
    /// The password.
    pub password: Option<String>,
    /// The password (dj-rest-auth shape).
    pub password1: Option<String>,
    /// Its confirmation (dj-rest-auth shape).
    pub password2: Option<String>,
}

/// Changes to the user object.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct UserUpdate {
    /// A new email; it becomes unverified and a verification is sent.
    pub email: Option<String>,
}

const WELCOME_SUBJECT: &str = "Welcome to the app!";
const WELCOME_TEXT: &str = "Thanks for joining. We're excited to have you.";

impl AuthService {
    /// Creates an account (with its profile and `email` linked account) and signs it in;
    /// a welcome and a verification email follow. An email taken in any case is
    /// `auth.email_taken`, also when two registrations race.
    pub async fn register(&self, input: RegisterInput) -> ServiceResult<TokenPair> {
        let email = normalize_email(&input.email, "email")?;
        let (password, field) = match (&input.password, &input.password1) {
            (Some(password), _) => (password.clone(), "password"),
            (None, Some(password1)) => {
                if input.password2.as_deref() != Some(password1.as_str()) {
                    return Err(ServiceError::invalid_field("password2", "The two password fields didn't match."));
                }
                (password1.clone(), "password1")
            }
            (None, None) => return Err(ServiceError::invalid_field("password", "This field is required.")),
        };
        validate_password(&password, Some(&email), field)?;
        if self.store().user_by_email(&email).await?.is_some() {
            return Err(email_taken());
        }
        let hash = self.inner.hasher.hash(password).await?;
        let new = NewUser {
            email: &email,
            password_hash: Some(&hash),
            is_email_verified: false,
            is_staff: false,
            first_name: "",
            last_name: "",
            linked: ("email", &email),
        };
        let row = self.store().create_user(&new).await?.ok_or_else(email_taken)?;
        self.send_email(&row.email, WELCOME_SUBJECT, WELCOME_TEXT.to_owned()).await?;
        self.send_verification(row.id, &row.email).await?;
        self.start_session(row).await
    }

    /// Signs in with email and password. A wrong email and a wrong password get the same
    /// answer after the same work; a correct password on a deactivated account is
    /// `auth.inactive`. A Django hash is upgraded to Argon2id here.
    pub async fn login(&self, email: &str, password: &str) -> ServiceResult<TokenPair> {
        let row = self.check_credentials(email, password).await?;
        self.start_session(row).await
    }

    /// Checks an email and password without starting a session (the admin site's
    /// sign-in); the same answers and the same hash upgrade as [`login`](Self::login).
    pub async fn check_credentials(&self, email: &str, password: &str) -> ServiceResult<UserRow> {
        let email = email.trim().to_lowercase();
        let row = self.store().user_by_email(&email).await?;
        let stored = row.as_ref().and_then(|r| r.password_hash.clone());
        let verification = self.inner.hasher.verify(password.to_owned(), stored.clone()).await?;
        let row = match (row, verification) {
            (Some(row), Verification::Valid | Verification::ValidNeedsRehash) => row,
            _ => {
                return Err(ServiceError::unauthenticated(
                    "auth.invalid_credentials",
                    "Unable to log in with provided credentials.",
                ));
            }
        };
        if !row.is_active {
            return Err(ServiceError::forbidden("auth.inactive", "This account is inactive."));
        }
        if let (Verification::ValidNeedsRehash, Some(old)) = (verification, stored) {
            let new = self.inner.hasher.hash(password.to_owned()).await?;
            self.store().upgrade_password_hash(row.id, &old, &new).await?;
        }
        Ok(row)
    }

    /// Exchanges a refresh token for a new pair in the same session; the one sent is spent.
    /// Presenting a spent token again revokes the whole session (`auth.token_reused`).
    pub async fn refresh(&self, refresh: &str) -> ServiceResult<RefreshedTokens> {
        let claims = self.keys().decode(refresh)?;
        if claims.token_type != TokenType::Refresh {
            return Err(ServiceError::unauthenticated("auth.token_invalid", "A refresh token is required."));
        }
        if !self.store().spend_refresh(&claims.jti, claims.user_id).await? {
            if self.store().refresh_was_used(&claims.jti).await? {
                self.store().revoke_family(&claims.sid).await?;
                tracing::warn!(user_id = %claims.user_id, "a spent refresh token was presented again; session revoked");
                return Err(ServiceError::unauthenticated(
                    "auth.token_reused",
                    "This refresh token was already used; the session has been revoked.",
                ));
            }
            return Err(ServiceError::unauthenticated(
                "auth.token_invalid",
                "The refresh token is invalid or revoked.",
            ));
        }
        let active = self.store().user(claims.user_id).await?.is_some_and(|u| u.is_active);
        if !active {
            self.store().revoke_family(&claims.sid).await?;
            return Err(ServiceError::unauthenticated("auth.token_invalid", "The account is inactive."));
        }
        let (access, refresh) = self.issue_pair(claims.user_id, &claims.sid).await?;
        // A revocation racing this rotation (a replayed token, a logout) may have missed the
        // token just issued: check again and revoke it with its family.
        if self.store().family_revoked(&claims.sid).await? {
            self.store().revoke_family(&claims.sid).await?;
            return Err(ServiceError::unauthenticated("auth.token_invalid", "The session has been revoked."));
        }
        Ok(RefreshedTokens { access, refresh })
    }

    /// `token/verify/`: whether a token (access or refresh) is genuine, unexpired and not revoked.
    pub async fn verify_token(&self, token: &str) -> ServiceResult<()> {
        let claims = self.keys().decode(token)?;
        match claims.token_type {
            TokenType::Access => self.authenticate(token).await.map(|_| ()),
            TokenType::Refresh if self.store().refresh_is_live(&claims.jti).await? => Ok(()),
            TokenType::Refresh => Err(ServiceError::unauthenticated("auth.token_invalid", "The token is revoked.")),
        }
    }

    /// Revokes the session of `refresh` (it must be the caller's).
    pub async fn logout(&self, user_id: Uuid, refresh: &str) -> ServiceResult<()> {
        let claims = self.keys().decode(refresh).map_err(|_| invalid_refresh())?;
        if claims.token_type != TokenType::Refresh || claims.user_id != user_id {
            return Err(invalid_refresh());
        }
        self.store().revoke_family(&claims.sid).await?;
        Ok(())
    }

    /// Deactivates the account: data kept, every session revoked at once.
    pub async fn deactivate(&self, user_id: Uuid, reason: Option<&str>) -> ServiceResult<User> {
        let reason = reason.map(|r| r.chars().take(500).collect::<String>());
        self.store().set_active(user_id, false, reason.as_deref()).await?;
        self.revoke_everything(user_id).await?;
        self.user(user_id).await
    }

    /// Reactivates an account (staff action).
    pub async fn reactivate(&self, user_id: Uuid) -> ServiceResult<User> {
        self.store().set_active(user_id, true, None).await?;
        self.user(user_id).await
    }

    /// Changes the password after checking the old one; other sessions are signed out.
    pub async fn change_password(&self, user_id: Uuid, session: &str, old: &str, new: &str) -> ServiceResult<()> {
        let row = self.store().user(user_id).await?.ok_or_else(|| ServiceError::not_found("User"))?;
        let check = self.inner.hasher.verify(old.to_owned(), row.password_hash.clone()).await?;
        if check == Verification::Invalid {
            return Err(ServiceError::bad_request(
                "auth.invalid_password",
                "Your old password was entered incorrectly.",
            ));
        }
        validate_password(new, Some(&row.email), "new_password")?;
        let hash = self.inner.hasher.hash(new.to_owned()).await?;
        self.store().set_password(user_id, Some(&hash)).await?;
        self.store().revoke_user_tokens(user_id, Some(session)).await?;
        Ok(())
    }

    /// Queues a reset: the job sends a link if an active account has this email. The answer
    /// and its timing are the same whether the account exists or not.
    pub async fn request_password_reset(&self, email: &str) -> ServiceResult<()> {
        let Ok(email) = normalize_email(email, "email") else { return Ok(()) };
        self.ctx().jobs().enqueue(super::PASSWORD_RESET_JOB, &serde_json::json!({"email": email})).await
    }

    /// Sends a reset link to the active account with this email, if any (run by the job).
    pub async fn send_password_reset(&self, email: &str) -> ServiceResult<()> {
        let Some(row) = self.store().user_by_email(email).await? else { return Ok(()) };
        if !row.is_active {
            return Ok(());
        }
        let token = new_one_time_token();
        self.store().insert_one_time(&token_hash(token.as_bytes()), row.id, TokenPurpose::PasswordReset).await?;
        let text = format!(
            "Someone asked to reset the password of your account.\n\nChoose a new password: {}\n\n\
             The link expires in one hour. If it was not you, ignore this email.",
            self.link("reset-password", &token)
        );
        self.send_email(&row.email, "Reset your password", text).await
    }

    /// Sets a new password with a reset token; the token is spent, the user's other reset
    /// tokens voided and every session revoked.
    pub async fn confirm_password_reset(&self, token: &str, new_password: &str) -> ServiceResult<()> {
        let hash = token_hash(token.trim().as_bytes());
        let user_id =
            self.store().peek_one_time(&hash, TokenPurpose::PasswordReset).await?.ok_or_else(invalid_token)?;
        let row = self.store().user(user_id).await?.ok_or_else(invalid_token)?;
        validate_password(new_password, Some(&row.email), "new_password")?;
        let new_hash = self.inner.hasher.hash(new_password.to_owned()).await?;
        self.store().spend_one_time(&hash, TokenPurpose::PasswordReset).await?.ok_or_else(invalid_token)?;
        self.store().set_password(user_id, Some(&new_hash)).await?;
        self.store().void_one_time(user_id, TokenPurpose::PasswordReset).await?;
        self.revoke_everything(user_id).await
    }

    /// Marks the email verified with a verification token (single use, 24 h).
    pub async fn verify_email(&self, token: &str) -> ServiceResult<()> {
        let hash = token_hash(token.trim().as_bytes());
        let user_id = self.store().spend_one_time(&hash, TokenPurpose::VerifyEmail).await?.ok_or_else(invalid_token)?;
        self.store().mark_verified(user_id).await
    }

    /// Sends a new verification email; `auth.already_verified` when there is nothing to do.
    pub async fn resend_verification(&self, user_id: Uuid) -> ServiceResult<()> {
        let row = self.store().user(user_id).await?.ok_or_else(|| ServiceError::not_found("User"))?;
        if row.is_email_verified {
            return Err(ServiceError::bad_request("auth.already_verified", "The email is already verified."));
        }
        self.send_verification(row.id, &row.email).await
    }

    async fn send_verification(&self, user_id: Uuid, email: &str) -> ServiceResult<()> {
        let token = new_one_time_token();
        self.store().insert_one_time(&token_hash(token.as_bytes()), user_id, TokenPurpose::VerifyEmail).await?;
        let text = format!(
            "Confirm your email address: {}\n\nThe link expires in 24 hours.",
            self.link("verify-email", &token)
        );
        self.send_email(email, "Verify your email", text).await
    }

    /// Applies changes to the user object; a new email is unverified and gets a verification.
    pub async fn update_user(&self, user_id: Uuid, update: UserUpdate) -> ServiceResult<User> {
        let row = self.store().user(user_id).await?.ok_or_else(|| ServiceError::not_found("User"))?;
        if let Some(raw) = update.email {
            let email = normalize_email(&raw, "email")?;
            if email != row.email {
                if !self.store().change_email(user_id, &row.email, &email).await? {
                    return Err(email_taken());
                }
                // Links sent to the old address must not verify the new one.
                self.store().void_one_time(user_id, TokenPurpose::VerifyEmail).await?;
                self.send_verification(user_id, &email).await?;
            }
        }
        self.user(user_id).await
    }

    /// The caller's linked accounts.
    pub async fn linked_accounts(&self, user_id: Uuid) -> ServiceResult<Vec<LinkedAccount>> {
        self.store().linked_accounts(user_id).await
    }

    /// Unlinks a sign-in method, unless it is the last way to sign in
    /// (`auth.last_login_method`). Unlinking `email` removes the password.
    pub async fn unlink_account(&self, user_id: Uuid, link_id: Uuid) -> ServiceResult<()> {
        let row = self.store().user(user_id).await?.ok_or_else(|| ServiceError::not_found("User"))?;
        let links = self.store().linked_accounts(user_id).await?;
        let target = links.iter().find(|l| l.id == link_id).ok_or_else(|| ServiceError::not_found("Linked account"))?;
        let remaining_social = links.iter().filter(|l| l.id != link_id && l.provider != "email").count();
        let keeps_password =
            target.provider != "email" && row.password_hash.is_some() && links.iter().any(|l| l.provider == "email");
        let devices = self.store().credentials(user_id).await?.len();
        if remaining_social == 0 && !keeps_password && devices == 0 {
            return Err(ServiceError::bad_request(
                "auth.last_login_method",
                "This is your last way to sign in; add another before removing it.",
            ));
        }
        if !self.store().unlink(user_id, link_id).await? {
            return Err(ServiceError::not_found("Linked account"));
        }
        if target.provider == "email" {
            self.store().set_password(user_id, None).await?;
        }
        Ok(())
    }

    /// Creates a staff account (the `createsuperuser` command); an existing account with
    /// this email is made staff, active and verified, and gets the password.
    pub async fn create_superuser(&self, email: &str, password: &str) -> ServiceResult<User> {
        let email = normalize_email(email, "email")?;
        validate_password(password, Some(&email), "password")?;
        let hash = self.inner.hasher.hash(password.to_owned()).await?;
        let id = match self.store().user_by_email(&email).await? {
            Some(row) => {
                self.store().set_password(row.id, Some(&hash)).await?;
                row.id
            }
            None => {
                let new = NewUser {
                    email: &email,
                    password_hash: Some(&hash),
                    is_email_verified: true,
                    is_staff: true,
                    first_name: "",
                    last_name: "",
                    linked: ("email", &email),
                };
                self.store().create_user(&new).await?.ok_or_else(email_taken)?.id
            }
        };
        self.store().set_staff(id, true).await?;
        self.store().set_active(id, true, None).await?;
        self.store().mark_verified(id).await?;
        self.user(id).await
    }
}

fn email_taken() -> ServiceError {
    ServiceError::bad_request("auth.email_taken", "A user with that email already exists.")
        .with_detail("fields", serde_json::json!({"email": ["A user with that email already exists."]}))
}

fn invalid_token() -> ServiceError {
    ServiceError::bad_request("auth.invalid_token", "The link is invalid or has expired.")
}

fn invalid_refresh() -> ServiceError {
    ServiceError::invalid_field("refresh", "Token is invalid or expired.")
}
