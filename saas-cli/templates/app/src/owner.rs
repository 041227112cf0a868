//! Who owns the records of the app's own modules: {% if auth %}the signed-in user.{% else %}this app has no accounts,
//! so every record belongs to one shared owner. Add saas-auth to give each user their own.{% endif %}

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

use saas_core::{AppContext, ServiceError};

/// The owner of the records a request reads and writes{% if auth %} (401 without a valid access token){% endif %}.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner(pub Uuid);

impl FromRequestParts<AppContext> for Owner {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Self::Rejection> {
{% if auth %}        let user = saas_auth::CurrentUser::from_request_parts(parts, ctx).await?;
        Ok(Owner(user.id))
{% else %}        let _ = (parts, ctx);
        Ok(Owner(Uuid::nil()))
{% endif %}    }
}
