//! The reference server: every module of the SDK composed with the app builder.
//! Commands: `serve [--no-worker]` (default), `worker`, `scheduler`, `migrate`, `openapi [--json]`,
//! `createsuperuser`.

use std::process::ExitCode;

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
    saas_server::compose(SaasApp::builder(config).title("SaaS reference server")).run_cli().await
}
