//! The chat in the admin site: conversations with their participants and messages,
//! messages with staff moderation, and a dashboard card. Moderation goes through
//! [`ChatService::moderate_delete`]: the same soft delete, and the same `message.deleted`
//! event to the conversation's sockets, as the sender's own delete.

use async_trait::async_trait;
use chrono::{NaiveTime, Utc};
use uuid::Uuid;

use saas_auth::UserEmails;
use saas_core::admin::{
    ActionSpec, AdminPanel, AdminSite, AdminUser, Card, Column, DASHBOARD_CAP, DashboardCard, Detail, Filter, Form,
    KeyKind, ListPage, ListQuery, Search, Section, SqlList, SqlValue, count_upto, table,
};
use saas_core::{AppContext, ServiceError, ServiceResult};

use crate::service::ChatService;

const GROUP: &str = "Chat";

/// Participations shown on a conversation's page (oldest first).
const MAX_PARTICIPANTS: usize = 500;

/// The content of a message as stored, marked when deleted, cut to an excerpt in lists.
const CONTENT_EXCERPT: &str = "CASE WHEN deleted_at IS NULL THEN '' ELSE '[deleted] ' END || substr(content, 1, 80) \
     || CASE WHEN length(content) > 80 THEN '…' ELSE '' END";

/// Adds the chat panels and card to the admin site.
pub(crate) fn register(site: &mut AdminSite) {
    site.panel(ConversationsPanel::new()).panel(MessagesPanel::new()).card(ChatCard);
}

/// The link of a user's admin page (the accounts module's `users` panel).
fn user_link(id: &str) -> Option<String> {
    (!id.is_empty()).then(|| format!("/admin/users/{id}/"))
}

/// Replaces the user id in cell `index` of every row by the user's email; `blank` names an
/// empty cell (a system message has no sender).
async fn show_users(ctx: &AppContext, rows: &mut [Vec<String>], index: usize, blank: &str) -> ServiceResult<()> {
    let known = UserEmails::of_cells(ctx, rows.iter().filter_map(|row| row.get(index).map(String::as_str))).await?;
    for row in rows {
        if let Some(cell) = row.get_mut(index) {
            *cell = if cell.is_empty() { blank.to_owned() } else { known.short(&*cell) };
        }
    }
    Ok(())
}

/// The one row `sql` selects for `id`, rendered as text.
async fn record(ctx: &AppContext, sql: &str, id: Uuid) -> ServiceResult<Option<Vec<String>>> {
    Ok(table(ctx.db(), sql, &[SqlValue::Uuid(id)]).await?.into_iter().next())
}

/// A list page with the user ids of column `index` shown as emails.
async fn page_with_users(ctx: &AppContext, mut page: ListPage, index: usize, blank: &str) -> ServiceResult<ListPage> {
    let mut cells: Vec<Vec<String>> = page.rows.iter_mut().map(|row| std::mem::take(&mut row.cells)).collect();
    show_users(ctx, &mut cells, index, blank).await?;
    for (row, cells) in page.rows.iter_mut().zip(cells) {
        row.cells = cells;
    }
    Ok(page)
}

/// Conversations: direct pairs and groups, deleted ones included.
struct ConversationsPanel {
    list: SqlList,
}

impl ConversationsPanel {
    fn new() -> Self {
        let list = SqlList::new("chat_conversations", "id", KeyKind::Uuid)
            .order_by("created_at")
            .columns(&["id", "conversation_type", "title", "participant_count", "last_message_at", "created_at"])
            .search(Search::Key)
            .search(Search::Prefix("title"))
            .filter_text("type", "conversation_type")
            .filter_bool("deleted", "(deleted_at IS NOT NULL)");
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for ConversationsPanel {
    fn slug(&self) -> &'static str {
        "conversations"
    }

    fn title(&self) -> &'static str {
        "Conversations"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "Type", "Title", "Participants", "Last message at", "Created"]
            .into_iter()
            .map(|label| Column { label })
            .collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("id or start of the title")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![Filter::new("type", "Type", &["direct", "group"]), Filter::yes_no("deleted", "Deleted")]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        self.list.fetch(ctx.db(), query).await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
        let Some(row) = record(
            ctx,
            "SELECT id, conversation_type, title, created_by, participant_count, last_seq, last_message_at, \
             activity_at, created_at, updated_at, deleted_at FROM chat_conversations WHERE id = $1",
            id,
        )
        .await?
        else {
            return Ok(None);
        };
        let mut participants = table(
            ctx.db(),
            "SELECT user_id, role, joined_at, left_at, last_read_at FROM chat_participants \
             WHERE conversation_id = $1 ORDER BY joined_at, id LIMIT $2",
            &[SqlValue::Uuid(id), SqlValue::Int(MAX_PARTICIPANTS as i64)],
        )
        .await?;
        let mut messages = table(
            ctx.db(),
            "SELECT id, sender_id, CASE WHEN deleted_at IS NULL THEN content ELSE '[deleted] ' || content END, \
             created_at, deleted_at FROM chat_messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT 100",
            &[SqlValue::Uuid(id)],
        )
        .await?;
        let known = UserEmails::of_cells(ctx, row.get(3).map(String::as_str)).await?;
        let user_ids: Vec<String> = participants.iter().map(|p| p.first().cloned().unwrap_or_default()).collect();
        show_users(ctx, &mut participants, 0, "").await?;
        show_users(ctx, &mut messages, 1, "system").await?;

        let heading = if user_ids.len() == MAX_PARTICIPANTS { "Participants (first 500)" } else { "Participants" };
        let mut section = Section::new(heading, &["User", "Role", "Joined", "Left", "Last read"]);
        for (cells, user_id) in participants.into_iter().zip(user_ids) {
            section.row(cells, user_link(&user_id));
        }
        let mut latest = Section::new("Messages", &["Id", "Sender", "Content", "Created", "Deleted"]);
        for cells in messages {
            let link = cells.first().map(|id| format!("/admin/messages/{id}/"));
            latest.row(cells, link);
        }
        let cell = |i: usize| row.get(i).cloned().unwrap_or_default();
        let title = match cell(2) {
            title if !title.is_empty() => title,
            _ => format!("{} conversation {}", cell(1), cell(0)),
        };
        Ok(Some(
            Detail::new(title)
                .field("Id", cell(0))
                .field("Type", cell(1))
                .field("Title", cell(2))
                .field("Created by", known.long(cell(3)))
                .field("Participants", cell(4))
                .field("Messages posted", cell(5))
                .field("Last message at", cell(6))
                .field("Last activity", cell(7))
                .field("Created", cell(8))
                .field("Updated", cell(9))
                .field("Deleted", cell(10))
                .section(section)
                .section(latest),
        ))
    }
}

/// Messages of every conversation, with staff moderation.
struct MessagesPanel {
    list: SqlList,
}

impl MessagesPanel {
    fn new() -> Self {
        let list = SqlList::new("chat_messages", "id", KeyKind::Uuid)
            .order_by("created_at")
            .columns(&[
                "id",
                "conversation_id",
                "sender_id",
                "message_type",
                CONTENT_EXCERPT,
                "created_at",
                "deleted_at",
            ])
            .search(Search::Key)
            .filter_bool("deleted", "(deleted_at IS NOT NULL)");
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for MessagesPanel {
    fn slug(&self) -> &'static str {
        "messages"
    }

    fn title(&self) -> &'static str {
        "Messages"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "Conversation", "Sender", "Type", "Content", "Created", "Deleted"]
            .into_iter()
            .map(|label| Column { label })
            .collect()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("message id")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![Filter::yes_no("deleted", "Deleted")]
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec::new("soft_delete", "Delete message (moderation)").dangerous()]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        let page = self.list.fetch(ctx.db(), query).await?;
        page_with_users(ctx, page, 2, "system").await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
        let Some(row) = record(
            ctx,
            "SELECT m.id, m.conversation_id, c.conversation_type, c.title, m.seq, m.sender_id, m.message_type, \
             m.content, m.reply_to_id, m.reply_count, m.attachment_url, m.system_event, m.system_data, m.created_at, \
             m.edited_at, m.deleted_at FROM chat_messages m JOIN chat_conversations c ON c.id = m.conversation_id \
             WHERE m.id = $1",
            id,
        )
        .await?
        else {
            return Ok(None);
        };
        let cell = |i: usize| row.get(i).cloned().unwrap_or_default();
        let known = UserEmails::of_cells(ctx, row.get(5).map(String::as_str)).await?;
        let sender = match cell(5) {
            sender if sender.is_empty() => "system".to_owned(),
            sender => known.long(&sender),
        };
        let conversation = match cell(3) {
            title if title.is_empty() => format!("{} ({})", cell(1), cell(2)),
            title => format!("{} ({}, {title})", cell(1), cell(2)),
        };
        Ok(Some(
            Detail::new(format!("Message {}", cell(0)))
                .field("Id", cell(0))
                .field("Conversation", conversation)
                .field("Sequence", cell(4))
                .field("Sender", sender)
                .field("Type", cell(6))
                .field("Content (as stored)", cell(7))
                .field("Reply to", cell(8))
                .field("Replies", cell(9))
                .field("Attachment", cell(10))
                .field("System event", cell(11))
                .field("System data", cell(12))
                .field("Created", cell(13))
                .field("Edited", cell(14))
                .field("Deleted", cell(15)),
        ))
    }

    async fn act(
        &self,
        ctx: &AppContext,
        _actor: &AdminUser,
        id: &str,
        action: &str,
        _form: &Form,
    ) -> ServiceResult<String> {
        if action != "soft_delete" {
            return Err(ServiceError::not_found(&format!("Action {action}")));
        }
        let id = Uuid::parse_str(id).map_err(|_| ServiceError::not_found("Message"))?;
        ChatService::get(ctx).moderate_delete(id).await?;
        Ok("Message deleted; its content is kept for moderation.".to_owned())
    }
}

/// Open conversations and today's messages.
struct ChatCard;

#[async_trait]
impl DashboardCard for ChatCard {
    async fn card(&self, ctx: &AppContext) -> ServiceResult<Card> {
        let today = Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc();
        let db = ctx.db();
        let open = count_upto(db, "chat_conversations WHERE deleted_at IS NULL", &[], DASHBOARD_CAP).await?;
        let since = [SqlValue::Time(today)];
        let messages = count_upto(db, "chat_messages WHERE created_at >= $1", &since, DASHBOARD_CAP).await?;
        Ok(Card::new("Chat").item("Open conversations", open, Some("/admin/conversations/?deleted=false")).item(
            "Messages today",
            messages,
            Some("/admin/messages/"),
        ))
    }
}
