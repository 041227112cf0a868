//! Shared helpers of the notification tests: an app with accounts and notifications, a
//! file mailer, users, and waiting for what jobs do.
#![allow(dead_code)]

pub mod push;

use std::path::PathBuf;
use std::time::Duration;

use saas_auth::AuthModule;
use saas_core::testing::{TestApp, TestAppBuilder, TestDatabase, TestResponse, TestWebSocket, redis_url};
use saas_notify::{NotifyModule, NotifyService};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

/// A user of the test app.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub uuid: uuid::Uuid,
    pub email: String,
    pub access: String,
}

/// A test app with the auth and notification modules, mailing `.eml` files into its folder.
pub struct NotifyApp {
    pub app: TestApp,
    pub mail_dir: tempfile::TempDir,
}

impl std::ops::Deref for NotifyApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

pub fn builder(mail_dir: &std::path::Path) -> TestAppBuilder {
    TestApp::builder()
        .module(AuthModule::default())
        .module(NotifyModule::default())
        .var("EMAIL_BACKEND", "file")
        .var("EMAIL_FILE_PATH", mail_dir.to_str().expect("utf-8 path"))
        .var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
}

pub async fn start(db: &TestDatabase) -> NotifyApp {
    start_with(db, |b| b).await
}

pub async fn start_with(db: &TestDatabase, adjust: impl FnOnce(TestAppBuilder) -> TestAppBuilder) -> NotifyApp {
    let mail_dir = tempfile::tempdir().expect("mail dir");
    let app = adjust(builder(mail_dir.path())).start(db).await;
    NotifyApp { app, mail_dir }
}

/// A node of a multi-node service: this database, Redis with the database's prefix.
pub async fn start_node(db: &TestDatabase) -> NotifyApp {
    let prefix = db.redis_prefix();
    start_with(db, move |b| b.redis(redis_url(), prefix)).await
}

impl NotifyApp {
    pub fn service(&self) -> NotifyService {
        NotifyService::get(self.context()).expect("notify service")
    }

    pub async fn register(&self, email: &str) -> User {
        let response = self.post("/api/v1/auth/registration/", &json!({"email": email, "password": PASSWORD})).await;
        response.assert_status(201);
        let body = response.json();
        let id = body["user"]["id"].as_str().expect("user id").to_owned();
        User {
            uuid: id.parse().expect("uuid"),
            id,
            email: email.to_owned(),
            access: body["access"].as_str().expect("access").to_owned(),
        }
    }

    pub async fn get_as(&self, user: &User, path: &str) -> TestResponse {
        self.request(reqwest::Method::GET, path).bearer(&user.access).send().await
    }

    pub async fn post_as(&self, user: &User, path: &str, body: &Value) -> TestResponse {
        self.request(reqwest::Method::POST, path).bearer(&user.access).json(body).send().await
    }

    pub async fn put_as(&self, user: &User, path: &str, body: &Value) -> TestResponse {
        self.request(reqwest::Method::PUT, path).bearer(&user.access).json(body).send().await
    }

    pub async fn delete_as(&self, user: &User, path: &str) -> TestResponse {
        self.request(reqwest::Method::DELETE, path).bearer(&user.access).send().await
    }

    pub async fn unread(&self, user: &User) -> i64 {
        let response = self.get_as(user, "/api/v1/notifications/unread-count/").await;
        response.assert_status(200);
        response.json()["unread_count"].as_i64().expect("a count")
    }

    /// Sends a `system_alert` (every channel) to `user`.
    pub async fn alert(&self, user: &User, title: &str) -> Value {
        let sent = self
            .service()
            .notify(user.uuid, "system_alert", json!({"title": title, "message": format!("About {title}")}))
            .await
            .expect("notify");
        serde_json::to_value(sent.expect("an inbox entry")).expect("json")
    }

    pub async fn socket(&self, user: &User) -> TestWebSocket {
        self.websocket(&format!("/ws/notifications/?token={}", user.access)).await
    }

    /// Every email sent so far to `to`, oldest first.
    pub fn emails_to(&self, to: &str) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.mail_dir.path())
            .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|raw| raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "="))
            .filter(|mail| mail.lines().any(|l| l.eq_ignore_ascii_case(&format!("To: {to}"))))
            .collect()
    }

    /// Waits (up to 10 s) for an email to `to` whose subject contains `subject`.
    pub async fn wait_for_email(&self, to: &str, subject: &str) -> String {
        for _ in 0..200 {
            if let Some(mail) = self
                .emails_to(to)
                .into_iter()
                .find(|m| m.lines().any(|l| l.starts_with("Subject:") && l.contains(subject)))
            {
                return mail;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no email to {to} about {subject:?}");
    }

    /// The deliveries of a notification as `(channel, status)`, waiting (up to 10 s) until
    /// none is pending.
    pub async fn settled_deliveries(&self, notification_id: &str) -> Vec<(String, String)> {
        let id: uuid::Uuid = notification_id.parse().expect("uuid");
        for _ in 0..200 {
            let rows = self.service().store().deliveries_of(id).await.expect("deliveries");
            if rows.iter().all(|row| row.status != "pending" && row.status != "sending") {
                return rows.into_iter().map(|row| (row.channel, row.status)).collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("deliveries of {notification_id} still pending");
    }
}
