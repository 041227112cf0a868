//! The `/api/v1/payments/` routes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use saas_auth::{CurrentUser, StaffUser};
use saas_core::extract::{Json, Path, Query};
use saas_core::{AppContext, ServiceError, ServiceResult, with_pool};
use saas_toolkit::{Page, PageParams};

use crate::models::{Order, Payout, ReconciliationIssue, Refund, Subscription, Transition};
use crate::service::{
    Actor, ConnectStatus, CreateOrder, CreateSubscription, OnboardingLink, PaymentsService, RefundRequest,
};
use crate::webhooks::Received;

/// Every route of the payments API.
pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/api/v1/payments/webhooks/stripe/", post(stripe_webhook))
        .route("/api/v1/payments/orders/", get(orders).post(create_order))
        .route("/api/v1/payments/orders/{id}/", get(order))
        .route("/api/v1/payments/orders/{id}/history/", get(order_history))
        .route("/api/v1/payments/orders/{id}/release/", post(release))
        .route("/api/v1/payments/orders/{id}/refund/", post(refund))
        .route("/api/v1/payments/orders/{id}/cancel/", post(cancel))
        .route("/api/v1/payments/subscriptions/", get(subscriptions).post(create_subscription))
        .route("/api/v1/payments/subscriptions/{id}/cancel/", post(cancel_subscription))
        .route("/api/v1/payments/connect/onboarding/", post(onboarding))
        .route("/api/v1/payments/connect/status/", get(connect_status))
        .route("/api/v1/payments/payouts/", get(payouts))
        .route("/api/v1/payments/payouts/{id}/retry/", post(retry_payout))
        .route("/api/v1/payments/ledger/balance/", get(balance))
        .route("/api/v1/payments/reconciliation/", get(reconciliation))
}

fn service(ctx: &AppContext) -> ServiceResult<PaymentsService> {
    PaymentsService::get(ctx)
}

/// `{"balances": [...]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Balances {
    /// One per currency.
    pub balances: Vec<Balance>,
}

/// A balance in one currency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Balance {
    /// ISO code.
    pub currency: String,
    /// Credits − debits, in cents.
    pub available_cents: i64,
}

/// `?account_type=` (staff): a platform account type.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    /// `external_stripe`, `platform_escrow` or `platform_revenue` (staff only).
    account_type: Option<String>,
}

/// `{"immediately": true}` to end the subscription now.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CancelSubscription {
    /// End now rather than at the end of the period.
    #[serde(default)]
    immediately: bool,
}

#[utoipa::path(post, path = "/api/v1/payments/webhooks/stripe/", tag = "payments",
    request_body(content = Object, description = "A Stripe event, signed in the Stripe-Signature header"),
    responses((status = 200, body = Received), (status = 400, description = "payments.invalid_signature or validation.failed")))]
async fn stripe_webhook(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    body: Bytes,
) -> ServiceResult<Json<Received>> {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    Ok(Json(service(&ctx)?.receive_webhook(signature, &body).await?))
}

#[utoipa::path(get, path = "/api/v1/payments/orders/", tag = "payments", params(PageParams),
    responses((status = 200, body = Page<Order>)), security(("bearerAuth" = [])))]
async fn orders(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Query(page): Query<PageParams>,
) -> ServiceResult<Json<Page<Order>>> {
    Ok(Json(service(&ctx)?.orders(user.id, &page).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/orders/", tag = "payments", request_body = CreateOrder,
    responses((status = 201, body = Order), (status = 400)), security(("bearerAuth" = [])))]
async fn create_order(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<CreateOrder>,
) -> ServiceResult<(StatusCode, Json<Order>)> {
    Ok((StatusCode::CREATED, Json(service(&ctx)?.create_order(user.id, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/payments/orders/{id}/", tag = "payments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 404)), security(("bearerAuth" = [])))]
async fn order(State(ctx): State<AppContext>, user: CurrentUser, Path(id): Path<Uuid>) -> ServiceResult<Json<Order>> {
    Ok(Json(service(&ctx)?.order_for(user.id, id).await?))
}

#[utoipa::path(get, path = "/api/v1/payments/orders/{id}/history/", tag = "payments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Transition>), (status = 404)), security(("bearerAuth" = [])))]
async fn order_history(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ServiceResult<Json<Vec<Transition>>> {
    let service = service(&ctx)?;
    let order = service.order_for(user.id, id).await?;
    Ok(Json(service.history(order.id).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/orders/{id}/release/", tag = "payments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 403), (status = 404), (status = 409)), security(("bearerAuth" = [])))]
async fn release(State(ctx): State<AppContext>, user: CurrentUser, Path(id): Path<Uuid>) -> ServiceResult<Json<Order>> {
    Ok(Json(service(&ctx)?.release(user.id, id).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/orders/{id}/refund/", tag = "payments", params(("id" = Uuid, Path)),
    request_body = Option<RefundRequest>,
    responses((status = 200, body = Refund), (status = 400), (status = 403), (status = 404), (status = 409)),
    security(("bearerAuth" = [])))]
async fn refund(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    body: Option<Json<RefundRequest>>,
) -> ServiceResult<Json<Refund>> {
    let request = body.map(|Json(request)| request).unwrap_or_default();
    Ok(Json(service(&ctx)?.refund(user.id, id, request).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/orders/{id}/cancel/", tag = "payments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 403), (status = 404), (status = 409)), security(("bearerAuth" = [])))]
async fn cancel(State(ctx): State<AppContext>, user: CurrentUser, Path(id): Path<Uuid>) -> ServiceResult<Json<Order>> {
    Ok(Json(service(&ctx)?.cancel_order(user.id, id).await?))
}

#[utoipa::path(get, path = "/api/v1/payments/subscriptions/", tag = "payments", params(PageParams),
    responses((status = 200, body = Page<Subscription>)), security(("bearerAuth" = [])))]
async fn subscriptions(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Query(page): Query<PageParams>,
) -> ServiceResult<Json<Page<Subscription>>> {
    Ok(Json(service(&ctx)?.subscriptions(user.id, &page).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/subscriptions/", tag = "payments", request_body = CreateSubscription,
    responses((status = 201, body = Subscription), (status = 400)), security(("bearerAuth" = [])))]
async fn create_subscription(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<CreateSubscription>,
) -> ServiceResult<(StatusCode, Json<Subscription>)> {
    Ok((StatusCode::CREATED, Json(service(&ctx)?.create_subscription(user.id, input).await?)))
}

#[utoipa::path(post, path = "/api/v1/payments/subscriptions/{id}/cancel/", tag = "payments", params(("id" = Uuid, Path)),
    request_body = Option<CancelSubscription>,
    responses((status = 200, body = Subscription), (status = 404), (status = 409)), security(("bearerAuth" = [])))]
async fn cancel_subscription(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    body: Option<Json<CancelSubscription>>,
) -> ServiceResult<Json<Subscription>> {
    let immediately = body.is_some_and(|Json(body)| body.immediately);
    Ok(Json(service(&ctx)?.cancel_subscription(user.id, id, immediately).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/connect/onboarding/", tag = "payments",
    responses((status = 200, body = OnboardingLink)), security(("bearerAuth" = [])))]
async fn onboarding(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<OnboardingLink>> {
    Ok(Json(service(&ctx)?.start_onboarding(user.id).await?))
}

#[utoipa::path(get, path = "/api/v1/payments/connect/status/", tag = "payments",
    responses((status = 200, body = ConnectStatus)), security(("bearerAuth" = [])))]
async fn connect_status(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<ConnectStatus>> {
    Ok(Json(service(&ctx)?.connect_status(user.id).await?))
}

#[utoipa::path(get, path = "/api/v1/payments/payouts/", tag = "payments", params(PageParams),
    responses((status = 200, body = Page<Payout>)), security(("bearerAuth" = [])))]
async fn payouts(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Query(page): Query<PageParams>,
) -> ServiceResult<Json<Page<Payout>>> {
    Ok(Json(service(&ctx)?.payouts(user.id, &page).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/payouts/{id}/retry/", tag = "payments", params(("id" = Uuid, Path)),
    responses((status = 200, body = Payout), (status = 403), (status = 404), (status = 409)), security(("bearerAuth" = [])))]
async fn retry_payout(
    State(ctx): State<AppContext>,
    staff: StaffUser,
    Path(id): Path<Uuid>,
) -> ServiceResult<Json<Payout>> {
    Ok(Json(service(&ctx)?.retry_payout(id, &Actor::user(staff.0.id)).await?))
}

#[utoipa::path(get, path = "/api/v1/payments/ledger/balance/", tag = "payments", params(BalanceQuery),
    responses((status = 200, body = Balances), (status = 403)), security(("bearerAuth" = [])))]
async fn balance(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Query(query): Query<BalanceQuery>,
) -> ServiceResult<Json<Balances>> {
    let service = service(&ctx)?;
    let rows = match query.account_type.as_deref().filter(|t| !t.is_empty()) {
        None => service.ledger().user_balances(user.id).await?,
        Some(kind) => {
            if !service.is_staff(user.id).await? {
                return Err(crate::service::permission_denied());
            }
            if !matches!(kind, "external_stripe" | "platform_escrow" | "platform_revenue") {
                return Err(ServiceError::invalid_field(
                    "account_type",
                    "One of external_stripe, platform_escrow, platform_revenue.",
                ));
            }
            with_pool!(ctx.db(), pool => sqlx::query_as::<_, (String, i64)>(
                concat!("SELECT a.currency, ", crate::ledger::balance_sql!(),
                    " FROM payments_ledger_accounts a WHERE a.account_type = $1 ORDER BY a.currency"))
                .bind(kind).fetch_all(pool).await)?
        }
    };
    let balances = rows.into_iter().map(|(currency, available_cents)| Balance { currency, available_cents }).collect();
    Ok(Json(Balances { balances }))
}

#[utoipa::path(get, path = "/api/v1/payments/reconciliation/", tag = "payments",
    responses((status = 200, body = Vec<ReconciliationIssue>), (status = 403)), security(("bearerAuth" = [])))]
async fn reconciliation(
    State(ctx): State<AppContext>,
    _staff: StaffUser,
) -> ServiceResult<Json<Vec<ReconciliationIssue>>> {
    Ok(Json(service(&ctx)?.reconciliation_issues().await?))
}

/// The OpenAPI description of the payments routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(stripe_webhook, orders, create_order, order, order_history, release, refund, cancel, subscriptions,
        create_subscription, cancel_subscription, onboarding, connect_status, payouts, retry_payout, balance, reconciliation),
    tags((name = "payments", description = "Orders (direct, escrow, subscription, custom strategies), refunds, payouts, Connect, ledger balances, Stripe webhooks"))
)]
pub struct PaymentsApi;
