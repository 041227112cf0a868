//! Topic-based publish/subscribe between tasks and between server nodes.
//!
//! In-process when `REDIS_URL` is unset; through Redis otherwise, so a message published on
//! one node reaches subscribers on every node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{broadcast, oneshot};

use crate::error::{ServiceError, ServiceResult};

/// Messages a slow subscriber may fall behind by before it is told it lagged.
const TOPIC_CAPACITY: usize = 1024;

/// Publishes to and subscribes to named topics.
#[async_trait]
pub trait PubSub: Send + Sync + 'static {
    /// Sends `payload` to every current subscriber of `topic` on every node.
    async fn publish(&self, topic: &str, payload: Bytes) -> ServiceResult<()>;
    /// Starts receiving `topic`; messages published after this call are delivered.
    fn subscribe(&self, topic: &str) -> Subscription;
    /// Checks the transport is up.
    async fn ping(&self) -> ServiceResult<()>;
    /// `"memory"` or `"redis"`.
    fn backend_name(&self) -> &'static str;
}

/// A stream of messages of one topic.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Bytes>,
}

/// Why a subscription yielded no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscriber fell behind and `0` messages were dropped for it.
    #[error("subscriber lagged behind by {0} messages")]
    Lagged(u64),
    /// The transport is gone (the app is shutting down).
    #[error("subscription closed")]
    Closed,
}

impl Subscription {
    /// The next message; a subscriber that falls too far behind gets `Lagged` once and
    /// then continues with the newest messages.
    pub async fn recv(&mut self) -> Result<Bytes, RecvError> {
        self.rx.recv().await.map_err(|err| match err {
            broadcast::error::RecvError::Lagged(n) => RecvError::Lagged(n),
            broadcast::error::RecvError::Closed => RecvError::Closed,
        })
    }
}

/// Routes messages to the local subscribers of each topic.
#[derive(Debug, Default)]
struct LocalHub {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
}

impl LocalHub {
    fn subscribe(&self, topic: &str) -> Subscription {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if topics.len() > 64 {
            topics.retain(|_, tx| tx.receiver_count() > 0);
        }
        let tx = topics.entry(topic.to_owned()).or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0);
        Subscription { rx: tx.subscribe() }
    }

    fn deliver(&self, topic: &str, payload: Bytes) {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = topics.get(topic)
            && tx.send(payload).is_err()
        {
            topics.remove(topic);
        }
    }
}

/// Single-node pub/sub inside the process.
#[derive(Debug, Default)]
pub struct MemoryPubSub {
    hub: LocalHub,
}

impl MemoryPubSub {
    /// A new, empty hub.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PubSub for MemoryPubSub {
    async fn publish(&self, topic: &str, payload: Bytes) -> ServiceResult<()> {
        self.hub.deliver(topic, payload);
        Ok(())
    }

    fn subscribe(&self, topic: &str) -> Subscription {
        self.hub.subscribe(topic)
    }

    async fn ping(&self) -> ServiceResult<()> {
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }
}

/// Multi-node pub/sub over Redis: one `PSUBSCRIBE` per process on the app's prefix,
/// fanned out locally; reconnects by itself when Redis restarts.
pub struct RedisPubSub {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    hub: Arc<LocalHub>,
    listener: tokio::task::JoinHandle<()>,
}

impl RedisPubSub {
    /// Connects to `url` and waits until the subscription on `{prefix}ps:*` is active.
    pub async fn connect(url: &str, prefix: &str) -> ServiceResult<Self> {
        let client = redis::Client::open(url).map_err(ServiceError::from)?;
        let conn = crate::cache::connection_manager(&client).await?;
        let prefix = format!("{prefix}ps:");
        let hub = Arc::new(LocalHub::default());
        let (ready_tx, ready_rx) = oneshot::channel();
        let listener = tokio::spawn(listen(client, prefix.clone(), hub.clone(), ready_tx));
        match tokio::time::timeout(Duration::from_secs(5), ready_rx).await {
            Ok(Ok(())) => Ok(Self { conn, prefix, hub, listener }),
            _ => {
                listener.abort();
                Err(ServiceError::unavailable("redis.unavailable", "cannot subscribe to Redis pub/sub"))
            }
        }
    }
}

impl Drop for RedisPubSub {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

async fn listen(client: redis::Client, prefix: String, hub: Arc<LocalHub>, ready: oneshot::Sender<()>) {
    let pattern = format!("{prefix}*");
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.psubscribe(&pattern).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let channel = msg.get_channel_name();
                        if let Some(topic) = channel.strip_prefix(prefix.as_str()) {
                            hub.deliver(topic, Bytes::copy_from_slice(msg.get_payload_bytes()));
                        }
                    }
                    tracing::warn!("redis pub/sub connection lost; reconnecting");
                }
                Err(err) => tracing::warn!(error = %err, "redis psubscribe failed"),
            },
            Err(err) => tracing::warn!(error = %err, "redis pub/sub connect failed"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[async_trait]
impl PubSub for RedisPubSub {
    async fn publish(&self, topic: &str, payload: Bytes) -> ServiceResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(format!("{}{topic}", self.prefix))
            .arg(payload.as_ref())
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    fn subscribe(&self, topic: &str) -> Subscription {
        self.hub.subscribe(topic)
    }

    async fn ping(&self) -> ServiceResult<()> {
        crate::cache::redis_ping(&self.conn).await
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_pubsub_delivers_to_each_subscriber_of_the_topic() {
        let hub = MemoryPubSub::new();
        let mut a = hub.subscribe("room:1");
        let mut b = hub.subscribe("room:1");
        let mut other = hub.subscribe("room:2");
        hub.publish("room:1", Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!(a.recv().await.unwrap(), "hello");
        assert_eq!(b.recv().await.unwrap(), "hello");
        hub.publish("room:2", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(other.recv().await.unwrap(), "x");
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let hub = MemoryPubSub::new();
        let mut slow = hub.subscribe("t");
        for i in 0..(TOPIC_CAPACITY + 10) {
            hub.publish("t", Bytes::from(i.to_string())).await.unwrap();
        }
        assert_eq!(slow.recv().await, Err(RecvError::Lagged(10)));
        assert_eq!(slow.recv().await.unwrap(), "10");
    }
}
