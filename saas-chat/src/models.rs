//! Rows of the chat tables, their enums and rules, and the JSON shapes of the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Longest message content, in characters.
pub const MAX_CONTENT_CHARS: usize = 10_000;
/// Longest group title, in characters.
pub const MAX_TITLE_CHARS: usize = 100;
/// Longest attachment URL, in bytes.
pub const MAX_ATTACHMENT_URL_LEN: usize = 2048;

/// `direct` (two people, no title, no roles) or `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConversationType {
    /// One conversation per pair of users.
    Direct,
    /// Titled, with roles.
    Group,
}

impl ConversationType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "direct" { Self::Direct } else { Self::Group }
    }
}

/// A participant's rank in a group: owner > admin > member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages nobody.
    Member,
    /// Adds and removes members.
    Admin,
    /// Adds anyone, changes roles, transfers ownership.
    Owner,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// The role named `text`, if any.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    /// Whether a participant of this role may add someone as `role`.
    pub fn may_add(self, role: Role) -> bool {
        match self {
            Self::Owner => role != Role::Owner,
            Self::Admin => role == Role::Member,
            Self::Member => false,
        }
    }

    /// Whether a participant of this role may remove someone of role `target`.
    pub fn may_remove(self, target: Role) -> bool {
        self > target && target != Role::Owner
    }

    /// Whether a participant of this role may rename the group.
    pub fn may_rename(self) -> bool {
        self >= Role::Admin
    }
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    /// Plain text.
    Text,
    /// Posted by the service for membership, role, ownership and title changes.
    System,
    /// An image at `attachment_url`.
    Image,
    /// A file at `attachment_url`.
    File,
}

impl MessageType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::System => "system",
            Self::Image => "image",
            Self::File => "file",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "system" => Self::System,
            "image" => Self::Image,
            "file" => Self::File,
            _ => Self::Text,
        }
    }
}

/// The system events posted as messages, with their data.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemEvent {
    /// `group_created {title}`.
    GroupCreated { title: String },
    /// `participant_added {user_id, added_by_id}`.
    ParticipantAdded { user_id: Uuid, added_by_id: Uuid },
    /// `participant_removed {user_id, removed_by_id, reason: left|removed}`.
    ParticipantRemoved { user_id: Uuid, removed_by_id: Uuid, left: bool },
    /// `role_changed {user_id, old_role, new_role, changed_by_id}`.
    RoleChanged { user_id: Uuid, old_role: Role, new_role: Role, changed_by_id: Uuid },
    /// `ownership_transferred {from_user_id, to_user_id, reason: manual|departure}`.
    OwnershipTransferred { from_user_id: Uuid, to_user_id: Uuid, departure: bool },
    /// `title_changed {old_title, new_title, changed_by_id}`.
    TitleChanged { old_title: String, new_title: String, changed_by_id: Uuid },
}

impl SystemEvent {
    /// The event's name (`system_event`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::GroupCreated { .. } => "group_created",
            Self::ParticipantAdded { .. } => "participant_added",
            Self::ParticipantRemoved { .. } => "participant_removed",
            Self::RoleChanged { .. } => "role_changed",
            Self::OwnershipTransferred { .. } => "ownership_transferred",
            Self::TitleChanged { .. } => "title_changed",
        }
    }

    /// The event's data (`system_data`).
    pub fn data(&self) -> Value {
        use serde_json::json;
        match self {
            Self::GroupCreated { title } => json!({ "title": title }),
            Self::ParticipantAdded { user_id, added_by_id } => {
                json!({ "user_id": user_id, "added_by_id": added_by_id })
            }
            Self::ParticipantRemoved { user_id, removed_by_id, left } => json!({
                "user_id": user_id, "removed_by_id": removed_by_id, "reason": if *left { "left" } else { "removed" },
            }),
            Self::RoleChanged { user_id, old_role, new_role, changed_by_id } => json!({
                "user_id": user_id, "old_role": old_role, "new_role": new_role, "changed_by_id": changed_by_id,
            }),
            Self::OwnershipTransferred { from_user_id, to_user_id, departure } => json!({
                "from_user_id": from_user_id, "to_user_id": to_user_id,
                "reason": if *departure { "departure" } else { "manual" },
            }),
            Self::TitleChanged { old_title, new_title, changed_by_id } => json!({
                "old_title": old_title, "new_title": new_title, "changed_by_id": changed_by_id,
            }),
        }
    }

    /// A one-line human text of the event, stored as the message content.
    pub fn summary(&self) -> String {
        match self {
            Self::GroupCreated { title } => format!("Group \"{title}\" created"),
            Self::ParticipantAdded { .. } => "A participant was added".into(),
            Self::ParticipantRemoved { left: true, .. } => "A participant left".into(),
            Self::ParticipantRemoved { left: false, .. } => "A participant was removed".into(),
            Self::RoleChanged { new_role, .. } => format!("A participant is now {}", new_role.as_str()),
            Self::OwnershipTransferred { .. } => "Ownership was transferred".into(),
            Self::TitleChanged { new_title, .. } => format!("Title changed to \"{new_title}\""),
        }
    }
}

/// A row of `chat_conversations`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRow {
    /// Id.
    pub id: Uuid,
    /// `direct` or `group`.
    pub conversation_type: String,
    /// Group title.
    pub title: Option<String>,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Active participants.
    pub participant_count: i64,
    /// Sequence number of the newest message (0: none yet).
    pub last_seq: i64,
    /// When the newest message was posted.
    pub last_message_at: Option<DateTime<Utc>>,
    /// Last message or creation: the order of conversation lists.
    pub activity_at: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl ConversationRow {
    /// Direct or group.
    pub fn kind(&self) -> ConversationType {
        ConversationType::parse(&self.conversation_type)
    }
}

/// A row of `chat_participants`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ParticipantRow {
    /// Id of this participation.
    pub id: Uuid,
    /// Conversation.
    pub conversation_id: Uuid,
    /// User.
    pub user_id: Uuid,
    /// Role in a group; none in a direct conversation.
    pub role: Option<String>,
    /// When this participation began.
    pub joined_at: DateTime<Utc>,
    /// When it ended.
    pub left_at: Option<DateTime<Utc>>,
    /// Read up to this time.
    pub last_read_at: Option<DateTime<Utc>>,
    /// Read up to this message sequence number.
    pub last_read_seq: i64,
}

impl ParticipantRow {
    /// The role (members of a direct conversation count as members).
    pub fn role(&self) -> Role {
        self.role.as_deref().and_then(Role::parse).unwrap_or(Role::Member)
    }
}

/// A row of `chat_messages`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    /// Id.
    pub id: Uuid,
    /// Conversation.
    pub conversation_id: Uuid,
    /// Position in the conversation: 1, 2, 3… with no gap.
    pub seq: i64,
    /// Author; none for system messages.
    pub sender_id: Option<Uuid>,
    /// Text as stored (kept after deletion, for moderation).
    pub content: String,
    /// `text`, `system`, `image`, `file`.
    pub message_type: String,
    /// Root message of the thread this replies to.
    pub reply_to_id: Option<Uuid>,
    /// Replies to this message.
    pub reply_count: i64,
    /// Attachment.
    pub attachment_url: Option<String>,
    /// System event name.
    pub system_event: Option<String>,
    /// System event data.
    pub system_data: Option<sqlx::types::Json<Value>>,
    /// Posting time.
    pub created_at: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Soft deletion.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The sending client's own id for the message, echoed in `message.new`.
    #[sqlx(default)]
    pub client_id: Option<String>,
}

impl MessageRow {
    /// Text, system, image or file.
    pub fn kind(&self) -> MessageType {
        MessageType::parse(&self.message_type)
    }

    /// The message as the API shows it (deleted content blank).
    pub fn to_api(&self) -> Message {
        let deleted = self.deleted_at.is_some();
        Message {
            id: self.id,
            conversation_id: self.conversation_id,
            sender_id: self.sender_id,
            content: if deleted { String::new() } else { self.content.clone() },
            message_type: self.kind(),
            reply_to_id: self.reply_to_id,
            reply_count: self.reply_count,
            attachment_url: if deleted { None } else { self.attachment_url.clone() },
            system_event: self.system_event.clone(),
            system_data: self.system_data.as_ref().map(|data| data.0.clone()),
            created_at: self.created_at,
            edited_at: self.edited_at,
            is_deleted: deleted,
        }
    }
}

/// A message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    /// Id.
    pub id: Uuid,
    /// Conversation.
    pub conversation_id: Uuid,
    /// Author; null for system messages.
    pub sender_id: Option<Uuid>,
    /// Text; blank once deleted.
    pub content: String,
    /// `text`, `system`, `image`, `file`.
    pub message_type: MessageType,
    /// The thread's root message, for a reply.
    pub reply_to_id: Option<Uuid>,
    /// Replies to this message.
    pub reply_count: i64,
    /// Attachment URL (`https://`).
    pub attachment_url: Option<String>,
    /// For system messages: `group_created`, `participant_added`, `participant_removed`,
    /// `role_changed`, `ownership_transferred`, `title_changed`.
    pub system_event: Option<String>,
    /// The system event's data.
    #[schema(value_type = Option<Object>)]
    pub system_data: Option<Value>,
    /// Posting time.
    pub created_at: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Soft-deleted.
    pub is_deleted: bool,
}

/// A user as shown among a conversation's participants.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParticipantUser {
    /// User id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Full name, else username, else email.
    pub display_name: String,
}

/// A conversation as one participant sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conversation {
    /// Id.
    pub id: Uuid,
    /// `direct` or `group`.
    pub conversation_type: ConversationType,
    /// Group title.
    pub title: Option<String>,
    /// The title, else the other person's name or email.
    pub display_name: String,
    /// Active participants.
    pub participant_count: i64,
    /// Creator.
    pub created_by: Option<Uuid>,
    /// Up to five other active participants, oldest first.
    pub other_participants: Vec<ParticipantUser>,
    /// The newest message.
    pub last_message: Option<Message>,
    /// When it was posted.
    pub last_message_at: Option<DateTime<Utc>>,
    /// Messages after the caller's last read, not sent by the caller.
    pub unread_count: i64,
    /// The caller's role (null in a direct conversation).
    pub current_user_role: Option<Role>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A participation.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Participant {
    /// Id of the participation.
    pub id: Uuid,
    /// User.
    pub user_id: Uuid,
    /// Role (null in a direct conversation).
    pub role: Option<Role>,
    /// Join time.
    pub joined_at: DateTime<Utc>,
    /// Read up to.
    pub last_read_at: Option<DateTime<Utc>>,
}

impl From<&ParticipantRow> for Participant {
    fn from(row: &ParticipantRow) -> Self {
        Participant {
            id: row.id,
            user_id: row.user_id,
            role: row.role.as_deref().and_then(Role::parse),
            joined_at: row.joined_at,
            last_read_at: row.last_read_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn roles_follow_the_group_rules() {
        assert!(Role::Owner.may_add(Role::Admin) && Role::Owner.may_add(Role::Member));
        assert!(!Role::Owner.may_add(Role::Owner));
        assert!(Role::Admin.may_add(Role::Member) && !Role::Admin.may_add(Role::Admin));
        assert!(!Role::Member.may_add(Role::Member));
        assert!(Role::Owner.may_remove(Role::Admin) && Role::Owner.may_remove(Role::Member));
        assert!(Role::Admin.may_remove(Role::Member) && !Role::Admin.may_remove(Role::Admin));
        assert!(!Role::Admin.may_remove(Role::Owner) && !Role::Member.may_remove(Role::Member));
        assert!(Role::Admin.may_rename() && !Role::Member.may_rename());
    }
}
