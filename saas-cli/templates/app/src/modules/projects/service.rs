//! The rules of {{ plural }}: who may see and change which, and what a valid one is. No HTTP
//! types here, so the app's jobs and other modules can call it too.

use chrono::Utc;
use uuid::Uuid;

use saas_core::{AppContext, ServiceError, ServiceResult};
use saas_toolkit::{Page, PageParams};

use super::model::{ {{ Singular }}, {{ Singular }}Changes, {{ Singular }}Input };
use super::store::{{ Plural }}Store;

/// The {{ plural }} service; cheap to build from the app context.
#[derive(Debug, Clone)]
pub struct {{ Plural }}Service {
    store: {{ Plural }}Store,
}

impl {{ Plural }}Service {
    /// The service on the app's database.
    pub fn new(ctx: &AppContext) -> Self {
        Self { store: {{ Plural }}Store::new(ctx.db().clone()) }
    }

    /// Creates a {{ singular }} owned by `owner_id`.
    pub async fn create(&self, owner_id: Uuid, input: {{ Singular }}Input) -> ServiceResult<{{ Singular }}> {
        let now = Utc::now();
        let record = {{ Singular }} {
            id: Uuid::now_v7(),
            owner_id,
            name: input.name.trim().to_owned(),
            description: input.description,
            created_at: now,
            updated_at: now,
        };
        record.validate()?;
        self.store.insert(&record).await?;
        Ok(record)
    }

    /// One page of the owner's {{ plural }}, newest first.
    pub async fn list(&self, owner_id: Uuid, page: &PageParams) -> ServiceResult<Page<{{ Singular }}>> {
        let limit = page.limit()?;
        let rows = self.store.list(owner_id, page.position::<Uuid>()?, limit + 1).await?;
        Ok(Page::from_rows(rows, limit, |record| record.id))
    }

    /// The owner's {{ singular }} `id` (404 when it does not exist or is someone else's).
    pub async fn get(&self, owner_id: Uuid, id: Uuid) -> ServiceResult<{{ Singular }}> {
        self.store.get(owner_id, id).await?.ok_or_else(|| ServiceError::not_found("{{ Singular }}"))
    }

    /// Changes the owner's {{ singular }} `id`.
    pub async fn update(&self, owner_id: Uuid, id: Uuid, changes: {{ Singular }}Changes) -> ServiceResult<{{ Singular }}> {
        let mut record = self.get(owner_id, id).await?;
        record.apply(changes)?;
        record.updated_at = Utc::now();
        self.store.update(&record).await?;
        Ok(record)
    }

    /// Deletes the owner's {{ singular }} `id` (404 when there is none).
    pub async fn delete(&self, owner_id: Uuid, id: Uuid) -> ServiceResult<()> {
        if self.store.delete(owner_id, id).await? { Ok(()) } else { Err(ServiceError::not_found("{{ Singular }}")) }
    }
}
