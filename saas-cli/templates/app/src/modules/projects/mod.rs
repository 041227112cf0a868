//! {{ Plural }}: a resource of the app's own, each {{ singular }} owned by whoever created it, at
//! `/api/v1/{{ plural }}/`. The pattern of every module of the app: the record in `model.rs`,
//! its SQL in `store.rs`, the rules in `service.rs`, thin HTTP handlers in `routes.rs`; the
//! table is in `migrations/`, its admin panel in `admin.rs`, the HTTP tests in
//! `tests/api/{{ plural }}.rs`.

pub mod admin;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;

use axum::Router;
use saas_core::{AppContext, Module};

/// The {{ plural }} module: its routes and their OpenAPI description.
#[derive(Debug, Default, Clone, Copy)]
pub struct {{ Plural }}Module;

impl Module for {{ Plural }}Module {
    fn name(&self) -> &'static str {
        "{{ plural }}"
    }

    fn routes(&self, _ctx: &AppContext) -> Router<AppContext> {
        routes::router()
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <routes::{{ Plural }}Api as utoipa::OpenApi>::openapi()
    }

    fn api_root(&self) -> Option<(&'static str, &'static str)> {
        Some(("{{ plural }}", "/api/v1/{{ plural }}/"))
    }

    fn admin(&self, site: &mut saas_core::admin::AdminSite) {
        site.panel(admin::{{ Plural }}Panel);
    }
}
