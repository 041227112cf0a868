//! The reference server: every module of the SDK composed with the app builder.
//! Commands: `serve [--no-worker]` (default), `worker`, `scheduler`, `migrate`, `openapi [--json]`.

use std::process::ExitCode;

use saas_auth::AuthModule;
use saas_chat::ChatModule;
use saas_core::{Config, SaasApp};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {}", err.message());
            return ExitCode::FAILURE;
        }
    };
    SaasApp::builder(config)
        .title("SaaS reference server")
        .module(AuthModule::default())
        .module(ChatModule::default())
        .run_cli()
        .await
}
