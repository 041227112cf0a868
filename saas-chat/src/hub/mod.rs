//! The WebSocket hub of one node: a room per conversation with local sockets, fed by the
//! conversation's pub/sub topic.
//!
//! A room subscribes once per node and serialises nothing: every frame arrives encoded and
//! is handed to each socket's bounded queue. A socket whose queue is full is disconnected
//! (close 4008) instead of buffered without limit, so a stalled client never delays the
//! others. Messages are delivered in sequence-number order: one arriving early waits for
//! the ones before it, and a gap that does not fill within [`GAP_WAIT`] is read from the
//! database, so every socket sees the order of `GET messages/`, exactly once.

pub mod presence;
pub(crate) mod socket;

pub use socket::{ClientFrame, parse_client_frame};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

use saas_core::pubsub::{RecvError, Subscription};
use saas_core::{AppContext, ServiceResult};

use crate::events::{Envelope, Header, frames, topic};
use crate::models::MessageRow;
use crate::store::ChatStore;

/// How long an early message waits for the ones before it before they are read from the database.
pub const GAP_WAIT: Duration = Duration::from_millis(100);

/// Close code: not authenticated.
pub const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// Close code: no such conversation, or not (or no longer) a participant.
pub const CLOSE_NOT_PARTICIPANT: u16 = 4404;
/// Close code: the client did not keep up with its conversation.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code: no pong or frame from the client within two heartbeats.
pub const CLOSE_HEARTBEAT: u16 = 4408;

/// Tuning of the hub, from configuration.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Frames queued for one socket before it is disconnected (`CHAT_SOCKET_QUEUE`, 256).
    pub queue: usize,
    /// Interval of server pings (`CHAT_HEARTBEAT_SECONDS`, 30); two without an answer drop the socket.
    pub heartbeat: Duration,
    /// Largest frame a client may send (`CHAT_MAX_FRAME_BYTES`, 65536).
    pub max_frame_bytes: usize,
    /// Longest a single frame write may take before the socket is dropped (`CHAT_WRITE_TIMEOUT_SECONDS`, 10).
    pub write_timeout: Duration,
}

impl HubSettings {
    fn from_config(config: &saas_core::Config) -> ServiceResult<Self> {
        Ok(Self {
            queue: config.var_or("CHAT_SOCKET_QUEUE", 256usize)?.max(1),
            heartbeat: Duration::from_secs(config.var_or("CHAT_HEARTBEAT_SECONDS", 30u64)?.max(1)),
            max_frame_bytes: config.var_or("CHAT_MAX_FRAME_BYTES", 65_536usize)?.max(1024),
            write_timeout: Duration::from_secs(config.var_or("CHAT_WRITE_TIMEOUT_SECONDS", 10u64)?.max(1)),
        })
    }
}

/// What a socket's task is handed.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A text frame.
    Frame(Utf8Bytes),
    /// Close with this code.
    Close(u16, &'static str),
}

struct Connection {
    id: u64,
    user: Uuid,
    tx: mpsc::Sender<Outbound>,
    kicked: Arc<AtomicU16>,
}

struct Room {
    connections: Mutex<Vec<Connection>>,
    ready: watch::Receiver<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A socket's place in a room.
pub(crate) struct Membership {
    pub id: u64,
    pub rx: mpsc::Receiver<Outbound>,
    /// Non-zero: the room dropped this socket; close with this code.
    pub kicked: Arc<AtomicU16>,
    ready: watch::Receiver<bool>,
}

impl Membership {
    /// Waits until the room delivers every message committed from now on.
    pub async fn ready(&mut self) {
        let _ = self.ready.wait_for(|ready| *ready).await;
    }
}

/// The hub of this node.
pub struct Hub {
    settings: HubSettings,
    rooms: Mutex<HashMap<Uuid, Arc<Room>>>,
    next_id: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Hub {
    /// Installs the hub in the app (once).
    pub fn install(ctx: &AppContext) -> ServiceResult<Arc<Hub>> {
        if let Some(hub) = ctx.get::<Arc<Hub>>() {
            return Ok(hub);
        }
        let hub = Arc::new(Hub {
            settings: HubSettings::from_config(ctx.config())?,
            rooms: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        ctx.insert(hub.clone());
        Ok(hub)
    }

    /// The hub of the app.
    pub fn get(ctx: &AppContext) -> ServiceResult<Arc<Hub>> {
        Self::install(ctx)
    }

    /// The hub's tuning.
    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// Whether `user` has a socket open on `conversation` on this node.
    pub fn is_connected(&self, conversation: Uuid, user: Uuid) -> bool {
        lock(&self.rooms).get(&conversation).is_some_and(|room| lock(&room.connections).iter().any(|c| c.user == user))
    }

    /// Adds a socket of `user` to the room of `conversation`, opening the room on first use.
    pub(crate) fn join(&self, ctx: &AppContext, conversation: Uuid, user: Uuid) -> Membership {
        let (tx, rx) = mpsc::channel(self.settings.queue);
        let kicked = Arc::new(AtomicU16::new(0));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut rooms = lock(&self.rooms);
        let room = rooms
            .entry(conversation)
            .or_insert_with(|| {
                let (ready_tx, ready) = watch::channel(false);
                let room = Arc::new(Room { connections: Mutex::new(Vec::new()), ready, task: Mutex::new(None) });
                let subscription = ctx.pubsub().subscribe(&topic(conversation));
                let store = crate::service::ChatService::get(ctx).store().clone();
                let task = tokio::spawn(run_room(store, conversation, room.clone(), subscription, ready_tx));
                *lock(&room.task) = Some(task);
                room
            })
            .clone();
        lock(&room.connections).push(Connection { id, user, tx, kicked: kicked.clone() });
        Membership { id, rx, kicked, ready: room.ready.clone() }
    }

    /// Removes a socket; the last one out closes the room.
    pub(crate) fn leave(&self, conversation: Uuid, id: u64) {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get(&conversation) else { return };
        let empty = {
            let mut connections = lock(&room.connections);
            connections.retain(|c| c.id != id);
            connections.is_empty()
        };
        if empty {
            if let Some(task) = lock(&room.task).take() {
                task.abort();
            }
            rooms.remove(&conversation);
        }
    }
}

/// Hands a frame to the room's sockets (all but `skip`'s), then closes `cut`'s sockets or all.
fn deliver(room: &Room, header: &Header, frame: &Utf8Bytes) {
    let mut connections = lock(&room.connections);
    connections.retain(|connection| {
        if header.skip == Some(connection.user) {
            return true;
        }
        match connection.tx.try_send(Outbound::Frame(frame.clone())) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                connection.kicked.store(CLOSE_TOO_SLOW, Ordering::Release);
                return false;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        }
        if header.close_all || header.cut == Some(connection.user) {
            let close = Outbound::Close(CLOSE_NOT_PARTICIPANT, "not a participant");
            if connection.tx.try_send(close).is_err() {
                connection.kicked.store(CLOSE_NOT_PARTICIPANT, Ordering::Release);
            }
            return false;
        }
        true
    });
}

/// Closes the sockets of users no longer in the conversation (all if it is gone): run
/// after the room fell behind and may have missed a removal.
async fn recheck_members(store: &ChatStore, conversation: Uuid, room: &Room) {
    let members: Option<HashSet<Uuid>> = match store.conversation(conversation).await {
        Ok(Some(_)) => match store.participant_ids(conversation).await {
            Ok(ids) => Some(ids.into_iter().collect()),
            Err(_) => return,
        },
        Ok(None) => None,
        Err(_) => return,
    };
    lock(&room.connections).retain(|connection| {
        let stays = members.as_ref().is_some_and(|members| members.contains(&connection.user));
        if !stays {
            connection.kicked.store(CLOSE_NOT_PARTICIPANT, Ordering::Release);
        }
        stays
    });
}

/// A message frame, and the user whose sockets close after it (a removal).
type Sequenced = (Utf8Bytes, Option<Uuid>);

/// Message frames in sequence order.
struct Sequencer {
    next: Option<i64>,
    early: BTreeMap<i64, Sequenced>,
    deadline: Option<Instant>,
}

impl Sequencer {
    /// Takes a message frame; returns the frames now deliverable, in order.
    fn accept(&mut self, seq: i64, frame: Sequenced) -> Vec<Sequenced> {
        let next = *self.next.get_or_insert(seq);
        if seq < next || self.early.contains_key(&seq) {
            return Vec::new();
        }
        self.early.insert(seq, frame);
        self.release()
    }

    /// The frames that follow on from `next`; arms the gap deadline if some wait.
    fn release(&mut self) -> Vec<Sequenced> {
        let mut out = Vec::new();
        if let Some(next) = self.next.as_mut() {
            while let Some(frame) = self.early.remove(next) {
                out.push(frame);
                *next += 1;
            }
        }
        self.deadline = if self.early.is_empty() { None } else { self.deadline.or(Some(Instant::now() + GAP_WAIT)) };
        out
    }

    /// The missing range `next..first early`, if messages wait.
    fn gap(&self) -> Option<(i64, i64)> {
        Some((self.next?, *self.early.keys().next()?))
    }

    /// Gives up on sequence numbers before `seq`.
    fn skip_to(&mut self, seq: i64) {
        if self.next.is_some_and(|next| next < seq) {
            self.next = Some(seq);
        }
    }
}

/// Hands released message frames to the sockets; after a removal's message, the removed
/// user's sockets get `participant.left` and are closed.
fn deliver_messages(room: &Room, released: Vec<Sequenced>) {
    for (frame, cut) in released {
        deliver(room, &Header::default(), &frame);
        if let Some(user) = cut {
            let left = frames::left(user);
            if let Ok(text) = Utf8Bytes::try_from(left.frame) {
                deliver(room, &left.header, &text);
            }
        }
    }
}

impl Sequencer {
    /// Takes the messages `from..to` read from the database, gives up on any still missing
    /// below `to`, and returns every frame now deliverable, in order.
    fn fill(&mut self, rows: &[MessageRow], to: i64) -> Vec<Sequenced> {
        let mut released = Vec::new();
        for row in rows {
            let envelope = frames::message_new(&row.to_api(), row.seq, row.client_id.as_deref());
            if let Ok(frame) = Utf8Bytes::try_from(envelope.frame) {
                released.extend(self.accept(row.seq, (frame, envelope.header.cut)));
            }
        }
        self.skip_to(to);
        released.extend(self.release());
        released
    }
}

/// Reads messages `from..to` from the database; returns the frames now deliverable.
async fn fill_from_database(
    store: &ChatStore,
    conversation: Uuid,
    order: &mut Sequencer,
    from: i64,
    to: i64,
) -> ServiceResult<Vec<Sequenced>> {
    let rows = store.messages_between(conversation, from, to).await?;
    Ok(order.fill(&rows, to))
}

async fn run_room(
    store: ChatStore,
    conversation: Uuid,
    room: Arc<Room>,
    mut subscription: Subscription,
    ready: watch::Sender<bool>,
) {
    // Subscribed first, then read: every message committed after this read reaches the room.
    let next = store.last_seq(conversation).await.ok().map(|seq| seq + 1);
    let mut order = Sequencer { next, early: BTreeMap::new(), deadline: None };
    let _ = ready.send(true);
    loop {
        let deadline = order.deadline;
        tokio::select! {
            received = subscription.recv() => match received {
                Ok(payload) => {
                    let Some(envelope) = Envelope::decode(payload) else { continue };
                    let Ok(frame) = Utf8Bytes::try_from(envelope.frame) else { continue };
                    match envelope.header.seq {
                        Some(seq) => deliver_messages(&room, order.accept(seq, (frame, envelope.header.cut))),
                        None => deliver(&room, &envelope.header, &frame),
                    }
                }
                // Frames were dropped: messages come back from the database, and the
                // membership of the sockets is checked again (a removal may be among them).
                Err(RecvError::Lagged(_)) => {
                    if let (Some(next), Ok(last)) = (order.next, store.last_seq(conversation).await)
                        && last >= next
                        && let Ok(released) = fill_from_database(&store, conversation, &mut order, next, last + 1).await
                    {
                        deliver_messages(&room, released);
                    }
                    recheck_members(&store, conversation, &room).await;
                }
                Err(RecvError::Closed) => {
                    for connection in lock(&room.connections).drain(..) {
                        connection.kicked.store(1012, Ordering::Release);
                    }
                    return;
                }
            },
            _ = async { if let Some(at) = deadline { tokio::time::sleep_until(at).await } else { std::future::pending::<()>().await } } => {
                let Some((from, to)) = order.gap() else { continue };
                match fill_from_database(&store, conversation, &mut order, from, to).await {
                    Ok(released) => deliver_messages(&room, released),
                    Err(err) => {
                        tracing::warn!(error = %err, %conversation, "chat gap not filled; retrying");
                        order.deadline = Some(Instant::now() + GAP_WAIT);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: i64) -> Utf8Bytes {
        Utf8Bytes::from(n.to_string())
    }

    fn message(n: i64) -> Sequenced {
        (frame(n), None)
    }

    #[test]
    fn messages_are_released_in_sequence_order_once() {
        let mut order = Sequencer { next: Some(5), early: BTreeMap::new(), deadline: None };
        assert_eq!(order.accept(5, message(5)), vec![message(5)]);
        assert!(order.accept(7, message(7)).is_empty());
        assert!(order.deadline.is_some());
        assert_eq!(order.gap(), Some((6, 7)));
        assert_eq!(order.accept(6, message(6)), vec![message(6), message(7)]);
        assert!(order.deadline.is_none());
        assert!(order.accept(6, message(6)).is_empty(), "a duplicate is dropped");
        assert!(order.accept(4, message(4)).is_empty(), "an old message is dropped");
    }

    type SocketEnd = (mpsc::Receiver<Outbound>, Arc<AtomicU16>);

    fn room_with(queues: &[usize]) -> (Room, Vec<SocketEnd>) {
        let (_, ready) = watch::channel(true);
        let room = Room { connections: Mutex::new(Vec::new()), ready, task: Mutex::new(None) };
        let mut ends = Vec::new();
        for (i, queue) in queues.iter().enumerate() {
            let (tx, rx) = mpsc::channel(*queue);
            let kicked = Arc::new(AtomicU16::new(0));
            let user = Uuid::from_u128(i as u128 + 1);
            lock(&room.connections).push(Connection { id: i as u64, user, tx, kicked: kicked.clone() });
            ends.push((rx, kicked));
        }
        (room, ends)
    }

    #[test]
    fn a_socket_that_cannot_keep_up_is_dropped_without_holding_back_the_others() {
        let (room, mut ends) = room_with(&[2, 64]);
        for n in 0..10 {
            deliver(&room, &Header::default(), &frame(n));
        }
        assert_eq!(ends[0].1.load(Ordering::Acquire), CLOSE_TOO_SLOW, "the slow socket is told to close");
        assert_eq!(lock(&room.connections).len(), 1, "and leaves the room");
        let fast = &mut ends[1].0;
        for n in 0..10 {
            assert!(matches!(fast.try_recv(), Ok(Outbound::Frame(f)) if f == frame(n)));
        }
    }

    #[test]
    fn a_cut_user_gets_the_frame_then_a_close_and_nothing_more() {
        let (room, mut ends) = room_with(&[8, 8]);
        let cut = Header { cut: Some(Uuid::from_u128(1)), ..Header::default() };
        deliver(&room, &cut, &frame(1));
        deliver(&room, &Header::default(), &frame(2));
        let removed = &mut ends[0].0;
        assert!(matches!(removed.try_recv(), Ok(Outbound::Frame(f)) if f == frame(1)));
        assert!(matches!(removed.try_recv(), Ok(Outbound::Close(CLOSE_NOT_PARTICIPANT, _))));
        assert!(removed.try_recv().is_err(), "nothing after the close");
        let other = &mut ends[1].0;
        assert!(matches!(other.try_recv(), Ok(Outbound::Frame(f)) if f == frame(1)));
        assert!(matches!(other.try_recv(), Ok(Outbound::Frame(f)) if f == frame(2)));
    }

    fn row(seq: i64) -> MessageRow {
        MessageRow {
            id: Uuid::from_u128(seq as u128),
            conversation_id: Uuid::nil(),
            seq,
            sender_id: None,
            content: format!("m{seq}"),
            message_type: "text".into(),
            reply_to_id: None,
            reply_count: 0,
            attachment_url: None,
            system_event: None,
            system_data: None,
            created_at: chrono::Utc::now(),
            edited_at: None,
            deleted_at: None,
            client_id: None,
        }
    }

    #[test]
    fn messages_read_back_from_the_database_are_all_delivered_in_order() {
        let mut order = Sequencer { next: Some(1), early: BTreeMap::new(), deadline: None };
        assert_eq!(order.accept(1, message(1)).len(), 1);
        assert!(order.accept(4, message(4)).is_empty(), "4 waits for 2 and 3");
        let released = order.fill(&[row(2), row(3)], 4);
        let contents: Vec<String> = released
            .iter()
            .map(|(frame, _)| {
                let value: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap_or_default();
                value["message"]["content"].as_str().map(str::to_owned).unwrap_or_else(|| frame.to_string())
            })
            .collect();
        assert_eq!(contents, vec!["m2", "m3", "4"], "the read-back messages, then the one that waited");
        assert_eq!(order.next, Some(5));
        assert!(order.deadline.is_none());
    }

    #[test]
    fn a_message_read_back_carries_its_client_id() {
        let mut order = Sequencer { next: Some(1), early: BTreeMap::new(), deadline: None };
        let sent = MessageRow { client_id: Some("c-1".into()), ..row(1) };
        let released = order.fill(&[sent], 2);
        let value: serde_json::Value = serde_json::from_str(released[0].0.as_str()).unwrap_or_default();
        assert_eq!(value["client_id"], "c-1", "the sender matches it like a live frame: {value}");
    }

    #[test]
    fn a_gap_that_cannot_fill_is_skipped() {
        let mut order = Sequencer { next: Some(1), early: BTreeMap::new(), deadline: None };
        assert!(order.accept(3, message(3)).is_empty());
        order.skip_to(3);
        assert_eq!(order.release(), vec![message(3)]);
        assert_eq!(order.next, Some(4));
    }
}
