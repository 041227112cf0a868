//! Refunds through the API against the fake Stripe: who may refund, how much, from which
//! states, the money taken back from the payee and returned to the payer when Stripe
//! settles the refund, escrow refunds while held and after release, and a refund Stripe
//! refuses — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use saas_payments::testing::Failure;
use saas_payments::{PayoutState, RefundState};
use serde_json::json;
use support::id_of;

#[tokio::test]
async fn the_payee_refunds_a_settled_order_in_full_and_the_ledger_reverses() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.settled_order(&payer, &payee).await;

    let response = app.act(&payee, &id, "refund", json!({"reason": "requested_by_customer"})).await;
    response.assert_status(200);
    let refund = response.json();
    // The fee is kept once the order is settled: the full refund is the payee's share.
    assert_eq!(refund["amount_cents"], 8_500);
    assert_eq!(refund["state"], "processing");
    assert_eq!(refund["order_id"], id.as_str());
    assert_eq!(refund["requested_by"], payee.id.as_str());
    let refund_id = id_of(&refund);
    let requests: Vec<_> =
        app.fake.requests().into_iter().filter(|r| r.method == "POST" && r.path == "/v1/refunds").collect();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].idempotency_key.as_deref(), Some(format!("refund:{refund_id}").as_str()));
    assert_eq!(requests[0].param("payment_intent"), Some(app.payment_intent(&id).await.as_str()));
    assert_eq!(requests[0].param("amount"), Some("8500"));
    // Taken back from the payee at once; the order changes when Stripe confirms.
    assert_eq!(app.user_balance(&payee).await, 0);
    assert_eq!(app.state(&id).await, "settled");

    let stripe_id = app.refunds(&id).await[0].stripe_refund_id.clone().expect("stripe refund id");
    app.deliver_processed(&app.fake.refund_event(&stripe_id)).await;

    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("refunded", 8_500));
    assert_eq!(app.refunds(&id).await[0].state, RefundState::Completed);
    assert_eq!(app.user_balance(&payee).await, 0);
    assert_eq!(app.platform_balances().await, (-1_500, 0, 1_500));
    assert_eq!(app.entries_like(&format!("refund:{refund_id}:%")).await, 2);
    app.assert_balanced().await;
    assert_eq!(app.history(&payer, &id).await.last().map(|s| s.1.as_str()), Some("refund_full"));

    // Nothing is left to refund.
    app.act(&payee, &id, "refund", json!({})).await.assert_error(409, "payments.invalid_transition");
}

#[tokio::test]
async fn refunding_an_order_without_a_payee_takes_the_money_back_from_revenue() {
    let app = support::start().await;
    let (payer, _, _) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    let id = id_of(&app.direct_order(&payer, None, 10_000).await);
    app.pay(&id).await;
    assert_eq!(app.platform_balances().await, (-10_000, 0, 10_000));

    let refund = app.refund_and_settle(&staff, &id, json!({})).await;
    assert_eq!(refund["amount_cents"], 8_500);
    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("refunded", 8_500));
    assert_eq!(app.platform_balances().await, (-1_500, 0, 1_500), "only the fee stays with the platform");
    app.assert_balanced().await;
}

#[tokio::test]
async fn staff_may_refund_and_the_payer_may_not() {
    let app = support::start().await;
    let (payer, payee, stranger) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    let id = app.settled_order(&payer, &payee).await;

    app.act(&payer, &id, "refund", json!({})).await.assert_error(403, "payments.permission_denied");
    app.act(&stranger, &id, "refund", json!({})).await.assert_error(404, "not_found");
    assert!(app.refunds(&id).await.is_empty());
    assert_eq!(app.fake.count("POST", "/v1/refunds"), 0);

    let refund = app.refund_and_settle(&staff, &id, json!({"amount_cents": 1_000})).await;
    assert_eq!(refund["requested_by"], staff.id.as_str());
    assert_eq!(app.state(&id).await, "partially_refunded");
    assert_eq!(app.user_balance(&payee).await, 7_500);
    app.assert_balanced().await;
}

#[tokio::test]
async fn partial_refunds_add_up_to_the_refundable_remainder() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.settled_order(&payer, &payee).await;

    app.act(&payee, &id, "refund", json!({"amount_cents": 8_501})).await.assert_error(400, "validation.failed");
    app.act(&payee, &id, "refund", json!({"amount_cents": 0})).await.assert_error(400, "validation.failed");
    assert!(app.refunds(&id).await.is_empty());

    app.refund_and_settle(&payee, &id, json!({"amount_cents": 3_000})).await;
    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("partially_refunded", 3_000));
    assert_eq!(app.user_balance(&payee).await, 5_500);
    assert_eq!(app.platform_balances().await, (-7_000, 0, 1_500));

    app.refund_and_settle(&payee, &id, json!({"amount_cents": 2_000})).await;
    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("partially_refunded", 5_000));
    assert_eq!(app.user_balance(&payee).await, 3_500);

    // Above what is left → 400; the rest → refunded.
    let error =
        app.act(&payee, &id, "refund", json!({"amount_cents": 3_501})).await.assert_error(400, "validation.failed");
    assert!(error["details"]["fields"]["amount_cents"].is_array(), "{error}");
    let last = app.refund_and_settle(&payee, &id, json!({})).await;
    assert_eq!(last["amount_cents"], 3_500);
    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("refunded", 8_500));
    assert_eq!(app.user_balance(&payee).await, 0);
    assert_eq!(app.platform_balances().await, (-1_500, 0, 1_500));
    let refunds = app.refunds(&id).await;
    assert_eq!(refunds.iter().map(|r| r.amount_cents).collect::<Vec<_>>(), vec![3_000, 2_000, 3_500]);
    assert!(refunds.iter().all(|r| r.state == RefundState::Completed));
    let actions: Vec<String> = app.history(&payer, &id).await.into_iter().map(|s| s.1).skip(4).collect();
    assert_eq!(actions, ["refund_partial", "refund_partial", "refund_full"]);
    app.assert_balanced().await;
}

#[tokio::test]
async fn an_unpaid_order_cannot_be_refunded() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let staff = app.register_staff("staff@example.com").await;
    let id = id_of(&app.direct_order(&payer, Some(&payee), 10_000).await);

    let error = app.act(&payee, &id, "refund", json!({})).await.assert_error(409, "payments.invalid_transition");
    assert_eq!(error["details"]["state"], "pending");
    app.act(&staff, &id, "refund", json!({"amount_cents": 100})).await.assert_error(409, "payments.invalid_transition");
    app.decline(&id).await;
    app.act(&staff, &id, "refund", json!({})).await.assert_error(409, "payments.invalid_transition");
    assert!(app.refunds(&id).await.is_empty());
    assert_eq!(app.fake.count("POST", "/v1/refunds"), 0);
}

#[tokio::test]
async fn a_held_escrow_order_is_refundable_in_full_fee_included() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.held_order(&payer, &payee).await;

    app.act(&payee, &id, "refund", json!({"amount_cents": 10_001})).await.assert_error(400, "validation.failed");
    let refund = app.refund_and_settle(&payee, &id, json!({"amount_cents": 10_000})).await;
    assert_eq!(refund["amount_cents"], 10_000);

    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("refunded", 10_000));
    assert_eq!(app.platform_balances().await, (0, 0, 0));
    assert_eq!(app.user_balance(&payee).await, 0);
    assert!(app.payouts_of(&id).await.is_empty());
    app.assert_balanced().await;
    // A refunded order is never released.
    app.act(&payer, &id, "release", json!({})).await.assert_error(409, "payments.invalid_transition");
}

#[tokio::test]
async fn refunding_a_released_order_cancels_its_pending_payout() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.held_order(&payer, &payee).await;
    app.act(&payer, &id, "release", json!({})).await.assert_status(200);
    assert_eq!(app.payout_of(&id).await.state, PayoutState::Pending);

    let refund = app.refund_and_settle(&payee, &id, json!({})).await;
    assert_eq!(refund["amount_cents"], 8_500, "the fee is no longer refundable once released");

    assert_eq!(app.payout_of(&id).await.state, PayoutState::Cancelled);
    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("refunded", 8_500));
    assert_eq!(app.user_balance(&payee).await, 0);
    assert_eq!(app.platform_balances().await, (-1_500, 0, 1_500));
    app.assert_balanced().await;

    // The cancelled payout is never executed, even once the payee can receive payouts.
    app.onboard(&payee).await;
    let payout = app.payout_of(&id).await;
    assert_eq!(app.service().execute_payout(payout.id).await.expect("execute").state, PayoutState::Cancelled);
    assert_eq!(app.fake.count("POST", "/v1/transfers"), 0);
}

#[tokio::test]
async fn a_released_order_whose_payout_was_paid_cannot_be_refunded() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    app.onboard(&payee).await;
    let id = app.held_order(&payer, &payee).await;
    app.act(&payer, &id, "release", json!({})).await.assert_status(200);
    let payout = app.transferred_payout(&id).await;

    // While the transfer is under way the refund is refused too.
    let error = app.act(&payee, &id, "refund", json!({})).await.assert_error(409, "payments.payout_in_progress");
    assert_eq!(error["details"]["payout_state"], "processing");

    let transfer = payout.stripe_transfer_id.expect("transfer");
    app.deliver_processed(&app.fake.transfer_event(&transfer, "transfer.paid")).await;
    assert_eq!(app.state(&id).await, "settled");
    let error = app.act(&payee, &id, "refund", json!({})).await.assert_error(409, "payments.payout_in_progress");
    assert_eq!(error["details"]["payout_state"], "paid");
    assert!(app.refunds(&id).await.is_empty());
    assert_eq!(app.fake.count("POST", "/v1/refunds"), 0);
    assert_eq!(app.platform_balances().await, (-1_500, 0, 1_500));
    app.assert_balanced().await;
}

#[tokio::test]
async fn a_refund_stripe_refuses_fails_and_gives_the_payee_their_money_back() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.settled_order(&payer, &payee).await;
    let entries = app.entry_count().await;

    app.fake.fail_next("/v1/refunds", Failure::InvalidRequest("The charge was disputed.".to_owned()));
    let error =
        app.act(&payee, &id, "refund", json!({"amount_cents": 4_000})).await.assert_error(400, "payments.stripe_error");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("disputed")), "{error}");

    let refunds = app.refunds(&id).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].state, RefundState::Failed);
    assert!(refunds[0].failure_reason.as_deref().is_some_and(|r| r.contains("disputed")), "{refunds:?}");
    assert_eq!(app.user_balance(&payee).await, 8_500, "the money taken back was returned");
    assert_eq!(app.entry_count().await, entries + 2, "taken back, then returned");
    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("settled", 0));
    app.assert_balanced().await;

    // The failure does not block a later refund.
    app.refund_and_settle(&payee, &id, json!({"amount_cents": 4_000})).await;
    assert_eq!(app.state(&id).await, "partially_refunded");
    assert_eq!(app.user_balance(&payee).await, 4_500);
    app.assert_balanced().await;
}

#[tokio::test]
async fn a_partial_refund_of_held_funds_keeps_the_rest_held_and_releasable() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.held_order(&payer, &payee).await;

    let refund = app.refund_and_settle(&payee, &id, json!({"amount_cents": 3_000})).await;
    assert_eq!(refund["amount_cents"], 3_000);
    let order = app.order(&id).await;
    assert_eq!((order.state.as_str(), order.refunded_cents), ("held", 3_000), "the rest stays held");

    // The rest is released: the fee is taken from it, the payee gets what remains.
    app.act(&payer, &id, "release", json!({})).await.assert_status(200);
    assert_eq!(app.user_balance(&payee).await, 5_500);
    assert_eq!(app.payout_of(&id).await.amount_cents, 5_500);
    assert_eq!(app.platform_balances().await, (-7_000, 0, 1_500));
    app.assert_balanced().await;
}

#[tokio::test]
async fn a_held_order_is_not_released_while_a_refund_of_it_is_under_way() {
    let app = support::start().await;
    let (payer, payee, _) = app.cast().await;
    let id = app.held_order(&payer, &payee).await;

    let response = app.act(&payee, &id, "refund", json!({"amount_cents": 3_000})).await;
    response.assert_status(200);
    let refund = app.refunds(&id).await.pop().expect("the refund is stored");
    // Releasing now would pay the payee the money the refund takes back.
    app.act(&payer, &id, "release", json!({})).await.assert_error(409, "payments.refund_in_progress");
    assert!(app.payouts_of(&id).await.is_empty());
    assert_eq!(app.user_balance(&payee).await, 0);

    app.deliver_processed(&app.fake.refund_event(&refund.stripe_refund_id.expect("sent to Stripe"))).await;
    app.act(&payer, &id, "release", json!({})).await.assert_status(200);
    assert_eq!(app.user_balance(&payee).await, 5_500);
    assert_eq!(app.platform_balances().await, (-7_000, 0, 1_500));
    app.assert_balanced().await;
}
