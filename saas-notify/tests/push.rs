//! The FCM and APNs senders against fake providers on loopback that check the real wire format and signatures.

mod support;

use std::time::Duration;

use saas_core::{Config, ErrorKind, ServiceError};
use saas_notify::push::{ApnsSender, FcmSender, PushMessage, PushOutcome, PushSender, configured_senders};
use serde_json::{Map, Value, json};
use support::push::{
    APNS_KEY_ID, APNS_KEY_PEM, APNS_TEAM_ID, APNS_TOPIC, ApnsAnswer, FCM_CLIENT_EMAIL, FCM_PRIVATE_KEY_PEM,
    FCM_PROJECT_ID, FakeApns, FakeFcm, FcmAnswer, OTHER_APNS_KEY_PEM,
};

/// A P-384 key in PKCS#8 PEM: an EC key, but not one APNs (ES256) can use.
const P384_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBUaXfPh7KOmAucuaav
7oxAkpt3GYm1rhKuoVsD7CmTOFMw0LHkMEeRI3MR0tUw3xKhZANiAATFSGUcG/zf
pEJzxFh0tZEZkuYAF3ZsWaa3QmmO9R25Ac+Kz5MdOKy16ghF7Ma7SLToMNU7QA/Z
BBEdORYkmyFOVdZPqrpI2pi3Yb7LnBoVC5Bgfbf1YQo0VTMcWPKOkE4=
-----END PRIVATE KEY-----
";

/// A device token in APNs' format (64 hex digits).
const APNS_DEVICE: &str = "5c1e6c4b2f0a9d8e7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa";

/// A message with string and non-string data values.
fn message() -> PushMessage {
    let mut data = Map::new();
    data.insert("conversation_id".into(), json!("c-42"));
    data.insert("unread".into(), json!(3));
    data.insert("urgent".into(), json!(true));
    data.insert("sender".into(), json!({"id": "u-7", "name": "Ada"}));
    PushMessage { title: "New message".into(), body: "Ada: are you there?".into(), data }
}

/// The sent message's id, failing the test when the provider did not accept it.
fn sent_id(outcome: PushOutcome) -> Option<String> {
    match outcome {
        PushOutcome::Sent { provider_message_id } => provider_message_id,
        other => panic!("expected Sent, got {other:?}"),
    }
}

/// Asserts a transient failure (the caller must retry).
fn assert_transient(err: &ServiceError) {
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.code(), "notify.push_unavailable", "{err}");
}

/// Waits until the wall-clock second changes, so a newly signed JWT differs from one signed before.
async fn next_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// A loopback URL where nothing listens.
async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}")
}

/// The error `configured_senders` gives for `config` (the senders themselves are not `Debug`).
fn config_error(config: &Config) -> ServiceError {
    match configured_senders(config) {
        Ok(senders) => panic!("expected a configuration error, got {} senders", senders.len()),
        Err(err) => err,
    }
}

/// Debug-style configuration with `vars` added.
fn config(vars: Vec<(String, String)>) -> Config {
    let mut all = vec![("DEBUG".to_owned(), "true".to_owned())];
    all.extend(vars);
    Config::from_vars(all).expect("config")
}

// ----------------------------------------------------------------------------------------------------------------
// FCM
// ----------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn fcm_sends_the_documented_message_and_returns_its_name() {
    let fcm = FakeFcm::start().await;
    let sender = fcm.sender();
    assert_eq!(sender.platform(), "fcm");

    let outcome = sender.send("android-device-1", &message()).await.expect("sent");

    assert_eq!(sent_id(outcome).as_deref(), Some("projects/demo-project/messages/1"));
    assert_eq!(fcm.rejected_exchanges(), Vec::<String>::new());
    assert_eq!(
        fcm.sent(),
        vec![json!({"message": {
            "token": "android-device-1",
            "notification": {"title": "New message", "body": "Ada: are you there?"},
            "data": {
                "conversation_id": "c-42",
                "unread": "3",
                "urgent": "true",
                "sender": "{\"id\":\"u-7\",\"name\":\"Ada\"}",
            },
        }})]
    );
    let requests = fcm.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].project, FCM_PROJECT_ID);
    assert_eq!(requests[0].access_token, "fake-access-1");
}

#[tokio::test]
async fn fcm_access_token_is_exchanged_once_and_reused() {
    let fcm = FakeFcm::start().await;
    let sender = fcm.sender();

    sender.send("device-a", &message()).await.expect("first send");
    sender.send("device-b", &message()).await.expect("second send");
    assert_eq!(fcm.token_exchanges(), 1);

    // Racing sends on a fresh sender share one exchange too.
    let racing = fcm.sender();
    let sends = (0..5).map(|i| {
        let racing = &racing;
        async move { racing.send(&format!("device-{i}"), &message()).await }
    });
    for outcome in futures::future::join_all(sends).await {
        sent_id(outcome.expect("racing send"));
    }
    assert_eq!(fcm.token_exchanges(), 2);
    assert_eq!(fcm.sent().len(), 7);
    assert!(fcm.requests().iter().skip(2).all(|request| request.access_token == "fake-access-2"));
}

#[tokio::test]
async fn fcm_unregistered_and_invalid_tokens_are_reported_for_removal() {
    let fcm = FakeFcm::start().await;
    fcm.fail_with("uninstalled", FcmAnswer::Unregistered);
    fcm.fail_with("garbage", FcmAnswer::InvalidArgument);
    let sender = fcm.sender();

    let outcome = sender.send("uninstalled", &message()).await.expect("answered");
    assert_eq!(outcome, PushOutcome::InvalidToken { reason: "UNREGISTERED".into() });

    let outcome = sender.send("garbage", &message()).await.expect("answered");
    assert_eq!(outcome, PushOutcome::InvalidToken { reason: "INVALID_ARGUMENT".into() });

    assert!(fcm.sent().is_empty());
    assert_eq!(fcm.requests().iter().map(|r| r.status).collect::<Vec<_>>(), vec![404, 400]);
}

#[tokio::test]
async fn fcm_server_errors_and_quota_are_transient() {
    let fcm = FakeFcm::start().await;
    fcm.fail_with("flaky", FcmAnswer::ServerError { times: 1 });
    fcm.fail_with("busy", FcmAnswer::QuotaExceeded { times: 1 });
    let sender = fcm.sender();

    let err = sender.send("flaky", &message()).await.expect_err("500 is transient");
    assert_transient(&err);
    assert_eq!(err.details()["status"], 500);
    sent_id(sender.send("flaky", &message()).await.expect("the retry is sent"));

    let err = sender.send("busy", &message()).await.expect_err("429 is transient");
    assert_transient(&err);
    sent_id(sender.send("busy", &message()).await.expect("the retry is sent"));

    assert_eq!(fcm.token_exchanges(), 1);
}

#[tokio::test]
async fn fcm_revoked_access_token_fails_once_then_is_replaced() {
    let fcm = FakeFcm::start().await;
    let sender = fcm.sender();
    sender.send("device-1", &message()).await.expect("sent");
    assert_eq!(fcm.token_exchanges(), 1);

    fcm.revoke_tokens();
    let err = sender.send("device-1", &message()).await.expect_err("401 is transient");
    assert_transient(&err);
    assert_eq!(fcm.unauthenticated_requests(), 1);
    assert_eq!(fcm.token_exchanges(), 1, "no exchange before the retry");

    sent_id(sender.send("device-1", &message()).await.expect("the retry gets a fresh token"));
    assert_eq!(fcm.token_exchanges(), 2);
    assert_eq!(fcm.requests().last().map(|r| r.access_token.clone()).as_deref(), Some("fake-access-2"));
}

#[tokio::test]
async fn fcm_unreachable_provider_is_transient() {
    let fcm = FakeFcm::start().await;
    let dead = closed_url().await;

    // The token endpoint is down.
    let sender =
        FcmSender::new(FCM_PROJECT_ID, &fcm.credentials_json(), fcm.base_url(), Some(&format!("{dead}/token")))
            .expect("sender");
    assert_transient(&sender.send("device-1", &message()).await.expect_err("no token endpoint"));

    // FCM itself is down (the token exchange works).
    let sender = FcmSender::new(FCM_PROJECT_ID, &fcm.credentials_json(), &dead, None).expect("sender");
    assert_transient(&sender.send("device-1", &message()).await.expect_err("no FCM"));
    assert_eq!(fcm.token_exchanges(), 1);
}

#[tokio::test]
async fn fcm_refused_assertion_is_transient() {
    let fcm = FakeFcm::start().await;
    // The assertion's `aud` is the configured token URL, which the fake does not accept as its own.
    let sender = FcmSender::new(
        FCM_PROJECT_ID,
        &fcm.credentials_json(),
        fcm.base_url(),
        Some(&format!("{}/token?audience=other", fcm.base_url())),
    )
    .expect("sender");
    assert_transient(&sender.send("device-1", &message()).await.expect_err("assertion refused"));
    assert_eq!(fcm.token_exchanges(), 0);
    assert_eq!(fcm.rejected_exchanges().len(), 1);
}

#[tokio::test]
async fn fcm_credentials_are_checked_when_the_sender_is_made() {
    let credentials = |key: &str| {
        json!({"type": "service_account", "client_email": FCM_CLIENT_EMAIL, "private_key": key}).to_string()
    };
    let err = FcmSender::new(FCM_PROJECT_ID, "{}", "http://127.0.0.1:9", None).expect_err("no fields");
    assert_eq!(err.code(), "config.invalid");
    let err = FcmSender::new(FCM_PROJECT_ID, "not json", "http://127.0.0.1:9", None).expect_err("not JSON");
    assert_eq!(err.code(), "config.invalid");
    let err = FcmSender::new(
        FCM_PROJECT_ID,
        &credentials("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        "http://127.0.0.1:9",
        None,
    )
    .expect_err("broken key");
    assert_eq!(err.code(), "config.invalid");
    let err = FcmSender::new(FCM_PROJECT_ID, &credentials(OTHER_APNS_KEY_PEM), "http://127.0.0.1:9", None)
        .expect_err("an EC key is not an RSA key");
    assert_eq!(err.code(), "config.invalid");
    let err =
        FcmSender::new("", &credentials(FCM_PRIVATE_KEY_PEM), "http://127.0.0.1:9", None).expect_err("no project");
    assert_eq!(err.code(), "config.invalid");

    // Without `token_uri` nor an explicit URL, Google's token endpoint is used.
    let sender = FcmSender::new(FCM_PROJECT_ID, &credentials(FCM_PRIVATE_KEY_PEM), "http://127.0.0.1:9", None)
        .expect("PKCS#8 RSA key accepted");
    assert_eq!(sender.token_url(), "https://oauth2.googleapis.com/token");
    assert_eq!(sender.project_id(), FCM_PROJECT_ID);
}

// ----------------------------------------------------------------------------------------------------------------
// APNs
// ----------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn apns_sends_over_http2_with_a_valid_provider_token() {
    let apns = FakeApns::start().await;
    let sender = apns.sender();
    assert_eq!(sender.platform(), "apns");

    let outcome = sender.send(APNS_DEVICE, &message()).await.expect("sent");

    let requests = apns.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.status, 200, "refused: {:?}", request.reason);
    assert_eq!(sent_id(outcome).as_deref(), Some(request.apns_id.as_str()));
    assert_eq!(request.token, APNS_DEVICE);
    assert_eq!(request.version, "HTTP/2.0");
    assert!(request.authorization.as_deref().is_some_and(|value| value.starts_with("bearer ")));
    assert_eq!(request.topic.as_deref(), Some(APNS_TOPIC));
    assert_eq!(request.push_type.as_deref(), Some("alert"));
    assert_eq!(request.priority.as_deref(), Some("10"));
    assert_eq!(
        request.body,
        json!({
            "aps": {"alert": {"title": "New message", "body": "Ada: are you there?"}, "sound": "default"},
            "conversation_id": "c-42",
            "unread": 3,
            "urgent": true,
            "sender": {"id": "u-7", "name": "Ada"},
        })
    );

    // The provider token's header and claims, as Apple documents them (the fake verified the signature).
    let token = request.provider_token().expect("provider token");
    let header = jsonwebtoken::decode_header(token).expect("JWT header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.kid.as_deref(), Some(APNS_KEY_ID));
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(token).expect("JWT claims");
    assert_eq!(claims["iss"], APNS_TEAM_ID);
    assert!(claims["iat"].as_u64().is_some_and(|iat| iat.abs_diff(jsonwebtoken::get_current_timestamp()) < 60));
}

#[tokio::test]
async fn apns_unregistered_and_bad_tokens_are_reported_for_removal() {
    let apns = FakeApns::start().await;
    let uninstalled = "aa".repeat(32);
    let bad = "bb".repeat(32);
    apns.fail_with(&uninstalled, ApnsAnswer::Unregistered);
    apns.fail_with(&bad, ApnsAnswer::BadDeviceToken);
    let sender = apns.sender();

    let outcome = sender.send(&uninstalled, &message()).await.expect("answered");
    assert_eq!(outcome, PushOutcome::InvalidToken { reason: "Unregistered".into() });

    let outcome = sender.send(&bad, &message()).await.expect("answered");
    assert_eq!(outcome, PushOutcome::InvalidToken { reason: "BadDeviceToken".into() });

    // A token that cannot be put in the URL is refused without asking Apple.
    let outcome = sender.send("../../3/device/other", &message()).await.expect("answered");
    assert_eq!(outcome, PushOutcome::InvalidToken { reason: "BadDeviceToken".into() });

    assert_eq!(apns.requests().iter().map(|r| r.status).collect::<Vec<_>>(), vec![410, 400]);
}

#[tokio::test]
async fn apns_server_errors_are_transient() {
    let apns = FakeApns::start().await;
    apns.fail_with(APNS_DEVICE, ApnsAnswer::ServerError { times: 1 });
    let sender = apns.sender();

    let err = sender.send(APNS_DEVICE, &message()).await.expect_err("500 is transient");
    assert_transient(&err);
    assert_eq!(err.details()["status"], 500);
    assert_eq!(err.details()["reason"], "InternalServerError");

    sent_id(sender.send(APNS_DEVICE, &message()).await.expect("the retry is sent"));
}

#[tokio::test]
async fn apns_provider_token_is_reused_across_sends() {
    let apns = FakeApns::start().await;
    let sender = apns.sender();

    sender.send(APNS_DEVICE, &message()).await.expect("first send");
    next_second().await;
    sender.send(APNS_DEVICE, &message()).await.expect("second send");

    let tokens: Vec<String> = apns.requests().iter().filter_map(|r| r.provider_token().map(str::to_owned)).collect();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], tokens[1], "a token signed a second later would differ");
}

#[tokio::test]
async fn apns_expired_provider_token_is_remade_after_a_transient_failure() {
    let apns = FakeApns::start().await;
    apns.fail_with(APNS_DEVICE, ApnsAnswer::ExpiredProviderToken { times: 1 });
    let sender = apns.sender();

    let err = sender.send(APNS_DEVICE, &message()).await.expect_err("403 is transient");
    assert_transient(&err);
    assert_eq!(err.details()["reason"], "ExpiredProviderToken");
    next_second().await;
    sent_id(sender.send(APNS_DEVICE, &message()).await.expect("the retry is sent"));

    let tokens: Vec<String> = apns.requests().iter().filter_map(|r| r.provider_token().map(str::to_owned)).collect();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1], "a new provider token is made after ExpiredProviderToken");
}

#[tokio::test]
async fn apns_refuses_a_token_signed_with_another_key_or_for_another_topic() {
    let apns = FakeApns::start().await;

    let wrong_key =
        ApnsSender::new(OTHER_APNS_KEY_PEM, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, apns.base_url()).expect("sender");
    let err = wrong_key.send(APNS_DEVICE, &message()).await.expect_err("signature refused");
    assert_transient(&err);
    assert_eq!(err.details()["reason"], "InvalidProviderToken");

    let wrong_topic =
        ApnsSender::new(APNS_KEY_PEM, APNS_KEY_ID, APNS_TEAM_ID, "com.example.other", apns.base_url()).expect("sender");
    let err = wrong_topic.send(APNS_DEVICE, &message()).await.expect_err("topic refused");
    assert_eq!(err.details()["reason"], "TopicDisallowed");

    assert!(apns.sent().is_empty());
}

#[tokio::test]
async fn apns_unreachable_provider_is_transient() {
    let dead = closed_url().await;
    let sender = ApnsSender::new(APNS_KEY_PEM, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, &dead).expect("sender");
    assert_transient(&sender.send(APNS_DEVICE, &message()).await.expect_err("nothing listens"));
}

#[tokio::test]
async fn apns_key_is_checked_when_the_sender_is_made() {
    let base = "http://127.0.0.1:9";
    for key in [P384_KEY_PEM, FCM_PRIVATE_KEY_PEM, "not a key"] {
        let err = ApnsSender::new(key, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, base).expect_err("unusable key");
        assert_eq!(err.code(), "config.invalid");
    }
    let err = ApnsSender::new(APNS_KEY_PEM, APNS_KEY_ID, APNS_TEAM_ID, " ", base).expect_err("no topic");
    assert_eq!(err.code(), "config.invalid");
    let sender = ApnsSender::new(APNS_KEY_PEM, APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC, base).expect("sender");
    assert_eq!(sender.topic(), APNS_TOPIC);
}

// ----------------------------------------------------------------------------------------------------------------
// Configuration
// ----------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn configured_senders_follow_the_environment() {
    let fcm = FakeFcm::start().await;
    let apns = FakeApns::start().await;
    let dir = tempfile::tempdir().expect("temp dir");

    let mut vars = fcm.config_vars(dir.path());
    vars.extend(apns.config_vars(dir.path()));
    let senders = configured_senders(&config(vars)).expect("senders");
    assert_eq!(senders.iter().map(|s| s.platform()).collect::<Vec<_>>(), vec!["fcm", "apns"]);

    // Both work end to end: FCM's token URL comes from the credentials' token_uri.
    sent_id(senders[0].send("android-device-1", &message()).await.expect("FCM send"));
    sent_id(senders[1].send(APNS_DEVICE, &message()).await.expect("APNs send"));
    assert_eq!(fcm.token_exchanges(), 1);
    assert_eq!(apns.sent().len(), 1);

    // Only one provider configured.
    let senders = configured_senders(&config(apns.config_vars(dir.path()))).expect("senders");
    assert_eq!(senders.iter().map(|s| s.platform()).collect::<Vec<_>>(), vec!["apns"]);

    // Nothing configured, or only part of a provider's settings: no sender.
    assert!(configured_senders(&config(Vec::new())).expect("senders").is_empty());
    let partial = vec![("FCM_PROJECT_ID".to_owned(), FCM_PROJECT_ID.to_owned())];
    assert!(configured_senders(&config(partial)).expect("senders").is_empty());
}

#[tokio::test]
async fn configured_senders_refuse_unreadable_or_broken_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.json").to_string_lossy().into_owned();
    let vars =
        vec![("FCM_PROJECT_ID".to_owned(), FCM_PROJECT_ID.to_owned()), ("FCM_CREDENTIALS_FILE".to_owned(), missing)];
    let err = config_error(&config(vars));
    assert_eq!(err.code(), "config.invalid");
    assert_eq!(err.details()["variable"], "FCM_CREDENTIALS_FILE");

    let key_file = dir.path().join("AuthKey.p8");
    std::fs::write(&key_file, P384_KEY_PEM).expect("write key");
    let vars = vec![
        ("APNS_KEY_FILE".to_owned(), key_file.to_string_lossy().into_owned()),
        ("APNS_KEY_ID".to_owned(), APNS_KEY_ID.to_owned()),
        ("APNS_TEAM_ID".to_owned(), APNS_TEAM_ID.to_owned()),
        ("APNS_TOPIC".to_owned(), APNS_TOPIC.to_owned()),
    ];
    let err = config_error(&config(vars));
    assert_eq!(err.code(), "config.invalid");
}
