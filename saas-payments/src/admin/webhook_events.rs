//! The `webhook-events` panel: Stripe events as received, by status, with their payload
//! and last error, and the staff retry of a failed or stuck one.

use async_trait::async_trait;

use saas_core::admin::{
    ActionSpec, AdminPanel, AdminUser, Column, Detail, Filter, Form, KeyKind, ListPage, ListQuery, Search, SqlList,
    SqlValue, table,
};
use saas_core::{AppContext, ServiceError, ServiceResult};

use super::{GROUP, at, at_opt, filter_of};
use crate::service::PaymentsService;

/// The stored states of an event.
const STATES: [&str; 4] = ["pending", "processed", "ignored", "failed"];

/// Stripe webhook events.
pub(super) struct WebhookEventsPanel {
    list: SqlList,
}

impl WebhookEventsPanel {
    /// The panel.
    pub(super) fn new() -> Self {
        let list = SqlList::new("payment_webhook_events", "id", KeyKind::Text)
            .order_by("received_at")
            .columns(&["id", "event_type", "state", "attempts", "received_at"])
            .search(Search::Key)
            .filter_text("status", "state");
        Self { list }
    }
}

#[async_trait]
impl AdminPanel for WebhookEventsPanel {
    fn slug(&self) -> &'static str {
        "webhook-events"
    }

    fn title(&self) -> &'static str {
        "Webhook events"
    }

    fn group(&self) -> &'static str {
        GROUP
    }

    fn columns(&self) -> Vec<Column> {
        ["Id", "Type", "Status", "Attempts", "Received"].map(|label| Column { label }).to_vec()
    }

    fn search_hint(&self) -> Option<&'static str> {
        Some("event id (evt_…)")
    }

    fn filters(&self) -> Vec<Filter> {
        vec![filter_of("status", "Status", STATES.map(str::to_owned))]
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec::new("retry", "Process again")]
    }

    async fn list(&self, ctx: &AppContext, query: &ListQuery) -> ServiceResult<ListPage> {
        self.list.fetch(ctx.db(), query).await
    }

    async fn detail(&self, ctx: &AppContext, id: &str) -> ServiceResult<Option<Detail>> {
        let service = PaymentsService::get(ctx)?;
        let Some(event) = service.webhook_event(id).await? else { return Ok(None) };
        let stored = table(
            ctx.db(),
            "SELECT payload, stripe_created FROM payment_webhook_events WHERE id = $1",
            &[SqlValue::Text(event.id.clone())],
        )
        .await?;
        let (payload, created) = match stored.into_iter().next().as_deref() {
            Some([payload, created]) => (pretty(payload), stripe_time(created)),
            _ => (String::new(), String::new()),
        };
        let detail = Detail::new(format!("Event {}", event.id))
            .field("Id", &event.id)
            .field("Type", &event.event_type)
            .field("Status", &event.state)
            .field("Attempts", event.attempts)
            .field("Last error", event.last_error.as_deref().unwrap_or(""))
            .field("Created at Stripe", created)
            .field("Received", at(event.received_at))
            .field("Processed", at_opt(event.processed_at))
            .field("Payload", payload);
        Ok(Some(detail))
    }

    /// Retrying runs the event through the job's code; the staff member is in the site's audit
    /// log, while the transitions it makes name the Stripe event, as when the job runs it.
    async fn act(
        &self,
        ctx: &AppContext,
        _staff: &AdminUser,
        id: &str,
        action: &str,
        _form: &Form,
    ) -> ServiceResult<String> {
        let service = PaymentsService::get(ctx)?;
        match action {
            "retry" => {
                let event = service.retry_webhook_event(id).await?;
                Ok(match event.state.as_str() {
                    "ignored" => format!("Event {} processed again: it concerns nothing of ours (ignored).", event.id),
                    state => format!("Event {} processed again: {state}.", event.id),
                })
            }
            _ => Err(ServiceError::not_found(&format!("Action {action}"))),
        }
    }
}

/// The payload, indented when it is JSON.
fn pretty(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| payload.to_owned())
}

/// Stripe's `created` (unix seconds) as a time; blank when unknown.
fn stripe_time(seconds: &str) -> String {
    match seconds.parse::<i64>().ok().filter(|s| *s > 0).and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        Some(time) => at(time),
        None => String::new(),
    }
}
