//! Extractors other crates and apps use to require a signed-in user.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{HeaderMap, header, request::Parts};
use uuid::Uuid;

use saas_core::{AppContext, ServiceError, ServiceResult};

use crate::models::UserRow;
use crate::service::AuthService;

/// The caller, from a valid access token (`Authorization: Bearer …`). Checking it needs no
/// database query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// The user's id.
    pub id: Uuid,
    /// The session (sign-in) the token belongs to.
    pub session: String,
}

/// A caller with `is_staff` (403 `auth.permission_denied` otherwise).
#[derive(Debug, Clone)]
pub struct StaffUser(pub UserRow);

/// A caller whose email is verified (403 `auth.email_not_verified` otherwise).
#[derive(Debug, Clone)]
pub struct VerifiedUser(pub UserRow);

/// The bearer token of a request, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Authenticates an access token given some other way (a WebSocket `?token=`).
pub async fn authenticate_token(ctx: &AppContext, token: &str) -> ServiceResult<CurrentUser> {
    let claims = AuthService::get(ctx)?.authenticate(token).await?;
    Ok(CurrentUser { id: claims.user_id, session: claims.sid })
}

pub(crate) fn not_authenticated() -> ServiceError {
    ServiceError::unauthenticated("auth.not_authenticated", "Authentication credentials were not provided.")
}

impl<S> FromRequestParts<S> for CurrentUser
where
    AppContext: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ctx = AppContext::from_ref(state);
        let token = bearer_token(&parts.headers).ok_or_else(not_authenticated)?;
        authenticate_token(&ctx, token).await
    }
}

async fn active_row<S>(parts: &mut Parts, state: &S) -> ServiceResult<UserRow>
where
    AppContext: FromRef<S>,
    S: Send + Sync,
{
    let user = CurrentUser::from_request_parts(parts, state).await?;
    let ctx = AppContext::from_ref(state);
    AuthService::get(&ctx)?.user_row(user.id).await?.filter(|row| row.is_active).ok_or_else(not_authenticated)
}

impl<S> FromRequestParts<S> for StaffUser
where
    AppContext: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let row = active_row(parts, state).await?;
        if !row.is_staff {
            return Err(ServiceError::forbidden("auth.permission_denied", "Staff only."));
        }
        Ok(StaffUser(row))
    }
}

impl<S> FromRequestParts<S> for VerifiedUser
where
    AppContext: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let row = active_row(parts, state).await?;
        if !row.is_email_verified {
            return Err(ServiceError::forbidden("auth.email_not_verified", "Verify your email address first."));
        }
        Ok(VerifiedUser(row))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc.def"));
        assert_eq!(bearer_token(&headers), Some("abc.def"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
