//! `Idempotency-Key` for POST requests: the first answer under a key is stored (24 h) and
//! replayed for retries with the same body; a different body under the same key, or a
//! retry while the first is still running, is refused.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use saas_core::{AppContext, ServiceError};

/// The request header carrying the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header set on a replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

const RECORD_TTL: Duration = Duration::from_secs(24 * 3600);
const IN_FLIGHT_TTL: Duration = Duration::from_secs(120);
const MAX_STORED_BODY: usize = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    status: Option<u16>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
}

/// Middleware: apply with `router.layer(axum::middleware::from_fn_with_state(ctx, idempotency))`.
/// Keys are scoped by the caller's `Authorization` header, method and path.
pub async fn idempotency(State(ctx): State<AppContext>, req: Request, next: Next) -> Response {
    match handle(&ctx, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn handle(ctx: &AppContext, req: Request, next: Next) -> Result<Response, Response> {
    let Some(key) = req.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return Ok(next.run(req).await);
    };
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ServiceError::invalid_field("Idempotency-Key", "Use 1 to 255 visible ASCII characters.").into_response()
        })?
        .to_owned();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, ctx.config().max_body_bytes).await.map_err(|_| {
        ServiceError::new(saas_core::ErrorKind::PayloadTooLarge, "payload_too_large", "The request body is too large.")
            .into_response()
    })?;
    let scope = scope(&parts.headers, parts.method.as_str(), parts.uri.path(), &key);
    let cache_key = format!("idem:{scope}");
    let fingerprint = hex::encode(Sha256::digest(&bytes));

    let claim = Record { fingerprint: fingerprint.clone(), status: None, content_type: None, body: None };
    let claim_bytes = Bytes::from(serde_json::to_vec(&claim).unwrap_or_default());
    let claimed =
        ctx.cache().set_if_absent(&cache_key, claim_bytes, IN_FLIGHT_TTL).await.map_err(IntoResponse::into_response)?;
    let mut claim_guard = ClaimGuard { ctx: ctx.clone(), key: cache_key.clone(), armed: claimed };
    if !claimed {
        let stored = ctx.cache().get(&cache_key).await.map_err(IntoResponse::into_response)?;
        let record: Option<Record> = stored.and_then(|raw| serde_json::from_slice(&raw).ok());
        return Err(match record {
            Some(record) if record.fingerprint != fingerprint => ServiceError::bad_request(
                "idempotency.key_reused",
                "This Idempotency-Key was used with a different request body.",
            )
            .into_response(),
            Some(Record { status: Some(status), content_type, body, .. }) => replay(status, content_type, body),
            _ => ServiceError::conflict(
                "idempotency.in_progress",
                "A request with this Idempotency-Key is still running.",
            )
            .into_response(),
        });
    }

    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    // Only answers a retry would get again are kept: not 5xx, nor those that depend on the
    // moment (401, 403, 408, 409, 429).
    let status = response.status().as_u16();
    if response.status().is_server_error() || matches!(status, 401 | 403 | 408 | 409 | 429) {
        let _ = ctx.cache().delete(&cache_key).await;
        claim_guard.armed = false;
        return Ok(response);
    }
    let (res_parts, res_body) = response.into_parts();
    let body = match axum::body::to_bytes(res_body, MAX_STORED_BODY).await {
        Ok(body) => body,
        Err(_) => {
            let _ = ctx.cache().delete(&cache_key).await;
            claim_guard.armed = false;
            return Ok(ServiceError::internal("response too large to store for Idempotency-Key").into_response());
        }
    };
    let record = Record {
        fingerprint,
        status: Some(res_parts.status.as_u16()),
        content_type: res_parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        body: Some(body.to_vec()),
    };
    let stored = Bytes::from(serde_json::to_vec(&record).unwrap_or_default());
    match ctx.cache().set(&cache_key, stored, Some(RECORD_TTL)).await {
        Ok(()) => claim_guard.armed = false,
        Err(err) => tracing::warn!(error = %err, "cannot store the idempotent response"),
    }
    Ok(Response::from_parts(res_parts, Body::from(body)))
}

/// Releases the in-flight claim if the request ends without a stored answer (an error, a
/// timeout or a dropped connection), so a retry can run at once instead of waiting.
struct ClaimGuard {
    ctx: AppContext,
    key: String,
    armed: bool,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (ctx, key) = (self.ctx.clone(), std::mem::take(&mut self.key));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = ctx.cache().delete(&key).await;
            });
        }
    }
}

fn scope(headers: &HeaderMap, method: &str, path: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default());
    hasher.update([0]);
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    hex::encode(hasher.finalize())
}

fn replay(status: u16, content_type: Option<String>, body: Option<Vec<u8>>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body.unwrap_or_default()).into_response();
    if let Some(value) = content_type.and_then(|ct| HeaderValue::from_str(&ct).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
