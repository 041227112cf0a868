//! The `/api/v1/notifications/` routes and the `ws/notifications/` socket.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use saas_auth::CurrentUser;
use saas_core::extract::{Json, Path, Query};
use saas_core::{AppContext, ServiceError, ServiceResult};
use saas_toolkit::{Page, PageParams};

use crate::models::{Device, Notification};
use crate::service::{NotifyService, Preferences};
use crate::store::InboxFilter;

/// Every route of the notifications API and its socket.
pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/api/v1/notifications/", get(inbox))
        .route("/api/v1/notifications/read-all/", post(read_all))
        .route("/api/v1/notifications/unread-count/", get(unread_count))
        .route("/api/v1/notifications/devices/", get(devices).post(register_device))
        .route("/api/v1/notifications/devices/{id}/", delete(remove_device))
        .route("/api/v1/notifications/preferences/", get(preferences).put(set_preferences))
        .route("/api/v1/notifications/{id}/", get(detail))
        .route("/api/v1/notifications/{id}/read/", post(read))
        .route("/ws/notifications/", get(socket))
}

fn service(ctx: &AppContext) -> ServiceResult<NotifyService> {
    NotifyService::get(ctx)
}

/// `?is_read=&type=&limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// `true` or `false`.
    is_read: Option<String>,
    /// A type key.
    #[serde(rename = "type")]
    type_key: Option<String>,
    /// Items per page (1–100, default 20).
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `{"marked_count": n}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Marked {
    /// Notifications marked read.
    pub marked_count: u64,
}

/// `{"unread_count": n}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnreadCount {
    /// Unread notifications.
    pub unread_count: i64,
}

/// `{platform, token, device_id?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DeviceInput {
    /// `fcm` or `apns`.
    platform: String,
    /// The provider's device token.
    token: String,
    /// The app's own id of the device.
    device_id: Option<String>,
}

/// `?token=` of the socket.
#[derive(Debug, Deserialize)]
pub struct SocketQuery {
    token: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/notifications/", tag = "notifications", params(InboxQuery),
    responses((status = 200, body = Page<Notification>)), security(("bearerAuth" = [])))]
async fn inbox(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Query(query): Query<InboxQuery>,
) -> ServiceResult<Json<Page<Notification>>> {
    let is_read = match query.is_read.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(_) => return Err(ServiceError::invalid_field("is_read", "Must be true or false.")),
    };
    let filter = InboxFilter { is_read, type_key: query.type_key.filter(|key| !key.is_empty()) };
    let page = PageParams { limit: query.limit, cursor: query.cursor };
    Ok(Json(service(&ctx)?.inbox(user.id, &filter, &page).await?))
}

#[utoipa::path(get, path = "/api/v1/notifications/{id}/", tag = "notifications", params(("id" = Uuid, Path)),
    responses((status = 200, body = Notification), (status = 404)), security(("bearerAuth" = [])))]
async fn detail(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ServiceResult<Json<Notification>> {
    Ok(Json(service(&ctx)?.notification(user.id, id).await?))
}

#[utoipa::path(post, path = "/api/v1/notifications/{id}/read/", tag = "notifications", params(("id" = Uuid, Path)),
    responses((status = 200, body = Notification), (status = 404)), security(("bearerAuth" = [])))]
async fn read(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ServiceResult<Json<Notification>> {
    Ok(Json(service(&ctx)?.mark_read(user.id, id).await?))
}

#[utoipa::path(post, path = "/api/v1/notifications/read-all/", tag = "notifications",
    responses((status = 200, body = Marked)), security(("bearerAuth" = [])))]
async fn read_all(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<Marked>> {
    Ok(Json(Marked { marked_count: service(&ctx)?.mark_all_read(user.id).await? }))
}

#[utoipa::path(get, path = "/api/v1/notifications/unread-count/", tag = "notifications",
    responses((status = 200, body = UnreadCount)), security(("bearerAuth" = [])))]
async fn unread_count(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<UnreadCount>> {
    Ok(Json(UnreadCount { unread_count: service(&ctx)?.unread_count(user.id).await? }))
}

#[utoipa::path(get, path = "/api/v1/notifications/devices/", tag = "notifications", params(PageParams),
    responses((status = 200, body = Page<Device>)), security(("bearerAuth" = [])))]
async fn devices(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Query(page): Query<PageParams>,
) -> ServiceResult<Json<Page<Device>>> {
    Ok(Json(service(&ctx)?.devices(user.id, &page).await?))
}

#[utoipa::path(post, path = "/api/v1/notifications/devices/", tag = "notifications", request_body = DeviceInput,
    responses((status = 201, body = Device), (status = 200, description = "the token was registered already", body = Device)),
    security(("bearerAuth" = [])))]
async fn register_device(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<DeviceInput>,
) -> ServiceResult<(StatusCode, Json<Device>)> {
    let (device, created) =
        service(&ctx)?.register_device(user.id, &input.platform, &input.token, input.device_id.as_deref()).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(device)))
}

#[utoipa::path(delete, path = "/api/v1/notifications/devices/{id}/", tag = "notifications", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearerAuth" = [])))]
async fn remove_device(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ServiceResult<StatusCode> {
    service(&ctx)?.remove_device(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/notifications/preferences/", tag = "notifications",
    responses((status = 200, body = Preferences)), security(("bearerAuth" = [])))]
async fn preferences(State(ctx): State<AppContext>, user: CurrentUser) -> ServiceResult<Json<Preferences>> {
    Ok(Json(service(&ctx)?.preferences(user.id).await?))
}

#[utoipa::path(put, path = "/api/v1/notifications/preferences/", tag = "notifications", request_body = Preferences,
    responses((status = 200, body = Preferences), (status = 400, description = "validation.failed")), security(("bearerAuth" = [])))]
async fn set_preferences(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(update): Json<Preferences>,
) -> ServiceResult<Json<Preferences>> {
    Ok(Json(service(&ctx)?.set_preferences(user.id, update).await?))
}

/// `ws/notifications/?token=…`: `notification.new` and `unread_count` frames; a socket
/// without a valid access token is closed with 4401.
async fn socket(
    State(ctx): State<AppContext>,
    Query(query): Query<SocketQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let token = query.token.or_else(|| saas_auth::extract::bearer_token(&headers).map(str::to_owned));
    upgrade
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(4096)
        .on_upgrade(move |socket| crate::socket::serve(ctx, token, socket))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(inbox, detail, read, read_all, unread_count, devices, register_device, remove_device, preferences, set_preferences),
    tags((name = "notifications", description = "Inbox, read state, push devices, preferences; the socket is ws/notifications/"))
)]
pub struct NotifyApi;
