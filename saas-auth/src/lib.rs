#![doc = include_str!("../README.md")]

pub mod admin;
pub mod directory;
pub mod extract;
mod jobs;
pub mod models;
pub mod routes;
pub mod service;
pub mod social;
pub mod store;
mod user_cache;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use saas_core::jobs::{CronSchedule, JobRegistry};
use saas_core::{AppContext, Migrations, Module, ServiceError, ServiceResult};

pub use directory::{UserDirectory, UserEmails, UserSummary, directory};
pub use extract::{CurrentUser, StaffUser, VerifiedUser};
pub use models::{Profile, TokenPair, User};
pub use service::AuthService;
pub use social::{ExternalIdentity, IdentityProvider, OidcProvider};

/// The accounts module.
#[derive(Default, Clone)]
pub struct AuthModule {
    providers: Vec<Arc<dyn IdentityProvider>>,
}

impl AuthModule {
    /// Adds an identity provider of the app's own (sign-in at a route the app mounts, or
    /// replacing `google`/`apple` by name).
    pub fn provider(mut self, provider: Arc<dyn IdentityProvider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// The migrations of the accounts tables.
    pub fn migrations() -> Migrations {
        Migrations::new(sqlx::migrate!("migrations/sqlite"), sqlx::migrate!("migrations/postgres"))
    }

    /// Installs the service in `ctx` and returns the routes, for apps that do not use the
    /// app builder (run [`AuthModule::migrations`] on the database first).
    pub fn router(&self, ctx: &AppContext) -> ServiceResult<Router<AppContext>> {
        ctx.insert(AuthService::new(ctx, self.providers.clone())?);
        Ok(routes::router())
    }
}

#[async_trait]
impl Module for AuthModule {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn migrations(&self) -> Migrations {
        AuthModule::migrations()
    }

    async fn init(&self, ctx: &AppContext) -> ServiceResult<()> {
        ctx.insert(AuthService::new(ctx, self.providers.clone())?);
        Ok(())
    }

    fn routes(&self, _ctx: &AppContext) -> Router<AppContext> {
        routes::router()
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        <routes::AuthApi as utoipa::OpenApi>::openapi()
    }

    fn api_root(&self) -> Option<(&'static str, &'static str)> {
        Some(("auth", "/api/v1/auth/"))
    }

    fn admin(&self, site: &mut saas_core::admin::AdminSite) {
        site.accounts(admin::StaffAccounts).panel(admin::UsersPanel).card(admin::AccountsCard);
    }

    fn jobs(&self, jobs: &mut JobRegistry) {
        jobs::register(jobs);
    }

    fn cron(&self, cron: &mut CronSchedule) {
        jobs::schedule(cron);
    }

    fn commands(&self) -> Vec<clap::Command> {
        vec![
            clap::Command::new("createsuperuser")
                .about("Create a staff user (the password is read from stdin when not given)")
                .arg(clap::Arg::new("email").long("email").required(true))
                .arg(clap::Arg::new("password").long("password")),
        ]
    }

    async fn run_command(&self, ctx: &AppContext, name: &str, args: &clap::ArgMatches) -> ServiceResult<()> {
        if name != "createsuperuser" {
            return Err(ServiceError::not_found("Command"));
        }
        let email = args.get_one::<String>("email").cloned().unwrap_or_default();
        let password = match args.get_one::<String>("password") {
            Some(password) => password.clone(),
            None => {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map_err(ServiceError::internal)?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            }
        };
        let user = AuthService::get(ctx)?.create_superuser(&email, &password).await?;
        println!("superuser {} ready", user.email);
        Ok(())
    }
}
