//! `/api/v1/{{ plural }}/`: list and create; `/api/v1/{{ plural }}/{id}/`: read, change, delete.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use uuid::Uuid;

use saas_core::extract::{Json, Path, Query};
use saas_core::{AppContext, ServiceResult};
use saas_toolkit::{Page, PageParams};

use crate::owner::Owner;

use super::model::{ {{ Singular }}, {{ Singular }}Changes, {{ Singular }}Input };
use super::service::{{ Plural }}Service;

/// Every route of the module.
pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/api/v1/{{ plural }}/", get(list).post(create))
        .route("/api/v1/{{ plural }}/{id}/", get(detail).patch(update).delete(remove))
}

/// The OpenAPI description of the routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, create, detail, update, remove),
    tags((name = "{{ plural }}", description = "{{ Plural }}, each seen and changed by its owner only"))
)]
pub struct {{ Plural }}Api;

#[utoipa::path(get, path = "/api/v1/{{ plural }}/", tag = "{{ plural }}", params(PageParams),
    responses((status = 200, body = Page<{{ Singular }}>)){% if auth %}, security(("bearerAuth" = [])){% endif %})]
async fn list(
    State(ctx): State<AppContext>,
    Owner(owner): Owner,
    Query(page): Query<PageParams>,
) -> ServiceResult<Json<Page<{{ Singular }}>>> {
    Ok(Json({{ Plural }}Service::new(&ctx).list(owner, &page).await?))
}

#[utoipa::path(post, path = "/api/v1/{{ plural }}/", tag = "{{ plural }}", request_body = {{ Singular }}Input,
    responses((status = 201, body = {{ Singular }}), (status = 400)){% if auth %}, security(("bearerAuth" = [])){% endif %})]
async fn create(
    State(ctx): State<AppContext>,
    Owner(owner): Owner,
    Json(input): Json<{{ Singular }}Input>,
) -> ServiceResult<(StatusCode, Json<{{ Singular }}>)> {
    Ok((StatusCode::CREATED, Json({{ Plural }}Service::new(&ctx).create(owner, input).await?)))
}

#[utoipa::path(get, path = "/api/v1/{{ plural }}/{id}/", tag = "{{ plural }}", params(("id" = Uuid, Path)),
    responses((status = 200, body = {{ Singular }}), (status = 404)){% if auth %}, security(("bearerAuth" = [])){% endif %})]
async fn detail(State(ctx): State<AppContext>, Owner(owner): Owner, Path(id): Path<Uuid>) -> ServiceResult<Json<{{ Singular }}>> {
    Ok(Json({{ Plural }}Service::new(&ctx).get(owner, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/{{ plural }}/{id}/", tag = "{{ plural }}", params(("id" = Uuid, Path)),
    request_body = {{ Singular }}Changes, responses((status = 200, body = {{ Singular }}), (status = 400), (status = 404)){% if auth %},
    security(("bearerAuth" = [])){% endif %})]
async fn update(
    State(ctx): State<AppContext>,
    Owner(owner): Owner,
    Path(id): Path<Uuid>,
    Json(changes): Json<{{ Singular }}Changes>,
) -> ServiceResult<Json<{{ Singular }}>> {
    Ok(Json({{ Plural }}Service::new(&ctx).update(owner, id, changes).await?))
}

#[utoipa::path(delete, path = "/api/v1/{{ plural }}/{id}/", tag = "{{ plural }}", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404)){% if auth %}, security(("bearerAuth" = [])){% endif %})]
async fn remove(State(ctx): State<AppContext>, Owner(owner): Owner, Path(id): Path<Uuid>) -> ServiceResult<StatusCode> {
    {{ Plural }}Service::new(&ctx).delete(owner, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
