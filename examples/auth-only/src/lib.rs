//! A plain axum app with its own state that adds `saas-auth` in a few lines — the path
//! of a team adding one crate to an existing service.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::get;
use saas_auth::{AuthModule, CurrentUser};
use saas_core::jobs::JobRegistry;
use saas_core::{AppContext, Config, Module, ServiceResult};

/// The app's own state; it only has to hand out the `AppContext`.
#[derive(Clone)]
pub struct AppState {
    /// The SDK's context (database, cache, jobs).
    pub saas: AppContext,
    /// Something of the app's own.
    pub greeting: &'static str,
}

impl FromRef<AppState> for AppContext {
    fn from_ref(state: &AppState) -> AppContext {
        state.saas.clone()
    }
}

async fn hello(State(state): State<AppState>, user: CurrentUser) -> String {
    format!("{}, {}", state.greeting, user.id)
}

/// Builds the app: the SDK context, the auth routes beside the app's own, and the auth
/// jobs (emails) for a worker.
pub async fn app(config: Config) -> ServiceResult<(Router, AppContext, Arc<JobRegistry>)> {
    let auth = AuthModule::default();
    let saas = AppContext::connect(config, &[&auth]).await?;
    let mut jobs = JobRegistry::default();
    auth.jobs(&mut jobs);
    let router = Router::new()
        .route("/hello/", get(hello))
        .with_state(AppState { saas: saas.clone(), greeting: "Hello" })
        .merge(auth.router(&saas)?.with_state(saas.clone()));
    Ok((router, saas, Arc::new(jobs)))
}
