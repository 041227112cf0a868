//! Stripe Connect onboarding through the API against the fake Stripe: the Express account
//! made once, a fresh link each time, and the status following `account.updated` — on
//! SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use saas_payments::testing::AccountUpdate;
use serde_json::json;

const ONBOARDING: &str = "/api/v1/payments/connect/onboarding/";

fn status(onboarding: &str, charges: bool, payouts: bool) -> serde_json::Value {
    json!({"onboarding_status": onboarding, "charges_enabled": charges, "payouts_enabled": payouts})
}

#[tokio::test]
async fn onboarding_creates_one_account_and_a_fresh_link_each_time() {
    let app = support::start().await;
    let (user, other, _) = app.cast().await;
    assert_eq!(app.connect_status(&user).await, status("not_started", false, false));

    let first = app.post_as(&user, ONBOARDING, &json!({})).await;
    first.assert_status(200);
    let second = app.post_as(&user, ONBOARDING, &json!({})).await;
    second.assert_status(200);

    assert_eq!(app.fake.count("POST", "/v1/accounts"), 1, "one account at Stripe");
    assert_eq!(app.fake.count("POST", "/v1/account_links"), 2, "a link each time");
    assert_eq!(app.stripe_keys("POST", "/v1/accounts"), vec![Some(format!("connect:{}:account", user.id))]);
    let account = app.connected_account(&user).await;
    for response in [&first, &second] {
        let url = response.json()["url"].as_str().expect("a url").to_owned();
        assert!(url.ends_with(&format!("/connect/onboarding/{account}")), "{url}");
    }
    let created = app.fake.requests().into_iter().find(|r| r.path == "/v1/accounts").expect("account request");
    assert_eq!(created.param("type"), Some("express"));
    assert_eq!(created.param("email"), Some(user.email.as_str()));
    let link = app.fake.requests().into_iter().find(|r| r.path == "/v1/account_links").expect("link request");
    assert_eq!(link.param("type"), Some("account_onboarding"));
    assert!(link.param("return_url").is_some_and(|url| url.ends_with("/connect/return")));

    // Stripe requires details of every new account: onboarding is under way.
    assert_eq!(app.connect_status(&user).await, status("in_progress", false, false));
    assert_eq!(app.connect_status(&other).await, status("not_started", false, false));
    app.get(ONBOARDING).await.assert_error(405, "method_not_allowed");
    app.request(reqwest::Method::POST, ONBOARDING).send().await.assert_status(401);
}

#[tokio::test]
async fn the_status_follows_the_accounts_requirements() {
    let app = support::start().await;
    let user = app.register("payee@example.com").await;
    app.post_as(&user, ONBOARDING, &json!({})).await.assert_status(200);
    let account = app.connected_account(&user).await;

    app.deliver_processed(&app.fake.account_event(&account, support::onboarded())).await;
    assert_eq!(app.connect_status(&user).await, status("complete", true, true));

    // New requirements come up: back in progress, payouts paused.
    let due = AccountUpdate {
        charges_enabled: true,
        payouts_enabled: false,
        details_submitted: true,
        currently_due: vec!["individual.verification.document".to_owned()],
        ..AccountUpdate::default()
    };
    app.deliver_processed(&app.fake.account_event(&account, due)).await;
    assert_eq!(app.connect_status(&user).await, status("in_progress", true, false));

    // Stripe rejects the account.
    let rejected = AccountUpdate { disabled_reason: Some("rejected.fraud".to_owned()), ..AccountUpdate::default() };
    app.deliver_processed(&app.fake.account_event(&account, rejected)).await;
    assert_eq!(app.connect_status(&user).await, status("rejected", false, false));
}

#[tokio::test]
async fn an_update_of_an_unknown_account_is_ignored() {
    let app = support::start().await;
    let user = app.register("payee@example.com").await;
    let stray = app.fake.event(
        "account.updated",
        json!({"id": "acct_elsewhere", "object": "account", "charges_enabled": true, "payouts_enabled": true,
               "requirements": {"currently_due": [], "past_due": [], "disabled_reason": null}}),
    );
    assert_eq!(app.deliver(&stray).await.state, "ignored");
    assert_eq!(app.connect_status(&user).await, status("not_started", false, false));
}
