#![doc = include_str!("../README.md")]

pub mod admin;
pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod context;
pub mod db;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod module;
pub mod pubsub;
#[cfg(feature = "testing")]
pub mod testing;
pub mod websocket;

pub use app::{App, SaasApp, SaasAppBuilder, ServeOptions};
pub use config::Config;
pub use context::AppContext;
pub use db::{Db, Migrations};
pub use error::{ErrorKind, ServiceError, ServiceResult, ValidationErrors};
pub use health::{HealthCheck, HealthStatus};
pub use module::Module;

/// Re-exports used by the macros and by modules, so they share one version.
pub mod reexports {
    pub use async_trait::async_trait;
    pub use axum;
    pub use sqlx;
    pub use utoipa;
}
