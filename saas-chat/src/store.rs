//! SQL of the chat tables, one text for SQLite and PostgreSQL.
//!
//! Every change of a conversation (membership, roles, title, messages) goes through
//! [`ChatStore::apply`]: one transaction whose first statement writes, so SQLite takes its
//! write lock up front and PostgreSQL locks the conversation row. Counters move by
//! increments (`participant_count + 1`, `last_seq + 1`), exact under concurrency; messages
//! get gap-free sequence numbers, which is the order every client sees.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use saas_core::{Db, ServiceError, ServiceResult, with_pool};

use crate::models::{ConversationRow, MessageRow, ParticipantRow, Role};

const CONVERSATION_COLUMNS: &str = "c.id, c.conversation_type, c.title, c.created_by, c.participant_count, c.last_seq, \
     c.last_message_at, c.activity_at, c.created_at, c.updated_at";
const PARTICIPANT_COLUMNS: &str = "id, conversation_id, user_id, role, joined_at, left_at, last_read_at, last_read_seq";
const MESSAGE_COLUMNS: &str = "id, conversation_id, seq, sender_id, content, message_type, reply_to_id, reply_count, \
     attachment_url, system_event, system_data, created_at, edited_at, deleted_at, client_id";

/// A conversation as one active participant sees it: the row, the caller's participation,
/// the unread count and the newest message, read in one query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationView {
    /// The conversation.
    #[sqlx(flatten)]
    pub conversation: ConversationRow,
    /// The caller's role.
    pub role: Option<String>,
    /// Messages after the caller's last read, not sent by the caller.
    pub unread_count: i64,
    lm_id: Option<Uuid>,
    lm_seq: Option<i64>,
    lm_sender_id: Option<Uuid>,
    lm_content: Option<String>,
    lm_message_type: Option<String>,
    lm_reply_to_id: Option<Uuid>,
    lm_reply_count: Option<i64>,
    lm_attachment_url: Option<String>,
    lm_system_event: Option<String>,
    lm_system_data: Option<Json<Value>>,
    lm_created_at: Option<DateTime<Utc>>,
    lm_edited_at: Option<DateTime<Utc>>,
    lm_deleted_at: Option<DateTime<Utc>>,
}

impl ConversationView {
    /// The newest message, if any.
    pub fn last_message(&self) -> Option<MessageRow> {
        Some(MessageRow {
            id: self.lm_id?,
            conversation_id: self.conversation.id,
            seq: self.lm_seq?,
            sender_id: self.lm_sender_id,
            content: self.lm_content.clone()?,
            message_type: self.lm_message_type.clone()?,
            reply_to_id: self.lm_reply_to_id,
            reply_count: self.lm_reply_count.unwrap_or(0),
            attachment_url: self.lm_attachment_url.clone(),
            system_event: self.lm_system_event.clone(),
            system_data: self.lm_system_data.clone(),
            created_at: self.lm_created_at?,
            edited_at: self.lm_edited_at,
            deleted_at: self.lm_deleted_at,
            client_id: None,
        })
    }
}

const VIEW_SELECT: &str = "SELECT c.id, c.conversation_type, c.title, c.created_by, c.participant_count, c.last_seq, \
     c.last_message_at, c.activity_at, c.created_at, c.updated_at, p.role, \
     (SELECT COUNT(*) FROM chat_messages m WHERE m.conversation_id = c.id AND m.seq > p.last_read_seq \
        AND m.deleted_at IS NULL AND (m.actor_id IS NULL OR m.actor_id <> p.user_id)) AS unread_count, \
     lm.id AS lm_id, lm.seq AS lm_seq, lm.sender_id AS lm_sender_id, lm.content AS lm_content, \
     lm.message_type AS lm_message_type, lm.reply_to_id AS lm_reply_to_id, lm.reply_count AS lm_reply_count, \
     lm.attachment_url AS lm_attachment_url, lm.system_event AS lm_system_event, lm.system_data AS lm_system_data, \
     lm.created_at AS lm_created_at, lm.edited_at AS lm_edited_at, lm.deleted_at AS lm_deleted_at \
     FROM chat_participants p \
     JOIN chat_conversations c ON c.id = p.conversation_id AND c.deleted_at IS NULL \
     LEFT JOIN chat_messages lm ON lm.conversation_id = c.id AND lm.seq = c.last_seq \
     WHERE p.user_id = $1 AND p.left_at IS NULL";

#[derive(sqlx::FromRow)]
struct AccessRow {
    #[sqlx(flatten)]
    conversation: ConversationRow,
    p_id: Uuid,
    p_role: Option<String>,
    p_joined_at: DateTime<Utc>,
    p_last_read_at: Option<DateTime<Utc>>,
    p_last_read_seq: i64,
}

/// Why a change did not apply.
enum ApplyError {
    /// What the change was decided on no longer holds.
    Changed,
    /// The database refused it (a missing row: the conversation is gone).
    Sql(sqlx::Error),
}

impl From<sqlx::Error> for ApplyError {
    fn from(err: sqlx::Error) -> Self {
        Self::Sql(err)
    }
}

/// The answer to anyone not (or no longer) in a conversation.
fn not_participant() -> ServiceError {
    ServiceError::not_found("Conversation")
}

/// A conversation to insert.
#[derive(Debug, Clone)]
pub struct NewConversation {
    /// Id.
    pub id: Uuid,
    /// `direct` or `group`.
    pub conversation_type: &'static str,
    /// Group title.
    pub title: Option<String>,
    /// `lower-id:higher-id` of a direct conversation's pair (unique).
    pub direct_key: Option<String>,
    /// Creator.
    pub created_by: Uuid,
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Author; none for system messages.
    pub sender_id: Option<Uuid>,
    /// Whose action it records (the sender, or the user behind a system message): it is
    /// not unread for them.
    pub actor_id: Option<Uuid>,
    /// Text (already trimmed and checked).
    pub content: String,
    /// `text`, `system`, `image`, `file`.
    pub message_type: &'static str,
    /// Root of the thread it replies to.
    pub reply_to_id: Option<Uuid>,
    /// Attachment.
    pub attachment_url: Option<String>,
    /// System event name and data.
    pub system: Option<(&'static str, Value)>,
    /// The sending client's own id for the message (at most 128 characters).
    pub client_id: Option<String>,
}

/// One step of a conversation change.
#[derive(Debug, Clone)]
pub enum Change {
    /// Starts a participation (unread from now on).
    AddParticipant {
        /// User.
        user_id: Uuid,
        /// Role in a group.
        role: Option<Role>,
    },
    /// Ends the active participation of a user.
    EndParticipation {
        /// User.
        user_id: Uuid,
    },
    /// Requires `user_id` to be an active participant (with `role`, when given), checked
    /// once the conversation is locked: a change decided on a stale read is refused (409).
    Require {
        /// User.
        user_id: Uuid,
        /// The role they must still have.
        role: Option<Role>,
    },
    /// Changes the role of an active participant.
    SetRole {
        /// User.
        user_id: Uuid,
        /// New role.
        role: Role,
    },
    /// Renames the group.
    SetTitle(String),
    /// Appends a message.
    Post(NewMessage),
    /// Soft-deletes the conversation (a direct pair may then start a new one).
    Delete,
    /// Soft-deletes the conversation when nobody is left in it.
    DeleteIfEmpty,
}

/// What a change produced.
#[derive(Debug, Default)]
pub struct Applied {
    /// Participations started, in order.
    pub participants: Vec<ParticipantRow>,
    /// Messages appended, in order.
    pub messages: Vec<MessageRow>,
    /// Whether the conversation was deleted.
    pub deleted: bool,
}

/// The chat tables.
#[derive(Clone, Debug)]
pub struct ChatStore {
    db: Db,
}

impl ChatStore {
    /// A store on `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Applies `changes` to conversation `id` in one transaction, inserting the conversation
    /// first when `create` is given. A participant already in → 409 `chat.already_participant`;
    /// a direct pair that exists → 409 `chat.direct_exists`; a deleted conversation → 404.
    pub async fn apply(
        &self,
        id: Uuid,
        create: Option<&NewConversation>,
        changes: &[Change],
    ) -> ServiceResult<Applied> {
        let now = Utc::now();
        let result: Result<Applied, ApplyError> = with_pool!(&self.db, pool => async {
            let mut tx = pool.begin().await?;
            let mut applied = Applied::default();
            if create.is_none() && !matches!(changes.first(), Some(Change::Post(_))) {
                // Every change of a conversation locks its row first (a message's sequence
                // number does so itself): one order of locks, and the checks below see the
                // last committed change.
                let locked = sqlx::query("UPDATE chat_conversations SET updated_at = $2 WHERE id = $1 AND deleted_at IS NULL")
                    .bind(id).bind(now).execute(&mut *tx).await?;
                if locked.rows_affected() == 0 {
                    return Err(ApplyError::Sql(sqlx::Error::RowNotFound));
                }
            }
            if let Some(new) = create {
                sqlx::query(
                    "INSERT INTO chat_conversations (id, conversation_type, title, direct_key, created_by, activity_at, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
                )
                .bind(id).bind(new.conversation_type).bind(&new.title).bind(&new.direct_key).bind(new.created_by).bind(now)
                .execute(&mut *tx).await?;
            }
            for change in changes {
                match change {
                    Change::AddParticipant { user_id, role } => {
                        let sql = sqlx::AssertSqlSafe(format!(
                            "INSERT INTO chat_participants (id, conversation_id, user_id, role, joined_at, last_read_at, \
                             last_read_seq) VALUES ($1, $2, $3, $4, $5, $5, \
                             (SELECT last_seq FROM chat_conversations WHERE id = $2)) RETURNING {PARTICIPANT_COLUMNS}"
                        ));
                        let row = sqlx::query_as::<_, ParticipantRow>(sql)
                            .bind(Uuid::new_v4()).bind(id).bind(user_id).bind(role.map(Role::as_str)).bind(now)
                            .fetch_one(&mut *tx).await?;
                        sqlx::query("UPDATE chat_conversations SET participant_count = participant_count + 1, \
                                     updated_at = $2 WHERE id = $1")
                            .bind(id).bind(now).execute(&mut *tx).await?;
                        applied.participants.push(row);
                    }
                    Change::EndParticipation { user_id } => {
                        let ended = sqlx::query("UPDATE chat_participants SET left_at = $3 \
                                                 WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL")
                            .bind(id).bind(user_id).bind(now).execute(&mut *tx).await?;
                        if ended.rows_affected() == 0 {
                            return Err(ApplyError::Changed);
                        }
                        sqlx::query("UPDATE chat_conversations SET participant_count = participant_count - 1, \
                                     updated_at = $2 WHERE id = $1")
                            .bind(id).bind(now).execute(&mut *tx).await?;
                    }
                    Change::Require { user_id, role } => {
                        let current: Option<(Option<String>,)> = sqlx::query_as(
                            "SELECT role FROM chat_participants WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL")
                            .bind(id).bind(user_id).fetch_optional(&mut *tx).await?;
                        let holds = match (current, role) {
                            (None, _) => false,
                            (Some(_), None) => true,
                            (Some((current,)), Some(role)) => current.as_deref() == Some(role.as_str()),
                        };
                        if !holds {
                            return Err(ApplyError::Changed);
                        }
                    }
                    Change::SetRole { user_id, role } => {
                        let set = sqlx::query("UPDATE chat_participants SET role = $3 \
                                     WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL")
                            .bind(id).bind(user_id).bind(role.as_str()).execute(&mut *tx).await?;
                        if set.rows_affected() != 1 {
                            return Err(ApplyError::Changed);
                        }
                    }
                    Change::SetTitle(title) => {
                        sqlx::query("UPDATE chat_conversations SET title = $2, updated_at = $3 WHERE id = $1")
                            .bind(id).bind(title).bind(now).execute(&mut *tx).await?;
                    }
                    Change::Post(message) => {
                        let seq: Option<i64> = sqlx::query_scalar(
                            "UPDATE chat_conversations SET last_seq = last_seq + 1, last_message_at = $2, \
                             activity_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING last_seq",
                        )
                        .bind(id).bind(now).fetch_optional(&mut *tx).await?;
                        let seq = seq.ok_or(ApplyError::Sql(sqlx::Error::RowNotFound))?;
                        let (event, data) = match &message.system {
                            Some((event, data)) => (Some(*event), Some(Json(data.clone()))),
                            None => (None, None),
                        };
                        // A sender must (still) be an active participant, checked under the lock.
                        let sql = sqlx::AssertSqlSafe(format!(
                            "INSERT INTO chat_messages (id, conversation_id, seq, sender_id, content, message_type, \
                             reply_to_id, attachment_url, system_event, system_data, created_at, actor_id, client_id) \
                             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 WHERE $4 IS NULL OR EXISTS \
                             (SELECT 1 FROM chat_participants WHERE conversation_id = $2 AND user_id = $4 AND left_at IS NULL) \
                             RETURNING {MESSAGE_COLUMNS}"
                        ));
                        let row = sqlx::query_as::<_, MessageRow>(sql)
                            .bind(Uuid::now_v7()).bind(id).bind(seq).bind(message.sender_id).bind(&message.content)
                            .bind(message.message_type).bind(message.reply_to_id).bind(&message.attachment_url)
                            .bind(event).bind(data).bind(now).bind(message.actor_id).bind(&message.client_id)
                            .fetch_optional(&mut *tx).await?
                            .ok_or(ApplyError::Sql(sqlx::Error::RowNotFound))?;
                        if let Some(root) = message.reply_to_id {
                            sqlx::query("UPDATE chat_messages SET reply_count = reply_count + 1 WHERE id = $1")
                                .bind(root).execute(&mut *tx).await?;
                        }
                        applied.messages.push(row);
                    }
                    Change::Delete | Change::DeleteIfEmpty => {
                        let sql = if matches!(change, Change::Delete) {
                            "UPDATE chat_conversations SET deleted_at = $2, direct_key = NULL, updated_at = $2 \
                             WHERE id = $1 AND deleted_at IS NULL"
                        } else {
                            "UPDATE chat_conversations SET deleted_at = $2, direct_key = NULL, updated_at = $2 \
                             WHERE id = $1 AND deleted_at IS NULL AND participant_count <= 0"
                        };
                        let deleted = sqlx::query(sql).bind(id).bind(now).execute(&mut *tx).await?;
                        applied.deleted |= deleted.rows_affected() > 0;
                    }
                }
            }
            tx.commit().await?;
            Ok(applied)
        }.await);
        result.map_err(|err| match err {
            ApplyError::Changed => {
                ServiceError::conflict("chat.conflict", "The conversation changed meanwhile; try again.")
            }
            ApplyError::Sql(sqlx::Error::RowNotFound) => not_participant(),
            ApplyError::Sql(err) if saas_core::error::is_unique_violation(&err) => {
                if create.is_some_and(|c| c.direct_key.is_some()) {
                    ServiceError::conflict("chat.direct_exists", "The direct conversation exists.")
                } else {
                    ServiceError::conflict("chat.already_participant", "The user is already a participant.")
                }
            }
            ApplyError::Sql(err) => err.into(),
        })
    }

    /// Appends one message, checking its sender is (still) an active participant once the
    /// conversation is locked. On PostgreSQL this is one call of `chat_append_message` (the
    /// row is locked for a single round trip and commit); SQLite runs it as a transaction of
    /// [`ChatStore::apply`].
    pub async fn post(&self, id: Uuid, message: &NewMessage) -> ServiceResult<MessageRow> {
        let Db::Postgres(pool) = &self.db else {
            let applied = self.apply(id, None, &[Change::Post(message.clone())]).await?;
            return applied.messages.into_iter().next().ok_or_else(|| ServiceError::internal("message not returned"));
        };
        let (event, data) = match &message.system {
            Some((event, data)) => (Some(*event), Some(Json(data.clone()))),
            None => (None, None),
        };
        let row = sqlx::query_as::<_, MessageRow>(
            "SELECT * FROM chat_append_message($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(id)
        .bind(Uuid::now_v7())
        .bind(message.sender_id)
        .bind(message.actor_id)
        .bind(&message.content)
        .bind(message.message_type)
        .bind(message.reply_to_id)
        .bind(&message.attachment_url)
        .bind(event)
        .bind(data)
        .bind(Utc::now())
        .bind(&message.client_id)
        .fetch_optional(pool)
        .await
        .map_err(|err| match err.as_database_error().and_then(|e| e.code()).as_deref() {
            Some("P0002") => not_participant(),
            _ => err.into(),
        })?;
        row.ok_or_else(|| ServiceError::not_found("Conversation"))
    }

    /// An active participant's participation with the conversation, in one query.
    pub async fn access(
        &self,
        conversation_id: Uuid,
        user_id: Uuid,
    ) -> ServiceResult<Option<(ConversationRow, ParticipantRow)>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS}, p.id AS p_id, p.role AS p_role, p.joined_at AS p_joined_at, \
             p.last_read_at AS p_last_read_at, p.last_read_seq AS p_last_read_seq \
             FROM chat_participants p JOIN chat_conversations c ON c.id = p.conversation_id AND c.deleted_at IS NULL \
             WHERE p.conversation_id = $1 AND p.user_id = $2 AND p.left_at IS NULL"
        ));
        let row = with_pool!(&self.db, pool => sqlx::query_as::<_, AccessRow>(sql)
            .bind(conversation_id).bind(user_id).fetch_optional(pool).await)?;
        Ok(row.map(|row| {
            let participant = ParticipantRow {
                id: row.p_id,
                conversation_id,
                user_id,
                role: row.p_role,
                joined_at: row.p_joined_at,
                left_at: None,
                last_read_at: row.p_last_read_at,
                last_read_seq: row.p_last_read_seq,
            };
            (row.conversation, participant)
        }))
    }

    /// A conversation that is not deleted.
    pub async fn conversation(&self, id: Uuid) -> ServiceResult<Option<ConversationRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM chat_conversations c WHERE c.id = $1 AND c.deleted_at IS NULL"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, ConversationRow>(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// The direct conversation of a pair, by its key.
    pub async fn direct_conversation(&self, key: &str) -> ServiceResult<Option<ConversationRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM chat_conversations c WHERE c.direct_key = $1 AND c.deleted_at IS NULL"
        ));
        Ok(
            with_pool!(&self.db, pool => sqlx::query_as::<_, ConversationRow>(sql).bind(key).fetch_optional(pool).await)?,
        )
    }

    /// Sequence number of the newest message of a conversation.
    pub async fn last_seq(&self, id: Uuid) -> ServiceResult<i64> {
        let seq: Option<i64> = with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT last_seq FROM chat_conversations WHERE id = $1").bind(id).fetch_optional(pool).await)?;
        Ok(seq.unwrap_or(0))
    }

    /// One conversation as active participant `user_id` sees it.
    pub async fn view(&self, user_id: Uuid, id: Uuid) -> ServiceResult<Option<ConversationView>> {
        let sql = sqlx::AssertSqlSafe(format!("{VIEW_SELECT} AND c.id = $2"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, ConversationView>(sql)
            .bind(user_id).bind(id).fetch_optional(pool).await)?)
    }

    /// The conversations of `user_id`, most recently active first, after `before`
    /// (`(activity_at, id)` of the last one seen); `limit` rows at most.
    pub async fn views(
        &self,
        user_id: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> ServiceResult<Vec<ConversationView>> {
        let limit = i64::from(limit);
        let rows = match before {
            None => {
                let sql = sqlx::AssertSqlSafe(format!("{VIEW_SELECT} ORDER BY c.activity_at DESC, c.id DESC LIMIT $2"));
                with_pool!(&self.db, pool => sqlx::query_as::<_, ConversationView>(sql)
                    .bind(user_id).bind(limit).fetch_all(pool).await)?
            }
            Some((at, id)) => {
                let sql = sqlx::AssertSqlSafe(format!(
                    "{VIEW_SELECT} AND (c.activity_at < $2 OR (c.activity_at = $2 AND c.id < $3)) \
                     ORDER BY c.activity_at DESC, c.id DESC LIMIT $4"
                ));
                with_pool!(&self.db, pool => sqlx::query_as::<_, ConversationView>(sql)
                    .bind(user_id).bind(at).bind(id).bind(limit).fetch_all(pool).await)?
            }
        };
        Ok(rows)
    }

    /// Up to `per_conversation` active participants of each conversation other than
    /// `user_id`, oldest first: `(conversation_id, user_id)` pairs.
    pub async fn other_participants(
        &self,
        user_id: Uuid,
        conversations: &[Uuid],
        per_conversation: i64,
    ) -> ServiceResult<Vec<(Uuid, Uuid)>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..conversations.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT conversation_id, user_id FROM (SELECT conversation_id, user_id, \
             ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY joined_at, id) AS n FROM chat_participants \
             WHERE left_at IS NULL AND user_id <> $1 AND conversation_id IN ({})) ranked WHERE n <= $2 \
             ORDER BY conversation_id, n",
            placeholders.join(", ")
        );
        Ok(with_pool!(&self.db, pool => {
            let mut query = sqlx::query_as::<_, (Uuid, Uuid)>(sqlx::AssertSqlSafe(sql)).bind(user_id).bind(per_conversation);
            for id in conversations {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await
        })?)
    }

    /// The active participation of `user_id` in a conversation that is not deleted.
    pub async fn participant(&self, conversation_id: Uuid, user_id: Uuid) -> ServiceResult<Option<ParticipantRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM chat_participants p WHERE p.conversation_id = $1 AND p.user_id = $2 \
             AND p.left_at IS NULL AND EXISTS (SELECT 1 FROM chat_conversations c WHERE c.id = $1 AND c.deleted_at IS NULL)"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, ParticipantRow>(sql)
            .bind(conversation_id).bind(user_id).fetch_optional(pool).await)?)
    }

    /// Active participants, oldest first, after `(joined_at, id)`; `limit` rows at most.
    pub async fn participants(
        &self,
        conversation_id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> ServiceResult<Vec<ParticipantRow>> {
        let limit = i64::from(limit);
        let (at, id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM chat_participants WHERE conversation_id = $1 AND left_at IS NULL \
             AND (joined_at > $2 OR (joined_at = $2 AND id > $3)) ORDER BY joined_at, id LIMIT $4"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, ParticipantRow>(sql)
            .bind(conversation_id).bind(at).bind(id).bind(limit).fetch_all(pool).await)?)
    }

    /// Who takes over a group from a departing owner: the oldest admin, else the oldest member.
    pub async fn successor(&self, conversation_id: Uuid, leaving: Uuid) -> ServiceResult<Option<ParticipantRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM chat_participants WHERE conversation_id = $1 AND left_at IS NULL \
             AND user_id <> $2 ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, id LIMIT 1"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, ParticipantRow>(sql)
            .bind(conversation_id).bind(leaving).fetch_optional(pool).await)?)
    }

    /// Every active participant's user id, oldest first.
    pub async fn participant_ids(&self, conversation_id: Uuid) -> ServiceResult<Vec<Uuid>> {
        Ok(with_pool!(&self.db, pool => sqlx::query_scalar::<_, Uuid>(
            "SELECT user_id FROM chat_participants WHERE conversation_id = $1 AND left_at IS NULL ORDER BY joined_at, id")
            .bind(conversation_id).fetch_all(pool).await)?)
    }

    /// Moves a participant's read position forward to `seq` (never back).
    pub async fn mark_read(&self, conversation_id: Uuid, user_id: Uuid, seq: i64) -> ServiceResult<()> {
        let now = Utc::now();
        with_pool!(&self.db, pool => sqlx::query(
            "UPDATE chat_participants SET last_read_seq = $3, last_read_at = $4 \
             WHERE conversation_id = $1 AND user_id = $2 AND left_at IS NULL AND last_read_seq <= $3")
            .bind(conversation_id).bind(user_id).bind(seq).bind(now).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// One message of a conversation.
    pub async fn message(&self, conversation_id: Uuid, id: Uuid) -> ServiceResult<Option<MessageRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE conversation_id = $1 AND id = $2"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, MessageRow>(sql)
            .bind(conversation_id).bind(id).fetch_optional(pool).await)?)
    }

    /// One message by id, in whatever conversation (staff moderation).
    pub async fn message_by_id(&self, id: Uuid) -> ServiceResult<Option<MessageRow>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE id = $1"));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, MessageRow>(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Messages newest first, before sequence number `before`; `limit` rows at most.
    pub async fn messages(
        &self,
        conversation_id: Uuid,
        before: Option<i64>,
        limit: u32,
    ) -> ServiceResult<Vec<MessageRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE conversation_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, MessageRow>(sql)
            .bind(conversation_id).bind(before.unwrap_or(i64::MAX)).bind(i64::from(limit)).fetch_all(pool).await)?)
    }

    /// Messages with sequence numbers in `from..to`, oldest first.
    pub async fn messages_between(&self, conversation_id: Uuid, from: i64, to: i64) -> ServiceResult<Vec<MessageRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE conversation_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, MessageRow>(sql)
            .bind(conversation_id).bind(from).bind(to).fetch_all(pool).await)?)
    }

    /// Replaces a message's content and stamps `edited_at`.
    pub async fn edit_message(&self, id: Uuid, content: &str) -> ServiceResult<Option<MessageRow>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE chat_messages SET content = $2, edited_at = $3 WHERE id = $1 AND deleted_at IS NULL \
             RETURNING {MESSAGE_COLUMNS}"
        ));
        Ok(with_pool!(&self.db, pool => sqlx::query_as::<_, MessageRow>(sql)
            .bind(id).bind(content).bind(Utc::now()).fetch_optional(pool).await)?)
    }

    /// Soft-deletes a message (its content is kept for moderation); `false` if it was already.
    pub async fn delete_message(&self, id: Uuid) -> ServiceResult<bool> {
        let done = with_pool!(&self.db, pool => sqlx::query(
            "UPDATE chat_messages SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
            .bind(id).bind(Utc::now()).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }
}
