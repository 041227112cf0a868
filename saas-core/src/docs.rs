//! API documentation: the OpenAPI document assembled from every module, served as YAML or
//! JSON at `/schema/`, ReDoc at `/`, Swagger UI (from the binary) at `/docs/`, and the
//! `/api/v1/` root.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::context::AppContext;
use crate::error::{ServiceError, ServiceResult};
use crate::extract::Query;

/// The assembled OpenAPI document and its serialised forms, computed once at start-up.
#[derive(Clone)]
pub struct ApiDocs {
    /// The document.
    pub openapi: OpenApi,
    yaml: std::sync::Arc<str>,
    json: std::sync::Arc<str>,
    links: Vec<(&'static str, &'static str)>,
}

impl ApiDocs {
    /// Merges module fragments under one title and version, with the bearer scheme
    /// (`bearerAuth`) that authenticated operations refer to.
    pub fn assemble(
        title: &str,
        version: &str,
        fragments: impl IntoIterator<Item = OpenApi>,
        links: Vec<(&'static str, &'static str)>,
    ) -> ServiceResult<Self> {
        let bearer =
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build());
        let mut openapi = OpenApiBuilder::new()
            .info(InfoBuilder::new().title(title).version(version).build())
            .components(Some(ComponentsBuilder::new().security_scheme("bearerAuth", bearer).build()))
            .build();
        openapi.merge(platform_openapi());
        for fragment in fragments {
            openapi.merge(fragment);
        }
        let yaml = openapi.to_yaml().map_err(ServiceError::internal)?;
        let json = openapi.to_json().map_err(ServiceError::internal)?;
        Ok(Self { openapi, yaml: yaml.into(), json: json.into(), links })
    }

    /// The document as YAML.
    pub fn yaml(&self) -> &str {
        &self.yaml
    }

    /// The document as JSON.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// The platform's own operations (`/health/`, `/api/v1/`).
fn platform_openapi() -> OpenApi {
    let value = json!({
        "openapi": "3.1.0",
        "info": {"title": "platform", "version": "1"},
        "paths": {
            "/health/": {"get": {
                "tags": ["platform"], "operationId": "health",
                "summary": "Health of the service and each dependency",
                "responses": {
                    "200": {"description": "Every required dependency is up", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
                    "503": {"description": "A required dependency is down", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}
                }
            }},
            "/api/v1/": {"get": {
                "tags": ["platform"], "operationId": "api_root",
                "summary": "Links to each mounted domain",
                "responses": {"200": {"description": "Links", "content": {"application/json": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}}}}
            }}
        },
        "components": {"schemas": {
            "Health": {"type": "object", "required": ["status", "checks"], "properties": {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "checks": {"type": "object", "additionalProperties": {"type": "string", "enum": ["ok", "disabled", "unavailable"]}}
            }},
            "ErrorEnvelope": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message", "details"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}
            }}}
        }}
    });
    serde_json::from_value(value).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct SchemaQuery {
    format: Option<String>,
}

/// Routes `/`, `/schema/`, `/docs/` and `/api/v1/`.
pub fn routes() -> Router<AppContext> {
    let swagger = SwaggerUi::new("/docs")
        .config(SwaggerConfig::new(["/schema/?format=json"]).validator_url("none").try_it_out_enabled(true));
    Router::new().route("/", get(redoc)).route("/schema/", get(schema)).route("/api/v1/", get(api_root)).merge(swagger)
}

async fn schema(State(ctx): State<AppContext>, Query(query): Query<SchemaQuery>) -> Result<Response, ServiceError> {
    let docs = ctx.get::<ApiDocs>().ok_or_else(|| ServiceError::not_found("Schema"))?;
    let (body, content_type) = match query.format.as_deref() {
        Some("json") => (docs.json().to_owned(), "application/json"),
        None | Some("yaml") => (docs.yaml().to_owned(), "application/yaml"),
        Some(other) => {
            return Err(ServiceError::invalid_field("format", format!("unknown format {other:?}; use json or yaml")));
        }
    };
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response())
}

async fn redoc(State(ctx): State<AppContext>) -> Html<String> {
    let title = ctx.get::<ApiDocs>().map(|d| d.openapi.info.title.clone()).unwrap_or_default();
    let script = html_escape(&ctx.config().redoc_js_url);
    Html(format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n</head>\n<body>\n\
         <redoc spec-url=\"/schema/\"></redoc>\n<script src=\"{script}\"></script>\n</body>\n</html>\n",
        title = html_escape(&title),
    ))
}

async fn api_root(State(ctx): State<AppContext>) -> axum::Json<Value> {
    let mut links = Map::new();
    if let Some(docs) = ctx.get::<ApiDocs>() {
        for (name, path) in &docs.links {
            links.insert((*name).to_owned(), Value::String((*path).to_owned()));
        }
    }
    links.insert("schema".into(), Value::String("/schema/".into()));
    links.insert("health".into(), Value::String("/health/".into()));
    axum::Json(Value::Object(links))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
