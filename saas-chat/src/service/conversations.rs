//! Conversations: creation (one direct conversation per pair), lists with unread counts,
//! title, read position, leaving with hand-over, ownership, deletion.

use std::collections::HashMap;

use serde::Deserialize;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult, ValidationErrors};
use saas_toolkit::pagination::TimeCursor;
use saas_toolkit::{Page, PageParams};

use super::{Access, ChatService, conversation_not_found, permission_denied};
use crate::events::frames;
use crate::models::{Conversation, ConversationType, MAX_TITLE_CHARS, ParticipantUser, Role, SystemEvent};
use crate::store::{Change, ConversationView, NewConversation};

/// Most participants listed in `other_participants`.
const OTHERS_SHOWN: i64 = 5;
/// Most users a group may be created with at once.
const MAX_INITIAL_PARTICIPANTS: usize = 1000;

/// `{conversation_type, participant_ids, title?}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewConversationInput {
    /// `direct` or `group`.
    pub conversation_type: String,
    /// The other users (exactly one for a direct conversation).
    #[serde(default)]
    pub participant_ids: Vec<Uuid>,
    /// Title of a group (required for groups, refused for direct conversations).
    pub title: Option<String>,
}

/// A group title: trimmed, 1–100 characters.
fn clean_title(title: Option<&str>) -> ServiceResult<String> {
    let title = title.map(str::trim).unwrap_or_default();
    if title.is_empty() {
        return Err(ServiceError::invalid_field("title", "A group needs a title."));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(ServiceError::invalid_field(
            "title",
            format!("Ensure this field has no more than {MAX_TITLE_CHARS} characters."),
        ));
    }
    Ok(title.to_owned())
}

fn direct_key(a: Uuid, b: Uuid) -> String {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    format!("{low}:{high}")
}

impl ChatService {
    /// Creates a conversation; a direct conversation that exists is returned instead
    /// (`false`: not created), with whoever had left it back in.
    pub async fn create_conversation(
        &self,
        caller: Uuid,
        input: NewConversationInput,
    ) -> ServiceResult<(Conversation, bool)> {
        let kind = match input.conversation_type.as_str() {
            "direct" => ConversationType::Direct,
            "group" => ConversationType::Group,
            _ => return Err(ServiceError::invalid_field("conversation_type", "Must be \"direct\" or \"group\".")),
        };
        let mut ids = input.participant_ids;
        ids.sort();
        ids.dedup();
        let mut errors = ValidationErrors::default();
        if ids.contains(&caller) {
            errors.add("participant_ids", "You are a participant already; list the others.");
        }
        match kind {
            ConversationType::Direct if ids.len() != 1 => {
                errors.add("participant_ids", "A direct conversation has exactly one other participant.")
            }
            ConversationType::Direct if input.title.as_deref().is_some_and(|t| !t.trim().is_empty()) => {
                errors.add("title", "Direct conversations have no title.")
            }
            ConversationType::Group if ids.len() > MAX_INITIAL_PARTICIPANTS => errors
                .add("participant_ids", format!("Ensure this list has no more than {MAX_INITIAL_PARTICIPANTS} users.")),
            _ => {}
        }
        let title = match kind {
            ConversationType::Group => match clean_title(input.title.as_deref()) {
                Ok(title) => Some(title),
                Err(_) if input.title.as_deref().is_none_or(|t| t.trim().is_empty()) => {
                    errors.add("title", "A group needs a title.");
                    None
                }
                Err(_) => {
                    errors.add("title", format!("Ensure this field has no more than {MAX_TITLE_CHARS} characters."));
                    None
                }
            },
            ConversationType::Direct => None,
        };
        if !errors.is_empty() {
            return Err(errors.into_error());
        }
        self.require_active_users("participant_ids", &ids).await?;
        match kind {
            ConversationType::Direct => self.open_direct(caller, ids[0]).await,
            ConversationType::Group => {
                let id = Uuid::now_v7();
                let title = title.unwrap_or_default();
                let new = NewConversation {
                    id,
                    conversation_type: "group",
                    title: Some(title.clone()),
                    direct_key: None,
                    created_by: caller,
                };
                let mut changes = vec![Change::AddParticipant { user_id: caller, role: Some(Role::Owner) }];
                changes.extend(
                    ids.iter().map(|user_id| Change::AddParticipant { user_id: *user_id, role: Some(Role::Member) }),
                );
                changes.push(Change::Post(Self::system(&SystemEvent::GroupCreated { title }, caller)));
                self.store().apply(id, Some(&new), &changes).await?;
                Ok((self.conversation(caller, id).await?, true))
            }
        }
    }

    async fn open_direct(&self, caller: Uuid, other: Uuid) -> ServiceResult<(Conversation, bool)> {
        let key = direct_key(caller, other);
        for _ in 0..3 {
            if let Some(existing) = self.store().direct_conversation(&key).await? {
                for user_id in [caller, other] {
                    if self.store().participant(existing.id, user_id).await?.is_none() {
                        let change = Change::AddParticipant { user_id, role: None };
                        match self.store().apply(existing.id, None, &[change]).await {
                            Ok(applied) => self.announce(existing.id, &applied, vec![frames::joined(user_id)]).await,
                            Err(err) if err.code() == "chat.already_participant" => {}
                            Err(err) => return Err(err),
                        }
                    }
                }
                return Ok((self.conversation(caller, existing.id).await?, false));
            }
            let id = Uuid::now_v7();
            let new = NewConversation {
                id,
                conversation_type: "direct",
                title: None,
                direct_key: Some(key.clone()),
                created_by: caller,
            };
            let changes = [
                Change::AddParticipant { user_id: caller, role: None },
                Change::AddParticipant { user_id: other, role: None },
            ];
            match self.store().apply(id, Some(&new), &changes).await {
                Ok(_) => return Ok((self.conversation(caller, id).await?, true)),
                // Created meanwhile by the other user: answer with theirs.
                Err(err) if err.code() == "chat.direct_exists" => continue,
                Err(err) => return Err(err),
            }
        }
        Err(ServiceError::unavailable("chat.busy", "The conversation is being created; try again."))
    }

    /// One conversation as the caller sees it.
    pub async fn conversation(&self, caller: Uuid, id: Uuid) -> ServiceResult<Conversation> {
        let view = self.store().view(caller, id).await?.ok_or_else(conversation_not_found)?;
        Ok(self.render(caller, vec![view]).await?.remove(0))
    }

    /// The caller's conversations, most recently active first.
    pub async fn conversations(&self, caller: Uuid, page: &PageParams) -> ServiceResult<Page<Conversation>> {
        let limit = page.limit()?;
        let before = page.position::<TimeCursor>()?.map(|p| (p.created_at, p.id));
        let views = self.store().views(caller, before, limit + 1).await?;
        let page = Page::from_rows(views, limit, |view| TimeCursor {
            created_at: view.conversation.activity_at,
            id: view.conversation.id,
        });
        let results = self.render(caller, page.results).await?;
        Ok(Page { results, next_cursor: page.next_cursor })
    }

    /// Views with their other participants and names, in three queries whatever their number.
    async fn render(&self, caller: Uuid, views: Vec<ConversationView>) -> ServiceResult<Vec<Conversation>> {
        let ids: Vec<Uuid> = views.iter().map(|view| view.conversation.id).collect();
        let pairs = self.store().other_participants(caller, &ids, OTHERS_SHOWN).await?;
        let mut user_ids: Vec<Uuid> = pairs.iter().map(|(_, user)| *user).collect();
        user_ids.sort();
        user_ids.dedup();
        let users = self.users(&user_ids).await?;
        let mut others: HashMap<Uuid, Vec<ParticipantUser>> = HashMap::new();
        for (conversation, user) in pairs {
            if let Some(user) = users.get(&user) {
                others.entry(conversation).or_default().push(ParticipantUser {
                    id: user.id,
                    email: user.email.clone(),
                    display_name: user.display_name.clone(),
                });
            }
        }
        Ok(views
            .into_iter()
            .map(|view| {
                let row = &view.conversation;
                let other_participants = others.remove(&row.id).unwrap_or_default();
                let display_name = match (&row.title, row.kind()) {
                    (Some(title), _) if !title.is_empty() => title.clone(),
                    (_, ConversationType::Direct) => other_participants
                        .first()
                        .map(|user| user.display_name.clone())
                        .unwrap_or_else(|| "Direct conversation".to_owned()),
                    _ => "Group".to_owned(),
                };
                Conversation {
                    id: row.id,
                    conversation_type: row.kind(),
                    title: row.title.clone(),
                    display_name,
                    participant_count: row.participant_count,
                    created_by: row.created_by,
                    other_participants,
                    last_message: view.last_message().map(|message| message.to_api()),
                    last_message_at: row.last_message_at,
                    unread_count: view.unread_count,
                    current_user_role: view.role.as_deref().and_then(Role::parse),
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                }
            })
            .collect())
    }

    /// Renames a group (owner or admin).
    pub async fn rename(&self, caller: Uuid, id: Uuid, title: Option<&str>) -> ServiceResult<Conversation> {
        let access = self.access(caller, id).await?;
        if !access.is_group() || !access.role().may_rename() {
            return Err(permission_denied());
        }
        let title = clean_title(title)?;
        let old_title = access.conversation.title.clone().unwrap_or_default();
        if title != old_title {
            let event = SystemEvent::TitleChanged { old_title, new_title: title.clone(), changed_by_id: caller };
            let applied = self
                .store()
                .apply(
                    id,
                    None,
                    &[
                        Change::Require { user_id: caller, role: Some(access.role()) },
                        Change::SetTitle(title),
                        Change::Post(Self::system(&event, caller)),
                    ],
                )
                .await?;
            self.announce(id, &applied, Vec::new()).await;
        }
        self.conversation(caller, id).await
    }

    /// Deletes a group (owner only); its sockets are closed.
    pub async fn delete_conversation(&self, caller: Uuid, id: Uuid) -> ServiceResult<()> {
        let access = self.access(caller, id).await?;
        if !access.is_group() || access.role() != Role::Owner {
            return Err(permission_denied());
        }
        let changes = [Change::Require { user_id: caller, role: Some(Role::Owner) }, Change::Delete];
        let applied = self.store().apply(id, None, &changes).await?;
        self.announce(id, &applied, Vec::new()).await;
        Ok(())
    }

    /// Marks the conversation read up to `message_id`, or up to its newest message.
    pub async fn mark_read(&self, caller: Uuid, id: Uuid, message_id: Option<Uuid>) -> ServiceResult<Conversation> {
        self.record_read(caller, id, message_id).await?;
        self.conversation(caller, id).await
    }

    /// Records the caller's read position and tells the conversation's sockets.
    pub async fn record_read(&self, caller: Uuid, id: Uuid, message_id: Option<Uuid>) -> ServiceResult<()> {
        let access = self.access(caller, id).await?;
        let (seq, read_id) = match message_id {
            Some(message_id) => {
                let message = self.store().message(id, message_id).await?.ok_or_else(|| {
                    ServiceError::invalid_field("message_id", "No such message in this conversation.")
                })?;
                (message.seq, Some(message.id))
            }
            None => {
                let view = self.store().view(caller, id).await?.ok_or_else(conversation_not_found)?;
                (view.conversation.last_seq, view.last_message().map(|message| message.id))
            }
        };
        self.store().mark_read(id, caller, seq.max(access.participant.last_read_seq)).await?;
        self.publish(id, &frames::read(caller, read_id)).await;
        Ok(())
    }

    /// The caller leaves; a departing group owner hands over to the oldest admin, else the
    /// oldest member; a conversation nobody is left in is deleted.
    pub async fn leave(&self, caller: Uuid, id: Uuid) -> ServiceResult<()> {
        let access = self.access(caller, id).await?;
        let mut changes = vec![
            Change::Require { user_id: caller, role: access.is_group().then(|| access.role()) },
            Change::EndParticipation { user_id: caller },
            Change::Post(Self::system(
                &SystemEvent::ParticipantRemoved { user_id: caller, removed_by_id: caller, left: true },
                caller,
            )),
        ];
        if access.is_group()
            && access.role() == Role::Owner
            && let Some(successor) = self.store().successor(id, caller).await?
        {
            changes.push(Change::Require { user_id: successor.user_id, role: Some(successor.role()) });
            changes.push(Change::SetRole { user_id: successor.user_id, role: Role::Owner });
            changes.push(Change::Post(Self::system(
                &SystemEvent::OwnershipTransferred {
                    from_user_id: caller,
                    to_user_id: successor.user_id,
                    departure: true,
                },
                caller,
            )));
        }
        changes.push(Change::DeleteIfEmpty);
        let applied = self.store().apply(id, None, &changes).await?;
        self.announce(id, &applied, Vec::new()).await;
        Ok(())
    }

    /// The owner hands the group to another participant and becomes an admin.
    pub async fn transfer_ownership(&self, caller: Uuid, id: Uuid, to: Uuid) -> ServiceResult<Conversation> {
        let access = self.access(caller, id).await?;
        if !access.is_group() || access.role() != Role::Owner {
            return Err(permission_denied());
        }
        if to == caller {
            return Err(ServiceError::invalid_field("user_id", "You own this group already."));
        }
        if self.store().participant(id, to).await?.is_none() {
            return Err(ServiceError::invalid_field("user_id", "Not a participant of this conversation."));
        }
        let event = SystemEvent::OwnershipTransferred { from_user_id: caller, to_user_id: to, departure: false };
        let changes = [
            Change::Require { user_id: caller, role: Some(Role::Owner) },
            Change::Require { user_id: to, role: None },
            Change::SetRole { user_id: caller, role: Role::Admin },
            Change::SetRole { user_id: to, role: Role::Owner },
            Change::Post(Self::system(&event, caller)),
        ];
        let applied = self.store().apply(id, None, &changes).await?;
        self.announce(id, &applied, Vec::new()).await;
        self.conversation(caller, id).await
    }

    /// Whether the caller may act on a group as `role` requires (used by participants).
    pub(super) fn require_group(access: &Access) -> ServiceResult<()> {
        if access.is_group() { Ok(()) } else { Err(super::not_a_group()) }
    }
}
