//! The `/api/v1/chat/` routes and the `ws/chat/{conversation_id}/` socket: extract, call
//! one service method, answer JSON.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch, post};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use saas_auth::CurrentUser;
use saas_core::extract::{Json, Path, Query};
use saas_core::{AppContext, ServiceResult};
use saas_toolkit::{Page, PageParams};

use crate::hub::Hub;
use crate::models::{Conversation, Message, Participant};
use crate::service::{ChatService, NewConversationInput, PostMessage};

/// Read buffer of a socket: small, since idle sockets are the common case.
const SOCKET_READ_BUFFER: usize = 1024;
/// Bytes of queued frames a socket gathers before writing (a flush writes whatever is there).
const SOCKET_WRITE_BATCH: usize = 16 * 1024;

/// Every route of the chat API and its socket.
pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/api/v1/chat/conversations/", get(list).post(create))
        .route("/api/v1/chat/conversations/{id}/", get(detail).patch(rename).delete(delete_conversation))
        .route("/api/v1/chat/conversations/{id}/read/", post(read))
        .route("/api/v1/chat/conversations/{id}/leave/", post(leave))
        .route("/api/v1/chat/conversations/{id}/transfer-ownership/", post(transfer_ownership))
        .route("/api/v1/chat/conversations/{id}/participants/", get(participants).post(add_participant))
        .route("/api/v1/chat/conversations/{id}/participants/{user_id}/", patch(set_role).delete(remove_participant))
        .route("/api/v1/chat/conversations/{id}/messages/", get(messages).post(post_message))
        .route(
            "/api/v1/chat/conversations/{id}/messages/{message_id}/",
            get(message).patch(edit).delete(delete_message),
        )
        .route("/ws/chat/{conversation_id}/", get(socket))
}

fn service(ctx: &AppContext) -> ChatService {
    ChatService::get(ctx)
}

/// `{title}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TitleInput {
    title: Option<String>,
}

/// `{message_id?}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ReadInput {
    message_id: Option<Uuid>,
}

/// `{user_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UserInput {
    user_id: Uuid,
}

/// `{user_id, role?}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddParticipantInput {
    user_id: Uuid,
    /// `admin` or `member` (default).
    role: Option<String>,
}

/// `{role}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RoleInput {
    /// `admin` or `member`.
    role: Option<String>,
}

/// `{content}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EditInput {
    content: String,
}

/// `{"detail": …}`, the answer of actions without an object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Detail {
    /// What happened.
    pub detail: String,
}

/// `?token=` of the socket.
#[derive(Debug, Deserialize)]
pub struct SocketQuery {
    token: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/chat/conversations/", tag = "chat", params(PageParams),
    responses((status = 200, body = Page<Conversation>)), security(("bearerAuth" = [])))]
async fn list(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Query(page): Query<PageParams>,
) -> ServiceResult<Json<Page<Conversation>>> {
    Ok(Json(service(&ctx).conversations(user.id, &page).await?))
}

#[utoipa::path(post, path = "/api/v1/chat/conversations/", tag = "chat", request_body = NewConversationInput,
    responses((status = 201, body = Conversation), (status = 200, description = "the existing direct conversation", body = Conversation),
        (status = 400, description = "validation.failed")), security(("bearerAuth" = [])))]
async fn create(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Json(input): Json<NewConversationInput>,
) -> ServiceResult<(StatusCode, Json<Conversation>)> {
    let (conversation, created) = service(&ctx).create_conversation(user.id, input).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(conversation)))
}

#[utoipa::path(get, path = "/api/v1/chat/conversations/{id}/", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = Conversation), (status = 404)), security(("bearerAuth" = [])))]
async fn detail(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ServiceResult<Json<Conversation>> {
    Ok(Json(service(&ctx).conversation(user.id, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/chat/conversations/{id}/", tag = "chat", params(("id" = Uuid, Path)), request_body = TitleInput,
    responses((status = 200, body = Conversation), (status = 403, description = "chat.permission_denied"), (status = 404)),
    security(("bearerAuth" = [])))]
async fn rename(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(input): Json<TitleInput>,
) -> ServiceResult<Json<Conversation>> {
    Ok(Json(service(&ctx).rename(user.id, id, input.title.as_deref()).await?))
}

#[utoipa::path(delete, path = "/api/v1/chat/conversations/{id}/", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, description = "chat.permission_denied"), (status = 404)), security(("bearerAuth" = [])))]
async fn delete_conversation(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> ServiceResult<StatusCode> {
    service(&ctx).delete_conversation(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/read/", tag = "chat", params(("id" = Uuid, Path)), request_body = ReadInput,
    responses((status = 200, body = Conversation), (status = 404)), security(("bearerAuth" = [])))]
async fn read(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    input: Option<Json<ReadInput>>,
) -> ServiceResult<Json<Conversation>> {
    let message_id = input.and_then(|Json(input)| input.message_id);
    Ok(Json(service(&ctx).mark_read(user.id, id, message_id).await?))
}

#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/leave/", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = Detail), (status = 404)), security(("bearerAuth" = [])))]
async fn leave(State(ctx): State<AppContext>, user: CurrentUser, Path(id): Path<Uuid>) -> ServiceResult<Json<Detail>> {
    service(&ctx).leave(user.id, id).await?;
    Ok(Json(Detail { detail: "You left the conversation.".into() }))
}

#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/transfer-ownership/", tag = "chat", params(("id" = Uuid, Path)),
    request_body = UserInput, responses((status = 200, body = Conversation), (status = 403, description = "chat.permission_denied")),
    security(("bearerAuth" = [])))]
async fn transfer_ownership(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(input): Json<UserInput>,
) -> ServiceResult<Json<Conversation>> {
    Ok(Json(service(&ctx).transfer_ownership(user.id, id, input.user_id).await?))
}

#[utoipa::path(get, path = "/api/v1/chat/conversations/{id}/participants/", tag = "chat", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<Participant>), (status = 404)), security(("bearerAuth" = [])))]
async fn participants(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(page): Query<PageParams>,
) -> ServiceResult<Json<Page<Participant>>> {
    Ok(Json(service(&ctx).participants(user.id, id, &page).await?))
}

#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/participants/", tag = "chat", params(("id" = Uuid, Path)),
    request_body = AddParticipantInput, responses((status = 201, body = Participant), (status = 403, description = "chat.permission_denied"),
        (status = 409, description = "chat.already_participant")), security(("bearerAuth" = [])))]
async fn add_participant(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(input): Json<AddParticipantInput>,
) -> ServiceResult<(StatusCode, Json<Participant>)> {
    let participant = service(&ctx).add_participant(user.id, id, input.user_id, input.role.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(participant)))
}

#[utoipa::path(patch, path = "/api/v1/chat/conversations/{id}/participants/{user_id}/", tag = "chat",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = RoleInput,
    responses((status = 200, body = Participant), (status = 403, description = "chat.permission_denied")), security(("bearerAuth" = [])))]
async fn set_role(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
    Json(input): Json<RoleInput>,
) -> ServiceResult<Json<Participant>> {
    Ok(Json(service(&ctx).set_role(user.id, id, user_id, input.role.as_deref()).await?))
}

#[utoipa::path(delete, path = "/api/v1/chat/conversations/{id}/participants/{user_id}/", tag = "chat",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 400, description = "chat.use_leave"), (status = 403, description = "chat.permission_denied")),
    security(("bearerAuth" = [])))]
async fn remove_participant(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ServiceResult<StatusCode> {
    service(&ctx).remove_participant(user.id, id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/chat/conversations/{id}/messages/", tag = "chat", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<Message>), (status = 404)), security(("bearerAuth" = [])))]
async fn messages(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Query(page): Query<PageParams>,
) -> ServiceResult<Json<Page<Message>>> {
    Ok(Json(service(&ctx).messages(user.id, id, &page).await?))
}

#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/messages/", tag = "chat", params(("id" = Uuid, Path)),
    request_body = PostMessage, responses((status = 201, body = Message), (status = 400, description = "validation.failed")),
    security(("bearerAuth" = [])))]
async fn post_message(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
    Json(input): Json<PostMessage>,
) -> ServiceResult<(StatusCode, Json<Message>)> {
    Ok((StatusCode::CREATED, Json(service(&ctx).post_message(user.id, id, input, None).await?)))
}

#[utoipa::path(get, path = "/api/v1/chat/conversations/{id}/messages/{message_id}/", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)), responses((status = 200, body = Message), (status = 404)),
    security(("bearerAuth" = [])))]
async fn message(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path((id, message_id)): Path<(Uuid, Uuid)>,
) -> ServiceResult<Json<Message>> {
    Ok(Json(service(&ctx).message(user.id, id, message_id).await?))
}

#[utoipa::path(patch, path = "/api/v1/chat/conversations/{id}/messages/{message_id}/", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)), request_body = EditInput,
    responses((status = 200, body = Message), (status = 403, description = "chat.permission_denied")), security(("bearerAuth" = [])))]
async fn edit(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path((id, message_id)): Path<(Uuid, Uuid)>,
    Json(input): Json<EditInput>,
) -> ServiceResult<Json<Message>> {
    Ok(Json(service(&ctx).edit_message(user.id, id, message_id, &input.content).await?))
}

#[utoipa::path(delete, path = "/api/v1/chat/conversations/{id}/messages/{message_id}/", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 204), (status = 403, description = "chat.permission_denied")), security(("bearerAuth" = [])))]
async fn delete_message(
    State(ctx): State<AppContext>,
    user: CurrentUser,
    Path((id, message_id)): Path<(Uuid, Uuid)>,
) -> ServiceResult<StatusCode> {
    service(&ctx).delete_message(user.id, id, message_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `ws/chat/{conversation_id}/?token=…`: the upgrade is always accepted; a refused socket
/// is then closed with 4401 (not authenticated) or 4404 (not a participant).
async fn socket(
    State(ctx): State<AppContext>,
    axum::extract::Path(conversation): axum::extract::Path<String>,
    Query(query): Query<SocketQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> ServiceResult<Response> {
    let token = query.token.or_else(|| saas_auth::extract::bearer_token(&headers).map(str::to_owned));
    let max_frame = Hub::get(&ctx)?.settings().max_frame_bytes;
    Ok(upgrade
        .read_buffer_size(SOCKET_READ_BUFFER)
        .write_buffer_size(SOCKET_WRITE_BATCH)
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| crate::hub::socket::serve(ctx, conversation, token, socket)))
}

/// The OpenAPI description of these routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list, create, detail, rename, delete_conversation, read, leave, transfer_ownership, participants, add_participant,
        set_role, remove_participant, messages, post_message, message, edit, delete_message
    ),
    tags((name = "chat", description = "Conversations, participants and messages; the socket is ws/chat/{conversation_id}/"))
)]
pub struct ChatApi;
