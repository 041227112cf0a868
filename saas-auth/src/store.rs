//! SQL of the accounts tables, one text for SQLite and PostgreSQL.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use saas_core::cache::Cache;
use saas_core::{Db, ServiceError, ServiceResult, with_pool};

use sqlx::types::Json;
use uuid::Uuid;

use crate::models::{BiometricCredential, LinkedAccount, ProfileRow, TokenPurpose, UserRow};
use crate::user_cache::UserVersions;

const USER_COLUMNS: &str = "id, email, password_hash, is_email_verified, is_active, is_staff, date_joined";
const PROFILE_COLUMNS: &str =
    "user_id, username, first_name, last_name, avatar_url, bio, timezone, preferences, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct UserWithProfile {
    #[sqlx(flatten)]
    user: UserRow,
    #[sqlx(flatten)]
    profile: ProfileRow,
}

#[derive(sqlx::FromRow)]
struct UserObjectRow {
    #[sqlx(flatten)]
    user: UserRow,
    #[sqlx(flatten)]
    profile: ProfileRow,
    providers: Option<String>,
}

/// A new account to insert.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Normalised email.
    pub email: &'a str,
    /// Password hash, if any.
    pub password_hash: Option<&'a str>,
    /// Verified already (social sign-in).
    pub is_email_verified: bool,
    /// Staff.
    pub is_staff: bool,
    /// Given name.
    pub first_name: &'a str,
    /// Family name.
    pub last_name: &'a str,
    /// The first linked account: (provider, provider user id).
    pub linked: (&'a str, &'a str),
}

/// The accounts tables.
#[derive(Clone, Debug)]
pub struct AccountStore {
    db: Db,
    versions: UserVersions,
}

impl AccountStore {
    /// A store on `db`; every change of what a user object shows moves that user's version
    /// in `cache` (see [`AccountStore::user_version`]).
    pub fn new(db: Db, cache: Arc<dyn Cache>) -> Self {
        Self { db, versions: UserVersions::new(cache) }
    }

    /// The current version of the user's object: it changes after every write of this
    /// store to the user, the profile or the linked accounts (`None` before the first).
    pub async fn user_version(&self, id: Uuid) -> ServiceResult<Option<Bytes>> {
        self.versions.current(id).await
    }

    /// Inserts user, profile and first linked account in one transaction; `Ok(None)` when
    /// the email is taken (any case).
    pub async fn create_user(&self, new: &NewUser<'_>) -> ServiceResult<Option<UserRow>> {
        let id = Uuid::new_v4();
        let now = Utc::now();
        let result: Result<(), sqlx::Error> = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO auth_users (id, email, password_hash, is_email_verified, is_active, is_staff, date_joined) \
                 VALUES ($1, $2, $3, $4, TRUE, $5, $6)",
            )
            .bind(id).bind(new.email).bind(new.password_hash).bind(new.is_email_verified).bind(new.is_staff).bind(now)
            .execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO auth_profiles (user_id, first_name, last_name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(id).bind(new.first_name).bind(new.last_name).bind(now)
            .execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO auth_linked_accounts (id, user_id, provider, provider_user_id, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::new_v4()).bind(id).bind(new.linked.0).bind(new.linked.1).bind(now)
            .execute(&mut *tx).await?;
            tx.commit().await
        }.await);
        match result {
            Ok(()) => self.user(id).await,
            Err(err) if saas_core::error::is_unique_violation(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// A user by id.
    pub async fn user(&self, id: Uuid) -> ServiceResult<Option<UserRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = $1"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, UserRow>(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// A user by normalised email.
    pub async fn user_by_email(&self, email: &str) -> ServiceResult<Option<UserRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM auth_users WHERE email = $1"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, UserRow>(sql).bind(email).fetch_optional(pool).await)?)
    }

    /// A user with its profile and linked providers (oldest first), in one query: the read
    /// behind every `GET user/`. The providers are aggregated in each database's dialect.
    pub async fn user_object_row(&self, id: Uuid) -> ServiceResult<Option<(UserRow, ProfileRow, Vec<String>)>> {
        const COLUMNS: &str = "SELECT u.id, u.email, u.password_hash, u.is_email_verified, u.is_active, u.is_staff, \
             u.date_joined, p.user_id, p.username, p.first_name, p.last_name, p.avatar_url, p.bio, p.timezone, \
             p.preferences, p.created_at, p.updated_at, ";
        let row: Option<UserObjectRow> = match &self.db {
            Db::Sqlite(pool) => {
                let sql = sqlx::AssertSqlSafe(format!(
                    "{COLUMNS}(SELECT group_concat(provider, ',') FROM (SELECT provider FROM auth_linked_accounts \
                     WHERE user_id = u.id ORDER BY created_at, id)) AS providers \
                     FROM auth_users u JOIN auth_profiles p ON p.user_id = u.id WHERE u.id = $1"
                ));
                sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
            }
            Db::Postgres(pool) => {
                let sql = sqlx::AssertSqlSafe(format!(
                    "{COLUMNS}(SELECT string_agg(provider, ',' ORDER BY created_at, id) FROM auth_linked_accounts \
                     WHERE user_id = u.id) AS providers \
                     FROM auth_users u JOIN auth_profiles p ON p.user_id = u.id WHERE u.id = $1"
                ));
                sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
            }
        };
        Ok(row.map(|row| {
            let providers = row.providers.map(|p| p.split(',').map(str::to_owned).collect()).unwrap_or_default();
            (row.user, row.profile, providers)
        }))
    }

    /// Users with their profiles by id (for directories), in no particular order.
    pub async fn users(&self, ids: &[Uuid]) -> ServiceResult<Vec<(UserRow, ProfileRow)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT u.id, u.email, u.password_hash, u.is_email_verified, u.is_active, u.is_staff, u.date_joined, \
                 p.user_id, p.username, p.first_name, p.last_name, p.avatar_url, p.bio, p.timezone, p.preferences, \
                 p.created_at, p.updated_at \
                 FROM auth_users u JOIN auth_profiles p ON p.user_id = u.id WHERE u.id IN ({})",
                placeholders.join(", ")
            );
            let rows: Vec<UserWithProfile> = with_pool!(&self.db, pool => {
                let mut query = sqlx::query_as::<_, UserWithProfile>(sqlx::AssertSqlSafe(sql.clone()));
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(pool).await
            })?;
            out.extend(rows.into_iter().map(|row| (row.user, row.profile)));
        }
        Ok(out)
    }

    /// The profile of a user.
    pub async fn profile(&self, user_id: Uuid) -> ServiceResult<Option<ProfileRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {PROFILE_COLUMNS} FROM auth_profiles WHERE user_id = $1"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, ProfileRow>(sql).bind(user_id).fetch_optional(pool).await)?)
    }

    /// Saves every editable profile field; `Ok(false)` when the username is taken.
    pub async fn save_profile(&self, profile: &ProfileRow) -> ServiceResult<bool> {
        let result = with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth_profiles SET username = $2, first_name = $3, last_name = $4, avatar_url = $5, bio = $6, \
             timezone = $7, preferences = $8, updated_at = $9 WHERE user_id = $1",
        )
        .bind(profile.user_id).bind(&profile.username).bind(&profile.first_name).bind(&profile.last_name)
        .bind(&profile.avatar_url).bind(&profile.bio).bind(&profile.timezone).bind(Json(&profile.preferences.0))
        .bind(profile.updated_at)
        .execute(pool).await.map(|_| ()));
        match result {
            Ok(()) => {
                self.versions.bump(profile.user_id).await;
                Ok(true)
            }
            Err(err) if saas_core::error::is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Whether another user holds `username`.
    pub async fn username_taken(&self, username: &str, except: Uuid) -> ServiceResult<bool> {
        let found: Option<Uuid> = with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT user_id FROM auth_profiles WHERE username = $1 AND user_id <> $2",
        ).bind(username).bind(except).fetch_optional(pool).await)?;
        Ok(found.is_some())
    }

    /// The providers linked to a user, oldest first.
    pub async fn linked_accounts(&self, user_id: Uuid) -> ServiceResult<Vec<LinkedAccount>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, LinkedAccount>(
            "SELECT id, provider, provider_user_id, created_at FROM auth_linked_accounts WHERE user_id = $1 ORDER BY created_at, id",
        ).bind(user_id).fetch_all(pool).await)?)
    }

    /// The user linked to a provider identity.
    pub async fn user_by_link(&self, provider: &str, provider_user_id: &str) -> ServiceResult<Option<UserRow>> {
        let sql: &'static str = "SELECT u.id, u.email, u.password_hash, u.is_email_verified, u.is_active, u.is_staff, u.date_joined \
             FROM auth_users u JOIN auth_linked_accounts l ON l.user_id = u.id \
             WHERE l.provider = $1 AND l.provider_user_id = $2";
        Ok(
            with_pool!(&self.db, pool => sqlx::query_as::<_, UserRow>(sql).bind(provider).bind(provider_user_id).fetch_optional(pool).await)?,
        )
    }

    /// Links a provider identity to a user (no-op when already linked to them).
    pub async fn link(&self, user_id: Uuid, provider: &str, provider_user_id: &str) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth_linked_accounts (id, user_id, provider, provider_user_id, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (provider, provider_user_id) DO NOTHING",
        ).bind(Uuid::new_v4()).bind(user_id).bind(provider).bind(provider_user_id).bind(Utc::now())
        .execute(pool).await.map(|_| ()))?;
        self.versions.bump(user_id).await;
        Ok(())
    }

    /// Removes one of the user's linked accounts; `false` when it is not theirs.
    pub async fn unlink(&self, user_id: Uuid, link_id: Uuid) -> ServiceResult<bool> {
        let done = with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth_linked_accounts WHERE id = $1 AND user_id = $2")
            .bind(link_id).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))?;
        self.versions.bump(user_id).await;
        Ok(done == 1)
    }

    /// Changes the email (and the `email` link), unverifying it; `Ok(false)` when taken.
    pub async fn change_email(&self, user_id: Uuid, old: &str, new: &str) -> ServiceResult<bool> {
        let result: Result<(), sqlx::Error> = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE auth_users SET email = $2, is_email_verified = FALSE WHERE id = $1")
                .bind(user_id).bind(new).execute(&mut *tx).await?;
            sqlx::query("UPDATE auth_linked_accounts SET provider_user_id = $3 WHERE user_id = $1 AND provider = 'email' AND provider_user_id = $2")
                .bind(user_id).bind(old).bind(new).execute(&mut *tx).await?;
            tx.commit().await
        }.await);
        match result {
            Ok(()) => {
                self.versions.bump(user_id).await;
                Ok(true)
            }
            Err(err) if saas_core::error::is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Sets (or clears) the password hash.
    pub async fn set_password(&self, user_id: Uuid, hash: Option<&str>) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth_users SET password_hash = $2 WHERE id = $1")
            .bind(user_id).bind(hash).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Replaces the password hash only if it is still `old` (a rehash racing a change loses).
    pub async fn upgrade_password_hash(&self, user_id: Uuid, old: &str, new: &str) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth_users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
            .bind(user_id).bind(old).bind(new).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Records a successful sign-in.
    pub async fn touch_login(&self, user_id: Uuid) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth_users SET last_login = $2 WHERE id = $1")
            .bind(user_id).bind(Utc::now()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Marks the email verified.
    pub async fn mark_verified(&self, user_id: Uuid) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth_users SET is_email_verified = TRUE WHERE id = $1")
            .bind(user_id).execute(pool).await.map(|_| ()))?;
        self.versions.bump(user_id).await;
        Ok(())
    }

    /// Activates or deactivates a user.
    pub async fn set_active(&self, user_id: Uuid, active: bool, reason: Option<&str>) -> ServiceResult<()> {
        let at = (!active).then(Utc::now);
        with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth_users SET is_active = $2, deactivated_at = $3, deactivation_reason = $4 WHERE id = $1",
        ).bind(user_id).bind(active).bind(at).bind(reason).execute(pool).await.map(|_| ()))?;
        self.versions.bump(user_id).await;
        Ok(())
    }

    /// Deactivates accounts still unverified that joined before `cutoff` (staff excepted)
    /// and revokes their refresh tokens; returns their ids.
    pub async fn deactivate_unverified(&self, cutoff: DateTime<Utc>) -> ServiceResult<Vec<Uuid>> {
        let now = Utc::now();
        let changed: Result<Vec<Uuid>, sqlx::Error> = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE auth_refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND user_id IN \
                 (SELECT id FROM auth_users WHERE is_active = TRUE AND is_email_verified = FALSE AND is_staff = FALSE AND date_joined < $1)",
            ).bind(cutoff).bind(now).execute(&mut *tx).await?;
            let done = sqlx::query_scalar::<_, Uuid>(
                "UPDATE auth_users SET is_active = FALSE, deactivated_at = $2, deactivation_reason = 'email not verified' \
                 WHERE is_active = TRUE AND is_email_verified = FALSE AND is_staff = FALSE AND date_joined < $1 RETURNING id",
            ).bind(cutoff).bind(now).fetch_all(&mut *tx).await?;
            tx.commit().await?;
            Ok(done)
        }.await);
        let changed = changed?;
        for id in &changed {
            self.versions.bump(*id).await;
        }
        Ok(changed)
    }

    /// Grants or removes staff.
    pub async fn set_staff(&self, user_id: Uuid, staff: bool) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth_users SET is_staff = $2 WHERE id = $1")
            .bind(user_id).bind(staff).execute(pool).await.map(|_| ()))?;
        self.versions.bump(user_id).await;
        Ok(())
    }

    // ---- refresh tokens -------------------------------------------------------------

    /// Records an issued refresh token.
    pub async fn insert_refresh(
        &self,
        jti: &str,
        user_id: Uuid,
        family: &str,
        expires_at: DateTime<Utc>,
    ) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth_refresh_tokens (jti, user_id, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        ).bind(jti).bind(user_id).bind(family).bind(Utc::now()).bind(expires_at).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Spends a refresh token: `Ok(true)` for the one caller that spent it while it was
    /// unused, unrevoked and unexpired.
    pub async fn spend_refresh(&self, jti: &str, user_id: Uuid) -> ServiceResult<bool> {
        let now = Utc::now();
        let done = with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth_refresh_tokens SET used_at = $3 WHERE jti = $1 AND user_id = $2 \
             AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
        ).bind(jti).bind(user_id).bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Revokes every token of a family (a session); returns how many were live.
    pub async fn revoke_family(&self, family: &str) -> ServiceResult<u64> {
        Ok(with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth_refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        ).bind(family).bind(Utc::now()).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    /// Revokes every refresh token of a user, except those of `keep_family`.
    pub async fn revoke_user_tokens(&self, user_id: Uuid, keep_family: Option<&str>) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth_refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL \
             AND ($3 IS NULL OR family_id <> $3)",
        ).bind(user_id).bind(Utc::now()).bind(keep_family).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Whether a refresh token was already spent (reuse detection).
    pub async fn refresh_was_used(&self, jti: &str) -> ServiceResult<bool> {
        let found: Option<String> = with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT jti FROM auth_refresh_tokens WHERE jti = $1 AND used_at IS NOT NULL",
        ).bind(jti).fetch_optional(pool).await)?;
        Ok(found.is_some())
    }

    /// Whether any token of a session was revoked (the session is over).
    pub async fn family_revoked(&self, family: &str) -> ServiceResult<bool> {
        let found: Option<String> = with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT jti FROM auth_refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL LIMIT 1",
        ).bind(family).fetch_optional(pool).await)?;
        Ok(found.is_some())
    }

    /// Whether a refresh token (by id) is still live (for `token/verify/`).
    pub async fn refresh_is_live(&self, jti: &str) -> ServiceResult<bool> {
        let found: Option<String> = with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT jti FROM auth_refresh_tokens WHERE jti = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
        ).bind(jti).bind(Utc::now()).fetch_optional(pool).await)?;
        Ok(found.is_some())
    }

    // ---- one-time tokens -------------------------------------------------------------

    /// Stores the hash of a one-time token.
    pub async fn insert_one_time(&self, hash: &str, user_id: Uuid, purpose: TokenPurpose) -> ServiceResult<()> {
        let now = Utc::now();
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth_one_time_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        ).bind(hash).bind(user_id).bind(purpose.as_str()).bind(now).bind(now + purpose.lifetime())
        .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Spends a one-time token: the user it belongs to, for the one caller that spent it
    /// while unused and unexpired.
    pub async fn spend_one_time(&self, hash: &str, purpose: TokenPurpose) -> ServiceResult<Option<Uuid>> {
        let now = Utc::now();
        Ok(with_pool!(&self.db, pool => sqlx::query_scalar::<_, Uuid>(
            "UPDATE auth_one_time_tokens SET used_at = $3 WHERE token_hash = $1 AND purpose = $2 \
             AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
        ).bind(hash).bind(purpose.as_str()).bind(now).fetch_optional(pool).await)?)
    }

    /// The user of a live one-time token, without spending it.
    pub async fn peek_one_time(&self, hash: &str, purpose: TokenPurpose) -> ServiceResult<Option<Uuid>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_scalar::<_, Uuid>(
            "SELECT user_id FROM auth_one_time_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        ).bind(hash).bind(purpose.as_str()).bind(Utc::now()).fetch_optional(pool).await)?)
    }

    /// Voids a user's unused tokens of a purpose.
    pub async fn void_one_time(&self, user_id: Uuid, purpose: TokenPurpose) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query(
            "UPDATE auth_one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        ).bind(user_id).bind(purpose.as_str()).bind(Utc::now()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Deletes expired tokens and challenges; returns how many rows went.
    pub async fn delete_expired(&self) -> ServiceResult<u64> {
        let now = Utc::now();
        let mut removed = 0;
        for sql in [
            "DELETE FROM auth_one_time_tokens WHERE expires_at < $1",
            "DELETE FROM auth_refresh_tokens WHERE expires_at < $1",
            "DELETE FROM auth_biometric_challenges WHERE expires_at < $1",
        ] {
            removed += with_pool!(&self.db, pool => sqlx::query(sql).bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        }
        Ok(removed)
    }

    // ---- biometric -----------------------------------------------------------------

    /// Enrols (or re-enrols) a device key; returns the credential.
    pub async fn upsert_credential(
        &self,
        user_id: Uuid,
        device_id: &str,
        device_name: &str,
        algorithm: &str,
        public_key: &[u8],
    ) -> ServiceResult<BiometricCredential> {
        let now = Utc::now();
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth_biometric_credentials (id, user_id, device_id, device_name, algorithm, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id, device_id) DO UPDATE SET device_name = $4, algorithm = $5, public_key = $6, created_at = $7",
        ).bind(Uuid::new_v4()).bind(user_id).bind(device_id).bind(device_name).bind(algorithm).bind(public_key).bind(now)
        .execute(pool).await.map(|_| ()))?;
        with_pool!(&self.db, pool => sqlx::query_as::<_, BiometricCredential>(
            "SELECT id, device_id, device_name, algorithm, created_at, last_used_at FROM auth_biometric_credentials \
             WHERE user_id = $1 AND device_id = $2",
        ).bind(user_id).bind(device_id).fetch_optional(pool).await)?
        .ok_or_else(|| ServiceError::internal("an enrolled credential vanished"))
    }

    /// The caller's credentials, oldest first.
    pub async fn credentials(&self, user_id: Uuid) -> ServiceResult<Vec<BiometricCredential>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, BiometricCredential>(
            "SELECT id, device_id, device_name, algorithm, created_at, last_used_at FROM auth_biometric_credentials \
             WHERE user_id = $1 ORDER BY created_at, id",
        ).bind(user_id).fetch_all(pool).await)?)
    }

    /// Keys to check a signature against: `(credential id, user, algorithm, key)`, for one
    /// credential or for every credential of a user.
    pub async fn credential_keys(
        &self,
        credential_id: Option<Uuid>,
        user_id: Option<Uuid>,
    ) -> ServiceResult<Vec<(Uuid, Uuid, String, Vec<u8>)>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, (Uuid, Uuid, String, Vec<u8>)>(
            "SELECT id, user_id, algorithm, public_key FROM auth_biometric_credentials \
             WHERE ($1 IS NULL OR id = $1) AND ($2 IS NULL OR user_id = $2)",
        ).bind(credential_id).bind(user_id).fetch_all(pool).await)?)
    }

    /// Records a sign-in with a credential.
    pub async fn touch_credential(&self, credential_id: Uuid) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query("UPDATE auth_biometric_credentials SET last_used_at = $2 WHERE id = $1")
            .bind(credential_id).bind(Utc::now()).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Removes one credential of the user; `false` when it is not theirs.
    pub async fn delete_credential(&self, user_id: Uuid, credential_id: Uuid) -> ServiceResult<bool> {
        let done = with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth_biometric_credentials WHERE id = $1 AND user_id = $2")
            .bind(credential_id).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Removes every credential of the user.
    pub async fn delete_credentials(&self, user_id: Uuid) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query("DELETE FROM auth_biometric_credentials WHERE user_id = $1")
            .bind(user_id).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Stores a challenge (by hash).
    pub async fn insert_challenge(
        &self,
        hash: &str,
        user_id: Uuid,
        credential_id: Option<Uuid>,
        expires_at: DateTime<Utc>,
    ) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query(
            "INSERT INTO auth_biometric_challenges (challenge_hash, user_id, credential_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        ).bind(hash).bind(user_id).bind(credential_id).bind(Utc::now()).bind(expires_at).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Consumes a challenge: its user and credential, for the one caller that used it
    /// while unused and unexpired.
    pub async fn consume_challenge(&self, hash: &str) -> ServiceResult<Option<(Uuid, Option<Uuid>)>> {
        let now = Utc::now();
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, (Uuid, Option<Uuid>)>(
            "UPDATE auth_biometric_challenges SET used_at = $2 WHERE challenge_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             RETURNING user_id, credential_id",
        ).bind(hash).bind(now).fetch_optional(pool).await)?)
    }
}
