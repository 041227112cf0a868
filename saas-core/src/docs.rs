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
        let openapi = with_shared_responses(openapi)?;
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

/// Documents the answers every operation may give besides its own: the error envelope on
/// each error response, 400 where there is input, 401 where a token is required, 404 where
/// a path names an object, 413 where there is a body, and 503 when a dependency is down.
fn with_shared_responses(openapi: OpenApi) -> ServiceResult<OpenApi> {
    let mut doc = serde_json::to_value(&openapi).map_err(ServiceError::internal)?;
    let envelope = json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}});
    let shared = [
        ("400", "Invalid input (`validation.failed`, with the fields in `details`)"),
        ("401", "Missing, invalid, expired or revoked token (`auth.token_invalid`)"),
        ("404", "No such object, or not one the caller may see (`not_found`)"),
        ("413", "The body is larger than the server accepts (`payload_too_large`)"),
        ("503", "A dependency is down (`database.unavailable`, …); retry later"),
    ];
    let paths = doc.get_mut("paths").and_then(Value::as_object_mut);
    for (path, operations) in paths.into_iter().flatten() {
        let Some(operations) = operations.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            let secured = operation.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            let has_body = operation.get("requestBody").is_some();
            let has_input =
                has_body || operation.get("parameters").is_some_and(|p| p.as_array().is_some_and(|p| !p.is_empty()));
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            for (status, description) in shared {
                let applies = match status {
                    "400" => has_input,
                    "401" => secured,
                    "404" => path.contains('{'),
                    "413" => has_body,
                    _ => true,
                };
                if applies && !responses.contains_key(status) {
                    responses.insert(status.to_owned(), json!({"description": description}));
                }
            }
            for (status, response) in responses.iter_mut() {
                let Some(response) = response.as_object_mut() else { continue };
                if !response.contains_key("description") {
                    let reason = status.parse::<u16>().ok().and_then(|code| http::StatusCode::from_u16(code).ok());
                    let reason = reason.and_then(|code| code.canonical_reason()).unwrap_or("Response");
                    response.insert("description".to_owned(), Value::String(reason.to_owned()));
                }
                if (status.starts_with('4') || status.starts_with('5')) && !response.contains_key("content") {
                    response.insert("content".to_owned(), envelope.clone());
                }
            }
        }
    }
    serde_json::from_value(doc).map_err(ServiceError::internal)
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
