//! Helpers for the app's WebSocket endpoints.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};

/// How long a closing socket waits for the client's answer.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Closes a socket with `code` the orderly way: sends the Close frame, then reads until the
/// client answers with its own (or [`CLOSE_WAIT`] passes). Dropping the connection at once
/// would make the kernel reset it if the client's frames (say, pongs) arrive afterwards,
/// and a reset can destroy the Close frame before the client reads it.
pub async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
    if !matches!(tokio::time::timeout(CLOSE_WAIT, socket.send(Message::Close(Some(frame)))).await, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
