//! The chat logic: who may do what in a conversation, and what every change tells the
//! conversation's sockets. No HTTP types here.

mod conversations;
mod messages;
mod participants;

use std::collections::HashMap;
use std::sync::Arc;

use uuid::Uuid;

use saas_auth::UserSummary;
use saas_core::{AppContext, ServiceError, ServiceResult};

use crate::events::{ChatEvents, Envelope, frames};
use crate::models::{ConversationRow, ConversationType, MessageRow, ParticipantRow, Role};
use crate::store::{Applied, ChatStore, NewMessage};

pub use conversations::NewConversationInput;
pub use messages::PostMessage;

/// The chat service; cheap to clone. Get it with [`ChatService::get`].
#[derive(Clone)]
pub struct ChatService {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: AppContext,
    store: ChatStore,
    events: Option<Arc<dyn ChatEvents>>,
}

/// The caller's access to a conversation: the conversation and their participation.
#[derive(Debug, Clone)]
pub struct Access {
    /// The conversation.
    pub conversation: ConversationRow,
    /// The caller's active participation.
    pub participant: ParticipantRow,
}

impl Access {
    fn is_group(&self) -> bool {
        self.conversation.kind() == ConversationType::Group
    }

    fn role(&self) -> Role {
        self.participant.role()
    }
}

fn permission_denied() -> ServiceError {
    ServiceError::forbidden("chat.permission_denied", "You do not have permission to perform this action.")
}

fn not_a_group() -> ServiceError {
    ServiceError::bad_request("chat.not_a_group", "Direct conversations have no participants to manage.")
}

fn conversation_not_found() -> ServiceError {
    ServiceError::not_found("Conversation")
}

impl ChatService {
    /// A service on the app's database, telling `events` of new messages.
    pub fn new(ctx: &AppContext, events: Option<Arc<dyn ChatEvents>>) -> Self {
        let store = ChatStore::new(ctx.db().clone());
        Self { inner: Arc::new(Inner { ctx: ctx.clone(), store, events }) }
    }

    /// The service installed in the app (by `ChatModule`), or a new one without events.
    pub fn get(ctx: &AppContext) -> Self {
        if let Some(service) = ctx.get::<ChatService>() {
            return service;
        }
        let service = ChatService::new(ctx, None);
        ctx.insert(service.clone());
        service
    }

    /// The tables.
    pub fn store(&self) -> &ChatStore {
        &self.inner.store
    }

    /// Whether an app hook hears of new messages (and so presence is tracked).
    pub fn tells_app(&self) -> bool {
        self.inner.events.is_some()
    }

    fn ctx(&self) -> &AppContext {
        &self.inner.ctx
    }

    /// The conversation and the caller's participation; 404 for anyone not in it.
    pub async fn access(&self, user_id: Uuid, conversation_id: Uuid) -> ServiceResult<Access> {
        let (conversation, participant) =
            self.store().access(conversation_id, user_id).await?.ok_or_else(conversation_not_found)?;
        Ok(Access { conversation, participant })
    }

    /// Users by id, through the accounts directory.
    async fn users(&self, ids: &[Uuid]) -> ServiceResult<HashMap<Uuid, UserSummary>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let directory = saas_auth::directory(self.ctx())?;
        Ok(directory.users(ids).await?.into_iter().map(|user| (user.id, user)).collect())
    }

    /// Checks users may join a conversation: they exist and are active; reports them under `field`.
    async fn require_active_users(&self, field: &str, ids: &[Uuid]) -> ServiceResult<()> {
        let users = self.users(ids).await?;
        for id in ids {
            match users.get(id) {
                Some(user) if user.is_active => {}
                Some(_) => return Err(ServiceError::invalid_field(field, format!("User {id} is inactive."))),
                None => return Err(ServiceError::invalid_field(field, format!("User {id} does not exist."))),
            }
        }
        Ok(())
    }

    /// Tells the sockets of a conversation about a committed change: its messages in order,
    /// then `after`. A pub/sub failure is logged, not returned: the change is stored, and
    /// sockets catch up on messages from the database by their sequence numbers.
    async fn announce(&self, conversation_id: Uuid, applied: &Applied, after: Vec<Envelope>) {
        let mut envelopes: Vec<Envelope> =
            applied.messages.iter().map(|row| frames::message_new(&row.to_api(), row.seq, None)).collect();
        envelopes.extend(after);
        if applied.deleted {
            envelopes.push(frames::conversation_deleted(conversation_id));
        }
        for envelope in envelopes {
            self.publish(conversation_id, &envelope).await;
        }
    }

    async fn publish(&self, conversation_id: Uuid, envelope: &Envelope) {
        if let Err(err) = envelope.publish(self.ctx(), conversation_id).await {
            tracing::warn!(error = %err, %conversation_id, "chat event not published");
        }
    }

    /// A system message recording `actor`'s change.
    fn system(event: &crate::models::SystemEvent, actor: Uuid) -> NewMessage {
        NewMessage {
            sender_id: None,
            actor_id: Some(actor),
            content: event.summary(),
            message_type: "system",
            reply_to_id: None,
            attachment_url: None,
            system: Some((event.name(), event.data())),
            client_id: None,
        }
    }

    /// Hands a new message to the app's [`ChatEvents`], off the request path.
    fn tell_app(&self, conversation: &ConversationRow, message: &MessageRow) {
        let Some(events) = self.inner.events.clone() else { return };
        let service = self.clone();
        let conversation = conversation.clone();
        let message = message.to_api();
        tokio::spawn(async move {
            let Some(sender) = message.sender_id else { return };
            let result: ServiceResult<()> = async {
                let recipients: Vec<Uuid> = service
                    .store()
                    .participant_ids(conversation.id)
                    .await?
                    .into_iter()
                    .filter(|id| *id != sender)
                    .collect();
                let mut offline = Vec::new();
                for user in recipients {
                    if !crate::hub::presence::is_online(service.ctx(), conversation.id, user).await {
                        offline.push(user);
                    }
                }
                let sender_name =
                    service.users(&[sender]).await?.remove(&sender).map(|user| user.display_name).unwrap_or_default();
                events
                    .message_posted(
                        service.ctx(),
                        crate::events::MessagePosted {
                            conversation_id: conversation.id,
                            conversation_title: conversation.title.clone(),
                            message,
                            sender_name,
                            offline_recipients: offline,
                        },
                    )
                    .await;
                Ok(())
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(error = %err, "chat event hook failed");
            }
        });
    }
}
