//! SQL of the notification tables, one text for SQLite and PostgreSQL.
//!
//! The unread count of a user is a counter row moved in the same transaction as every
//! change of their notifications, so `unread-count/` is one primary-key read whatever the
//! size of the table.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use saas_core::{Db, ServiceError, ServiceResult, with_pool};

use crate::models::{DeliveryRow, DeliveryStatus, Device, NotificationRow, NotificationType};

const TYPE_COLUMNS: &str = "id, key, display_name, title_template, body_template, push_enabled, email_enabled, \
     websocket_enabled, is_active, created_at, updated_at";
const NOTIFICATION_SELECT: &str = "SELECT n.id, n.recipient_id, t.key AS type_key, n.title, n.body, n.data, n.actor_id, \
     n.source_type, n.source_id, n.is_read, n.read_at, n.created_at \
     FROM notify_notifications n JOIN notify_types t ON t.id = n.type_id";
const DELIVERY_COLUMNS: &str = "id, notification_id, recipient_id, type_key, channel, device_id, title, body, data, \
     status, provider_message_id, attempts, last_error, created_at, updated_at";
const DEVICE_COLUMNS: &str = "id, user_id, platform, token, device_id, created_at, last_seen_at";

/// The channels a notification goes out on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Channels {
    /// Stored in the inbox (and counted unread).
    pub in_app: bool,
    /// Published to sockets (recorded as sent).
    pub websocket: bool,
    /// Emailed by a job.
    pub email: bool,
    /// Pushed by a job to every device of the recipient.
    pub push: bool,
}

/// A notification to store.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// Its fields (recipient, type key, text, data, actor, source, time).
    pub row: &'a NotificationRow,
    /// Its type's id.
    pub type_id: i64,
    /// Where it goes.
    pub channels: Channels,
}

/// What storing a notification gave.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The recipient's unread count and its version afterwards (when stored in the inbox).
    pub unread: Option<(i64, i64)>,
    /// The deliveries jobs must carry out.
    pub pending: Vec<Uuid>,
}

/// Filters of the inbox.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    /// Only read (`true`) or unread (`false`) ones.
    pub is_read: Option<bool>,
    /// Only this type.
    pub type_key: Option<String>,
}

/// The notification tables.
#[derive(Clone, Debug)]
pub struct NotifyStore {
    db: Db,
}

impl NotifyStore {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Every type, by key.
    pub async fn types(&self) -> ServiceResult<Vec<NotificationType>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {TYPE_COLUMNS} FROM notify_types ORDER BY key"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, NotificationType>(sql).fetch_all(pool).await)?)
    }

    /// A type by key.
    pub async fn type_by_key(&self, key: &str) -> ServiceResult<Option<NotificationType>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {TYPE_COLUMNS} FROM notify_types WHERE key = $1"));
        Ok(
            with_pool!(&self.db, pool => sqlx::query_as::<_, NotificationType>(sql).bind(key).fetch_optional(pool).await)?,
        )
    }

    /// Inserts a type (its `id` is assigned); a taken key → 409 `notify.type_exists`.
    pub async fn insert_type(&self, new: &NotificationType) -> ServiceResult<NotificationType> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO notify_types (key, display_name, title_template, body_template, push_enabled, email_enabled, \
             websocket_enabled, is_active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             RETURNING {TYPE_COLUMNS}"
        ));
        let result = with_pool!(&self.db, pool => sqlx::query_as::<_, NotificationType>(sql)
            .bind(&new.key).bind(&new.display_name).bind(&new.title_template).bind(&new.body_template)
            .bind(new.push_enabled).bind(new.email_enabled).bind(new.websocket_enabled).bind(new.is_active)
            .bind(Utc::now()).fetch_one(pool).await);
        result.map_err(|err| {
            if saas_core::error::is_unique_violation(&err) {
                ServiceError::conflict("notify.type_exists", "A notification type with this key exists.")
            } else {
                err.into()
            }
        })
    }

    /// Saves every editable field of a type (by id).
    pub async fn update_type(&self, row: &NotificationType) -> ServiceResult<Option<NotificationType>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE notify_types SET display_name = $2, title_template = $3, body_template = $4, push_enabled = $5, \
             email_enabled = $6, websocket_enabled = $7, is_active = $8, updated_at = $9 WHERE id = $1 \
             RETURNING {TYPE_COLUMNS}"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, NotificationType>(sql)
            .bind(row.id).bind(&row.display_name).bind(&row.title_template).bind(&row.body_template)
            .bind(row.push_enabled).bind(row.email_enabled).bind(row.websocket_enabled).bind(row.is_active)
            .bind(Utc::now()).fetch_optional(pool).await)?)
    }

    /// Deletes a type no notification uses; `Ok(false)` when some do (or it does not exist).
    pub async fn delete_unused_type(&self, id: i64) -> ServiceResult<bool> {
        let done = with_pool!(&self.db, pool => sqlx::query(
            "DELETE FROM notify_types WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM notify_notifications WHERE type_id = $1)")
            .bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Stores a notification: the inbox entry and unread counter (when in-app is on) and a
    /// delivery row per channel — `websocket` as sent, `email` and one `push` per device of
    /// the recipient as pending. One statement on PostgreSQL (data-modifying CTEs: one round
    /// trip, one commit, the counter row locked only for it); one transaction on SQLite.
    pub async fn store(&self, new: &NewNotification<'_>) -> ServiceResult<Stored> {
        let row = new.row;
        let channels = &new.channels;
        if let Db::Postgres(pool) = &self.db {
            let stored = sqlx::query_as::<_, (Option<i64>, Option<i64>, Option<Vec<Uuid>>)>(
                "WITH n AS (\
                   INSERT INTO notify_notifications (id, recipient_id, type_id, title, body, data, actor_id, source_type, \
                   source_id, is_read, created_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE, $10 WHERE $11 \
                   RETURNING id), \
                 c AS (\
                   INSERT INTO notify_unread_counts (user_id, unread, version) SELECT $2, 1, 1 WHERE $11 \
                   ON CONFLICT (user_id) DO UPDATE SET unread = notify_unread_counts.unread + 1, \
                   version = notify_unread_counts.version + 1 RETURNING unread, version), \
                 d AS (\
                   INSERT INTO notify_deliveries (id, notification_id, recipient_id, type_key, channel, device_id, title, \
                   body, data, status, attempts, created_at, updated_at) \
                   SELECT gen_random_uuid(), (SELECT id FROM n), $2, $12, ch.channel, ch.device_id, $4, $5, $6, ch.status, \
                   ch.attempts, $10, $10 FROM (\
                     SELECT 'websocket' AS channel, NULL::uuid AS device_id, 'sent' AS status, 1 AS attempts WHERE $13 \
                     UNION ALL SELECT 'email', NULL, 'pending', 0 WHERE $14 \
                     UNION ALL SELECT 'push', dv.id, 'pending', 0 FROM notify_devices dv WHERE dv.user_id = $2 AND $15\
                   ) ch RETURNING id, status) \
                 SELECT (SELECT unread FROM c), (SELECT version FROM c), \
                 (SELECT array_agg(id) FROM d WHERE status = 'pending')",
            )
            .bind(row.id)
            .bind(row.recipient_id)
            .bind(new.type_id)
            .bind(&row.title)
            .bind(&row.body)
            .bind(&row.data)
            .bind(row.actor_id)
            .bind(&row.source_type)
            .bind(&row.source_id)
            .bind(row.created_at)
            .bind(channels.in_app)
            .bind(&row.type_key)
            .bind(channels.websocket)
            .bind(channels.email)
            .bind(channels.push)
            .fetch_one(pool)
            .await?;
            let unread = stored.0.zip(stored.1);
            return Ok(Stored { unread, pending: stored.2.unwrap_or_default() });
        }
        let result: Result<Stored, sqlx::Error> = with_pool!(&self.db, pool => async {
            // Read before the transaction: on SQLite a transaction that reads and then writes
            // can fail when another writer committed in between.
            let devices: Vec<Uuid> = if channels.push {
                sqlx::query_scalar("SELECT id FROM notify_devices WHERE user_id = $1")
                    .bind(row.recipient_id).fetch_all(pool).await?
            } else {
                Vec::new()
            };
            let mut tx = pool.begin().await?;
            let mut unread = None;
            if channels.in_app {
                unread = Some(sqlx::query_as::<_, (i64, i64)>(
                    "INSERT INTO notify_unread_counts (user_id, unread, version) VALUES ($1, 1, 1) \
                     ON CONFLICT (user_id) DO UPDATE SET unread = notify_unread_counts.unread + 1, \
                     version = notify_unread_counts.version + 1 RETURNING unread, version")
                    .bind(row.recipient_id).fetch_one(&mut *tx).await?);
                sqlx::query(
                    "INSERT INTO notify_notifications (id, recipient_id, type_id, title, body, data, actor_id, \
                     source_type, source_id, is_read, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE, $10)")
                    .bind(row.id).bind(row.recipient_id).bind(new.type_id).bind(&row.title).bind(&row.body).bind(&row.data)
                    .bind(row.actor_id).bind(&row.source_type).bind(&row.source_id).bind(row.created_at)
                    .execute(&mut *tx).await?;
            }
            let mut rows: Vec<(&str, Option<Uuid>, DeliveryStatus)> = Vec::new();
            if channels.websocket {
                rows.push(("websocket", None, DeliveryStatus::Sent));
            }
            if channels.email {
                rows.push(("email", None, DeliveryStatus::Pending));
            }
            rows.extend(devices.into_iter().map(|device| ("push", Some(device), DeliveryStatus::Pending)));
            let mut pending = Vec::new();
            for (channel, device_id, status) in rows {
                let id = Uuid::now_v7();
                sqlx::query(
                    "INSERT INTO notify_deliveries (id, notification_id, recipient_id, type_key, channel, device_id, \
                     title, body, data, status, attempts, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)")
                    .bind(id).bind(channels.in_app.then_some(row.id)).bind(row.recipient_id).bind(&row.type_key)
                    .bind(channel).bind(device_id).bind(&row.title).bind(&row.body).bind(&row.data)
                    .bind(status.as_str()).bind(i32::from(status == DeliveryStatus::Sent)).bind(row.created_at)
                    .execute(&mut *tx).await?;
                if status == DeliveryStatus::Pending {
                    pending.push(id);
                }
            }
            tx.commit().await?;
            Ok(Stored { unread, pending })
        }.await);
        Ok(result?)
    }

    /// The inbox of `user_id`, newest first, before `(created_at, id)`; `limit` rows at most.
    pub async fn notifications(
        &self,
        user_id: Uuid,
        filter: &InboxFilter,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> ServiceResult<Vec<NotificationRow>> {
        let (at, id) = before.unwrap_or((Utc::now() + chrono::Duration::days(36_500), Uuid::max()));
        let sql = sqlx::AssertSqlSafe(format!(
            "{NOTIFICATION_SELECT} WHERE n.recipient_id = $1 AND ($2 IS NULL OR n.is_read = $2) \
             AND ($3 IS NULL OR t.key = $3) AND (n.created_at < $4 OR (n.created_at = $4 AND n.id < $5)) \
             ORDER BY n.created_at DESC, n.id DESC LIMIT $6"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, NotificationRow>(sql)
            .bind(user_id).bind(filter.is_read).bind(&filter.type_key).bind(at).bind(id).bind(i64::from(limit))
            .fetch_all(pool).await)?)
    }

    /// One notification of `user_id`.
    pub async fn notification(&self, user_id: Uuid, id: Uuid) -> ServiceResult<Option<NotificationRow>> {
        let sql = sqlx::AssertSqlSafe(format!("{NOTIFICATION_SELECT} WHERE n.id = $1 AND n.recipient_id = $2"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, NotificationRow>(sql)
            .bind(id).bind(user_id).fetch_optional(pool).await)?)
    }

    /// Marks one notification read (idempotent); the unread count moves only the first time.
    pub async fn mark_read(&self, user_id: Uuid, id: Uuid) -> ServiceResult<bool> {
        let now = Utc::now();
        let changed: Result<bool, sqlx::Error> = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE notify_notifications SET is_read = TRUE, read_at = $3 \
                                    WHERE id = $1 AND recipient_id = $2 AND NOT is_read")
                .bind(id).bind(user_id).bind(now).execute(&mut *tx).await?.rows_affected();
            if done > 0 {
                sqlx::query("UPDATE notify_unread_counts SET unread = CASE WHEN unread > 0 THEN unread - 1 ELSE 0 END, \
                             version = version + 1 \
                             WHERE user_id = $1")
                    .bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(done > 0)
        }.await);
        Ok(changed?)
    }

    /// Marks every unread notification of `user_id` read; returns how many.
    pub async fn mark_all_read(&self, user_id: Uuid) -> ServiceResult<u64> {
        let now = Utc::now();
        let marked: Result<u64, sqlx::Error> = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE notify_notifications SET is_read = TRUE, read_at = $2 \
                                    WHERE recipient_id = $1 AND NOT is_read")
                .bind(user_id).bind(now).execute(&mut *tx).await?.rows_affected();
            if done > 0 {
                sqlx::query("UPDATE notify_unread_counts SET unread = CASE WHEN unread > $2 THEN unread - $2 ELSE 0 END, \
                             version = version + 1 \
                             WHERE user_id = $1")
                    .bind(user_id).bind(done as i64).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(done)
        }.await);
        Ok(marked?)
    }

    /// The unread count of `user_id` with its version (moved by every change of the count,
    /// so sockets can drop a count that reaches them after a newer one).
    pub async fn unread_with_version(&self, user_id: Uuid) -> ServiceResult<(i64, i64)> {
        let row: Option<(i64, i64)> = with_pool!(&self.db, pool => sqlx::query_as(
            "SELECT unread, version FROM notify_unread_counts WHERE user_id = $1").bind(user_id).fetch_optional(pool).await)?;
        Ok(row.unwrap_or((0, 0)))
    }

    /// The unread count of `user_id`.
    pub async fn unread_count(&self, user_id: Uuid) -> ServiceResult<i64> {
        let count: Option<i64> = with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT unread FROM notify_unread_counts WHERE user_id = $1").bind(user_id).fetch_optional(pool).await)?;
        Ok(count.unwrap_or(0))
    }

    /// Deletes read notifications read before `before`; returns how many.
    pub async fn purge_read(&self, before: DateTime<Utc>) -> ServiceResult<u64> {
        Ok(with_pool!(&self.db, pool => sqlx::query(
            "DELETE FROM notify_notifications WHERE is_read AND read_at < $1")
            .bind(before).execute(pool).await.map(|r| r.rows_affected()))?)
    }

    /// The preferences `user_id` has set: `(type_key, channel, enabled)`.
    pub async fn preferences(&self, user_id: Uuid) -> ServiceResult<Vec<(String, String, bool)>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, (String, String, bool)>(
            "SELECT type_key, channel, enabled FROM notify_preferences WHERE user_id = $1")
            .bind(user_id).fetch_all(pool).await)?)
    }

    /// The channels `user_id` switched on or off for one type.
    pub async fn preferences_for(&self, user_id: Uuid, type_key: &str) -> ServiceResult<Vec<(String, bool)>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, (String, bool)>(
            "SELECT channel, enabled FROM notify_preferences WHERE user_id = $1 AND type_key = $2")
            .bind(user_id).bind(type_key).fetch_all(pool).await)?)
    }

    /// Sets preferences `(type_key, channel, enabled)` in one transaction.
    pub async fn set_preferences(&self, user_id: Uuid, settings: &[(String, &'static str, bool)]) -> ServiceResult<()> {
        let result: Result<(), sqlx::Error> = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            for (type_key, channel, enabled) in settings {
                sqlx::query("INSERT INTO notify_preferences (user_id, type_key, channel, enabled) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (user_id, type_key, channel) DO UPDATE SET enabled = excluded.enabled")
                    .bind(user_id).bind(type_key).bind(*channel).bind(*enabled).execute(&mut *tx).await?;
            }
            tx.commit().await
        }.await);
        Ok(result?)
    }

    /// Registers a device token for `user_id`: `(device, true)` when new; a known token is
    /// moved to this user and refreshed (`false`).
    pub async fn register_device(
        &self,
        user_id: Uuid,
        platform: &str,
        token: &str,
        device_id: Option<&str>,
    ) -> ServiceResult<(Device, bool)> {
        let now = Utc::now();
        let insert = sqlx::AssertSqlSafe(format!(
            "INSERT INTO notify_devices (id, user_id, platform, token, device_id, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (platform, token) DO NOTHING RETURNING {DEVICE_COLUMNS}"
        ));
        let created = with_pool!(&self.db, pool => sqlx::query_as::<_, Device>(insert)
            .bind(Uuid::now_v7()).bind(user_id).bind(platform).bind(token).bind(device_id).bind(now)
            .fetch_optional(pool).await)?;
        if let Some(device) = created {
            return Ok((device, true));
        }
        let update = sqlx::AssertSqlSafe(format!(
            "UPDATE notify_devices SET user_id = $3, device_id = COALESCE($4, device_id), last_seen_at = $5 \
             WHERE platform = $1 AND token = $2 RETURNING {DEVICE_COLUMNS}"
        ));
        let device = with_pool!(&self.db, pool => sqlx::query_as::<_, Device>(update)
            .bind(platform).bind(token).bind(user_id).bind(device_id).bind(now).fetch_one(pool).await)?;
        Ok((device, false))
    }

    /// Devices of `user_id`, oldest first, after `(created_at, id)`; `limit` rows at most.
    pub async fn devices(
        &self,
        user_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> ServiceResult<Vec<Device>> {
        let (at, id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DEVICE_COLUMNS} FROM notify_devices WHERE user_id = $1 \
             AND (created_at > $2 OR (created_at = $2 AND id > $3)) ORDER BY created_at, id LIMIT $4"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, Device>(sql)
            .bind(user_id).bind(at).bind(id).bind(i64::from(limit)).fetch_all(pool).await)?)
    }

    /// One device by id.
    pub async fn device(&self, id: Uuid) -> ServiceResult<Option<Device>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM notify_devices WHERE id = $1"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, Device>(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Removes a device; `user_id` limits it to the owner's.
    pub async fn delete_device(&self, id: Uuid, user_id: Option<Uuid>) -> ServiceResult<bool> {
        let done = with_pool!(&self.db, pool => sqlx::query(
            "DELETE FROM notify_devices WHERE id = $1 AND ($2 IS NULL OR user_id = $2)")
            .bind(id).bind(user_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// One delivery.
    pub async fn delivery(&self, id: Uuid) -> ServiceResult<Option<DeliveryRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {DELIVERY_COLUMNS} FROM notify_deliveries WHERE id = $1"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, DeliveryRow>(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// The deliveries of a notification, oldest first.
    pub async fn deliveries_of(&self, notification_id: Uuid) -> ServiceResult<Vec<DeliveryRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries WHERE notification_id = $1 ORDER BY created_at, id"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, DeliveryRow>(sql)
            .bind(notification_id).fetch_all(pool).await)?)
    }

    /// Takes a delivery for one attempt: a pending or failed one, or one whose sender
    /// stopped (still `sending` since before `stale_before`). `None` when another job has it
    /// or it is finished, so a delivery is never sent by two jobs at once.
    pub async fn claim_delivery(&self, id: Uuid, stale_before: DateTime<Utc>) -> ServiceResult<Option<DeliveryRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE notify_deliveries SET status = 'sending', updated_at = $2 WHERE id = $1 \
             AND (status IN ('pending', 'failed') OR (status = 'sending' AND updated_at < $3)) \
             RETURNING {DELIVERY_COLUMNS}"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, DeliveryRow>(sql)
            .bind(id).bind(Utc::now()).bind(stale_before).fetch_optional(pool).await)?)
    }

    /// Records an attempt: its status, the provider's message id, the error.
    pub async fn record_attempt(
        &self,
        id: Uuid,
        status: DeliveryStatus,
        provider_message_id: Option<&str>,
        error: Option<&str>,
    ) -> ServiceResult<()> {
        with_pool!(&self.db, pool => sqlx::query(
            "UPDATE notify_deliveries SET status = $2, provider_message_id = COALESCE($3, provider_message_id), \
             last_error = $4, attempts = attempts + 1, updated_at = $5 WHERE id = $1")
            .bind(id).bind(status.as_str()).bind(provider_message_id).bind(error).bind(Utc::now())
            .execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Failed deliveries last tried before `before` with fewer than `max_attempts` attempts,
    /// pending ones left since then (their job was never queued) and ones whose sender
    /// stopped mid-attempt.
    pub async fn retryable(&self, before: DateTime<Utc>, max_attempts: i32, limit: i64) -> ServiceResult<Vec<Uuid>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM notify_deliveries WHERE status IN ('failed', 'pending', 'sending') AND updated_at < $1 \
             AND attempts < $2 ORDER BY updated_at LIMIT $3")
            .bind(before).bind(max_attempts).bind(limit).fetch_all(pool).await)?)
    }
}
