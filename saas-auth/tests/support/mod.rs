//! Shared helpers of the accounts tests: an app with the auth module and a file mailer,
//! sign-up and sign-in shortcuts, and reading tokens out of sent emails.
#![allow(dead_code)]

pub mod oidc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use saas_auth::AuthModule;
use saas_core::testing::{TestApp, TestAppBuilder, TestDatabase, TestResponse};
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

/// A test app with the auth module, sending mail as `.eml` files into its own folder.
pub struct AuthApp {
    pub app: TestApp,
    pub mail_dir: tempfile::TempDir,
}

impl std::ops::Deref for AuthApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

pub fn builder(mail_dir: &Path) -> TestAppBuilder {
    TestApp::builder()
        .module(AuthModule::default())
        .var("EMAIL_BACKEND", "file")
        .var("EMAIL_FILE_PATH", mail_dir.to_str().expect("utf-8 path"))
        .var("FRONTEND_URL", "https://app.example.com")
        .var("AUTH_RATE_LIMIT_PER_MINUTE", "1000")
}

pub async fn start(db: &TestDatabase) -> AuthApp {
    start_with(db, |b| b).await
}

pub async fn start_with(db: &TestDatabase, adjust: impl FnOnce(TestAppBuilder) -> TestAppBuilder) -> AuthApp {
    let mail_dir = tempfile::tempdir().expect("mail dir");
    let app = adjust(builder(mail_dir.path())).start(db).await;
    AuthApp { app, mail_dir }
}

impl AuthApp {
    /// Registers `email` with the test password; returns the token pair.
    pub async fn register(&self, email: &str) -> Value {
        let response = self.post("/api/v1/auth/registration/", &json!({"email": email, "password": PASSWORD})).await;
        response.assert_status(201);
        response.json()
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.post("/api/v1/auth/login/", &json!({"email": email, "password": password})).await
    }

    pub async fn get_auth(&self, path: &str, access: &str) -> TestResponse {
        self.request(reqwest::Method::GET, path).bearer(access).send().await
    }

    pub async fn post_auth(&self, path: &str, access: &str, body: &Value) -> TestResponse {
        self.request(reqwest::Method::POST, path).bearer(access).json(body).send().await
    }

    pub async fn patch_auth(&self, path: &str, access: &str, body: &Value) -> TestResponse {
        self.request(reqwest::Method::PATCH, path).bearer(access).json(body).send().await
    }

    pub async fn delete_auth(&self, path: &str, access: &str) -> TestResponse {
        self.request(reqwest::Method::DELETE, path).bearer(access).send().await
    }

    /// Every email sent so far to `to`, decoded, oldest first.
    pub fn emails_to(&self, to: &str) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.mail_dir.path())
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|raw| decode_quoted_printable(&raw))
            .filter(|mail| mail.lines().any(|l| l.eq_ignore_ascii_case(&format!("To: {to}"))))
            .collect()
    }

    /// Waits (up to 10 s) for the `n`-th email to `to` whose subject contains `subject`.
    pub async fn wait_for_email(&self, to: &str, subject: &str, n: usize) -> String {
        for _ in 0..200 {
            let found: Vec<String> = self
                .emails_to(to)
                .into_iter()
                .filter(|m| m.lines().any(|l| l.starts_with("Subject:") && l.contains(subject)))
                .collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no email {n} to {to} about {subject:?}; sent: {:?}", self.emails_to(to));
    }
}

/// The 64-hex token of the link `…/{path}?token=…` in an email.
pub fn token_in(mail: &str, path: &str) -> String {
    let marker = format!("https://app.example.com/{path}?token=");
    let start = mail.find(&marker).unwrap_or_else(|| panic!("no {path} link in {mail}")) + marker.len();
    let token: String = mail[start..].chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    assert_eq!(token.len(), 64, "a 64-hex token in {mail}");
    token
}

fn decode_quoted_printable(raw: &str) -> String {
    raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

pub fn access(pair: &Value) -> String {
    pair["access"].as_str().expect("access token").to_owned()
}

pub fn refresh(pair: &Value) -> String {
    pair["refresh"].as_str().expect("refresh token").to_owned()
}

/// `make_password("correct horse battery", salt="DjangoSalt1234", hasher="pbkdf2_sha256")`
/// from Django 5.2 (1,000,000 iterations).
pub const DJANGO_HASH: &str = "pbkdf2_sha256$1000000$DjangoSalt1234$8SlhOrhwkPY32Run45UNkHDRVle0vKM7bX+TGzZPoBE=";
