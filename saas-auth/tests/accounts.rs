//! Accounts through HTTP: registration, sign-in, sessions, profile, recovery, linked
//! accounts, rate limits and races — on SQLite, or PostgreSQL with SAAS_TEST_DATABASE_URL.

mod support;

use reqwest::Method;
use saas_core::testing::TestDatabase;
use saas_core::with_pool;
use serde_json::json;
use support::{PASSWORD, access, refresh, start, start_with, token_in};

#[tokio::test]
async fn registration_creates_a_verified_later_account_and_signs_in() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("  Ann@Example.com ").await;
    let user = &pair["user"];
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["is_email_verified"], false);
    assert_eq!(user["is_active"], true);
    assert_eq!(user["profile_completed"], false);
    assert_eq!(user["linked_providers"], json!(["email"]));
    for field in ["id", "date_joined", "full_name", "username"] {
        assert!(user.get(field).is_some(), "user has {field}");
    }
    let me = app.get_auth("/api/v1/auth/user/", &access(&pair)).await;
    me.assert_status(200);
    assert_eq!(me.json(), *user);

    let welcome = app.wait_for_email("ann@example.com", "Welcome", 1).await;
    assert!(welcome.contains("Thanks for joining"));
    app.wait_for_email("ann@example.com", "Verify your email", 1).await;

    let taken =
        app.post("/api/v1/auth/registration/", &json!({"email": "ANN@example.com", "password": PASSWORD})).await;
    taken.assert_error(400, "auth.email_taken");
}

#[tokio::test]
async fn registration_validates_passwords_and_accepts_the_dj_rest_auth_shape() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    for (password, hint) in
        [("short", "too short"), ("1234567890", "numeric"), ("password123", "common"), ("bob.builder1", "similar")]
    {
        let response = app
            .post("/api/v1/auth/registration/", &json!({"email": "bob.builder@example.com", "password": password}))
            .await;
        let error = response.assert_error(400, "validation.failed");
        let messages = error["details"]["fields"]["password"].to_string();
        assert!(messages.contains(hint), "{password}: {messages}");
    }
    let mismatch = app
        .post(
            "/api/v1/auth/registration/",
            &json!({"email": "bob@example.com", "password1": PASSWORD, "password2": "other thing 1"}),
        )
        .await;
    mismatch.assert_error(400, "validation.failed");
    let ok = app
        .post(
            "/api/v1/auth/registration/",
            &json!({"email": "bob@example.com", "password1": PASSWORD, "password2": PASSWORD}),
        )
        .await;
    ok.assert_status(201);
    app.post("/api/v1/auth/registration/", &json!({"email": "not-an-email", "password": PASSWORD}))
        .await
        .assert_error(400, "validation.failed");
    app.post("/api/v1/auth/registration/", &json!({"email": "x@example.com"}))
        .await
        .assert_error(400, "validation.failed");
}

#[tokio::test]
async fn login_answers_the_same_for_a_wrong_email_and_a_wrong_password() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    app.register("cy@example.com").await;
    let ok = app.login("CY@example.com", PASSWORD).await;
    ok.assert_status(200);
    assert!(ok.json()["access"].is_string() && ok.json()["refresh"].is_string());
    let wrong_password =
        app.login("cy@example.com", "wrong password 1").await.assert_error(401, "auth.invalid_credentials");
    let unknown = app.login("nobody@example.com", PASSWORD).await.assert_error(401, "auth.invalid_credentials");
    assert_eq!(wrong_password["message"], unknown["message"]);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("dee@example.com").await;
    let first = refresh(&pair);

    let rotated = app.post("/api/v1/auth/token/refresh/", &json!({"refresh": first})).await;
    rotated.assert_status(200);
    let second = rotated.json()["refresh"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    app.get_auth("/api/v1/auth/user/", rotated.json()["access"].as_str().unwrap()).await.assert_status(200);

    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": first})).await.assert_error(401, "auth.token_reused");
    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": second})).await.assert_error(401, "auth.token_invalid");

    // Only access tokens are bearer tokens.
    app.get_auth("/api/v1/auth/user/", &second).await.assert_status(401);
    app.get("/api/v1/auth/user/").await.assert_error(401, "auth.not_authenticated");
    app.get_auth("/api/v1/auth/user/", "not.a.jwt").await.assert_error(401, "auth.token_invalid");
}

#[tokio::test]
async fn logout_revokes_the_session_and_verify_checks_tokens() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("eve@example.com").await;
    app.post("/api/v1/auth/token/verify/", &json!({"token": access(&pair)})).await.assert_status(200);
    app.post("/api/v1/auth/token/verify/", &json!({"token": refresh(&pair)})).await.assert_status(200);
    app.post("/api/v1/auth/token/verify/", &json!({"token": "garbage"})).await.assert_status(401);

    app.post_auth("/api/v1/auth/logout/", &access(&pair), &json!({"refresh": refresh(&pair)})).await.assert_status(200);
    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": refresh(&pair)})).await.assert_status(401);
    app.post("/api/v1/auth/token/verify/", &json!({"token": refresh(&pair)})).await.assert_status(401);

    let other = app.register("mallory@example.com").await;
    app.post_auth("/api/v1/auth/logout/", &access(&other), &json!({"refresh": refresh(&pair)}))
        .await
        .assert_error(400, "validation.failed");
}

#[tokio::test]
async fn a_password_change_signs_out_the_other_sessions() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let here = app.register("fay@example.com").await;
    let elsewhere = app.login("fay@example.com", PASSWORD).await.json();

    app.post_auth(
        "/api/v1/auth/password/change/",
        &access(&here),
        &json!({"old_password": "wrong one 123", "new_password": "a brand new secret"}),
    )
    .await
    .assert_error(400, "auth.invalid_password");
    app.post_auth(
        "/api/v1/auth/password/change/",
        &access(&here),
        &json!({"old_password": PASSWORD, "new_password": "123"}),
    )
    .await
    .assert_error(400, "validation.failed");
    app.post_auth(
        "/api/v1/auth/password/change/",
        &access(&here),
        &json!({"old_password": PASSWORD, "new_password": "a brand new secret"}),
    )
    .await
    .assert_status(200);

    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": refresh(&elsewhere)})).await.assert_status(401);
    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": refresh(&here)})).await.assert_status(200);
    app.login("fay@example.com", PASSWORD).await.assert_status(401);
    app.login("fay@example.com", "a brand new secret").await.assert_status(200);
}

#[tokio::test]
async fn a_password_reset_link_works_once_and_revokes_every_session() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("gil@example.com").await;

    app.post("/api/v1/auth/password/reset/", &json!({"email": "nobody@example.com"})).await.assert_status(200);
    app.post("/api/v1/auth/password/reset/", &json!({"email": "Gil@Example.com"})).await.assert_status(200);
    app.post("/api/v1/auth/password/reset/", &json!({"email": "gil@example.com"})).await.assert_status(200);
    let first = token_in(&app.wait_for_email("gil@example.com", "Reset your password", 1).await, "reset-password");
    let second = token_in(&app.wait_for_email("gil@example.com", "Reset your password", 2).await, "reset-password");
    assert!(app.emails_to("nobody@example.com").is_empty(), "no email for unknown accounts");

    let confirm = |token: String, password: &'static str| {
        app.request(Method::POST, "/api/v1/auth/password/reset/confirm/")
            .json(&json!({"token": token, "new_password": password}))
            .send()
    };
    confirm(first.clone(), "12345").await.assert_error(400, "validation.failed");
    confirm(first.clone(), "reset and renewed").await.assert_status(200);
    confirm(first, "reset and renewed again").await.assert_error(400, "auth.invalid_token");
    confirm(second, "reset and renewed again").await.assert_error(400, "auth.invalid_token");
    confirm("0".repeat(64), "reset and renewed again").await.assert_error(400, "auth.invalid_token");

    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": refresh(&pair)})).await.assert_status(401);
    app.get_auth("/api/v1/auth/user/", &access(&pair)).await.assert_status(401);
    app.login("gil@example.com", "reset and renewed").await.assert_status(200);
}

#[tokio::test]
async fn the_verification_link_verifies_once() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("hal@example.com").await;
    app.wait_for_email("hal@example.com", "Verify your email", 1).await;
    app.post_auth("/api/v1/auth/resend-email/", &access(&pair), &json!({})).await.assert_status(200);
    let token = token_in(&app.wait_for_email("hal@example.com", "Verify your email", 2).await, "verify-email");
    app.post("/api/v1/auth/verify-email/", &json!({"token": token})).await.assert_status(200);
    app.post("/api/v1/auth/verify-email/", &json!({"token": token})).await.assert_error(400, "auth.invalid_token");
    let me = app.get_auth("/api/v1/auth/user/", &access(&pair)).await.json();
    assert_eq!(me["is_email_verified"], true);
    app.post_auth("/api/v1/auth/resend-email/", &access(&pair), &json!({}))
        .await
        .assert_error(400, "auth.already_verified");
}

#[tokio::test]
async fn changing_the_email_unverifies_it_and_sends_a_new_link() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("ivy@example.com").await;
    app.register("taken@example.com").await;
    app.patch_auth("/api/v1/auth/user/", &access(&pair), &json!({"email": "TAKEN@example.com"}))
        .await
        .assert_error(400, "auth.email_taken");
    let old_link = token_in(&app.wait_for_email("ivy@example.com", "Verify your email", 1).await, "verify-email");
    let changed = app.patch_auth("/api/v1/auth/user/", &access(&pair), &json!({"email": "Ivy.New@Example.com"})).await;
    changed.assert_status(200);
    assert_eq!(changed.json()["email"], "ivy.new@example.com");
    assert_eq!(changed.json()["is_email_verified"], false);
    let token = token_in(&app.wait_for_email("ivy.new@example.com", "Verify your email", 1).await, "verify-email");
    app.post("/api/v1/auth/verify-email/", &json!({"token": old_link})).await.assert_error(400, "auth.invalid_token");
    app.post("/api/v1/auth/verify-email/", &json!({"token": token})).await.assert_status(200);
    app.login("ivy.new@example.com", PASSWORD).await.assert_status(200);
    app.post_auth("/api/v1/auth/resend-email/", &access(&pair), &json!({}))
        .await
        .assert_error(400, "auth.already_verified");
}

#[tokio::test]
async fn the_profile_needs_a_valid_unique_username() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("jo@example.com").await;
    let token = access(&pair);
    let profile = app.get_auth("/api/v1/auth/profile/", &token).await;
    profile.assert_status(200);
    assert_eq!(profile.json()["is_complete"], false);
    assert_eq!(profile.json()["preferences"], json!({}));

    app.patch_auth("/api/v1/auth/profile/", &token, &json!({"first_name": "Jo"}))
        .await
        .assert_error(400, "validation.failed");
    app.patch_auth("/api/v1/auth/profile/", &token, &json!({"username": "Admin"}))
        .await
        .assert_error(400, "validation.failed");
    app.patch_auth("/api/v1/auth/profile/", &token, &json!({"username": "no spaces"}))
        .await
        .assert_error(400, "validation.failed");
    app.patch_auth("/api/v1/auth/profile/", &token, &json!({"username": "jo_1", "preferences": [1]}))
        .await
        .assert_error(400, "validation.failed");

    let saved = app
        .patch_auth(
            "/api/v1/auth/profile/",
            &token,
            &json!({"username": "Jo_Lee", "first_name": "Jo", "last_name": "Lee", "preferences": {"theme": "dark"}}),
        )
        .await;
    saved.assert_status(200);
    let body = saved.json();
    assert_eq!(body["username"], "jo_lee");
    assert_eq!(body["full_name"], "Jo Lee");
    assert_eq!(body["is_complete"], true);
    assert_eq!(body["preferences"], json!({"theme": "dark"}));
    let me = app.get_auth("/api/v1/auth/user/", &token).await.json();
    assert_eq!(me["username"], "jo_lee");
    assert_eq!(me["profile_completed"], true);

    // Text PostgreSQL cannot store is a 400, never a 500 (SQLite stores it).
    let nul = app.patch_auth("/api/v1/auth/profile/", &token, &json!({"bio": "a\u{0}b"})).await;
    assert!(nul.status == 200 || nul.status == 400, "{}", nul.text());
    if nul.status == 400 {
        nul.assert_error(400, "validation.failed");
    }
    // A PUT may send back what GET returned; read-only fields are ignored.
    let mut whole = app.get_auth("/api/v1/auth/profile/", &token).await.json();
    whole["bio"] = json!("from a full object");
    let put = app.request(Method::PUT, "/api/v1/auth/profile/").bearer(&token).json(&whole).send().await;
    put.assert_status(200);
    assert_eq!(put.json()["bio"], "from a full object");

    let keep = app
        .request(Method::PUT, "/api/v1/auth/profile/")
        .bearer(&token)
        .json(&json!({"username": "JO_LEE", "bio": "hi"}))
        .send()
        .await;
    keep.assert_status(200);

    let other = app.register("kim@example.com").await;
    app.patch_auth("/api/v1/auth/profile/", &access(&other), &json!({"username": "jo_LEE"}))
        .await
        .assert_error(400, "auth.username_taken");
    app.delete_auth("/api/v1/auth/profile/", &token).await.assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn deactivation_ends_every_session_and_keeps_the_data() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("lou@example.com").await;
    let done = app.post_auth("/api/v1/auth/deactivate/", &access(&pair), &json!({"reason": "leaving"})).await;
    done.assert_status(200);
    assert_eq!(done.json()["is_active"], false);
    app.get_auth("/api/v1/auth/user/", &access(&pair)).await.assert_status(401);
    app.post("/api/v1/auth/token/refresh/", &json!({"refresh": refresh(&pair)})).await.assert_status(401);
    app.login("lou@example.com", PASSWORD).await.assert_error(403, "auth.inactive");
    app.login("lou@example.com", "wrong password 9").await.assert_error(401, "auth.invalid_credentials");
    let exists: i64 = with_pool!(app.context().db(), pool => sqlx::query_scalar("SELECT COUNT(*) FROM auth_users WHERE email = 'lou@example.com'").fetch_one(pool).await).unwrap();
    assert_eq!(exists, 1);

    let second = app.register("mo@example.com").await;
    let no_body = app.request(Method::POST, "/api/v1/auth/deactivate/").bearer(&access(&second)).send().await;
    no_body.assert_status(200);
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("ned@example.com").await;
    let links = app.get_auth("/api/v1/auth/linked-accounts/", &access(&pair)).await.json();
    assert_eq!(links.as_array().unwrap().len(), 1);
    assert_eq!(links[0]["provider"], "email");
    assert_eq!(links[0]["provider_user_id"], "ned@example.com");
    let id = links[0]["id"].as_str().unwrap();
    app.delete_auth(&format!("/api/v1/auth/linked-accounts/{id}/"), &access(&pair))
        .await
        .assert_error(400, "auth.last_login_method");
    let other = app.register("oz@example.com").await;
    app.delete_auth(&format!("/api/v1/auth/linked-accounts/{id}/"), &access(&other))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn credential_endpoints_are_rate_limited_per_address_and_account() {
    let db = TestDatabase::create().await;
    let app = start_with(&db, |b| b.var("AUTH_RATE_LIMIT_PER_MINUTE", "3")).await;
    for _ in 0..3 {
        app.login("pat@example.com", "wrong password 1").await.assert_status(401);
    }
    let limited = app.login("pat@example.com", "wrong password 1").await;
    limited.assert_error(429, "rate_limited");
    assert!(limited.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn ten_racing_registrations_of_one_email_create_one_account() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let attempts = (0..10).map(|i| {
        let email = if i % 2 == 0 { "Race@Example.com" } else { "race@example.com" };
        app.request(Method::POST, "/api/v1/auth/registration/")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
    });
    let answers = futures::future::join_all(attempts).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(created, 1, "{:?}", answers.iter().map(|a| (a.status, a.text())).collect::<Vec<_>>());
    for answer in answers.iter().filter(|a| a.status != 201) {
        answer.assert_error(400, "auth.email_taken");
    }
}

#[tokio::test]
async fn a_django_password_hash_signs_in_and_is_upgraded_to_argon2id() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    app.register("django@example.com").await;
    // Made by Django 5.2's PBKDF2PasswordHasher: make_password("correct horse battery",
    // salt="DjangoSalt1234", hasher="pbkdf2_sha256").
    let django = support::DJANGO_HASH;
    with_pool!(app.context().db(), pool => sqlx::query("UPDATE auth_users SET password_hash = $1 WHERE email = 'django@example.com'")
        .bind(django).execute(pool).await.map(|_| ())).unwrap();
    app.login("django@example.com", "not the password").await.assert_status(401);
    app.login("django@example.com", PASSWORD).await.assert_status(200);
    let stored: String = with_pool!(app.context().db(), pool => sqlx::query_scalar("SELECT password_hash FROM auth_users WHERE email = 'django@example.com'")
        .fetch_one(pool).await).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    app.login("django@example.com", PASSWORD).await.assert_status(200);
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let db = TestDatabase::create().await;
    // Issued in whole seconds, a token of 3 s lives at least 2 s: long enough to be used once.
    let app = start_with(&db, |b| b.var("JWT_ACCESS_TTL_SECONDS", "3")).await;
    let pair = app.register("quin@example.com").await;
    app.get_auth("/api/v1/auth/user/", &access(&pair)).await.assert_status(200);
    tokio::time::sleep(std::time::Duration::from_millis(4100)).await;
    let expired = app.get_auth("/api/v1/auth/user/", &access(&pair)).await.assert_error(401, "auth.token_invalid");
    assert!(expired["message"].as_str().unwrap().contains("expired"));
    let renewed = app.post("/api/v1/auth/token/refresh/", &json!({"refresh": refresh(&pair)})).await;
    renewed.assert_status(200);
}

#[tokio::test]
async fn the_schema_documents_every_auth_route_with_bearer_security() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let doc = app.get("/schema/?format=json").await.json();
    let paths = doc["paths"].as_object().unwrap();
    let auth_paths = paths.keys().filter(|p| p.starts_with("/api/v1/auth/")).count();
    assert!(auth_paths >= 23, "{auth_paths} auth paths documented");
    assert!(doc["paths"]["/api/v1/auth/user/"]["get"]["security"].to_string().contains("bearerAuth"));
    assert!(
        doc["paths"]["/api/v1/auth/user/"]["put"].is_object()
            && doc["paths"]["/api/v1/auth/user/"]["patch"].is_object()
    );
    assert!(doc["components"]["schemas"]["TokenPair"].is_object());
    assert_eq!(app.get("/api/v1/").await.json()["auth"], "/api/v1/auth/");
}
