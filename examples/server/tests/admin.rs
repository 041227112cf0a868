//! The admin site of the reference server over HTTP, on the whole composition: every
//! module's panels are there, and payment actions obey the payments rules — a refund of an
//! order in the wrong state shows the service's error and changes nothing; a release of a
//! held escrow order moves it and pays out — each in the audit log.

use reqwest::Method;
use saas_admin::testing::AdminClient;
use saas_core::testing::{TestApp, TestDatabase};
use saas_payments::testing::{FakeStripe, deliver_event, wait_processed};
use serde_json::{Value, json};
use support::{PASSWORD, register};

mod support;

async fn order_of(app: &TestApp, access: &str, id: &str) -> Value {
    let response = app.request(Method::GET, &format!("/api/v1/payments/orders/{id}/")).bearer(access).send().await;
    response.assert_status(200);
    response.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_actions_in_the_admin_follow_the_payments_rules() {
    let db = TestDatabase::create().await;
    let stripe = FakeStripe::start().await;
    let app = support::app_with_stripe(&stripe).start(&db).await;
    saas_auth::AuthService::get(app.context()).unwrap().create_superuser("staff@example.com", PASSWORD).await.unwrap();
    let (_, payer) = register(&app, "payer@example.com").await;
    let (payee_id, _) = register(&app, "payee@example.com").await;
    let order = app
        .request(Method::POST, "/api/v1/payments/orders/")
        .bearer(&payer)
        .json(&json!({"strategy_type": "escrow", "amount_cents": 10_000, "payee_id": payee_id}))
        .send()
        .await;
    order.assert_status(201);
    let id = order.json()["id"].as_str().unwrap().to_owned();

    let mut browser = AdminClient::new(app.url(""));
    assert_eq!(browser.sign_in("staff@example.com", PASSWORD).await.status, 303);
    let dashboard = browser.get("/admin/").await;
    for card in ["Accounts", "Payments", "Chat", "Notifications", "Background jobs"] {
        assert!(dashboard.shows(card), "the {card} card");
    }
    for panel in ["/admin/users/", "/admin/orders/", "/admin/webhook-events/", "/admin/ledger-accounts/"] {
        assert_eq!(browser.get(panel).await.status, 200, "{panel}");
    }
    let listed = browser.get("/admin/orders/?state=pending").await;
    assert!(listed.shows(&id), "the pending order is listed");

    // A pending order cannot be refunded: the service's 409, nothing changes.
    let page = format!("/admin/orders/{id}/");
    let before = browser.get(&page).await.body;
    let refused = browser
        .submit(
            &page,
            &format!("{page}actions/refund/"),
            &[("amount_cents", ""), ("reason", "asked"), ("confirm", "true")],
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.shows("flash error"), "the error is shown on the page");
    assert_eq!(order_of(&app, &payer, &id).await["state"], "pending");
    let after = browser.get(&page).await.body;
    let entries = |html: &str| {
        html.split("<h2>Ledger entries</h2>").nth(1).map(|s| s.split("</table>").next().unwrap_or("").to_owned())
    };
    assert!(entries(&before).is_some(), "the detail page lists the order's ledger entries");
    assert_eq!(entries(&before), entries(&after), "no ledger entry was posted");
    assert!(browser.get("/admin/audit-log/?outcome=refused").await.shows(&id));

    // Paid and held: the release goes through the same rules and pays out.
    let payments = saas_payments::PaymentsService::get(app.context()).unwrap();
    let stored = payments.order(id.parse().unwrap()).await.unwrap().expect("the order");
    let event = stripe.succeed_payment_intent(&stored.stripe_payment_intent_id.expect("a payment intent"));
    deliver_event(&app, &event).await.assert_status(200);
    wait_processed(&app, &event).await;
    assert_eq!(order_of(&app, &payer, &id).await["state"], "held");
    let released = browser.submit(&page, &format!("{page}actions/release/"), &[("confirm", "true")]).await;
    assert_eq!(released.status, 303, "{}", released.body);
    assert_eq!(order_of(&app, &payer, &id).await["state"], "released");
    let detail = browser.get(&page).await;
    let history = detail.body.split("<h2>State history</h2>").nth(1).unwrap_or_default();
    assert!(
        history.contains("<td>held</td><td>released</td><td>release</td><td>staff@example.com</td>"),
        "the state history names the staff member: {history:.2000}"
    );
    let log = browser.get("/admin/audit-log/?outcome=done").await;
    assert!(log.shows("release") && log.shows(&id));
}
