//! How other crates look users up without SQL of their own.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

use saas_core::{AppContext, ServiceResult};

use crate::service::AuthService;

/// What other domains need to know of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    /// Id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Full name, else username, else email.
    pub display_name: String,
    /// Whether the account is active.
    pub is_active: bool,
    /// Whether the user is staff.
    pub is_staff: bool,
}

/// Looks users up by id; apps may provide their own (`Arc<dyn UserDirectory>` in the context).
#[async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    /// One user, if it exists.
    async fn user(&self, id: Uuid) -> ServiceResult<Option<UserSummary>>;
    /// Several users; missing ids are left out.
    async fn users(&self, ids: &[Uuid]) -> ServiceResult<Vec<UserSummary>>;
}

#[async_trait]
impl UserDirectory for AuthService {
    async fn user(&self, id: Uuid) -> ServiceResult<Option<UserSummary>> {
        Ok(UserDirectory::users(self, &[id]).await?.into_iter().next())
    }

    async fn users(&self, ids: &[Uuid]) -> ServiceResult<Vec<UserSummary>> {
        let rows = self.store().users(ids).await?;
        Ok(rows
            .into_iter()
            .map(|(user, profile)| {
                let full_name = profile.full_name();
                let display_name = if !full_name.is_empty() {
                    full_name
                } else {
                    profile.username.clone().unwrap_or_else(|| user.email.clone())
                };
                UserSummary {
                    id: user.id,
                    email: user.email,
                    display_name,
                    is_active: user.is_active,
                    is_staff: user.is_staff,
                }
            })
            .collect())
    }
}

/// The app's user directory: the one provided to the app, else the accounts service.
pub fn directory(ctx: &AppContext) -> ServiceResult<Arc<dyn UserDirectory>> {
    if let Some(directory) = ctx.get::<Arc<dyn UserDirectory>>() {
        return Ok(directory);
    }
    Ok(Arc::new(AuthService::get(ctx)?))
}
