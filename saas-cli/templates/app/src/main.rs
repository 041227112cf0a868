//! The {{project-name}} server. Commands: `serve` (default), `worker`, `scheduler`, `migrate`,
//! `openapi`{% if auth %}, `createsuperuser`{% endif %}; settings come from the environment and `.env`.

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
    {{crate_name}}::compose(SaasApp::builder(config).title("{{project-name}}")).run_cli().await
}
