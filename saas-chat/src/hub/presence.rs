//! Who has a socket open on a conversation, across nodes: a cache key per user and
//! conversation, refreshed by each heartbeat and expiring after three.

use std::time::Duration;

use bytes::Bytes;
use uuid::Uuid;

use saas_core::AppContext;

use super::Hub;

fn key(conversation: Uuid, user: Uuid) -> String {
    format!("chat:online:{conversation}:{user}")
}

/// Records that `user` has a socket open on `conversation` for `ttl`.
pub async fn mark(ctx: &AppContext, conversation: Uuid, user: Uuid, ttl: Duration) {
    if let Err(err) = ctx.cache().set(&key(conversation, user), Bytes::from_static(b"1"), Some(ttl)).await {
        tracing::debug!(error = %err, "chat presence not recorded");
    }
}

/// Forgets the presence of `user` (their last socket on this node closed).
pub async fn clear(ctx: &AppContext, conversation: Uuid, user: Uuid) {
    let _ = ctx.cache().delete(&key(conversation, user)).await;
}

/// Whether `user` has a socket open on `conversation` on any node.
pub async fn is_online(ctx: &AppContext, conversation: Uuid, user: Uuid) -> bool {
    if Hub::get(ctx).is_ok_and(|hub| hub.is_connected(conversation, user)) {
        return true;
    }
    matches!(ctx.cache().get(&key(conversation, user)).await, Ok(Some(_)))
}
