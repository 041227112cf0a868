//! What a conversation's sockets are told, how it travels between nodes, and the hook an
//! app uses to reach participants who are not connected.
//!
//! Every event of a conversation is published on its topic (`chat:{id}`) through the app's
//! `PubSub` (Redis between nodes when configured). A payload is a one-line JSON header for
//! the hubs (sequence number, whom to skip or disconnect) followed by the frame the sockets
//! get, serialised once for every socket of every node.

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use saas_core::{AppContext, ServiceResult};

use crate::models::Message;

/// A new message, for an app to notify the participants who have no socket open on the
/// conversation (the reference server sends them a `new_message` notification).
#[derive(Debug, Clone)]
pub struct MessagePosted {
    /// Conversation.
    pub conversation_id: Uuid,
    /// Group title (none for a direct conversation).
    pub conversation_title: Option<String>,
    /// The message.
    pub message: Message,
    /// The sender's display name.
    pub sender_name: String,
    /// Participants other than the sender with no socket open on the conversation.
    pub offline_recipients: Vec<Uuid>,
}

/// Receives chat events an app acts on outside the chat (notifications, analytics).
/// Register one with `ChatModule::default().events(...)`; calls run off the request path.
#[async_trait]
pub trait ChatEvents: Send + Sync + 'static {
    /// A text, image or file message was posted.
    async fn message_posted(&self, ctx: &AppContext, event: MessagePosted);
}

/// The pub/sub topic of a conversation.
pub(crate) fn topic(conversation_id: Uuid) -> String {
    format!("chat:{conversation_id}")
}

/// Routing of one event among the sockets of a conversation.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Header {
    /// The message's sequence number (message.new only): hubs deliver in this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// A user whose sockets do not get the frame (their own typing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<Uuid>,
    /// A user whose sockets get the frame and are then closed (removed from the conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<Uuid>,
    /// Every socket gets the frame and is then closed (conversation deleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub close_all: bool,
}

/// An event as published: header and frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Envelope {
    pub header: Header,
    pub frame: Bytes,
}

impl Envelope {
    /// An event with the default routing.
    pub fn new(frame: serde_json::Value) -> Self {
        Self { header: Header::default(), frame: Bytes::from(frame.to_string()) }
    }

    pub fn encode(&self) -> Bytes {
        let header = serde_json::to_vec(&self.header).unwrap_or_else(|_| b"{}".to_vec());
        let mut out = BytesMut::with_capacity(header.len() + 1 + self.frame.len());
        out.put_slice(&header);
        out.put_u8(b'\n');
        out.put_slice(&self.frame);
        out.freeze()
    }

    pub fn decode(payload: Bytes) -> Option<Self> {
        let split = payload.iter().position(|b| *b == b'\n')?;
        let header = serde_json::from_slice(&payload[..split]).ok()?;
        Some(Self { header, frame: payload.slice(split + 1..) })
    }

    /// Sends the event to the conversation's sockets on every node.
    pub async fn publish(&self, ctx: &AppContext, conversation_id: Uuid) -> ServiceResult<()> {
        ctx.pubsub().publish(&topic(conversation_id), self.encode()).await
    }
}

/// The frames of the protocol.
pub(crate) mod frames {
    use super::*;

    /// `message.new`, ordered by the message's sequence number. The message recording a
    /// removal or departure carries the "cut" of that user: in sequence order, every node
    /// then sends `participant.left` and closes that user's sockets, so they receive
    /// nothing posted after it.
    pub fn message_new(message: &Message, seq: i64, client_id: Option<&str>) -> Envelope {
        let mut frame = json!({ "type": "message.new", "message": message });
        if let Some(client_id) = client_id {
            frame["client_id"] = json!(client_id);
        }
        let mut envelope = Envelope::new(frame);
        envelope.header.seq = Some(seq);
        envelope.header.cut = removed_user(message);
        envelope
    }

    /// The user a `participant_removed` system message is about.
    fn removed_user(message: &Message) -> Option<Uuid> {
        if message.system_event.as_deref() != Some("participant_removed") {
            return None;
        }
        message.system_data.as_ref()?.get("user_id")?.as_str()?.parse().ok()
    }

    /// `message.updated`.
    pub fn message_updated(message: &Message) -> Envelope {
        Envelope::new(json!({ "type": "message.updated", "message": message }))
    }

    /// `message.deleted`.
    pub fn message_deleted(message_id: Uuid) -> Envelope {
        Envelope::new(json!({ "type": "message.deleted", "message_id": message_id }))
    }

    /// `typing`, not shown to the typist's own sockets.
    pub fn typing(user_id: Uuid, is_typing: bool) -> Envelope {
        let mut envelope = Envelope::new(json!({ "type": "typing", "user_id": user_id, "is_typing": is_typing }));
        envelope.header.skip = Some(user_id);
        envelope
    }

    /// `read`.
    pub fn read(user_id: Uuid, message_id: Option<Uuid>) -> Envelope {
        Envelope::new(json!({ "type": "read", "user_id": user_id, "message_id": message_id }))
    }

    /// `participant.joined`.
    pub fn joined(user_id: Uuid) -> Envelope {
        Envelope::new(json!({ "type": "participant.joined", "user_id": user_id }))
    }

    /// `participant.left`; the user's own sockets are then closed.
    pub fn left(user_id: Uuid) -> Envelope {
        let mut envelope = Envelope::new(json!({ "type": "participant.left", "user_id": user_id }));
        envelope.header.cut = Some(user_id);
        envelope
    }

    /// `conversation.deleted`; every socket is then closed.
    pub fn conversation_deleted(conversation_id: Uuid) -> Envelope {
        let mut envelope = Envelope::new(json!({ "type": "conversation.deleted", "conversation_id": conversation_id }));
        envelope.header.close_all = true;
        envelope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_with_their_routing() {
        let user = Uuid::new_v4();
        let envelope = frames::left(user);
        let decoded = Envelope::decode(envelope.encode()).unwrap();
        assert_eq!(decoded, envelope);
        assert_eq!(decoded.header.cut, Some(user));
        let frame: serde_json::Value = serde_json::from_slice(&decoded.frame).unwrap();
        assert_eq!(frame["type"], "participant.left");
        assert!(Envelope::decode(Bytes::from_static(b"no header")).is_none());
    }
}
