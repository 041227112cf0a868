//! Biometric sign-in with keys made in the test: ES256 (P-256, as Secure Enclave and
//! Android Keystore make) and EdDSA.

mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePublicKey;
use rand::RngCore;
use saas_core::testing::TestDatabase;
use saas_core::with_pool;
use serde_json::{Value, json};
use support::{access, start};

fn p256_key() -> p256::ecdsa::SigningKey {
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

fn ed25519_key() -> ed25519_dalek::SigningKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    ed25519_dalek::SigningKey::from_bytes(&bytes)
}

fn p256_public(key: &p256::ecdsa::SigningKey) -> String {
    STANDARD.encode(key.verifying_key().to_public_key_der().unwrap().as_bytes())
}

fn ed25519_public(key: &ed25519_dalek::SigningKey) -> String {
    use ed25519_dalek::pkcs8::EncodePublicKey;
    STANDARD.encode(key.verifying_key().to_public_key_der().unwrap().as_bytes())
}

fn sign_p256(key: &p256::ecdsa::SigningKey, challenge: &str, der: bool) -> String {
    let bytes = STANDARD.decode(challenge).unwrap();
    let signature: p256::ecdsa::Signature = key.sign(&bytes);
    if der { STANDARD.encode(signature.to_der().as_bytes()) } else { STANDARD.encode(signature.to_bytes()) }
}

fn sign_ed25519(key: &ed25519_dalek::SigningKey, challenge: &str) -> String {
    use ed25519_dalek::Signer;
    STANDARD.encode(key.sign(&STANDARD.decode(challenge).unwrap()).to_bytes())
}

#[tokio::test]
async fn an_enrolled_device_signs_in_once_per_challenge() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("bio@example.com").await;
    let key = p256_key();
    let enrolled = app
        .post_auth("/api/v1/auth/biometric/enroll/", &access(&pair), &json!({"device_id": "iphone-15", "device_name": "Ann's iPhone", "public_key": p256_public(&key), "algorithm": "ES256"}))
        .await;
    enrolled.assert_status(201);
    let credential = enrolled.json()["credential_id"].as_str().unwrap().to_owned();

    let challenge = app.post("/api/v1/auth/biometric/challenge/", &json!({"credential_id": credential})).await;
    challenge.assert_status(200);
    let body = challenge.json();
    assert_eq!(body["expires_in"], 300);
    assert!(body["expires_at"].is_string());
    let challenge = body["challenge"].as_str().unwrap().to_owned();
    assert_eq!(STANDARD.decode(&challenge).unwrap().len(), 32);

    let signature = sign_p256(&key, &challenge, true);
    let signed_in = app
        .post(
            "/api/v1/auth/biometric/authenticate/",
            &json!({"credential_id": credential, "challenge": challenge, "signature": signature}),
        )
        .await;
    signed_in.assert_status(200);
    assert_eq!(signed_in.json()["user"]["email"], "bio@example.com");

    let replay = app
        .post(
            "/api/v1/auth/biometric/authenticate/",
            &json!({"credential_id": credential, "challenge": challenge, "signature": signature}),
        )
        .await;
    replay.assert_error(401, "auth.biometric_failed");

    // Raw r‖s signatures work too, and so does naming the account by email.
    let fresh = app.post("/api/v1/auth/biometric/challenge/", &json!({"email": "BIO@example.com"})).await.json();
    let fresh = fresh["challenge"].as_str().unwrap();
    app.post(
        "/api/v1/auth/biometric/authenticate/",
        &json!({"email": "bio@example.com", "challenge": fresh, "signature": sign_p256(&key, fresh, false)}),
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn wrong_keys_expired_challenges_and_inactive_users_are_refused() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("sec@example.com").await;
    let key = p256_key();
    let enrolled = app
        .post_auth(
            "/api/v1/auth/biometric/enroll/",
            &access(&pair),
            &json!({"device_id": "pixel", "public_key": p256_public(&key), "algorithm": "ES256"}),
        )
        .await
        .json();
    let credential = enrolled["credential_id"].as_str().unwrap().to_owned();
    let ask = || {
        app.request(reqwest::Method::POST, "/api/v1/auth/biometric/challenge/")
            .json(&json!({"credential_id": credential}))
            .send()
    };

    let challenge: Value = ask().await.json();
    let challenge = challenge["challenge"].as_str().unwrap().to_owned();
    let intruder = p256_key();
    app.post("/api/v1/auth/biometric/authenticate/", &json!({"credential_id": credential, "challenge": challenge, "signature": sign_p256(&intruder, &challenge, true)}))
        .await
        .assert_error(401, "auth.biometric_failed");
    // The failed attempt spent the challenge.
    app.post(
        "/api/v1/auth/biometric/authenticate/",
        &json!({"credential_id": credential, "challenge": challenge, "signature": sign_p256(&key, &challenge, true)}),
    )
    .await
    .assert_error(401, "auth.biometric_failed");

    let expiring: Value = ask().await.json();
    let expiring = expiring["challenge"].as_str().unwrap().to_owned();
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    with_pool!(app.context().db(), pool => sqlx::query("UPDATE auth_biometric_challenges SET expires_at = $1").bind(past).execute(pool).await.map(|_| ())).unwrap();
    app.post(
        "/api/v1/auth/biometric/authenticate/",
        &json!({"credential_id": credential, "challenge": expiring, "signature": sign_p256(&key, &expiring, true)}),
    )
    .await
    .assert_error(401, "auth.biometric_failed");

    let forged = STANDARD.encode([7u8; 32]);
    app.post(
        "/api/v1/auth/biometric/authenticate/",
        &json!({"credential_id": credential, "challenge": forged, "signature": sign_p256(&key, &forged, true)}),
    )
    .await
    .assert_error(401, "auth.biometric_failed");

    let last: Value = ask().await.json();
    let last = last["challenge"].as_str().unwrap().to_owned();
    app.post_auth("/api/v1/auth/deactivate/", &access(&pair), &json!({})).await.assert_status(200);
    app.post(
        "/api/v1/auth/biometric/authenticate/",
        &json!({"credential_id": credential, "challenge": last, "signature": sign_p256(&key, &last, true)}),
    )
    .await
    .assert_error(401, "auth.biometric_failed");
}

#[tokio::test]
async fn enrolment_checks_the_key_and_ed25519_devices_work() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("ed@example.com").await;
    let token = access(&pair);
    let ed = ed25519_key();
    let enroll = |body: Value| {
        app.request(reqwest::Method::POST, "/api/v1/auth/biometric/enroll/").bearer(&token).json(&body).send()
    };
    enroll(json!({"device_id": "d1", "public_key": ed25519_public(&ed), "algorithm": "ES256"}))
        .await
        .assert_error(400, "validation.failed");
    enroll(json!({"device_id": "d1", "public_key": "bm90IGEga2V5", "algorithm": "EdDSA"}))
        .await
        .assert_error(400, "validation.failed");
    enroll(json!({"device_id": "d1", "public_key": "%%%", "algorithm": "EdDSA"}))
        .await
        .assert_error(400, "validation.failed");
    enroll(json!({"device_id": "d1", "public_key": ed25519_public(&ed), "algorithm": "RS256"}))
        .await
        .assert_error(400, "validation.failed");
    let created = enroll(json!({"device_id": "d1", "public_key": ed25519_public(&ed), "algorithm": "EdDSA"})).await;
    created.assert_status(201);
    let credential = created.json()["credential_id"].as_str().unwrap().to_owned();

    let challenge = app.post("/api/v1/auth/biometric/challenge/", &json!({"credential_id": credential})).await.json();
    let challenge = challenge["challenge"].as_str().unwrap();
    app.post(
        "/api/v1/auth/biometric/authenticate/",
        &json!({"credential_id": credential, "challenge": challenge, "signature": sign_ed25519(&ed, challenge)}),
    )
    .await
    .assert_status(200);

    // A second device; both are listed.
    let p = p256_key();
    enroll(json!({"device_id": "d2", "public_key": p256_public(&p), "algorithm": "ES256"})).await.assert_status(201);
    let list = app.get_auth("/api/v1/auth/biometric/credentials/", &token).await.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list[0].get("public_key").is_none(), "keys are not echoed");
}

#[tokio::test]
async fn status_disable_and_removal_of_devices() {
    let db = TestDatabase::create().await;
    let app = start(&db).await;
    let pair = app.register("st@example.com").await;
    let token = access(&pair);
    let status = |email: &'static str| {
        app.request(reqwest::Method::GET, &format!("/api/v1/auth/biometric/status/?email={email}")).send()
    };
    assert_eq!(status("st@example.com").await.json(), json!({"biometric_enabled": false}));
    assert_eq!(status("ghost@example.com").await.json(), json!({"biometric_enabled": false}));
    app.get("/api/v1/auth/biometric/status/").await.assert_error(400, "validation.failed");
    app.post("/api/v1/auth/biometric/challenge/", &json!({"email": "st@example.com"}))
        .await
        .assert_error(404, "auth.biometric_not_enabled");
    app.post("/api/v1/auth/biometric/challenge/", &json!({"email": "ghost@example.com"}))
        .await
        .assert_error(404, "auth.biometric_not_enabled");
    app.post("/api/v1/auth/biometric/challenge/", &json!({"credential_id": uuid::Uuid::new_v4()}))
        .await
        .assert_error(404, "auth.biometric_not_enabled");

    let key = p256_key();
    let enrolled = app
        .post_auth(
            "/api/v1/auth/biometric/enroll/",
            &token,
            &json!({"device_id": "tab", "public_key": p256_public(&key), "algorithm": "ES256"}),
        )
        .await
        .json();
    assert_eq!(status("st@example.com").await.json(), json!({"biometric_enabled": true}));

    let other = app.register("other@example.com").await;
    let id = enrolled["credential_id"].as_str().unwrap();
    app.delete_auth(&format!("/api/v1/auth/biometric/credentials/{id}/"), &access(&other))
        .await
        .assert_error(404, "not_found");

    let disabled = app.delete_auth("/api/v1/auth/biometric/", &token).await;
    disabled.assert_status(200);
    assert_eq!(disabled.json(), json!({"disabled": true}));
    app.delete_auth("/api/v1/auth/biometric/", &token).await.assert_status(200);
    assert_eq!(status("st@example.com").await.json(), json!({"biometric_enabled": false}));

    let again = app
        .post_auth(
            "/api/v1/auth/biometric/enroll/",
            &token,
            &json!({"device_id": "tab", "public_key": p256_public(&key), "algorithm": "ES256"}),
        )
        .await
        .json();
    let id = again["credential_id"].as_str().unwrap();
    app.delete_auth(&format!("/api/v1/auth/biometric/credentials/{id}/"), &token).await.assert_status(204);
    assert_eq!(app.get_auth("/api/v1/auth/biometric/credentials/", &token).await.json(), json!([]));
}
