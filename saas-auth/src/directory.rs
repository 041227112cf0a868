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

/// The emails of some users, read once through the [`directory`]: what other modules' admin
/// panels show in place of user ids.
#[derive(Debug, Clone, Default)]
pub struct UserEmails(std::collections::HashMap<Uuid, String>);

impl UserEmails {
    /// The emails of `ids` (duplicates read once; unknown users left out).
    pub async fn of(ctx: &AppContext, ids: impl IntoIterator<Item = Uuid>) -> ServiceResult<Self> {
        let mut wanted: Vec<Uuid> = ids.into_iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(Self::default());
        }
        let users = directory(ctx)?.users(&wanted).await?;
        Ok(Self(users.into_iter().map(|user| (user.id, user.email)).collect()))
    }

    /// The emails of the user ids among `cells` (cells that are not ids are skipped); the
    /// cells are read before the lookup, so the future does not hold them.
    pub fn of_cells<'c>(
        ctx: &'c AppContext,
        cells: impl IntoIterator<Item = &'c str>,
    ) -> impl Future<Output = ServiceResult<Self>> + Send + 'c {
        let ids: Vec<Uuid> = cells.into_iter().filter_map(|cell| Uuid::parse_str(cell).ok()).collect();
        Self::of(ctx, ids)
    }

    /// The email of `id`, if known.
    pub fn email(&self, id: &str) -> Option<&str> {
        Uuid::parse_str(id).ok().and_then(|id| self.0.get(&id)).map(String::as_str)
    }

    /// For a list: the email, else the id as given.
    pub fn short(&self, id: impl std::fmt::Display) -> String {
        let id = id.to_string();
        self.email(&id).map_or(id.clone(), str::to_owned)
    }

    /// For a detail page: `email (id)`, else the id as given.
    pub fn long(&self, id: impl std::fmt::Display) -> String {
        let id = id.to_string();
        match self.email(&id) {
            Some(email) => format!("{email} ({id})"),
            None => id,
        }
    }
}
