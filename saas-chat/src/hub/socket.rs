//! One socket on `ws/chat/{conversation_id}/`: authentication, the client's frames, the
//! room's frames, heartbeats. One task per socket.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket};
use futures::SinkExt;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use saas_core::websocket::Heartbeat;
use saas_core::{AppContext, ServiceError};

use super::{CLOSE_HEARTBEAT, CLOSE_NOT_PARTICIPANT, CLOSE_UNAUTHENTICATED, Hub, Outbound, presence};
use crate::service::{ChatService, PostMessage};

/// Client frames waiting behind the one being handled before the socket stops reading.
const MAX_BACKLOG: usize = 32;
/// Most queued frames written together.
const MAX_BATCH: usize = 64;
/// Longest `client_id` echoed back.
const MAX_CLIENT_ID_LEN: usize = 128;

/// `{"type":"message","content":…,"reply_to_id"?,"client_id"?,…}`.
#[derive(Debug, Deserialize)]
struct SocketMessage {
    #[serde(default)]
    content: String,
    message_type: Option<String>,
    reply_to_id: Option<Uuid>,
    attachment_url: Option<String>,
    client_id: Option<String>,
}

/// What a client may send on a chat socket.
#[derive(Debug)]
pub enum ClientFrame {
    /// `{"type":"ping"}`.
    Ping,
    /// `{"type":"message",…}`; a `client_id` longer than 128 bytes is dropped.
    Message {
        /// The message.
        input: PostMessage,
        /// The client's own id for it, echoed back on `message.new`.
        client_id: Option<String>,
    },
    /// `{"type":"typing","is_typing"?}` (true when absent).
    Typing {
        /// Whether the user is typing.
        is_typing: bool,
    },
    /// `{"type":"read","message_id"?}` (up to now when absent).
    Read {
        /// The last message read.
        message_id: Option<Uuid>,
    },
}

/// Parses a client's text frame; `Err` is the `error` frame to answer with (any text, of any
/// size the socket accepts, gets one or the other; it never panics).
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, Value> {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Err(error_frame("chat.invalid_frame", "Frames are JSON objects with a \"type\"."));
    };
    match value.get("type").and_then(Value::as_str).unwrap_or_default() {
        "ping" => Ok(ClientFrame::Ping),
        "message" => match serde_json::from_value::<SocketMessage>(value) {
            Ok(frame) => Ok(ClientFrame::Message {
                client_id: frame.client_id.filter(|id| id.len() <= MAX_CLIENT_ID_LEN),
                input: PostMessage {
                    content: frame.content,
                    message_type: frame.message_type,
                    reply_to_id: frame.reply_to_id,
                    attachment_url: frame.attachment_url,
                },
            }),
            Err(err) => Err(service_error_frame(&ServiceError::invalid_field("content", err.to_string()))),
        },
        "typing" => {
            Ok(ClientFrame::Typing { is_typing: value.get("is_typing").and_then(Value::as_bool).unwrap_or(true) })
        }
        "read" => match value.get("message_id").map(|id| serde_json::from_value::<Option<Uuid>>(id.clone())) {
            Some(Err(_)) => Err(service_error_frame(&ServiceError::invalid_field("message_id", "Must be a UUID."))),
            Some(Ok(message_id)) => Ok(ClientFrame::Read { message_id }),
            None => Ok(ClientFrame::Read { message_id: None }),
        },
        _ => Err(error_frame("chat.unknown_type", "Unknown frame type.")),
    }
}

fn error_frame(code: &str, message: &str) -> Value {
    json!({ "type": "error", "code": code, "message": message })
}

fn service_error_frame(err: &ServiceError) -> Value {
    let mut frame = error_frame(err.code(), err.message());
    frame["details"] = Value::Object(err.details().clone());
    frame
}

/// Writes a frame; `false` when the socket is gone or the write took longer than `timeout`.
async fn send(socket: &mut WebSocket, message: WsMessage, timeout: Duration) -> bool {
    matches!(tokio::time::timeout(timeout, socket.send(message)).await, Ok(Ok(())))
}

/// Writes frames with one flush; `false` when the socket is gone or it took longer than `timeout`.
async fn send_batch(socket: &mut WebSocket, batch: Vec<Utf8Bytes>, timeout: Duration) -> bool {
    let write = async {
        for text in batch {
            socket.feed(WsMessage::Text(text)).await?;
        }
        socket.flush().await
    };
    matches!(tokio::time::timeout(timeout, write).await, Ok(Ok(())))
}

/// Serves a socket until it closes. `token` is the access JWT from `?token=` or the
/// `Authorization` header.
pub(crate) async fn serve(ctx: AppContext, conversation: String, token: Option<String>, mut socket: WebSocket) {
    let user = match token {
        Some(token) => saas_auth::extract::authenticate_token(&ctx, &token).await.ok().map(|user| user.id),
        None => None,
    };
    let Some(user) = user else {
        return saas_core::websocket::close(&mut socket, CLOSE_UNAUTHENTICATED, "not authenticated").await;
    };
    let Ok(conversation) = Uuid::parse_str(&conversation) else {
        return saas_core::websocket::close(&mut socket, CLOSE_NOT_PARTICIPANT, "not a participant").await;
    };
    let Ok(hub) = Hub::get(&ctx) else {
        return saas_core::websocket::close(&mut socket, 1011, "hub unavailable").await;
    };
    let service = ChatService::get(&ctx);
    // Joined before the check: a removal committed after the check still reaches this socket.
    let mut membership = hub.join(&ctx, conversation, user);
    match service.store().participant(conversation, user).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            hub.leave(conversation, membership.id);
            return saas_core::websocket::close(&mut socket, CLOSE_NOT_PARTICIPANT, "not a participant").await;
        }
        Err(_) => {
            hub.leave(conversation, membership.id);
            return saas_core::websocket::close(&mut socket, 1011, "database unavailable").await;
        }
    }
    membership.ready().await;
    let _open = saas_core::metrics::OpenSocket::new("chat");
    let session = Session { service: service.clone(), conversation, user };
    let track_presence = service.tells_app();
    let presence_ttl = hub.settings().heartbeat * 3;
    if track_presence {
        presence::mark(&ctx, conversation, user, presence_ttl).await;
    }

    let settings = hub.settings().clone();
    let shutdown = saas_core::app::shutdown_token(&ctx);
    let mut heartbeat = Heartbeat::new(settings.heartbeat);
    let timeout = settings.write_timeout;
    // The client's frames are handled one at a time, in order, while the room's frames keep
    // flowing: a slow database write never stalls this socket's deliveries.
    // Each runs as a task of its own: a slow write to this socket never pauses a database
    // transaction, and a client that disconnects mid-post does not cancel its message.
    let mut inflight: Option<tokio::task::JoinHandle<Option<Value>>> = None;
    let mut backlog: VecDeque<Utf8Bytes> = VecDeque::new();
    let ending: Option<(u16, &'static str)> = loop {
        let kicked = membership.kicked.load(Ordering::Acquire);
        if kicked != 0 {
            break Some((kicked, "disconnected by the server"));
        }
        tokio::select! {
            outbound = membership.rx.recv() => match outbound {
                Some(Outbound::Frame(text)) => {
                    // Frames that queued up meanwhile go out in the same write.
                    let mut batch = vec![text];
                    let mut closing = None;
                    while batch.len() < MAX_BATCH {
                        match membership.rx.try_recv() {
                            Ok(Outbound::Frame(text)) => batch.push(text),
                            Ok(Outbound::Close(code, reason)) => {
                                closing = Some((code, reason));
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if !send_batch(&mut socket, batch, timeout).await {
                        break None;
                    }
                    if closing.is_some() {
                        break closing;
                    }
                }
                Some(Outbound::Close(code, reason)) => break Some((code, reason)),
                None => {
                    let code = membership.kicked.load(Ordering::Acquire);
                    break Some((if code == 0 { 1001 } else { code }, "disconnected by the server"));
                }
            },
            reply = async {
                match inflight.as_mut() {
                    Some(handling) => handling.await.ok().flatten(),
                    None => std::future::pending().await,
                }
            }, if inflight.is_some() => {
                inflight = backlog.pop_front().map(|text| tokio::spawn(session.clone().handle(text)));
                if let Some(reply) = reply
                    && !send(&mut socket, WsMessage::Text(reply.to_string().into()), timeout).await
                {
                    break None;
                }
            },
            incoming = socket.recv(), if backlog.len() < MAX_BACKLOG => match incoming {
                Some(Ok(WsMessage::Text(text))) => {
                    heartbeat.seen();
                    if inflight.is_none() {
                        inflight = Some(tokio::spawn(session.clone().handle(text)));
                    } else {
                        backlog.push_back(text);
                    }
                }
                Some(Ok(WsMessage::Binary(_))) => {
                    heartbeat.seen();
                    let reply = error_frame("chat.invalid_frame", "Frames are JSON text.");
                    if !send(&mut socket, WsMessage::Text(reply.to_string().into()), timeout).await {
                        break None;
                    }
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => heartbeat.seen(),
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break None,
            },
            silent = heartbeat.silent() => {
                if silent {
                    break Some((CLOSE_HEARTBEAT, "no heartbeat"));
                }
                if !send(&mut socket, WsMessage::Ping(Default::default()), timeout).await {
                    break None;
                }
                // A backstop for a removal whose event this node missed.
                if let Ok(None) = service.store().participant(conversation, user).await {
                    break Some((CLOSE_NOT_PARTICIPANT, "not a participant"));
                }
                if track_presence {
                    presence::mark(&ctx, conversation, user, presence_ttl).await;
                }
            },
            _ = shutdown.cancelled() => break Some((1001, "server shutting down")),
        }
    };
    hub.leave(conversation, membership.id);
    if track_presence && !hub.is_connected(conversation, user) {
        presence::clear(&ctx, conversation, user).await;
    }
    if let Some((code, reason)) = ending {
        saas_core::websocket::close(&mut socket, code, reason).await;
    }
}

#[derive(Clone)]
struct Session {
    service: ChatService,
    conversation: Uuid,
    user: Uuid,
}

impl Session {
    /// Acts on a client frame; returns the frame to answer with, if any.
    async fn handle(self, text: Utf8Bytes) -> Option<Value> {
        let frame = match parse_client_frame(text.as_str()) {
            Ok(frame) => frame,
            Err(error) => return Some(error),
        };
        let result = match frame {
            ClientFrame::Ping => return Some(json!({ "type": "pong" })),
            ClientFrame::Message { input, client_id } => {
                self.service.post_message(self.user, self.conversation, input, client_id.as_deref()).await.map(|_| ())
            }
            ClientFrame::Typing { is_typing } => {
                self.service.typing(self.user, self.conversation, is_typing).await;
                Ok(())
            }
            ClientFrame::Read { message_id } => {
                self.service.record_read(self.user, self.conversation, message_id).await
            }
        };
        result.err().map(|err| {
            let err = if err.code() == "not_found" {
                ServiceError::forbidden("chat.not_participant", "You are not a participant of this conversation.")
            } else {
                err
            };
            service_error_frame(&err)
        })
    }
}
