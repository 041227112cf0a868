//! Runs the example: `DEBUG=true cargo run -p auth-only`.

use auth_only::app;
use saas_core::{Config, ServiceError};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = async {
        let config = Config::from_env()?;
        let addr = config.bind_addr;
        let (router, ctx, jobs) = app(config).await?;
        let stop = saas_core::app::shutdown_token(&ctx);
        let worker = saas_core::jobs::spawn_worker(&ctx, &jobs, stop.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(ServiceError::internal)?;
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(saas_core::app::shutdown_signal())
            .await
            .map_err(ServiceError::internal)?;
        stop.cancel();
        let _ = worker.await;
        Ok::<(), ServiceError>(())
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", err.message());
            std::process::ExitCode::FAILURE
        }
    }
}
