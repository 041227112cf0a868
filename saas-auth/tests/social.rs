//! Google and Apple sign-in against a local JWKS server, with ID tokens signed by test keys.

mod support;

use saas_core::testing::TestDatabase;
use serde_json::json;
use support::oidc::{FakeJwks, TEST_KEY_1, TEST_KEY_2, apple_claims, google_claims, now, sign, sign_with_kid};
use support::{PASSWORD, access, start_with};

const GOOGLE_CLIENT: &str = "test-google-client.apps.googleusercontent.com";
const APPLE_CLIENT: &str = "com.example.app";

async fn app_with(db: &TestDatabase, jwks: &FakeJwks) -> support::AuthApp {
    let url = jwks.url.clone();
    start_with(db, move |b| {
        b.var("GOOGLE_CLIENT_ID", GOOGLE_CLIENT)
            .var("GOOGLE_JWKS_URL", url.clone())
            .var("APPLE_CLIENT_ID", APPLE_CLIENT)
            .var("APPLE_JWKS_URL", url)
    })
    .await
}

#[tokio::test]
async fn google_creates_the_account_once_then_signs_in() {
    let db = TestDatabase::create().await;
    let jwks = FakeJwks::start(&[&TEST_KEY_1]).await;
    let app = app_with(&db, &jwks).await;
    let token = sign(&TEST_KEY_1, &google_claims(GOOGLE_CLIENT, "google-sub-1", "Gia@Example.com"));
    let created = app.post("/api/v1/auth/google/", &json!({"id_token": token})).await;
    created.assert_status(201);
    let user = created.json()["user"].clone();
    assert_eq!(user["email"], "gia@example.com");
    assert_eq!(user["is_email_verified"], true);
    assert_eq!(user["linked_providers"], json!(["google"]));
    assert_eq!(user["full_name"], "Ada Lovelace");

    let again = app.post("/api/v1/auth/google/", &json!({"id_token": token})).await;
    again.assert_status(200);
    assert_eq!(again.json()["user"]["id"], user["id"]);
    app.get_auth("/api/v1/auth/user/", &access(&again.json())).await.assert_status(200);
}

#[tokio::test]
async fn bad_google_tokens_are_refused() {
    let db = TestDatabase::create().await;
    let jwks = FakeJwks::start(&[&TEST_KEY_1]).await;
    let app = app_with(&db, &jwks).await;
    let mut expired = google_claims(GOOGLE_CLIENT, "s", "x@example.com");
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    let mut wrong_issuer = google_claims(GOOGLE_CLIENT, "s", "x@example.com");
    wrong_issuer["iss"] = json!("https://evil.example.com");
    let cases = [
        ("expired", sign(&TEST_KEY_1, &expired)),
        ("wrong audience", sign(&TEST_KEY_1, &google_claims("another-client", "s", "x@example.com"))),
        ("wrong issuer", sign(&TEST_KEY_1, &wrong_issuer)),
        (
            "unknown key",
            sign_with_kid(&TEST_KEY_1, Some("no-such-key"), &google_claims(GOOGLE_CLIENT, "s", "x@example.com")),
        ),
        (
            "signed by another key",
            sign_with_kid(&TEST_KEY_2, Some(TEST_KEY_1.kid), &google_claims(GOOGLE_CLIENT, "s", "x@example.com")),
        ),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (case, token) in cases {
        let answer = app.post("/api/v1/auth/google/", &json!({"id_token": token})).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.text());
        answer.assert_error(401, "auth.invalid_social_token");
    }
    let mut unverified = google_claims(GOOGLE_CLIENT, "s2", "y@example.com");
    unverified["email_verified"] = json!(false);
    app.post("/api/v1/auth/google/", &json!({"id_token": sign(&TEST_KEY_1, &unverified)})).await.assert_status(401);
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_an_unknown_kid_arrives() {
    let db = TestDatabase::create().await;
    let jwks = FakeJwks::start(&[&TEST_KEY_1]).await;
    let app = app_with(&db, &jwks).await;
    app.post(
        "/api/v1/auth/google/",
        &json!({"id_token": sign(&TEST_KEY_1, &google_claims(GOOGLE_CLIENT, "r1", "r1@example.com"))}),
    )
    .await
    .assert_status(201);
    let fetched = jwks.fetches();
    app.post(
        "/api/v1/auth/google/",
        &json!({"id_token": sign(&TEST_KEY_1, &google_claims(GOOGLE_CLIENT, "r1", "r1@example.com"))}),
    )
    .await
    .assert_status(200);
    assert_eq!(jwks.fetches(), fetched, "keys are cached");

    jwks.set_keys(&[&TEST_KEY_2]).await;
    app.post(
        "/api/v1/auth/google/",
        &json!({"id_token": sign(&TEST_KEY_2, &google_claims(GOOGLE_CLIENT, "r2", "r2@example.com"))}),
    )
    .await
    .assert_status(201);
    assert!(jwks.fetches() > fetched, "the new key set was fetched");
}

#[tokio::test]
async fn apple_names_arrive_once_and_an_existing_email_is_linked() {
    let db = TestDatabase::create().await;
    let jwks = FakeJwks::start(&[&TEST_KEY_1]).await;
    let app = app_with(&db, &jwks).await;
    let token = sign(&TEST_KEY_1, &apple_claims(APPLE_CLIENT, "apple-1", "apple.user@example.com"));
    let created =
        app.post("/api/v1/auth/apple/", &json!({"id_token": token, "first_name": "Tim", "last_name": "Apple"})).await;
    created.assert_status(201);
    assert_eq!(created.json()["user"]["full_name"], "Tim Apple");
    assert_eq!(created.json()["user"]["linked_providers"], json!(["apple"]));

    // A verified account registered with a password gets Google linked and keeps its password.
    let registered = app.register("both@example.com").await;
    let link = support::token_in(&app.wait_for_email("both@example.com", "Verify your email", 1).await, "verify-email");
    app.post("/api/v1/auth/verify-email/", &json!({"token": link})).await.assert_status(200);
    let linked = app
        .post(
            "/api/v1/auth/google/",
            &json!({"id_token": sign(&TEST_KEY_1, &google_claims(GOOGLE_CLIENT, "g-both", "both@example.com"))}),
        )
        .await;
    linked.assert_status(200);
    assert_eq!(linked.json()["user"]["id"], registered["user"]["id"]);
    assert_eq!(linked.json()["user"]["is_email_verified"], true);
    assert_eq!(linked.json()["user"]["linked_providers"], json!(["email", "google"]));
    app.login("both@example.com", PASSWORD).await.assert_status(200);

    // With two methods, one may go; the last may not.
    let token = access(&linked.json());
    let links = app.get_auth("/api/v1/auth/linked-accounts/", &token).await.json();
    let google = links.as_array().unwrap().iter().find(|l| l["provider"] == "google").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let email =
        links.as_array().unwrap().iter().find(|l| l["provider"] == "email").unwrap()["id"].as_str().unwrap().to_owned();
    app.delete_auth(&format!("/api/v1/auth/linked-accounts/{email}/"), &token).await.assert_status(204);
    app.login("both@example.com", PASSWORD).await.assert_status(401);
    app.delete_auth(&format!("/api/v1/auth/linked-accounts/{google}/"), &token)
        .await
        .assert_error(400, "auth.last_login_method");
}

#[tokio::test]
async fn an_unverified_squatter_loses_the_account_to_the_email_owner() {
    let db = TestDatabase::create().await;
    let jwks = FakeJwks::start(&[&TEST_KEY_1]).await;
    let app = app_with(&db, &jwks).await;
    let squatter = app.register("owner@example.com").await;
    let owner = app
        .post(
            "/api/v1/auth/google/",
            &json!({"id_token": sign(&TEST_KEY_1, &google_claims(GOOGLE_CLIENT, "g-owner", "owner@example.com"))}),
        )
        .await;
    owner.assert_status(200);
    assert_eq!(owner.json()["user"]["is_email_verified"], true);
    app.login("owner@example.com", PASSWORD).await.assert_error(401, "auth.invalid_credentials");
    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": support::refresh(&squatter)})).await.assert_status(401);
    app.get_auth("/api/v1/auth/user/", &access(&squatter)).await.assert_status(401);
    app.get_auth("/api/v1/auth/user/", &access(&owner.json())).await.assert_status(200);
}

#[tokio::test]
async fn an_unconfigured_provider_is_refused() {
    let db = TestDatabase::create().await;
    let app = support::start(&db).await;
    app.post("/api/v1/auth/google/", &json!({"id_token": "x"})).await.assert_error(400, "auth.provider_not_configured");
}
