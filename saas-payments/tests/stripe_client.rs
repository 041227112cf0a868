//! `StripeApi` against `FakeStripe`: every call, what went over the wire, idempotent
//! replays, and how each kind of failure is classified.

use std::time::Duration;

use saas_core::{ErrorKind, ServiceError};
use saas_payments::stripe::{NewPaymentIntent, NewTransfer, StripeApi, StripeFailure};
use saas_payments::testing::{AccountUpdate, Failure, FakeStripe, RecordedRequest, stripe_signature};

async fn setup() -> (FakeStripe, StripeApi) {
    let fake = FakeStripe::start().await;
    let api = StripeApi::new(FakeStripe::SECRET_KEY, &fake.url()).expect("client for the fake");
    (fake, api)
}

fn last(fake: &FakeStripe) -> RecordedRequest {
    fake.requests().pop().expect("a recorded request")
}

fn charge<'a>(amount_cents: i64, metadata: Vec<(&'a str, String)>) -> NewPaymentIntent<'a> {
    NewPaymentIntent {
        amount_cents,
        currency: "USD",
        description: Some("Order 42"),
        transfer_group: Some("order_42"),
        metadata,
    }
}

fn permanent(failure: &StripeFailure) -> (Option<&str>, &str, u16) {
    match failure {
        StripeFailure::Permanent { code, message, status } => (code.as_deref(), message.as_str(), *status),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn payment_intents_are_created_retrieved_paid_and_canceled() {
    let (fake, api) = setup().await;
    let intent = api
        .create_payment_intent(&charge(1500, vec![("order_id", "42".to_owned())]), "order-42-charge")
        .await
        .expect("created");
    assert!(intent.id.starts_with("pi_"), "{intent:?}");
    assert_eq!(intent.status, "requires_payment_method");
    assert_eq!((intent.amount_cents, intent.amount_received_cents), (1500, 0));
    assert_eq!(intent.currency, "usd");
    assert!(
        intent.client_secret.as_deref().is_some_and(|secret| secret.starts_with(&format!("{}_secret_", intent.id)))
    );
    assert_eq!(intent.latest_charge, None);

    let sent = last(&fake);
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/payment_intents"));
    assert_eq!(sent.idempotency_key.as_deref(), Some("order-42-charge"));
    assert_eq!(sent.authorization.as_deref(), Some("Bearer sk_test_fake"));
    assert_eq!(sent.param("amount"), Some("1500"));
    assert_eq!(sent.param("currency"), Some("usd"));
    assert_eq!(sent.param("description"), Some("Order 42"));
    assert_eq!(sent.param("transfer_group"), Some("order_42"));
    assert_eq!(sent.param("metadata[order_id]"), Some("42"));
    assert_eq!(sent.param("automatic_payment_methods[enabled]"), Some("true"));

    let event = fake.succeed_payment_intent(&intent.id);
    assert_eq!(event["type"], "payment_intent.succeeded");
    assert_eq!(event["object"], "event");
    assert!(event["id"].as_str().is_some_and(|id| id.starts_with("evt_")));
    assert_eq!(event["livemode"], false);
    assert_eq!(event["pending_webhooks"], 1);
    assert!(event["request"]["id"].is_null() && event["request"]["idempotency_key"].is_null());
    assert!(event["api_version"].is_string());
    assert_eq!(event["data"]["object"]["id"], intent.id.as_str());
    assert_eq!(event["data"]["object"]["metadata"]["order_id"], "42");
    assert_eq!(fake.object(event["id"].as_str().unwrap_or_default()), Some(event.clone()));

    let paid = api.retrieve_payment_intent(&intent.id).await.expect("retrieved");
    assert_eq!(paid.status, "succeeded");
    assert_eq!(paid.amount_received_cents, 1500);
    let charge_id = paid.latest_charge.clone().expect("a charge");
    assert!(charge_id.starts_with("ch_"));
    assert_eq!(fake.object(&charge_id).expect("charge stored")["amount"], 1500);
    assert_eq!(last(&fake).method, "GET");
    assert_eq!(last(&fake).path, format!("/v1/payment_intents/{}", intent.id));

    // A paid intent cannot be canceled; an open one can.
    let refused = api.cancel_payment_intent(&intent.id, "order-42-cancel").await.expect_err("refused");
    assert_eq!(permanent(&refused).0, Some("payment_intent_unexpected_state"));
    let open = api.create_payment_intent(&charge(700, Vec::new()), "order-43-charge").await.expect("created");
    assert_eq!(last(&fake).param("metadata[order_id]"), None);
    let canceled = api.cancel_payment_intent(&open.id, "order-43-cancel").await.expect("canceled");
    assert_eq!(canceled.status, "canceled");
    let sent = last(&fake);
    assert_eq!(sent.path, format!("/v1/payment_intents/{}/cancel", open.id));
    assert_eq!(sent.idempotency_key.as_deref(), Some("order-43-cancel"));

    let failed_event =
        fake.fail_payment_intent(&api.create_payment_intent(&charge(900, Vec::new()), "k9").await.expect("created").id);
    assert_eq!(failed_event["type"], "payment_intent.payment_failed");
    assert_eq!(failed_event["data"]["object"]["last_payment_error"]["code"], "card_declined");
    assert!(failed_event["created"].as_i64() > event["created"].as_i64(), "events get increasing `created`");
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_first_answer() {
    let (fake, api) = setup().await;
    let new = charge(2500, vec![("order_id", "7".to_owned())]);
    let first = api.create_payment_intent(&new, "order-7-charge").await.expect("first");
    let second = api.create_payment_intent(&new, "order-7-charge").await.expect("replay");
    assert_eq!(first.id, second.id);
    assert_eq!(first.client_secret, second.client_secret);
    assert_eq!(fake.count("POST", "/v1/payment_intents"), 2, "both requests reached Stripe");
    let third = api.create_payment_intent(&new, "order-7-charge-bis").await.expect("another key");
    assert_ne!(third.id, first.id);

    // The same key with other parameters is refused.
    let other = charge(2600, vec![("order_id", "7".to_owned())]);
    let refused = api.create_payment_intent(&other, "order-7-charge").await.expect_err("reused key");
    let (code, message, status) = permanent(&refused);
    assert_eq!((code, status), (None, 400));
    assert!(message.contains("idempotent"), "{message}");
}

#[tokio::test]
async fn refunds_never_exceed_what_was_received() {
    let (fake, api) = setup().await;
    let intent = api.create_payment_intent(&charge(1500, Vec::new()), "o1").await.expect("created");

    let early = api.create_refund(&intent.id, 100, &[], "o1-refund-early").await.expect_err("nothing to refund yet");
    assert_eq!(permanent(&early).2, 400);

    fake.succeed_payment_intent(&intent.id);
    let refund =
        api.create_refund(&intent.id, 500, &[("refund_id", "r1".to_owned())], "o1-refund-1").await.expect("refund");
    assert!(refund.id.starts_with("re_"));
    assert_eq!((refund.status.as_str(), refund.amount_cents), ("pending", 500));
    let sent = last(&fake);
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/refunds"));
    assert_eq!(sent.param("payment_intent"), Some(intent.id.as_str()));
    assert_eq!(sent.param("amount"), Some("500"));
    assert_eq!(sent.param("metadata[refund_id]"), Some("r1"));
    assert_eq!(sent.idempotency_key.as_deref(), Some("o1-refund-1"));

    let too_much = api.create_refund(&intent.id, 1001, &[], "o1-refund-2").await.expect_err("over the remainder");
    assert_eq!(permanent(&too_much).0, Some("amount_too_large"));

    let event = fake.refund_event(&refund.id);
    assert_eq!(event["type"], "charge.refunded");
    let charge = &event["data"]["object"];
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["payment_intent"], intent.id.as_str());
    assert_eq!((charge["amount"].as_i64(), charge["amount_refunded"].as_i64()), (Some(1500), Some(500)));
    assert_eq!(charge["refunded"], false);
    assert_eq!(fake.object(&refund.id).expect("stored")["status"], "succeeded");

    let rest = api.create_refund(&intent.id, 1000, &[], "o1-refund-3").await.expect("the rest");
    let event = fake.refund_event(&rest.id);
    assert_eq!(event["data"]["object"]["amount_refunded"], 1500);
    assert_eq!(event["data"]["object"]["refunded"], true);
    let again = api.create_refund(&intent.id, 1, &[], "o1-refund-4").await.expect_err("fully refunded");
    assert_eq!(permanent(&again).0, Some("charge_already_refunded"));
}

#[tokio::test]
async fn subscriptions_start_incomplete_and_follow_their_invoices() {
    let (fake, api) = setup().await;
    let customer = api
        .create_customer("ada@example.com", &[("user_id", "u1".to_owned())], "user-u1-customer")
        .await
        .expect("customer");
    assert!(customer.starts_with("cus_"));
    let sent = last(&fake);
    assert_eq!((sent.path.as_str(), sent.param("email")), ("/v1/customers", Some("ada@example.com")));
    assert_eq!(sent.param("metadata[user_id]"), Some("u1"));

    fake.add_price("price_pro", 1900, "usd", "month");
    let created = api
        .create_subscription(&customer, "price_pro", &[("plan", "pro".to_owned())], "user-u1-sub")
        .await
        .expect("subscription");
    assert!(created.id.starts_with("sub_"));
    assert_eq!((created.status.as_str(), created.customer.as_str()), ("incomplete", customer.as_str()));
    assert!(!created.cancel_at_period_end);
    assert!(created.current_period_end.is_some_and(|end| end > 1_700_000_000));
    let secret = created.client_secret.clone().expect("the first invoice's confirmation secret");
    assert!(secret.starts_with("pi_") && secret.contains("_secret_"), "{secret}");
    let sent = last(&fake);
    assert_eq!(sent.path, "/v1/subscriptions");
    assert_eq!(sent.param("customer"), Some(customer.as_str()));
    assert_eq!(sent.param("items[0][price]"), Some("price_pro"));
    assert_eq!(sent.param("payment_behavior"), Some("default_incomplete"));
    assert_eq!(sent.param("expand[0]"), Some("latest_invoice.confirmation_secret"));
    assert_eq!(sent.param("metadata[plan]"), Some("pro"));
    assert_eq!(sent.idempotency_key.as_deref(), Some("user-u1-sub"));

    let retrieved = api.retrieve_subscription(&created.id).await.expect("retrieved");
    assert_eq!(retrieved.client_secret.as_deref(), Some(secret.as_str()));

    let event = fake.invoice_paid(&created.id, 1900);
    assert_eq!(event["type"], "invoice.paid");
    let invoice = &event["data"]["object"];
    assert!(invoice["id"].as_str().is_some_and(|id| id.starts_with("in_")));
    assert_eq!(invoice["object"], "invoice");
    assert_eq!((invoice["status"].as_str(), invoice["amount_paid"].as_i64()), (Some("paid"), Some(1900)));
    assert_eq!(invoice["customer"], customer.as_str());
    assert_eq!(invoice["parent"]["subscription_details"]["subscription"], created.id.as_str());
    assert_eq!(invoice["parent"]["subscription_details"]["metadata"]["plan"], "pro");
    assert_eq!(invoice["subscription"], created.id.as_str());
    let active = api.retrieve_subscription(&created.id).await.expect("retrieved");
    assert_eq!(active.status, "active");
    assert_eq!(active.client_secret, None, "a paid invoice has no confirmation secret");

    // A renewal moves the period on; a failed renewal makes the subscription past due.
    let renewal = fake.invoice_paid(&created.id, 1900);
    assert_ne!(renewal["data"]["object"]["id"], invoice["id"]);
    let renewed = api.retrieve_subscription(&created.id).await.expect("retrieved");
    assert!(renewed.current_period_end > active.current_period_end);
    let failed = fake.invoice_payment_failed(&created.id);
    assert_eq!(failed["type"], "invoice.payment_failed");
    assert_eq!(api.retrieve_subscription(&created.id).await.expect("retrieved").status, "past_due");

    let at_end = api.cancel_subscription(&created.id, false, "user-u1-sub-cancel").await.expect("canceled at end");
    assert!(at_end.cancel_at_period_end);
    assert_ne!(at_end.status, "canceled");
    let sent = last(&fake);
    assert_eq!((sent.method.as_str(), sent.path.clone()), ("POST", format!("/v1/subscriptions/{}", created.id)));
    assert_eq!(sent.param("cancel_at_period_end"), Some("true"));

    let now = api.cancel_subscription(&created.id, true, "user-u1-sub-cancel-now").await.expect("canceled");
    assert_eq!(now.status, "canceled");
    assert_eq!(
        (last(&fake).method.as_str(), last(&fake).path),
        ("DELETE", format!("/v1/subscriptions/{}", created.id))
    );
    let deleted = fake.subscription_event(&created.id, "customer.subscription.deleted");
    assert_eq!(deleted["data"]["object"]["status"], "canceled");

    let unknown_customer =
        api.create_subscription("cus_missing", "price_pro", &[], "k").await.expect_err("no customer");
    assert_eq!(permanent(&unknown_customer).0, Some("resource_missing"));
    let unknown = api.retrieve_subscription("sub_missing").await.expect_err("no subscription");
    assert_eq!(permanent(&unknown), (Some("resource_missing"), "No such subscription: 'sub_missing'", 404));
}

#[tokio::test]
async fn express_accounts_onboard_and_receive_transfers() {
    let (fake, api) = setup().await;
    let account = api
        .create_express_account("seller@example.com", &[("user_id", "u2".to_owned())], "user-u2-account")
        .await
        .expect("account");
    assert!(account.id.starts_with("acct_"));
    assert!(!account.charges_enabled && !account.payouts_enabled && !account.details_submitted);
    assert_eq!(account.disabled_reason.as_deref(), Some("requirements.past_due"));
    assert!(account.currently_due.contains(&"external_account".to_owned()));
    let sent = last(&fake);
    assert_eq!((sent.path.as_str(), sent.param("type")), ("/v1/accounts", Some("express")));
    assert_eq!(sent.param("email"), Some("seller@example.com"));
    assert_eq!(sent.param("capabilities[transfers][requested]"), Some("true"));
    assert_eq!(sent.param("metadata[user_id]"), Some("u2"));

    let url = api
        .create_account_link(&account.id, "https://app.test/refresh", "https://app.test/return")
        .await
        .expect("link");
    assert_eq!(url, format!("{}/connect/onboarding/{}", fake.url(), account.id));
    let sent = last(&fake);
    assert_eq!(sent.param("type"), Some("account_onboarding"));
    assert_eq!(sent.param("refresh_url"), Some("https://app.test/refresh"));
    assert_eq!(sent.param("return_url"), Some("https://app.test/return"));

    let update = AccountUpdate {
        charges_enabled: true,
        payouts_enabled: true,
        details_submitted: true,
        ..AccountUpdate::default()
    };
    let event = fake.account_event(&account.id, update);
    assert_eq!(event["type"], "account.updated");
    assert_eq!(event["account"], account.id.as_str());
    assert_eq!(event["data"]["previous_attributes"]["charges_enabled"], false);
    let onboarded = api.retrieve_account(&account.id).await.expect("retrieved");
    assert!(onboarded.charges_enabled && onboarded.payouts_enabled && onboarded.details_submitted);
    assert_eq!((onboarded.disabled_reason, onboarded.currently_due.len()), (None, 0));

    let new = NewTransfer {
        amount_cents: 1200,
        currency: "usd",
        destination: &account.id,
        transfer_group: Some("order_42"),
        metadata: vec![("payout_id", "p1".to_owned())],
    };
    let transfer = api.create_transfer(&new, "payout-p1").await.expect("transfer");
    assert!(transfer.id.starts_with("tr_"));
    assert_eq!((transfer.amount_cents, transfer.currency.as_str()), (1200, "usd"));
    assert_eq!((transfer.destination.as_str(), transfer.reversed), (account.id.as_str(), false));
    let sent = last(&fake);
    assert_eq!(sent.param("destination"), Some(account.id.as_str()));
    assert_eq!(sent.param("transfer_group"), Some("order_42"));
    assert_eq!(sent.param("metadata[payout_id]"), Some("p1"));
    assert_eq!(sent.idempotency_key.as_deref(), Some("payout-p1"));
    assert_eq!(api.create_transfer(&new, "payout-p1").await.expect("replayed").id, transfer.id);
    assert_eq!(fake.count("POST", "/v1/transfers"), 2);

    let paid = fake.transfer_event(&transfer.id, "transfer.paid");
    assert_eq!(
        (paid["type"].as_str(), paid["data"]["object"]["id"].as_str()),
        (Some("transfer.paid"), Some(transfer.id.as_str()))
    );
    fake.transfer_event(&transfer.id, "transfer.failed");
    assert!(api.retrieve_transfer(&transfer.id).await.expect("retrieved").reversed);

    let nowhere = NewTransfer { destination: "acct_missing", ..new };
    let refused = api.create_transfer(&nowhere, "payout-p2").await.expect_err("no such account");
    assert_eq!(permanent(&refused).0, Some("resource_missing"));
    assert_eq!(permanent(&refused).2, 400);
    let unknown = api.retrieve_account("acct_missing").await.expect_err("no account");
    assert_eq!(permanent(&unknown).2, 404);
}

#[tokio::test]
async fn injected_failures_are_classified() {
    let (fake, api) = setup().await;
    let new = charge(1000, Vec::new());

    fake.fail_next("/v1/payment_intents", Failure::CardDeclined);
    let declined = api.create_payment_intent(&new, "k1").await.expect_err("declined");
    assert!(!declined.is_transient());
    assert_eq!(permanent(&declined), (Some("card_declined"), "Your card was declined.", 402));
    let err = ServiceError::from(declined);
    assert_eq!((err.kind(), err.code()), (ErrorKind::Validation, "payments.stripe_error"));
    assert_eq!(err.details().get("stripe_code").and_then(|code| code.as_str()), Some("card_declined"));

    fake.fail_next("/v1/payment_intents", Failure::ServerError);
    let server = api.create_payment_intent(&new, "k2").await.expect_err("500");
    assert!(server.is_transient(), "{server:?}");
    let err = ServiceError::from(server);
    assert_eq!((err.kind(), err.code()), (ErrorKind::Unavailable, "payments.stripe_unavailable"));
    // Not saved under the key: the retry succeeds.
    let retried = api.create_payment_intent(&new, "k2").await.expect("retry succeeds");
    assert_eq!(retried.status, "requires_payment_method");

    fake.fail_next("/v1/transfers", Failure::RateLimited);
    fake.fail_next("/v1/payment_intents", Failure::RateLimited);
    assert!(api.retrieve_payment_intent(&retried.id).await.expect_err("429").is_transient());
    assert!(api.retrieve_payment_intent(&retried.id).await.is_ok(), "a failure is used once");

    fake.fail_next("/v1/refunds", Failure::InvalidRequest("No such charge".to_owned()));
    fake.succeed_payment_intent(&retried.id);
    let invalid = api.create_refund(&retried.id, 100, &[], "k3").await.expect_err("400");
    assert_eq!(permanent(&invalid), (None, "No such charge", 400));
    assert_eq!(ServiceError::from(invalid).details().get("stripe_code"), None);
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_unreachable_stripe_is_transient() {
    let fake = FakeStripe::start().await;
    let wrong = StripeApi::new("sk_test_wrong", &fake.url()).expect("client");
    let refused = wrong.retrieve_payment_intent("pi_x").await.expect_err("401");
    assert_eq!(permanent(&refused).2, 401);
    assert_eq!(ServiceError::from(refused).kind(), ErrorKind::Unavailable);
    assert_eq!(last(&fake).authorization.as_deref(), Some("Bearer sk_test_wrong"));

    // Connection refused: a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let closed = StripeApi::new(FakeStripe::SECRET_KEY, &format!("http://127.0.0.1:{port}")).expect("client");
    let down = closed.create_customer("a@example.com", &[], "k").await.expect_err("refused");
    assert!(down.is_transient(), "{down:?}");

    // A server that accepts and never answers: the timeout fires.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let slow = StripeApi::with_timeout(FakeStripe::SECRET_KEY, &format!("http://{addr}"), Duration::from_millis(300))
        .expect("client");
    let timed_out = slow.retrieve_transfer("tr_x").await.expect_err("timeout");
    assert!(timed_out.is_transient(), "{timed_out:?}");
    hold.abort();

    assert!(StripeApi::new(FakeStripe::SECRET_KEY, "api.stripe.com").is_err(), "a base without a scheme");
}

#[test]
fn signatures_match_stripes_scheme() {
    // python3: hmac.new(b"whsec_test_fake", b"1700000000." + payload, hashlib.sha256).hexdigest()
    let payload = r#"{"id":"evt_test","object":"event"}"#;
    assert_eq!(
        stripe_signature(FakeStripe::WEBHOOK_SECRET, payload, 1_700_000_000),
        "t=1700000000,v1=3c03afb530b42cdaad7c9d009d8f3b3ec6f57d92530d07404354379c267339f2"
    );
}

/// Parses `value` with async-stripe's own model `T`, as its client and webhook code would.
fn parses_as<T: miniserde::Deserialize>(value: &serde_json::Value) -> T {
    miniserde::json::from_str(&value.to_string())
        .unwrap_or_else(|_| panic!("not a valid {}: {value:#}", std::any::type_name::<T>()))
}

#[tokio::test]
async fn every_event_and_object_parses_as_async_stripe_models() {
    let (fake, api) = setup().await;
    let mut events = Vec::new();

    let intent = api.create_payment_intent(&charge(1500, Vec::new()), "a").await.expect("intent");
    events.push(fake.succeed_payment_intent(&intent.id));
    let declined = api.create_payment_intent(&charge(900, Vec::new()), "b").await.expect("intent");
    events.push(fake.fail_payment_intent(&declined.id));
    let refund = api.create_refund(&intent.id, 300, &[], "c").await.expect("refund");
    events.push(fake.refund_event(&refund.id));

    let customer = api.create_customer("b@example.com", &[], "d").await.expect("customer");
    let subscription = api.create_subscription(&customer, "price_basic", &[], "e").await.expect("subscription");
    events.push(fake.subscription_event(&subscription.id, "customer.subscription.created"));
    events.push(fake.invoice_payment_failed(&subscription.id));
    events.push(fake.invoice_paid(&subscription.id, 1000));
    events.push(fake.invoice_paid(&subscription.id, 1000));
    events.push(fake.subscription_event(&subscription.id, "customer.subscription.updated"));
    events.push(fake.subscription_event(&subscription.id, "customer.subscription.deleted"));

    let account = api.create_express_account("c@example.com", &[], "f").await.expect("account");
    let update = AccountUpdate {
        details_submitted: true,
        disabled_reason: Some("requirements.pending_verification".to_owned()),
        currently_due: vec!["individual.verification.document".to_owned()],
        ..AccountUpdate::default()
    };
    events.push(fake.account_event(&account.id, update));
    let new = NewTransfer {
        amount_cents: 500,
        currency: "usd",
        destination: &account.id,
        transfer_group: None,
        metadata: Vec::new(),
    };
    let transfer = api.create_transfer(&new, "g").await.expect("transfer");
    for kind in ["transfer.created", "transfer.paid", "transfer.failed"] {
        events.push(fake.transfer_event(&transfer.id, kind));
    }
    events.push(fake.event("customer.updated", fake.object(&customer).expect("customer")));

    for event in &events {
        let parsed: stripe_core::Event = parses_as(event);
        assert_eq!(parsed.id.as_str(), event["id"].as_str().unwrap_or_default());
        let object = &event["data"]["object"];
        match object["object"].as_str().unwrap_or_default() {
            "payment_intent" => drop(parses_as::<stripe_core::PaymentIntent>(object)),
            "charge" => drop(parses_as::<stripe_core::Charge>(object)),
            "invoice" => drop(parses_as::<stripe_billing::Invoice>(object)),
            "subscription" => drop(parses_as::<stripe_billing::Subscription>(object)),
            "account" => drop(parses_as::<stripe_connect::Account>(object)),
            "transfer" => drop(parses_as::<stripe_connect::Transfer>(object)),
            "customer" => drop(parses_as::<stripe_core::Customer>(object)),
            other => panic!("unexpected object {other}"),
        }
    }
    // Stored objects that only events and expansions show.
    let charge_id = api.retrieve_payment_intent(&intent.id).await.expect("intent").latest_charge.expect("charge");
    let mut stored = fake.object(&charge_id).expect("charge");
    parses_as::<stripe_core::Charge>(&stored);
    // The check has teeth: without a required field the model refuses the object.
    stored.as_object_mut().map(|fields| fields.remove("disputed"));
    assert!(miniserde::json::from_str::<stripe_core::Charge>(&stored.to_string()).is_err());
    parses_as::<stripe_core::Refund>(&fake.object(&refund.id).expect("refund"));
}
