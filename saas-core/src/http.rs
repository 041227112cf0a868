//! The HTTP stack every app gets: request ids, tracing, CORS, compression, body limit,
//! timeouts, panic catching, and the error envelope on every error answer.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::error::{ErrorKind, ServiceError};

/// Marks a response (an HTML page) that is its own error page: a 4xx/5xx carrying it is not
/// replaced by the JSON error envelope.
#[derive(Debug, Clone, Copy)]
pub struct OwnErrorPage;

/// The request-id header set on every request and echoed on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps `router` in the platform's layers (outermost first: request id → trace → CORS →
/// compression → error envelope → timeout → body limit → panic catching).
pub fn apply_layers(router: Router, config: &Config) -> Router {
    router
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked");
            ServiceError::new(ErrorKind::Internal, "internal_error", "An internal error occurred.").into_response()
        }))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, config.request_timeout))
        .layer(axum::middleware::map_response(ensure_envelope))
        .layer(CompressionLayer::new())
        .layer(cors_layer(config))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

fn cors_layer(config: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> =
        config.cors_allowed_origins.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    let layer = CorsLayer::new()
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([REQUEST_ID, header::RETRY_AFTER])
        .max_age(Duration::from_secs(3600));
    if origins.is_empty() { layer.allow_origin(Any) } else { layer.allow_origin(AllowOrigin::list(origins)) }
}

/// Turns any error answer that is not JSON (from axum, tower-http or an app's own handler)
/// into the error envelope, keeping its status and headers.
async fn ensure_envelope(response: Response) -> Response {
    let status = response.status();
    // Pages that are their own error page (the admin site's) are left alone; everything
    // else gets the envelope.
    if !(status.is_client_error() || status.is_server_error())
        || is_json(&response)
        || response.extensions().get::<OwnErrorPage>().is_some()
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let kind = ErrorKind::from_status(status);
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = match kind {
        ErrorKind::NotFound => "Not found.".to_owned(),
        ErrorKind::MethodNotAllowed => "Method not allowed.".to_owned(),
        ErrorKind::PayloadTooLarge => "The request body is too large.".to_owned(),
        ErrorKind::Unavailable if status == StatusCode::SERVICE_UNAVAILABLE && text.is_empty() => {
            "The request took too long or a dependency is unavailable.".to_owned()
        }
        ErrorKind::Internal | ErrorKind::Unavailable => "The service could not answer this request.".to_owned(),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("Error").to_owned(),
        _ => text,
    };
    let code = if status == StatusCode::SERVICE_UNAVAILABLE { "unavailable" } else { kind.default_code() };
    let envelope = ServiceError::new(kind, code, message).into_response();
    let (env_parts, env_body) = envelope.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, env_parts.headers[header::CONTENT_TYPE].clone());
    Response::from_parts(parts, env_body)
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"))
}

/// The fallback for unknown paths: 404 `not_found`.
pub async fn not_found() -> ServiceError {
    ServiceError::new(ErrorKind::NotFound, "not_found", "Not found.")
}

/// The fallback for a known path with a wrong method: 405 `method_not_allowed`.
pub async fn method_not_allowed() -> ServiceError {
    ServiceError::new(ErrorKind::MethodNotAllowed, "method_not_allowed", "Method not allowed.")
}
