//! One socket on `ws/notifications/`: the user's frames from every node, an initial
//! `unread_count`, pings both ways.

use std::time::Duration;

use axum::extract::ws::{Message as WsMessage, WebSocket};
use serde_json::{Value, json};

use saas_core::AppContext;
use saas_core::pubsub::RecvError;
use saas_core::websocket::Heartbeat;

use crate::service::{NotifyService, topic};

/// Close code: not authenticated.
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// Close code: nothing from the client for two heartbeats.
pub const CLOSE_HEARTBEAT: u16 = 4408;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

async fn send(socket: &mut WebSocket, text: String) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, socket.send(WsMessage::Text(text.into()))).await, Ok(Ok(())))
}

/// The current count as a frame, with its version.
async fn unread_frame(service: &NotifyService, user: uuid::Uuid) -> Option<(String, i64)> {
    let (count, version) = service.store().unread_with_version(user).await.ok()?;
    Some((json!({"type": "unread_count", "count": count, "version": version}).to_string(), version))
}

/// The version of an `unread_count` frame.
fn count_version(frame: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Count<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
        version: Option<i64>,
    }
    let count: Count<'_> = serde_json::from_str(frame).ok()?;
    if count.kind == "unread_count" { count.version } else { None }
}

/// Serves a socket until it closes.
pub(crate) async fn serve(ctx: AppContext, token: Option<String>, mut socket: WebSocket) {
    let user = match token {
        Some(token) => saas_auth::extract::authenticate_token(&ctx, &token).await.ok().map(|user| user.id),
        None => None,
    };
    let Some(user) = user else {
        return saas_core::websocket::close(&mut socket, CLOSE_UNAUTHENTICATED, "not authenticated").await;
    };
    let Ok(service) = NotifyService::get(&ctx) else {
        return saas_core::websocket::close(&mut socket, 1011, "notifications unavailable").await;
    };
    let _open = saas_core::metrics::OpenSocket::new("notifications");
    // Subscribed before the count is read: no change falls between the two.
    let mut subscription = ctx.pubsub().subscribe(&topic(user));
    // Counts can be published out of order (two changes committing close together): the
    // socket forwards a count only when it is newer than the last one it sent.
    let mut count_seen = 0;
    if let Some((frame, version)) = unread_frame(&service, user).await {
        count_seen = version;
        if !send(&mut socket, frame).await {
            return;
        }
    }
    let heartbeat_every =
        Duration::from_secs(ctx.config().var_or("CHAT_HEARTBEAT_SECONDS", 30u64).unwrap_or(30).max(1));
    let mut heartbeat = Heartbeat::new(heartbeat_every);
    let shutdown = saas_core::app::shutdown_token(&ctx);
    let ending = loop {
        tokio::select! {
            received = subscription.recv() => match received {
                Ok(payload) => {
                    let Ok(text) = std::str::from_utf8(&payload) else { continue };
                    let mut gone = false;
                    for frame in text.lines() {
                        if let Some(version) = count_version(frame) {
                            if version <= count_seen {
                                continue;
                            }
                            count_seen = version;
                        }
                        if !send(&mut socket, frame.to_owned()).await {
                            gone = true;
                            break;
                        }
                    }
                    if gone {
                        break None;
                    }
                }
                // Frames were dropped: the count at least is brought up to date.
                Err(RecvError::Lagged(_)) => {
                    if let Some((frame, version)) = unread_frame(&service, user).await
                        && version > count_seen
                    {
                        count_seen = version;
                        if !send(&mut socket, frame).await {
                            break None;
                        }
                    }
                }
                Err(RecvError::Closed) => break Some((1012, "service restarting")),
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => {
                    heartbeat.seen();
                    let kind = serde_json::from_str::<Value>(text.as_str()).ok()
                        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned));
                    let reply = match kind.as_deref() {
                        Some("ping") => json!({"type": "pong"}),
                        Some(_) => json!({"type": "error", "code": "notify.unknown_type", "message": "Unknown frame type."}),
                        None => json!({"type": "error", "code": "notify.invalid_frame", "message": "Frames are JSON objects with a \"type\"."}),
                    };
                    if !send(&mut socket, reply.to_string()).await {
                        break None;
                    }
                }
                Some(Ok(_)) => heartbeat.seen(),
                Some(Err(_)) | None => break None,
            },
            silent = heartbeat.silent() => {
                if silent {
                    break Some((CLOSE_HEARTBEAT, "no heartbeat"));
                }
                let ping = tokio::time::timeout(WRITE_TIMEOUT, socket.send(WsMessage::Ping(Default::default())));
                if !matches!(ping.await, Ok(Ok(()))) {
                    break None;
                }
            },
            _ = shutdown.cancelled() => break Some((1001, "server shutting down")),
        }
    };
    if let Some((code, reason)) = ending {
        saas_core::websocket::close(&mut socket, code, reason).await;
    }
}
