//! The SQL of the `{{ plural }}` table, one text for SQLite and PostgreSQL.

use uuid::Uuid;

use saas_core::{Db, ServiceResult, with_pool};

use super::model::{{ Singular }};

/// Reads and writes {{ plural }}; every query is scoped to one owner.
#[derive(Debug, Clone)]
pub struct {{ Plural }}Store {
    db: Db,
}

impl {{ Plural }}Store {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores a new {{ singular }}.
    pub async fn insert(&self, record: &{{ Singular }}) -> ServiceResult<()> {
        let sql = "INSERT INTO {{ plural }} (id, owner_id, name, description, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(record.id).bind(record.owner_id).bind(&record.name).bind(&record.description)
            .bind(record.created_at).bind(record.updated_at)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// The owner's {{ singular }} `id`, if it exists.
    pub async fn get(&self, owner_id: Uuid, id: Uuid) -> ServiceResult<Option<{{ Singular }}>> {
        let sql = "SELECT * FROM {{ plural }} WHERE id = $1 AND owner_id = $2";
        Ok(with_pool!(&self.db, pool => sqlx::query_as(sql).bind(id).bind(owner_id).fetch_optional(pool).await)?)
    }

    /// Up to `limit` of the owner's {{ plural }}, newest first; only those older than `before`
    /// when it is given.
    pub async fn list(&self, owner_id: Uuid, before: Option<Uuid>, limit: u32) -> ServiceResult<Vec<{{ Singular }}>> {
        let limit = i64::from(limit);
        let rows = match before {
            Some(before) => {
                let sql = "SELECT * FROM {{ plural }} WHERE owner_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
                with_pool!(&self.db, pool => sqlx::query_as(sql)
                    .bind(owner_id).bind(before).bind(limit).fetch_all(pool).await)?
            }
            None => {
                let sql = "SELECT * FROM {{ plural }} WHERE owner_id = $1 ORDER BY id DESC LIMIT $2";
                with_pool!(&self.db, pool => sqlx::query_as(sql)
                    .bind(owner_id).bind(limit).fetch_all(pool).await)?
            }
        };
        Ok(rows)
    }

    /// Saves the name, description and change time of `record`.
    pub async fn update(&self, record: &{{ Singular }}) -> ServiceResult<()> {
        let sql = "UPDATE {{ plural }} SET name = $1, description = $2, updated_at = $3 WHERE id = $4 AND owner_id = $5";
        with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(&record.name).bind(&record.description).bind(record.updated_at)
            .bind(record.id).bind(record.owner_id)
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Deletes the owner's {{ singular }} `id`; whether there was one.
    pub async fn delete(&self, owner_id: Uuid, id: Uuid) -> ServiceResult<bool> {
        let sql = "DELETE FROM {{ plural }} WHERE id = $1 AND owner_id = $2";
        let deleted = with_pool!(&self.db, pool => sqlx::query(sql)
            .bind(id).bind(owner_id).execute(pool).await.map(|done| done.rows_affected()))?;
        Ok(deleted > 0)
    }
}
