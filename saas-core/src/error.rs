//! Service errors with stable codes and the JSON error envelope of the HTTP contract.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The result type of every service, store and gateway call.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// What went wrong, in terms a client can act on; each kind maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is malformed or breaks a rule (400).
    Validation,
    /// No valid credentials were presented (401).
    Unauthenticated,
    /// The caller is known but may not do this (403).
    Forbidden,
    /// The resource does not exist or is not the caller's (404).
    NotFound,
    /// The path exists but not with this method (405).
    MethodNotAllowed,
    /// The request conflicts with the current state (409).
    Conflict,
    /// The request body is larger than the server accepts (413).
    PayloadTooLarge,
    /// Too many requests; retry later (429).
    RateLimited,
    /// A dependency is down or the request timed out (503).
    Unavailable,
    /// A bug or an unexpected failure (500); details are logged, never returned.
    Internal,
}

impl ErrorKind {
    /// The HTTP status this kind answers with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::Validation => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The kind an arbitrary error status corresponds to.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::RateLimited,
            408 | 502..=504 => ErrorKind::Unavailable,
            400..=499 => ErrorKind::Validation,
            _ => ErrorKind::Internal,
        }
    }

    /// The generic code used when nothing more specific is known.
    pub fn default_code(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation.failed",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal_error",
        }
    }
}

/// A failure with a stable machine-readable `code`, a human message and optional details.
#[derive(Debug, Clone)]
pub struct ServiceError {
    kind: ErrorKind,
    code: Cow<'static, str>,
    message: String,
    details: Map<String, Value>,
    retry_after_secs: Option<u64>,
}

impl ServiceError {
    /// An error of `kind` with a stable `code` and a human `message`.
    pub fn new(kind: ErrorKind, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { kind, code: code.into(), message: message.into(), details: Map::new(), retry_after_secs: None }
    }

    /// 400 with a domain code, e.g. `auth.email_taken`.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, code, message)
    }

    /// 400 `validation.failed` with one message for one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        ValidationErrors::default().field(field, message).into_error()
    }

    /// 401 with a domain code.
    pub fn unauthenticated(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, code, message)
    }

    /// 403 with a domain code, e.g. `chat.permission_denied`.
    pub fn forbidden(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, message)
    }

    /// 404 `not_found` for a resource that is absent or not the caller's.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, "not_found", format!("{what} not found"))
    }

    /// 409 with a domain code, e.g. `payments.invalid_transition`.
    pub fn conflict(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    /// 429 `rate_limited`, answered with a `Retry-After` header.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut err = Self::new(ErrorKind::RateLimited, "rate_limited", "Too many requests; try again later.");
        err.retry_after_secs = Some(retry_after_secs.max(1));
        err.details.insert("retry_after".into(), json!(retry_after_secs.max(1)));
        err
    }

    /// 503 with a code naming the dependency, e.g. `database.unavailable`.
    pub fn unavailable(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, code, message)
    }

    /// 500; the cause is logged here and never sent to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorKind::Internal, "internal_error", "An internal error occurred.")
    }

    /// Adds a detail entry (shown under `error.details`).
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The kind (and so the HTTP status).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable code, e.g. `auth.invalid_credentials`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details object.
    pub fn details(&self) -> &Map<String, Value> {
        &self.details
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The envelope body: `{"error": {"code", "message", "details"}}`.
    pub fn envelope(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "details": self.details}})
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.envelope()).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Collects per-field messages and becomes one `validation.failed` error.
#[derive(Debug, Default, Clone)]
pub struct ValidationErrors {
    fields: Map<String, Value>,
}

impl ValidationErrors {
    /// Adds `message` to `field` (builder style).
    pub fn field(mut self, field: &str, message: impl Into<String>) -> Self {
        self.add(field, message);
        self
    }

    /// Adds `message` to `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let entry = self.fields.entry(field.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(message.into()));
        }
    }

    /// Whether no message was added.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `Ok(())` when empty, else the 400 `validation.failed` error.
    pub fn into_result(self) -> ServiceResult<()> {
        if self.is_empty() { Ok(()) } else { Err(self.into_error()) }
    }

    /// The 400 `validation.failed` error with `details.fields`.
    pub fn into_error(self) -> ServiceError {
        let summary = match self.fields.iter().next() {
            Some((name, Value::Array(messages))) if self.fields.len() == 1 => {
                format!("{name}: {}", messages.first().and_then(Value::as_str).unwrap_or("invalid"))
            }
            _ => "The request is invalid.".to_owned(),
        };
        ServiceError::new(ErrorKind::Validation, "validation.failed", summary)
            .with_detail("fields", Value::Object(self.fields))
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => ServiceError::not_found("Resource"),
            _ if database_unavailable(&err) => {
                tracing::warn!(error = %err, "database unavailable");
                ServiceError::unavailable("database.unavailable", "The database is unavailable; try again shortly.")
            }
            // PostgreSQL refuses text it cannot store (a NUL character): the input is bad.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => ServiceError::new(
                ErrorKind::Validation,
                "validation.failed",
                "The request contains characters that cannot be stored.",
            ),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                ServiceError::conflict("conflict", "The resource already exists.")
            }
            _ => ServiceError::internal(err),
        }
    }
}

impl From<redis::RedisError> for ServiceError {
    fn from(err: redis::RedisError) -> Self {
        tracing::warn!(error = %err, "redis error");
        ServiceError::unavailable("redis.unavailable", "The cache is unavailable; try again shortly.")
    }
}

/// Whether the database could not serve at all: no connection to be had (pool timed out or
/// closed, I/O or TLS failure), or PostgreSQL saying it cannot serve now — class 08
/// (connection exception), 53300 (too many connections), 57P01–57P03 (shut down by an
/// operator or a crash, not accepting connections yet). A query caught in a restart thus
/// fails like one that found the server down.
fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || matches!(&*code, "53300" | "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Whether a database error is a unique-constraint violation (for stores mapping to domain codes).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[derive(Debug)]
    struct PgError(&'static str);

    impl std::fmt::Display for PgError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for PgError {}

    impl sqlx::error::DatabaseError for PgError {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn mapped(code: &'static str) -> ServiceError {
        ServiceError::from(sqlx::Error::Database(Box::new(PgError(code))))
    }

    #[test]
    fn a_server_restarting_or_full_is_unavailable_not_an_internal_error() {
        for code in ["57P01", "57P02", "57P03", "53300", "08006", "08003"] {
            let err = mapped(code);
            assert_eq!((err.kind(), err.code()), (ErrorKind::Unavailable, "database.unavailable"), "{code}");
        }
        assert_eq!(mapped("22021").kind(), ErrorKind::Validation);
        assert_eq!(mapped("42P01").kind(), ErrorKind::Internal, "a missing table is a bug");
    }
}
