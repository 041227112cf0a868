//! Fixed-window rate limits on the app's cache: in memory on one node, in Redis across
//! nodes. Usable as a check in a service, an extractor-fed call in a handler, or a layer.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use saas_core::{AppContext, ServiceError, ServiceResult};

/// A named limit: at most `limit` attempts per `window` for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Distinguishes counters of different limits (`auth.login`).
    pub name: &'static str,
    /// Attempts allowed per window.
    pub limit: u32,
    /// The window length.
    pub window: Duration,
}

impl RateLimit {
    /// `limit` attempts per minute.
    pub const fn per_minute(name: &'static str, limit: u32) -> Self {
        Self { name, limit, window: Duration::from_secs(60) }
    }

    /// Counts one attempt by `subject` (an address, an account); over the limit it is
    /// 429 `rate_limited` with the seconds until the window ends.
    pub async fn check(&self, ctx: &AppContext, subject: &str) -> ServiceResult<()> {
        let key = format!("rl:{}:{}", self.name, subject);
        let (count, left) = ctx.cache().increment(&key, self.window).await?;
        if count > u64::from(self.limit) {
            return Err(ServiceError::rate_limited(left.as_secs_f64().ceil() as u64));
        }
        Ok(())
    }

    /// A layer limiting each client address on the routes it wraps
    /// (`router.route_layer(limit.layer(ctx))`).
    pub fn layer(self, ctx: &AppContext) -> RateLimitLayer {
        axum::middleware::from_fn_with_state((ctx.clone(), self), limit_client as LimitFn)
    }
}

type LimitState = (AppContext, RateLimit);
type LimitFn = fn(State<LimitState>, Request, Next) -> LimitFuture;

/// The layer returned by [`RateLimit::layer`].
pub type RateLimitLayer = axum::middleware::FromFnLayer<LimitFn, LimitState, (State<LimitState>, Request)>;

/// The future of the rate-limit layer.
pub type LimitFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

fn limit_client(State((ctx, limit)): State<LimitState>, req: Request, next: Next) -> LimitFuture {
    Box::pin(async move {
        let ip = match ClientIp::from_request(&ctx, req.headers(), req.extensions()) {
            Ok(ip) => ip,
            Err(err) => return err.into_response(),
        };
        match limit.check(&ctx, &ip.0.to_string()).await {
            Ok(()) => next.run(req).await,
            Err(err) => err.into_response(),
        }
    })
}

/// The client's address: the peer address, or the address the reverse proxy saw (the last
/// `X-Forwarded-For` entry) when `TRUST_PROXY_HEADERS=true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppContext> for ClientIp {
    type Rejection = ServiceError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Self::Rejection> {
        ClientIp::from_request(ctx, &parts.headers, &parts.extensions)
    }
}

impl ClientIp {
    /// The address of the request with these headers and extensions.
    pub fn from_request(ctx: &AppContext, headers: &HeaderMap, extensions: &Extensions) -> ServiceResult<Self> {
        if ctx.config().trust_proxy_headers {
            // The proxy appends the address it saw: the right-most entry is the one to trust.
            let forwarded = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if let Some(ip) = forwarded {
                return Ok(ClientIp(ip));
            }
        }
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(peer.unwrap_or(IpAddr::from([127, 0, 0, 1]))))
    }
}
