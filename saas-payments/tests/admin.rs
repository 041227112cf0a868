//! The payments panels of the admin site, driven through the panel trait as the site drives
//! them, against the fake Stripe: order lists (filters, search, pages), an order's detail,
//! staff actions that go through the service (release, refund, retry of a failed payout)
//! with the service's errors, webhook events retried, the ledger, subscription and Connect
//! panels, and the dashboard card — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use saas_core::admin::{AdminPanel, AdminSite, AdminUser, Detail, Form, ListPage, ListQuery};
use saas_core::{ErrorKind, Module, ServiceError, with_pool};
use saas_payments::testing::Failure;
use saas_payments::{PaymentsModule, PayoutState, RefundState};
use serde_json::json;
use support::{PayApp, User, id_of};

/// The site as the app builds it: every panel the payments module adds.
fn site() -> AdminSite {
    let mut site = AdminSite::default();
    PaymentsModule::default().admin(&mut site);
    site
}

fn panel(site: &AdminSite, slug: &str) -> Arc<dyn AdminPanel> {
    site.find(slug).unwrap_or_else(|| panic!("no panel {slug}")).clone()
}

fn staff_user(user: &User) -> AdminUser {
    AdminUser { id: user.uuid, email: user.email.clone() }
}

/// A list query: `filters`, an optional search, a cursor and a page size.
fn query(filters: &[(&str, &str)], search: Option<&str>, after: Option<&str>, limit: usize) -> ListQuery {
    ListQuery {
        search: search.map(str::to_owned),
        filters: filters.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        after: after.map(str::to_owned),
        limit,
    }
}

async fn list(app: &PayApp, panel: &Arc<dyn AdminPanel>, query: ListQuery) -> ListPage {
    panel.list(app.context(), &query).await.unwrap_or_else(|err| panic!("list {}: {err:?}", panel.slug()))
}

fn ids(page: &ListPage) -> Vec<String> {
    page.rows.iter().map(|row| row.id.clone()).collect()
}

async fn detail(app: &PayApp, panel: &Arc<dyn AdminPanel>, id: &str) -> Detail {
    panel
        .detail(app.context(), id)
        .await
        .unwrap_or_else(|err| panic!("detail {id}: {err:?}"))
        .unwrap_or_else(|| panic!("no {} {id}", panel.slug()))
}

fn field<'a>(detail: &'a Detail, label: &str) -> &'a str {
    detail
        .fields
        .iter()
        .find(|(l, _)| l == label)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no field {label}"))
}

fn section<'a>(detail: &'a Detail, title: &str) -> &'a [Vec<String>] {
    &detail.sections.iter().find(|s| s.title == title).unwrap_or_else(|| panic!("no section {title}")).rows
}

fn form(pairs: &[(&str, &str)]) -> Form {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>()
}

async fn act(
    app: &PayApp,
    panel: &Arc<dyn AdminPanel>,
    staff: &User,
    id: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Result<String, ServiceError> {
    panel.act(app.context(), &staff_user(staff), id, action, &form(fields)).await
}

fn assert_error(result: Result<String, ServiceError>, kind: ErrorKind, code: &str) -> ServiceError {
    match result {
        Ok(message) => panic!("expected {code}, the action succeeded: {message}"),
        Err(err) => {
            assert_eq!((err.kind(), err.code()), (kind, code), "{err:?}");
            err
        }
    }
}

#[tokio::test]
async fn the_module_adds_its_panels_and_card_to_the_apps_site() {
    let app = support::start().await;
    let site = app.context().get::<Arc<AdminSite>>().expect("the app built an admin site");
    let slugs: Vec<_> = site.panels().iter().map(|p| p.slug()).collect();
    for slug in ["orders", "payouts", "webhook-events", "ledger-accounts", "subscriptions", "connected-accounts"] {
        assert!(slugs.contains(&slug), "{slug} in {slugs:?}");
        assert_eq!(site.find(slug).map(|p| p.group()), Some("Payments"));
    }
    let mut titles = Vec::new();
    for card in site.cards() {
        titles.push(card.card(app.context()).await.expect("card").title);
    }
    assert_eq!(titles.iter().filter(|t| *t == "Payments").count(), 1, "{titles:?}");

    let orders = panel(&site, "orders");
    let filters = orders.filters();
    let strategies: Vec<_> = filters[1].choices.iter().map(|(value, _)| value.as_str()).collect();
    let mut sorted = strategies.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["direct", "escrow", "subscription"]);
    assert_eq!(filters[0].choices.len(), 11, "every order state");
    let actions: Vec<_> = orders.actions().iter().map(|a| a.name).collect();
    assert_eq!(actions, ["refund", "release", "retry_payout"]);
}

#[tokio::test]
async fn orders_are_listed_newest_first_by_page_filter_and_search() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let held = app.held_order(&payer, &payee).await;
    let first = id_of(&app.direct_order(&payer, None, 2_500).await);
    let second = id_of(&app.direct_order(&payer, Some(&payee), 999).await);
    let site = site();
    let orders = panel(&site, "orders");

    let page = list(&app, &orders, query(&[], None, None, 2)).await;
    assert_eq!(ids(&page), [second.as_str(), first.as_str()]);
    let next = page.next.clone().expect("a second page");
    let rest = list(&app, &orders, query(&[], None, Some(&next), 2)).await;
    assert_eq!(ids(&rest), [held.as_str()]);
    assert_eq!(rest.next, None);
    let everything = list(&app, &orders, query(&[], None, None, 50)).await;
    assert_eq!(ids(&everything), [second.as_str(), first.as_str(), held.as_str()]);
    assert_eq!(everything.next, None);

    // Cells: id, strategy, state, amount, payer, payee, created.
    let row = &rest.rows[0].cells;
    assert_eq!(row.len(), orders.columns().len());
    assert_eq!(&row[..6], [held.as_str(), "escrow", "held", "100.00 USD", "payer@example.com", "payee@example.com"]);
    assert!(row[6].ends_with(" UTC"), "{row:?}");
    assert_eq!(everything.rows[0].cells[3], "9.99 USD");
    assert_eq!(everything.rows[1].cells[5], "", "no payee");

    let by = |filters: &'static [(&'static str, &'static str)]| list(&app, &orders, query(filters, None, None, 50));
    assert_eq!(ids(&by(&[("state", "held")]).await), [held.as_str()]);
    assert_eq!(ids(&by(&[("state", "pending")]).await), [second.as_str(), first.as_str()]);
    assert_eq!(ids(&by(&[("strategy", "escrow")]).await), [held.as_str()]);
    assert_eq!(ids(&by(&[("strategy", "direct"), ("state", "pending")]).await), [second.as_str(), first.as_str()]);
    assert!(by(&[("strategy", "direct"), ("state", "held")]).await.rows.is_empty());
    let pending_page = list(&app, &orders, query(&[("state", "pending")], None, None, 1)).await;
    assert_eq!(ids(&pending_page), [second.as_str()]);
    let after = pending_page.next.expect("more pending orders");
    assert_eq!(
        ids(&list(&app, &orders, query(&[("state", "pending")], None, Some(&after), 1)).await),
        [first.as_str()]
    );

    let search = |term: String| list(&app, &orders, query(&[], Some(&term), None, 50));
    assert_eq!(ids(&search(first.clone()).await), [first.as_str()]);
    assert_eq!(ids(&search(format!("  {held} ")).await), [held.as_str()]);
    assert_eq!(ids(&search(app.payment_intent(&second).await).await), [second.as_str()]);
    assert!(search("pi_nothing".to_owned()).await.rows.is_empty());
    assert!(search(uuid::Uuid::now_v7().to_string()).await.rows.is_empty());

    let bad_cursor = orders.list(app.context(), &query(&[], None, Some("yesterday"), 2)).await;
    assert_eq!(bad_cursor.map(|_| ()).map_err(|e| e.code().to_owned()), Err("validation.failed".to_owned()));
}

#[tokio::test]
async fn an_order_shows_every_field_its_history_and_its_ledger_entries() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.held_order(&payer, &payee).await;
    let site = site();
    let orders = panel(&site, "orders");

    let order = detail(&app, &orders, &id).await;
    assert_eq!(field(&order, "Id"), id);
    assert_eq!(field(&order, "State"), "held");
    assert_eq!(field(&order, "Strategy"), "escrow");
    assert_eq!(field(&order, "Amount"), "100.00 USD");
    assert_eq!(field(&order, "Platform fee"), "15.00 USD");
    assert_eq!(field(&order, "Refundable now"), "100.00 USD", "the fee is refundable while held");
    assert_eq!(field(&order, "Payer"), format!("payer@example.com ({})", payer.id));
    assert_eq!(field(&order, "Payee"), format!("payee@example.com ({})", payee.id));
    assert_eq!(field(&order, "Stripe PaymentIntent"), app.payment_intent(&id).await);
    assert!(field(&order, "Hold expires").ends_with(" UTC"));
    assert!(order.fields.iter().all(|(label, _)| !label.contains("secret")), "the client secret is not shown");

    let titles: Vec<_> = order.sections.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles, ["State history", "Ledger entries", "Refunds", "Payouts"]);
    let history: Vec<_> = section(&order, "State history").iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        history,
        [("draft", "pending"), ("pending", "processing"), ("processing", "captured"), ("captured", "held")]
    );
    assert_eq!(section(&order, "State history")[0][3], "payer@example.com", "the payer submitted it");
    assert_eq!(section(&order, "State history")[1][3], "system", "Stripe's event moved it");
    let entries = section(&order, "Ledger entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        &entries[0][1..5],
        ["external_stripe:usd", "platform_escrow:usd", "100.00 USD", &format!("escrow:{id}:capture")]
    );
    assert!(section(&order, "Refunds").is_empty());
    assert!(section(&order, "Payouts").is_empty());

    assert!(orders.detail(app.context(), &uuid::Uuid::now_v7().to_string()).await.expect("detail").is_none());
    assert!(orders.detail(app.context(), "not-an-id").await.expect("detail").is_none());
}

#[tokio::test]
async fn staff_release_a_held_order_through_the_service() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    let id = app.held_order(&payer, &payee).await;
    let site = site();
    let orders = panel(&site, "orders");

    let message = act(&app, &orders, &staff, &id, "release", &[]).await.expect("release");
    assert_eq!(message, "Funds released to the payee; their payout is queued.");
    assert_eq!(app.state(&id).await, "released");
    let payout = app.payout_of(&id).await;
    assert_eq!((payout.state, payout.amount_cents, payout.payee_id), (PayoutState::Pending, 8_500, payee.uuid));
    assert_eq!(app.user_balance(&payee).await, 8_500);
    assert_eq!(app.platform_balances().await, (-10_000, 0, 1_500));
    app.assert_balanced().await;

    // The transition names the staff member and the admin.
    let history = app.service().history(id.parse().expect("uuid")).await.expect("history");
    let last = history.last().expect("a transition");
    assert_eq!((last.action.as_str(), last.actor_id, last.reason.as_str()), ("release", Some(staff.uuid), "admin"));

    let order = detail(&app, &orders, &id).await;
    assert_eq!(field(&order, "State"), "released");
    assert_eq!(section(&order, "State history").last().map(|r| r[3].as_str()), Some("staff@example.com"));
    let payouts = section(&order, "Payouts");
    assert_eq!(payouts.len(), 1);
    assert_eq!(&payouts[0][..4], [payout.id.to_string().as_str(), "payee@example.com", "85.00 USD", "pending"]);
    let keys: Vec<_> = section(&order, "Ledger entries").iter().map(|r| r[4].clone()).collect();
    assert_eq!(
        keys,
        [format!("escrow:{id}:capture"), format!("escrow:{id}:release:recipient"), format!("escrow:{id}:release:fee")]
    );

    // Releasing again succeeds and does nothing, as in the API.
    let again = act(&app, &orders, &staff, &id, "release", &[]).await.expect("release again");
    assert_eq!(again, "Nothing to release: the order is released.");
    assert_eq!(app.payouts_of(&id).await.len(), 1);
    assert_eq!(app.user_balance(&payee).await, 8_500);

    // A pending order cannot be released: the state machine's 409.
    let pending = id_of(&app.escrow_order(&payer, &payee, 5_000).await);
    assert_error(
        act(&app, &orders, &staff, &pending, "release", &[]).await,
        ErrorKind::Conflict,
        "payments.invalid_transition",
    );
    assert_eq!(app.state(&pending).await, "pending");
    assert_error(act(&app, &orders, &staff, &id, "explode", &[]).await, ErrorKind::NotFound, "not_found");
    let missing = uuid::Uuid::now_v7().to_string();
    assert_error(act(&app, &orders, &staff, &missing, "release", &[]).await, ErrorKind::NotFound, "not_found");
}

#[tokio::test]
async fn a_refund_the_service_refuses_changes_nothing() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    let pending = id_of(&app.direct_order(&payer, Some(&payee), 10_000).await);
    let settled = app.settled_order(&payer, &payee).await;
    let site = site();
    let orders = panel(&site, "orders");
    let entries = app.entry_count().await;
    let before = detail(&app, &orders, &pending).await;

    // Nothing was paid: the order's state machine refuses the refund.
    let err = assert_error(
        act(&app, &orders, &staff, &pending, "refund", &[("reason", "goodwill")]).await,
        ErrorKind::Conflict,
        "payments.invalid_transition",
    );
    assert!(err.message().contains("pending"), "{}", err.message());
    assert_eq!(app.state(&pending).await, "pending");
    assert!(app.refunds(&pending).await.is_empty());
    assert_eq!(app.entry_count().await, entries);
    assert_eq!(detail(&app, &orders, &pending).await.fields, before.fields);
    assert_eq!(app.fake.count("POST", "/v1/refunds"), 0);

    // The form is checked as the API checks its body.
    let balances = (app.platform_balances().await, app.user_balance(&payee).await);
    let refund = async |amount: &str| act(&app, &orders, &staff, &settled, "refund", &[("amount_cents", amount)]).await;
    assert_error(refund("ten").await, ErrorKind::Validation, "validation.failed");
    assert_error(refund("-5").await, ErrorKind::Validation, "validation.failed");
    assert_error(refund("8501").await, ErrorKind::Validation, "validation.failed");
    assert!(app.refunds(&settled).await.is_empty());
    assert_eq!((app.platform_balances().await, app.user_balance(&payee).await), balances);

    // A refund the rules allow is requested through the service, by the staff member.
    let message =
        act(&app, &orders, &staff, &settled, "refund", &[("amount_cents", "1000"), ("reason", "late delivery")])
            .await
            .expect("refund");
    assert!(message.starts_with("Refund of 10.00 USD requested"), "{message}");
    let refunds = app.refunds(&settled).await;
    assert_eq!(refunds.len(), 1);
    let stored = &refunds[0];
    assert_eq!(
        (stored.amount_cents, stored.state, stored.requested_by),
        (1_000, RefundState::Processing, Some(staff.uuid))
    );
    assert_eq!(stored.reason, "late delivery");
    assert_eq!(app.user_balance(&payee).await, 7_500, "taken back from the payee");
    // While it is processing no other starts.
    assert_error(refund("500").await, ErrorKind::Conflict, "payments.refund_in_progress");
    let order = detail(&app, &orders, &settled).await;
    assert_eq!(section(&order, "Refunds")[0][1..4], ["10.00 USD", "processing", "late delivery"]);
    assert!(section(&order, "Ledger entries").iter().any(|r| r[4] == format!("refund:{}:payee", stored.id)));
}

#[tokio::test]
async fn staff_retry_a_failed_payout_of_an_order() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    app.onboard(&payee).await;
    let id = app.held_order(&payer, &payee).await;
    let site = site();
    let orders = panel(&site, "orders");

    assert_error(act(&app, &orders, &staff, &id, "retry_payout", &[]).await, ErrorKind::Conflict, "payments.no_payout");

    // Stripe refuses the transfer for good: the payout fails.
    app.fake.fail_next("/v1/transfers", Failure::InvalidRequest("Insufficient platform balance.".to_owned()));
    act(&app, &orders, &staff, &id, "release", &[]).await.expect("release");
    saas_core::testing::wait_until("the payout to fail", async || {
        app.payout_of(&id).await.state == PayoutState::Failed
    })
    .await;
    let card = site.cards()[0].card(app.context()).await.expect("card");
    let failed = card.items.iter().find(|i| i.label == "Failed payouts").expect("failed payouts");
    assert_eq!((failed.value.as_str(), failed.link.as_deref()), ("1", Some("/admin/payouts/?state=failed")));
    let payouts = panel(&site, "payouts");
    let payout = app.payout_of(&id).await;
    assert_eq!(
        ids(&list(&app, &payouts, query(&[("state", "failed")], None, None, 10)).await),
        [payout.id.to_string()]
    );

    let message = act(&app, &orders, &staff, &id, "retry_payout", &[]).await.expect("retry");
    assert_eq!(message, "Payout of 85.00 USD is pending again and queued.");
    let transferred = app.transferred_payout(&id).await;
    assert_eq!(transferred.state, PayoutState::Processing);
    let history = app.service().history(payout.id).await.expect("history");
    assert!(history.iter().any(|t| t.action == "retry" && t.actor_id == Some(staff.uuid)), "{history:?}");

    // Only a failed payout is retried.
    assert_error(
        act(&app, &orders, &staff, &id, "retry_payout", &[]).await,
        ErrorKind::Conflict,
        "payments.invalid_transition",
    );
    let retry = payouts.act(app.context(), &staff_user(&staff), &payout.id.to_string(), "retry", &Form::new()).await;
    assert_error(retry, ErrorKind::Conflict, "payments.invalid_transition");
    let shown = detail(&app, &payouts, &payout.id.to_string()).await;
    assert_eq!(field(&shown, "State"), "processing");
    let failure = field(&shown, "Failure");
    assert!(failure.contains("Insufficient platform balance."), "{failure}");
}

#[tokio::test]
async fn webhook_events_are_listed_and_a_failed_one_is_processed_again() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    let paid = app.held_order(&payer, &payee).await;
    let site = site();
    let events = panel(&site, "webhook-events");

    let processed = list(&app, &events, query(&[("status", "processed")], None, None, 10)).await;
    assert_eq!(processed.rows.len(), 1);
    let processed_id = processed.rows[0].id.clone();
    assert_eq!(processed.rows[0].cells[..4], [processed_id.as_str(), "payment_intent.succeeded", "processed", "1"]);

    // An already processed event is not processed again.
    assert_error(
        act(&app, &events, &staff, &processed_id, "retry", &[]).await,
        ErrorKind::Conflict,
        "payments.webhook_already_processed",
    );
    let stored = app.service().webhook_event(&processed_id).await.expect("read").expect("stored");
    assert_eq!((stored.state.as_str(), stored.attempts), ("processed", 1));
    assert_eq!(app.state(&paid).await, "held");

    // An event whose processing failed ten times (the retry cron gave up on it).
    let order = id_of(&app.escrow_order(&payer, &payee, 4_000).await);
    let event = app.fake.succeed_payment_intent(&app.payment_intent(&order).await);
    let event_id = event["id"].as_str().expect("event id").to_owned();
    with_pool!(app.context().db(), pool => sqlx::query(
        "INSERT INTO payment_webhook_events (id, event_type, payload, state, attempts, last_error, stripe_created, received_at) \
         VALUES ($1, $2, $3, 'failed', 10, 'database is locked', $4, $5)")
        .bind(&event_id).bind("payment_intent.succeeded").bind(event.to_string())
        .bind(event["created"].as_i64().unwrap_or(0)).bind(chrono::Utc::now())
        .execute(pool).await.map(|_| ()))
    .expect("store a failed event");

    let failed = list(&app, &events, query(&[("status", "failed")], None, None, 10)).await;
    assert_eq!(ids(&failed), [event_id.as_str()]);
    let all = list(&app, &events, query(&[], None, None, 1)).await;
    assert_eq!(ids(&all), [event_id.as_str()], "newest first");
    let older = list(&app, &events, query(&[], None, all.next.as_deref(), 10)).await;
    assert_eq!(ids(&older).last(), Some(&processed_id));
    assert_eq!(ids(&list(&app, &events, query(&[], Some(&event_id), None, 10)).await), [event_id.as_str()]);
    let card = site.cards()[0].card(app.context()).await.expect("card");
    let item = card.items.iter().find(|i| i.label == "Failed webhook events").expect("failed events");
    assert_eq!((item.value.as_str(), item.link.as_deref()), ("1", Some("/admin/webhook-events/?status=failed")));

    let shown = detail(&app, &events, &event_id).await;
    assert_eq!(field(&shown, "Status"), "failed");
    assert_eq!(field(&shown, "Last error"), "database is locked");
    assert!(field(&shown, "Payload").contains(&app.payment_intent(&order).await), "the payload is shown");

    let message = act(&app, &events, &staff, &event_id, "retry", &[]).await.expect("retry");
    assert_eq!(message, format!("Event {event_id} processed again: processed."));
    let stored = app.service().webhook_event(&event_id).await.expect("read").expect("stored");
    assert_eq!((stored.state.as_str(), stored.attempts, stored.last_error), ("processed", 11, None));
    assert_eq!(app.state(&order).await, "held", "the event was applied");
    assert!(list(&app, &events, query(&[("status", "failed")], None, None, 10)).await.rows.is_empty());
    assert!(events.detail(app.context(), "evt_missing").await.expect("detail").is_none());
    assert_error(act(&app, &events, &staff, "evt_missing", "retry", &[]).await, ErrorKind::NotFound, "not_found");
}

#[tokio::test]
async fn ledger_accounts_list_by_type_currency_and_user_with_their_entries() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let settled = app.settled_order(&payer, &payee).await;
    let site = site();
    let accounts = panel(&site, "ledger-accounts");
    let payee_key = format!("user_balance:{}:usd", payee.id);

    let all = list(&app, &accounts, query(&[], None, None, 50)).await;
    assert_eq!(
        ids(&all),
        [payee_key.clone(), "platform_revenue:usd".into(), "platform_escrow:usd".into(), "external_stripe:usd".into()]
    );
    assert_eq!(all.rows[0].cells, [payee_key.as_str(), "user_balance", "payee@example.com", "usd", "85.00 USD"]);
    assert_eq!(all.rows[3].cells[4], "-100.00 USD");

    let first = list(&app, &accounts, query(&[], None, None, 3)).await;
    let rest = list(&app, &accounts, query(&[], None, first.next.as_deref(), 3)).await;
    assert_eq!(ids(&rest), ["external_stripe:usd"]);
    assert_eq!(
        ids(&list(&app, &accounts, query(&[("type", "user_balance")], None, None, 50)).await),
        [payee_key.as_str()]
    );
    assert_eq!(list(&app, &accounts, query(&[("currency", "usd")], None, None, 50)).await.rows.len(), 4);
    assert!(list(&app, &accounts, query(&[("currency", "eur")], None, None, 50)).await.rows.is_empty());
    assert_eq!(ids(&list(&app, &accounts, query(&[], Some(&payee.id), None, 50)).await), [payee_key.as_str()]);
    assert_eq!(
        ids(&list(&app, &accounts, query(&[], Some("platform_"), None, 50)).await),
        ["platform_revenue:usd", "platform_escrow:usd"]
    );
    assert!(list(&app, &accounts, query(&[], Some(&payer.id), None, 50)).await.rows.is_empty());

    let shown = detail(&app, &accounts, &payee_key).await;
    assert_eq!(field(&shown, "Balance"), "85.00 USD");
    assert_eq!(field(&shown, "User"), format!("payee@example.com ({})", payee.id));
    assert_eq!(field(&shown, "May go negative"), "no");
    let entries = section(&shown, "Last 100 entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(&entries[0][1..5], ["credit", "platform_escrow:usd", "85.00 USD", &format!("payment:{settled}:payee")]);
    let escrow = detail(&app, &accounts, "platform_escrow:usd").await;
    let sides: Vec<_> = section(&escrow, "Last 100 entries").iter().map(|r| (r[1].clone(), r[3].clone())).collect();
    assert_eq!(sides.len(), 3, "{sides:?}");
    assert!(sides.contains(&("credit".to_owned(), "100.00 USD".to_owned())));
    assert!(sides.contains(&("debit".to_owned(), "-15.00 USD".to_owned())));
    assert!(sides.contains(&("debit".to_owned(), "-85.00 USD".to_owned())));
    assert!(accounts.detail(app.context(), "platform_escrow:eur").await.expect("detail").is_none());
}

#[tokio::test]
async fn subscriptions_show_their_invoice_orders() {
    let app = support::start().await;
    let (user, payee, _) = app.cast().await;
    app.fake.add_price("price_monthly", 2_000, "usd", "month");
    let response = app
        .post_as(&user, "/api/v1/payments/subscriptions/", &json!({"price_id": "price_monthly", "payee_id": payee.id}))
        .await;
    response.assert_status(201);
    let subscription = response.json();
    let id = id_of(&subscription);
    let stripe = subscription["stripe_subscription_id"].as_str().expect("Stripe id").to_owned();
    app.deliver_processed(&app.fake.invoice_paid(&stripe, 2_000)).await;
    let site = site();
    let subscriptions = panel(&site, "subscriptions");

    let active = list(&app, &subscriptions, query(&[("state", "active")], None, None, 10)).await;
    assert_eq!(ids(&active), [id.as_str()]);
    assert_eq!(active.rows[0].cells[1..5], ["payer@example.com", "payee@example.com", "price_monthly", "active"]);
    assert!(list(&app, &subscriptions, query(&[("state", "cancelled")], None, None, 10)).await.rows.is_empty());
    assert_eq!(ids(&list(&app, &subscriptions, query(&[], Some(&stripe), None, 10)).await), [id.as_str()]);

    let shown = detail(&app, &subscriptions, &id).await;
    assert_eq!(field(&shown, "State"), "active");
    assert_eq!(field(&shown, "Stripe subscription"), stripe);
    let orders = section(&shown, "Orders");
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0][1..3], ["settled", "20.00 USD"]);
    let links = &shown.sections.iter().find(|s| s.title == "Orders").expect("orders").links;
    assert_eq!(links[0], Some(format!("/admin/orders/{}/", orders[0][0])));
    assert_eq!(section(&shown, "State history").last().map(|r| r[1].as_str()), Some("active"));
}

#[tokio::test]
async fn connected_accounts_list_by_onboarding_status() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let account = app.onboard(&payee).await;
    let response = app.post_as(&payer, "/api/v1/payments/connect/onboarding/", &json!({})).await;
    response.assert_status(200);
    let site = site();
    let accounts = panel(&site, "connected-accounts");

    let all = list(&app, &accounts, query(&[], None, None, 10)).await;
    assert_eq!(ids(&all), [payer.id.as_str(), payee.id.as_str()]);
    let complete = list(&app, &accounts, query(&[("onboarding_status", "complete")], None, None, 10)).await;
    assert_eq!(ids(&complete), [payee.id.as_str()]);
    assert_eq!(complete.rows[0].cells[..5], ["payee@example.com", account.as_str(), "complete", "yes", "yes"]);
    let started = list(&app, &accounts, query(&[("onboarding_status", "in_progress")], None, None, 10)).await;
    assert_eq!(ids(&started), [payer.id.as_str()]);
    assert_eq!(ids(&list(&app, &accounts, query(&[], Some(&account), None, 10)).await), [payee.id.as_str()]);
    assert_eq!(ids(&list(&app, &accounts, query(&[], Some(&payer.id), None, 10)).await), [payer.id.as_str()]);

    let held = app.held_order(&payer, &payee).await;
    let staff = app.register_staff("staff@example.com").await;
    act(&app, &panel(&site, "orders"), &staff, &held, "release", &[]).await.expect("release");
    let shown = detail(&app, &accounts, &payee.id).await;
    assert_eq!(field(&shown, "Onboarding"), "complete");
    assert_eq!(field(&shown, "Payouts enabled"), "yes");
    assert_eq!(section(&shown, "Balances"), [vec![format!("user_balance:{}:usd", payee.id), "85.00 USD".to_owned()]]);
    assert_eq!(section(&shown, "Payouts").len(), 1);
}

#[tokio::test]
async fn the_dashboard_card_counts_orders_by_state() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    app.held_order(&payer, &payee).await;
    app.direct_order(&payer, None, 1_000).await;
    app.direct_order(&payer, None, 2_000).await;
    let site = site();

    let card = site.cards()[0].card(app.context()).await.expect("card");
    assert_eq!(card.title, "Payments");
    let items: Vec<_> =
        card.items.iter().map(|i| (i.label.as_str(), i.value.as_str(), i.link.as_deref().unwrap_or(""))).collect();
    assert_eq!(
        items,
        [
            ("Orders pending", "2", "/admin/orders/?state=pending"),
            ("Orders held", "1", "/admin/orders/?state=held"),
            ("Failed webhook events", "0", "/admin/webhook-events/?status=failed"),
            ("Failed payouts", "0", "/admin/payouts/?state=failed"),
        ]
    );
}
