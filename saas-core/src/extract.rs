//! Extractors whose rejections are the error envelope (400 `validation.failed`, 413, …)
//! instead of axum's plain-text bodies.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ErrorKind, ServiceError, ValidationErrors};

/// A JSON body (`application/json`); every failure answers with the error envelope.
///
/// As a response it serialises `T` with status 200.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(not_json());
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// `Option<Json<T>>`: no body (and no content type) is `None`; a body must be valid JSON.
impl<T, S> axum::extract::OptionalFromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        if req.headers().get(header::CONTENT_TYPE).is_none() {
            let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            return Err(not_json());
        }
        <Json<T> as FromRequest<S>>::from_request(req, state).await.map(Some)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Parses a JSON document into `T`, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServiceError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok()
        && let Err(err) = de.end()
    {
        return Err(ServiceError::new(ErrorKind::Validation, "validation.failed", format!("Malformed JSON: {err}")));
    }
    value.map_err(|err| {
        let inner = err.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ServiceError::new(ErrorKind::Validation, "validation.failed", format!("Malformed JSON: {inner}"));
        }
        let path = err.path().to_string();
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        let mut errors = ValidationErrors::default();
        if let Some(field) = missing_field_name(&message) {
            let field = if path == "." { field.to_owned() } else { format!("{path}.{field}") };
            errors.add(&field, "This field is required.");
        } else if path == "." {
            errors.add("non_field_errors", message);
        } else {
            errors.add(&path, message);
        }
        errors.into_error()
    })
}

fn not_json() -> ServiceError {
    ServiceError::new(
        ErrorKind::Validation,
        "validation.failed",
        "Expected a request body with `Content-Type: application/json`.",
    )
}

fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn body_rejection(rejection: BytesRejection) -> ServiceError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ServiceError::new(ErrorKind::PayloadTooLarge, "payload_too_large", "The request body is too large.")
    } else {
        ServiceError::new(ErrorKind::Validation, "validation.failed", rejection.body_text())
    }
}

/// Path parameters; a value of the wrong shape (say, not a UUID) is 404 `not_found`,
/// since no resource has such an id.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ServiceError::not_found("Resource")),
            Err(other) => Err(ServiceError::internal(other.body_text())),
        }
    }
}

/// Query-string parameters; a bad value is 400 `validation.failed`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Query).map_err(|err| {
            let message = err.inner().to_string();
            let field = match missing_field_name(&message) {
                Some(name) => {
                    return ServiceError::invalid_field(name, "This field is required.");
                }
                None => err.path().to_string(),
            };
            let field = if field == "." { "query".to_owned() } else { field };
            ServiceError::invalid_field(&field, message)
        })
    }
}
