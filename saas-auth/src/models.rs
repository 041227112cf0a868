//! Rows and the JSON shapes of the accounts API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

/// A user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// Trimmed, lower-cased email; the login.
    pub email: String,
    /// Argon2id PHC string (or a Django hash until the next login); `None` without a password.
    pub password_hash: Option<String>,
    /// Whether the email was confirmed.
    pub is_email_verified: bool,
    /// Deactivated users cannot authenticate.
    pub is_active: bool,
    /// Staff may use the admin site.
    pub is_staff: bool,
    /// Registration time.
    pub date_joined: DateTime<Utc>,
}

/// A profile row (one per user).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRow {
    /// The user.
    pub user_id: Uuid,
    /// Lower-case username, unique; `None` until set.
    pub username: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// Free text.
    pub bio: String,
    /// IANA zone name.
    pub timezone: String,
    /// Arbitrary client preferences (a JSON object).
    pub preferences: Json<Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl ProfileRow {
    /// First and last name joined.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }
}

/// The user object of the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Email (the login).
    pub email: String,
    /// Whether the email was confirmed.
    pub is_email_verified: bool,
    /// Whether the account is active.
    pub is_active: bool,
    /// Registration time.
    pub date_joined: DateTime<Utc>,
    /// First and last name.
    pub full_name: String,
    /// The username, once set.
    pub username: Option<String>,
    /// Whether the profile has a username.
    pub profile_completed: bool,
    /// Sign-in methods linked to the account (`email`, `google`, `apple`).
    pub linked_providers: Vec<String>,
}

/// The profile object of the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    /// The user.
    pub user_id: Uuid,
    /// Username (lower case), once set.
    pub username: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// First and last name.
    pub full_name: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// Free text.
    pub bio: String,
    /// IANA zone name.
    pub timezone: String,
    /// Client preferences.
    #[schema(value_type = Object)]
    pub preferences: Value,
    /// Whether a username is set.
    pub is_complete: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<ProfileRow> for Profile {
    fn from(row: ProfileRow) -> Self {
        Self {
            full_name: row.full_name(),
            is_complete: row.username.is_some(),
            user_id: row.user_id,
            username: row.username,
            first_name: row.first_name,
            last_name: row.last_name,
            avatar_url: row.avatar_url,
            bio: row.bio,
            timezone: row.timezone,
            preferences: row.preferences.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A sign-in method linked to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LinkedAccount {
    /// Id.
    pub id: Uuid,
    /// `email`, `google`, `apple`, …
    pub provider: String,
    /// The provider's id of the user (the email for `email`).
    pub provider_user_id: String,
    /// When it was linked.
    pub created_at: DateTime<Utc>,
}

/// A device key enrolled for biometric sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BiometricCredential {
    /// The credential id clients sign in with.
    #[serde(rename = "credential_id")]
    pub id: Uuid,
    /// The device's own id.
    pub device_id: String,
    /// A name for people.
    pub device_name: String,
    /// `ES256` or `EdDSA`.
    pub algorithm: String,
    /// Enrolment time.
    pub created_at: DateTime<Utc>,
    /// Last successful sign-in with it.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Access and refresh tokens with the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// Short-lived bearer token.
    pub access: String,
    /// Rotating refresh token.
    pub refresh: String,
    /// The signed-in user.
    pub user: User,
}

/// A refreshed pair (no user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefreshedTokens {
    /// New access token.
    pub access: String,
    /// New refresh token; the one sent is spent.
    pub refresh: String,
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Email verification (24 h).
    VerifyEmail,
    /// Password reset (1 h).
    PasswordReset,
}

impl TokenPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
        }
    }

    /// How long such a token is valid.
    pub fn lifetime(self) -> chrono::Duration {
        match self {
            TokenPurpose::VerifyEmail => chrono::Duration::hours(24),
            TokenPurpose::PasswordReset => chrono::Duration::hours(1),
        }
    }
}

/// Reserved usernames (never available).
pub const RESERVED_USERNAMES: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "system",
    "api",
    "www",
    "mail",
    "email",
    "support",
    "help",
    "info",
    "contact",
    "about",
    "terms",
    "privacy",
    "security",
    "account",
    "login",
    "logout",
    "register",
    "signup",
    "signin",
    "signout",
    "auth",
    "authentication",
    "user",
    "users",
    "profile",
    "profiles",
    "settings",
    "config",
    "configuration",
    "dashboard",
    "home",
    "index",
    "null",
    "undefined",
    "anonymous",
    "guest",
    "test",
    "demo",
    "example",
    "official",
    "verified",
    "staff",
    "mod",
    "moderator",
    "bot",
    "robot",
    "service",
    "notification",
];
