//! What every test starts from: the app as the server builds it, on a fresh database (SQLite,
//! or PostgreSQL when `SAAS_TEST_DATABASE_URL` names a server), and users who call it.

use axum::http::Method;
use serde_json::Value;
use uuid::Uuid;

use saas_core::testing::{TestApp, TestAppBuilder, TestDatabase, TestRequest, TestResponse};

/// The app of [`{{crate_name}}::compose`], to adjust (`.var(..)`) before starting it.
pub fn app() -> TestAppBuilder {
    TestApp::builder().customize({{crate_name}}::compose).var("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
}

/// The app, running on `db`.
pub async fn start(db: &TestDatabase) -> TestApp {
    app().start(db).await
}

/// Someone calling the API{% if auth %}: a new account whose requests carry its access token{% else %} (this app has no accounts){% endif %}.
pub struct Client<'a> {
    app: &'a TestApp,
    token: Option<String>,
    /// Their user id{% if auth %}{% else %} (nil: no accounts){% endif %}.
    pub id: Uuid,
}

impl<'a> Client<'a> {
    /// Signs up `email`{% if auth %}{% else %} (nothing to do without accounts){% endif %}.
    pub async fn sign_up(app: &'a TestApp, email: &str) -> Client<'a> {
{% if auth %}        let body = serde_json::json!({"email": email, "password": "correct horse battery staple"});
        let response = app.post("/api/v1/auth/registration/", &body).await;
        response.assert_status(201);
        let body = response.json();
        let id = body["user"]["id"].as_str().and_then(|id| id.parse().ok()).expect("the new user's id");
        Client { app, token: body["access"].as_str().map(str::to_owned), id }
{% else %}        let _ = email;
        Client { app, token: None, id: Uuid::nil() }
{% endif %}    }

    /// A request to `path` as this user.
    pub fn request(&self, method: Method, path: &str) -> TestRequest {
        let request = self.app.request(method, path);
        match &self.token {
            Some(token) => request.bearer(token),
            None => request,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path).send().await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> TestResponse {
        self.request(Method::POST, path).json(body).send().await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> TestResponse {
        self.request(Method::PATCH, path).json(body).send().await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> TestResponse {
        self.request(Method::DELETE, path).send().await
    }
}
