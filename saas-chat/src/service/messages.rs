//! Messages: post (with one-level threads), read, edit, soft delete, typing.

use serde::Deserialize;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, ValidationErrors};
use saas_toolkit::{Page, PageParams};

use super::{ChatService, permission_denied};
use crate::events::frames;
use crate::models::{MAX_ATTACHMENT_URL_LEN, MAX_CONTENT_CHARS, Message, MessageRow, MessageType};
use crate::store::NewMessage;

/// `{content, message_type?, reply_to_id?, attachment_url?}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct PostMessage {
    /// Text (trimmed; 1–10,000 characters; may be empty for an image or file).
    #[serde(default)]
    pub content: String,
    /// `text` (default), `image` or `file`.
    pub message_type: Option<String>,
    /// The message replied to (a reply to a reply joins the root's thread).
    pub reply_to_id: Option<Uuid>,
    /// `https://` URL of the image or file.
    pub attachment_url: Option<String>,
}

fn check_content(content: &str, errors: &mut ValidationErrors, may_be_empty: bool) {
    if content.is_empty() && !may_be_empty {
        errors.add("content", "This field may not be blank.");
    } else if content.chars().count() > MAX_CONTENT_CHARS {
        errors.add("content", format!("Ensure this field has no more than {MAX_CONTENT_CHARS} characters."));
    }
}

fn check_attachment(url: &str, errors: &mut ValidationErrors) {
    let host = url.strip_prefix("https://").unwrap_or_default();
    if host.is_empty() || host.starts_with('/') || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.add("attachment_url", "Enter a valid https:// URL.");
    } else if url.len() > MAX_ATTACHMENT_URL_LEN {
        errors.add("attachment_url", format!("Ensure this URL has no more than {MAX_ATTACHMENT_URL_LEN} characters."));
    }
}

impl ChatService {
    /// Posts a message and fans it out to every connected participant; `client_id` is
    /// echoed in the `message.new` frame so the sending client can match it.
    pub async fn post_message(
        &self,
        caller: Uuid,
        id: Uuid,
        input: PostMessage,
        client_id: Option<&str>,
    ) -> ServiceResult<Message> {
        let access = self.access(caller, id).await?;
        let content = input.content.trim().to_owned();
        let attachment_url = input.attachment_url.map(|url| url.trim().to_owned()).filter(|url| !url.is_empty());
        let mut errors = ValidationErrors::default();
        let kind = match input.message_type.as_deref().unwrap_or("text") {
            "text" => MessageType::Text,
            "image" => MessageType::Image,
            "file" => MessageType::File,
            _ => {
                errors.add("message_type", "Must be \"text\", \"image\" or \"file\".");
                MessageType::Text
            }
        };
        check_content(&content, &mut errors, kind != MessageType::Text && attachment_url.is_some());
        match &attachment_url {
            Some(url) => check_attachment(url, &mut errors),
            None if kind != MessageType::Text => errors.add("attachment_url", "An image or file needs its URL."),
            None => {}
        }
        let mut reply_to_id = None;
        if let Some(parent) = input.reply_to_id {
            match self.store().message(id, parent).await? {
                Some(parent) => reply_to_id = Some(parent.reply_to_id.unwrap_or(parent.id)),
                None => errors.add("reply_to_id", "No such message in this conversation."),
            }
        }
        if !errors.is_empty() {
            return Err(errors.into_error());
        }
        let new = NewMessage {
            sender_id: Some(caller),
            actor_id: Some(caller),
            content,
            message_type: kind.as_str(),
            reply_to_id,
            attachment_url,
            system: None,
            client_id: client_id.map(str::to_owned),
        };
        let row = self.store().post(id, &new).await?;
        let message = row.to_api();
        self.publish(id, &frames::message_new(&message, row.seq, client_id)).await;
        self.tell_app(&access.conversation, &row);
        Ok(message)
    }

    /// Messages newest first.
    pub async fn messages(&self, caller: Uuid, id: Uuid, page: &PageParams) -> ServiceResult<Page<Message>> {
        self.access(caller, id).await?;
        let limit = page.limit()?;
        let before = page.position::<i64>()?;
        let rows = self.store().messages(id, before, limit + 1).await?;
        Ok(Page::from_rows(rows, limit, |row| row.seq).map(|row| row.to_api()))
    }

    /// One message.
    pub async fn message(&self, caller: Uuid, id: Uuid, message_id: Uuid) -> ServiceResult<Message> {
        self.access(caller, id).await?;
        Ok(self.own_or_visible(id, message_id).await?.to_api())
    }

    async fn own_or_visible(&self, id: Uuid, message_id: Uuid) -> ServiceResult<MessageRow> {
        self.store().message(id, message_id).await?.ok_or_else(|| ServiceError::not_found("Message"))
    }

    /// A message its sender may change: not a system message, not someone else's.
    async fn authored(&self, caller: Uuid, id: Uuid, message_id: Uuid) -> ServiceResult<MessageRow> {
        self.access(caller, id).await?;
        let row = self.own_or_visible(id, message_id).await?;
        if row.kind() == MessageType::System || row.sender_id != Some(caller) {
            return Err(permission_denied());
        }
        Ok(row)
    }

    /// The sender edits a message.
    pub async fn edit_message(
        &self,
        caller: Uuid,
        id: Uuid,
        message_id: Uuid,
        content: &str,
    ) -> ServiceResult<Message> {
        let row = self.authored(caller, id, message_id).await?;
        let deleted = || ServiceError::bad_request("chat.message_deleted", "A deleted message cannot be edited.");
        if row.deleted_at.is_some() {
            return Err(deleted());
        }
        let content = content.trim();
        let mut errors = ValidationErrors::default();
        check_content(content, &mut errors, row.attachment_url.is_some());
        if !errors.is_empty() {
            return Err(errors.into_error());
        }
        let row = self.store().edit_message(message_id, content).await?.ok_or_else(deleted)?;
        let message = row.to_api();
        self.publish(id, &frames::message_updated(&message)).await;
        Ok(message)
    }

    /// The sender deletes a message (soft: content kept, shown blank); idempotent.
    pub async fn delete_message(&self, caller: Uuid, id: Uuid, message_id: Uuid) -> ServiceResult<()> {
        self.authored(caller, id, message_id).await?;
        if self.store().delete_message(message_id).await? {
            self.publish(id, &frames::message_deleted(message_id)).await;
        }
        Ok(())
    }

    /// Staff moderation: soft-deletes any user's message as its sender's delete does (content
    /// kept, shown blank, `message.deleted` to the conversation's sockets), without the
    /// ownership check. System messages stay (403 `chat.permission_denied`); a message deleted
    /// already is 400 `chat.message_deleted`, so a second moderation is not taken for a change.
    pub async fn moderate_delete(&self, message_id: Uuid) -> ServiceResult<Message> {
        let row = self.store().message_by_id(message_id).await?.ok_or_else(|| ServiceError::not_found("Message"))?;
        if row.kind() == MessageType::System {
            return Err(ServiceError::forbidden("chat.permission_denied", "System messages cannot be deleted."));
        }
        let already = || ServiceError::bad_request("chat.message_deleted", "The message is deleted already.");
        if row.deleted_at.is_some() || !self.store().delete_message(message_id).await? {
            return Err(already());
        }
        self.publish(row.conversation_id, &frames::message_deleted(message_id)).await;
        let row = self.store().message_by_id(message_id).await?.ok_or_else(|| ServiceError::not_found("Message"))?;
        Ok(row.to_api())
    }

    /// Tells the other sockets the caller is (or stopped) typing.
    pub async fn typing(&self, caller: Uuid, id: Uuid, is_typing: bool) {
        self.publish(id, &frames::typing(caller, is_typing)).await;
    }
}
