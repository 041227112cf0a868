#![doc = include_str!("../README.md")]

mod admin;
pub mod events;
pub mod hub;
pub mod models;
pub mod routes;
pub mod service;
pub mod store;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use saas_core::{AppContext, Migrations, Module, ServiceResult};

pub use events::{ChatEvents, MessagePosted};
pub use hub::HubSettings;
pub use models::{Conversation, ConversationType, Message, MessageType, Participant, Role};
pub use service::ChatService;

/// The chat module.
#[derive(Default, Clone)]
pub struct ChatModule {
    events: Option<Arc<dyn ChatEvents>>,
}

impl ChatModule {
    /// Tells `events` of every new message (with the participants who are not connected),
    /// e.g. to send them notifications.
    pub fn events(mut self, events: Arc<dyn ChatEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// The migrations of the chat tables.
    pub fn migrations() -> Migrations {
        Migrations::new(sqlx::migrate!("migrations/sqlite"), sqlx::migrate!("migrations/postgres"))
    }

    /// Installs the service and hub in `ctx` and returns the routes, for apps that do not
    /// use the app builder (run [`ChatModule::migrations`] on the database first).
    pub fn router(&self, ctx: &AppContext) -> ServiceResult<Router<AppContext>> {
        self.install(ctx)?;
        Ok(routes::router())
    }

    fn install(&self, ctx: &AppContext) -> ServiceResult<()> {
        ctx.insert(ChatService::new(ctx, self.events.clone()));
        hub::Hub::install(ctx)?;
        Ok(())
    }
}

#[async_trait]
impl Module for ChatModule {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn migrations(&self) -> Migrations {
        ChatModule::migrations()
    }

    async fn init(&self, ctx: &AppContext) -> ServiceResult<()> {
        self.install(ctx)
    }

    fn routes(&self, _ctx: &AppContext) -> Router<AppContext> {
        routes::router()
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <routes::ChatApi as utoipa::OpenApi>::openapi()
    }

    fn api_root(&self) -> Option<(&'static str, &'static str)> {
        Some(("chat", "/api/v1/chat/"))
    }

    fn admin(&self, site: &mut saas_core::admin::AdminSite) {
        admin::register(site);
    }
}
