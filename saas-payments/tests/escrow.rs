//! Escrow through the API against the fake Stripe: funds held on payment, released by the
//! payer (never the payee) to the payee's balance with a payout that waits for Connect,
//! the payout's transfer and its completion, idempotent and racing releases, and holds
//! released when they expire — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use chrono::{Duration, Utc};
use saas_core::with_pool;
use saas_payments::PayoutState;
use serde_json::json;
use support::{id_of, paid_steps};

#[tokio::test]
async fn a_paid_escrow_order_holds_the_funds_for_the_default_duration() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let order = app.escrow_order(&payer, &payee, 10_000).await;
    assert_eq!(order["state"], "pending");
    assert_eq!(order["platform_fee_cents"], 1_500);
    assert!(order["hold_expires_at"].is_null());
    let id = id_of(&order);

    app.pay(&id).await;

    let response = app.get_as(&payee, &format!("/api/v1/payments/orders/{id}/")).await;
    response.assert_status(200);
    let order = response.json();
    assert_eq!(order["state"], "held");
    let expires: chrono::DateTime<Utc> =
        order["hold_expires_at"].as_str().expect("a hold expiry").parse().expect("RFC 3339");
    let expected = Utc::now() + Duration::days(42);
    assert!((expires - expected).num_seconds().abs() < 120, "held until {expires}, expected about {expected}");

    // The whole amount sits in escrow; nobody is credited yet.
    assert_eq!(app.platform_balances().await, (-10_000, 10_000, 0));
    assert_eq!(app.user_balance(&payee).await, 0);
    assert_eq!(app.entries_like(&format!("escrow:{id}:capture")).await, 1);
    app.assert_balanced().await;
    assert_eq!(app.history(&payer, &id).await, paid_steps(&[("captured", "hold", "held")]));
}

#[tokio::test]
async fn released_funds_reach_the_payee_once_their_connect_account_is_ready() {
    let app = support::start().await;
    let (payer, payee, stranger) = app.cast().await;
    let id = app.held_order(&payer, &payee).await;

    // Only the payer (or staff) releases.
    app.act(&payee, &id, "release", json!({})).await.assert_error(403, "payments.permission_denied");
    app.act(&stranger, &id, "release", json!({})).await.assert_error(404, "not_found");
    assert_eq!(app.state(&id).await, "held");

    let response = app.act(&payer, &id, "release", json!({})).await;
    response.assert_status(200);
    assert_eq!(response.json()["state"], "released");
    assert_eq!(app.user_balance(&payee).await, 8_500);
    assert_eq!(app.platform_balances().await, (-10_000, 0, 1_500));
    app.assert_balanced().await;

    // A payout waits: the payee has no Connect account yet.
    let payout = app.payout_of(&id).await;
    assert_eq!((payout.state, payout.amount_cents, payout.payee_id), (PayoutState::Pending, 8_500, payee.uuid));
    let executed = app.service().execute_payout(payout.id).await.expect("execute");
    assert_eq!(executed.state, PayoutState::Pending);
    assert_eq!(app.fake.count("POST", "/v1/transfers"), 0);
    let listed = app.get_as(&payee, "/api/v1/payments/payouts/").await;
    listed.assert_status(200);
    let listed = listed.json();
    assert_eq!(listed["results"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["results"][0]["state"], "pending");
    assert_eq!(app.get_as(&payer, "/api/v1/payments/payouts/").await.json()["results"], json!([]));

    // The payee onboards; once Stripe enables payouts the queued payout is executed.
    let link = app.post_as(&payee, "/api/v1/payments/connect/onboarding/", &json!({})).await;
    link.assert_status(200);
    let account = app.connected_account(&payee).await;
    assert!(link.json()["url"].as_str().is_some_and(|url| url.contains(&account)), "{}", link.text());
    assert_eq!(app.connect_status(&payee).await["onboarding_status"], "in_progress");
    app.deliver_processed(&app.fake.account_event(&account, support::onboarded())).await;
    assert_eq!(
        app.connect_status(&payee).await,
        json!({"onboarding_status": "complete", "charges_enabled": true, "payouts_enabled": true})
    );

    let payout = app.transferred_payout(&id).await;
    assert_eq!(payout.state, PayoutState::Processing);
    let transfers: Vec<_> =
        app.fake.requests().into_iter().filter(|r| r.method == "POST" && r.path == "/v1/transfers").collect();
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0].idempotency_key.as_deref(), Some(format!("payout:{}:transfer", payout.id).as_str()));
    assert_eq!(transfers[0].param("amount"), Some("8500"));
    assert_eq!(transfers[0].param("destination"), Some(account.as_str()));
    assert_eq!(transfers[0].param("metadata[payout_id]"), Some(payout.id.to_string().as_str()));
    assert_eq!(app.user_balance(&payee).await, 8_500, "the balance leaves only when the transfer is paid");

    // Stripe reports the transfer paid: the payout is paid and the order settled.
    let transfer = payout.stripe_transfer_id.clone().expect("transfer id");
    app.deliver_processed(&app.fake.transfer_event(&transfer, "transfer.paid")).await;
    assert_eq!(app.payout_of(&id).await.state, PayoutState::Paid);
    assert_eq!(app.state(&id).await, "settled");
    assert_eq!(app.user_balance(&payee).await, 0);
    assert_eq!(app.platform_balances().await, (-1_500, 0, 1_500));
    app.assert_balanced().await;
    assert_eq!(
        app.history(&payer, &id).await,
        paid_steps(&[("captured", "hold", "held"), ("held", "release", "released"), ("released", "settle", "settled")])
    );

    // Releasing again succeeds and pays nothing more.
    let again = app.act(&payer, &id, "release", json!({})).await;
    again.assert_status(200);
    assert_eq!(again.json()["state"], "settled");
    assert_eq!(app.payouts_of(&id).await.len(), 1);
    assert_eq!(app.fake.count("POST", "/v1/transfers"), 1);
    assert_eq!(app.entries_like(&format!("escrow:{id}:release:%")).await, 2);
    assert_eq!(app.user_balance(&payee).await, 0);
}

#[tokio::test]
async fn staff_may_release_and_a_second_release_creates_no_second_payout() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    let id = app.held_order(&payer, &payee).await;

    app.act(&staff, &id, "release", json!({})).await.assert_status(200);
    let again = app.act(&payer, &id, "release", json!({})).await;
    again.assert_status(200);
    assert_eq!(again.json()["state"], "released");
    assert_eq!(app.payouts_of(&id).await.len(), 1);
    assert_eq!(app.user_balance(&payee).await, 8_500);
    let releases: Vec<_> = app.history(&payer, &id).await.into_iter().filter(|s| s.1 == "release").collect();
    assert_eq!(releases.len(), 1);
}

#[tokio::test]
async fn a_direct_order_cannot_be_released() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = id_of(&app.direct_order(&payer, Some(&payee), 5_000).await);
    app.act(&payer, &id, "release", json!({})).await.assert_error(409, "payments.invalid_transition");
    app.pay(&id).await;
    assert!(app.payouts_of(&id).await.is_empty());
    assert_eq!(app.user_balance(&payee).await, 4_250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_releases_credit_and_pay_the_payee_once() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    // The payee is ready for payouts: the release's payout is executed at once.
    let account = app.onboard(&payee).await;
    let id = app.held_order(&payer, &payee).await;

    let releases = (0..20).map(|_| app.act(&payer, &id, "release", json!({})));
    let responses = futures::future::join_all(releases).await;
    for response in &responses {
        response.assert_status(200);
        assert!(["released", "settled"].contains(&response.json()["state"].as_str().unwrap_or_default()));
    }

    assert_eq!(app.payouts_of(&id).await.len(), 1, "exactly one payout");
    assert_eq!(app.entries_like(&format!("escrow:{id}:release:recipient")).await, 1);
    assert_eq!(app.entries_like(&format!("escrow:{id}:release:fee")).await, 1);
    assert_eq!(app.entries_like(&format!("escrow:{id}:release:%")).await, 2);
    assert_eq!(app.user_balance(&payee).await, 8_500);
    assert_eq!(app.platform_balances().await, (-10_000, 0, 1_500));
    let releases: Vec<_> = app.history(&payer, &id).await.into_iter().filter(|s| s.1 == "release").collect();
    assert_eq!(releases.len(), 1);

    let payout = app.transferred_payout(&id).await;
    assert_eq!(app.fake.count("POST", "/v1/transfers"), 1, "exactly one transfer");
    assert_eq!(app.stripe_keys("POST", "/v1/transfers"), vec![Some(format!("payout:{}:transfer", payout.id))]);
    let transfer = app.fake.object(payout.stripe_transfer_id.as_deref().expect("transfer")).expect("stored transfer");
    assert_eq!((transfer["amount"].as_i64(), transfer["destination"].as_str()), (Some(8_500), Some(account.as_str())));
    app.assert_balanced().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executors_racing_on_one_payout_call_stripe_once() {
    let app = support::start_without_worker().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.held_order(&payer, &payee).await;
    app.act(&payer, &id, "release", json!({})).await.assert_status(200);
    let payout = app.payout_of(&id).await;
    assert_eq!(payout.state, PayoutState::Pending, "no Connect account yet");
    app.onboard(&payee).await;

    // Stripe rate-limits the first attempt: the payout is left processing, its transfer
    // not made — what a job retry or the cron then resumes.
    app.fake.fail_next("/v1/transfers", saas_payments::testing::Failure::RateLimited);
    let service = app.service();
    assert!(service.execute_payout(payout.id).await.is_err(), "a transient failure asks for a retry");
    let tried = app.fake.count("POST", "/v1/transfers");

    // Its job's retry, a staff retry and the cron all resume it at once.
    let racers = (0..10).map(|_| service.execute_payout(payout.id));
    for result in futures::future::join_all(racers).await {
        result.expect("execute");
    }
    assert_eq!(app.fake.count("POST", "/v1/transfers") - tried, 1, "one executor holds the transfer");
    let payout = app.transferred_payout(&id).await;
    assert_eq!(payout.state, PayoutState::Processing);
    service.execute_payout(payout.id).await.expect("execute again");
    assert_eq!(app.fake.count("POST", "/v1/transfers") - tried, 1, "a transferred payout is not sent again");
}

#[tokio::test]
async fn expired_holds_are_released_by_the_cron_entry() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let expired = app.held_order(&payer, &payee).await;
    let current = app.held_order(&payer, &payee).await;
    let past = Utc::now() - Duration::minutes(1);
    let expired_id: uuid::Uuid = expired.parse().expect("uuid");
    with_pool!(app.context().db(), pool =>
        sqlx::query("UPDATE payment_orders SET hold_expires_at = $2 WHERE id = $1")
            .bind(expired_id).bind(past).execute(pool).await.map(|_| ()))
    .expect("expire the hold");

    let released = app.service().release_expired_holds().await.expect("release expired holds");
    assert_eq!(released, 1);
    assert_eq!(app.state(&expired).await, "released");
    assert_eq!(app.state(&current).await, "held", "a hold that has not expired stays");
    assert_eq!(app.user_balance(&payee).await, 8_500);
    assert_eq!(app.platform_balances().await, (-20_000, 10_000, 1_500));
    assert_eq!(app.payout_of(&expired).await.amount_cents, 8_500);
    assert!(app.payouts_of(&current).await.is_empty());
    let release = app.service().history(expired_id).await.expect("history").pop().expect("a transition");
    assert_eq!(
        (release.action.as_str(), release.actor_id, release.reason.as_str()),
        ("release", None, "cron:expire_holds")
    );
    app.assert_balanced().await;

    // Running it again finds nothing to do.
    assert_eq!(app.service().release_expired_holds().await.expect("again"), 0);
    assert_eq!(app.payouts_of(&expired).await.len(), 1);
}
