//! Staff sessions: a random token in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` unless
//! `DEBUG=true`), stored hashed with its CSRF token; every page checks the user is still
//! active staff.

use std::time::Duration;

use axum::http::HeaderMap;
use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use saas_core::admin::{AdminAccounts, AdminUser};
use saas_core::{AppContext, ServiceResult, with_pool};

/// The session cookie.
pub const SESSION_COOKIE: &str = "saas_admin_session";
/// The sign-in form's CSRF cookie (double submit: no session exists yet).
pub const SIGN_IN_CSRF_COOKIE: &str = "saas_admin_csrf";
/// The one-shot message shown after an action.
pub const FLASH_COOKIE: &str = "saas_admin_flash";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// A signed-in staff member and the CSRF token of their session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub user: AdminUser,
    /// Token every form of this session must carry.
    pub csrf: String,
    /// The cookie value (to sign out).
    pub token: String,
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name`.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value scoped to `/admin/`; `max_age` zero removes it.
pub fn set_cookie(ctx: &AppContext, name: &str, value: &str, max_age: Duration) -> String {
    let secure = if ctx.config().debug { "" } else { "; Secure" };
    format!("{name}={value}; Path=/admin/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", max_age.as_secs())
}

/// Starts a session for `user` (and clears expired ones); returns the cookie token.
pub async fn start(ctx: &AppContext, user: &AdminUser) -> ServiceResult<String> {
    let token = random_token();
    let now = Utc::now();
    with_pool!(ctx.db(), pool => sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
        .bind(now).execute(pool).await.map(|done| done.rows_affected()))?;
    let expires = now + chrono::Duration::from_std(SESSION_TTL).unwrap_or_else(|_| chrono::Duration::hours(12));
    with_pool!(ctx.db(), pool => sqlx::query(
        "INSERT INTO admin_sessions (id, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(digest(&token)).bind(user.id).bind(random_token()).bind(now).bind(expires)
        .execute(pool).await.map(|done| done.rows_affected()))?;
    Ok(token)
}

/// The live session of the request, if its user is still active staff.
pub async fn current(
    ctx: &AppContext,
    accounts: &dyn AdminAccounts,
    headers: &HeaderMap,
) -> ServiceResult<Option<Session>> {
    let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| t.len() == 64) else { return Ok(None) };
    let row: Option<(Uuid, String)> = with_pool!(ctx.db(), pool => sqlx::query_as(
        "SELECT user_id, csrf_token FROM admin_sessions WHERE id = $1 AND expires_at > $2")
        .bind(digest(token)).bind(Utc::now()).fetch_optional(pool).await)?;
    let Some((user_id, csrf)) = row else { return Ok(None) };
    match accounts.staff(ctx, user_id).await? {
        Some(user) => Ok(Some(Session { user, csrf, token: token.to_owned() })),
        None => {
            end(ctx, token).await?;
            Ok(None)
        }
    }
}

/// Ends a session (and, on the way, any expired ones).
pub async fn end(ctx: &AppContext, token: &str) -> ServiceResult<()> {
    with_pool!(ctx.db(), pool => sqlx::query("DELETE FROM admin_sessions WHERE id = $1 OR expires_at <= $2")
        .bind(digest(token)).bind(Utc::now()).execute(pool).await.map(|done| done.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "saas_admin_session_x=1; saas_admin_session=abc; other=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", ""));
        assert!(!same_secret("abc", "abcd"));
    }
}
