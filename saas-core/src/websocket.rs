//! Helpers for the app's WebSocket endpoints.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use tokio::time::{Instant, Interval, MissedTickBehavior};

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

/// The server's side of a socket's heartbeat: a check every `period`; the client counts as
/// gone once nothing came from it for two periods.
pub struct Heartbeat {
    checks: Interval,
    period: Duration,
    last_seen: Instant,
}

impl Heartbeat {
    /// A heartbeat whose first check comes one `period` from now.
    pub fn new(period: Duration) -> Self {
        let mut checks = tokio::time::interval_at(Instant::now() + period, period);
        // Checks missed while the process stalled run once, not in a burst.
        checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { checks, period, last_seen: Instant::now() }
    }

    /// Something came from the client.
    pub fn seen(&mut self) {
        self.last_seen = Instant::now();
    }

    /// Waits for the next check (cancel-safe, for `select!`); `true` when the client has been
    /// silent for two periods. Silence counts up to when the check was due: a check run late
    /// because the process stalled does not hold the stall against the client.
    pub async fn silent(&mut self) -> bool {
        let due = self.checks.tick().await;
        due.saturating_duration_since(self.last_seen) > self.period * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_client_is_silent_after_two_periods_but_a_stalled_server_does_not_count() {
        let mut heartbeat = Heartbeat::new(Duration::from_secs(1));
        assert!(!heartbeat.silent().await, "1 s");
        assert!(!heartbeat.silent().await, "2 s");
        assert!(heartbeat.silent().await, "3 s without a word");

        let mut heartbeat = Heartbeat::new(Duration::from_secs(1));
        heartbeat.seen();
        // The process stalls 5 s: the check due at 1 s runs at 5 s.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!heartbeat.silent().await, "the stall is not the client's silence");
        heartbeat.seen();
        assert!(!heartbeat.silent().await, "the next check waits a whole period");
    }
}
