//! The command line of every app: `serve`, `worker`, `scheduler`, `migrate`, `openapi`,
//! plus the commands modules contribute (e.g. `createsuperuser`).

use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::app::{SaasAppBuilder, ServeOptions, shutdown_signal};
use crate::error::ServiceError;

/// Sets up logging: human-readable with `DEBUG=true`, JSON lines otherwise; `RUST_LOG`
/// filters (default `info`). Logs go to stderr so command output stays clean.
pub fn init_tracing(debug: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if debug { builder.try_init() } else { builder.json().flatten_event(true).try_init() };
}

fn base_command(name: &'static str) -> Command {
    Command::new(name)
        .about("SaaS backend server")
        .subcommand(
            Command::new("serve")
                .about("HTTP and WebSocket server (with the job worker and scheduler unless --no-worker)")
                .arg(
                    Arg::new("no-worker")
                        .long("no-worker")
                        .action(ArgAction::SetTrue)
                        .help("Run neither the worker nor the scheduler"),
                ),
        )
        .subcommand(Command::new("worker").about("Run background jobs only"))
        .subcommand(Command::new("scheduler").about("Fire cron entries only (safe on several nodes: one fires)"))
        .subcommand(Command::new("migrate").about("Apply every module's migrations and exit"))
        .subcommand(
            Command::new("openapi")
                .about("Print the OpenAPI document (YAML, or JSON with --json)")
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue)),
        )
}

impl SaasAppBuilder {
    /// Parses the process arguments and runs the chosen command (default `serve`).
    pub async fn run_cli(self) -> ExitCode {
        self.run_cli_from(std::env::args_os()).await
    }

    /// Like [`run_cli`](Self::run_cli) with explicit arguments (the first is the program name).
    pub async fn run_cli_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        init_tracing(self.config().debug);
        let mut command = base_command("server");
        for module in self.module_list() {
            for sub in module.commands() {
                command = command.subcommand(sub);
            }
        }
        let matches = command.get_matches_from(args);
        match self.dispatch(&matches).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {}", err.message());
                tracing::error!(code = err.code(), error = err.message(), "command failed");
                ExitCode::FAILURE
            }
        }
    }

    async fn dispatch(self, matches: &ArgMatches) -> Result<(), ServiceError> {
        match matches.subcommand() {
            None => self.serve(ServeOptions::default()).await,
            Some(("serve", args)) => {
                let run_background = !args.get_flag("no-worker");
                self.serve(ServeOptions { worker: run_background, scheduler: run_background }).await
            }
            Some(("worker", _)) => self.build().await?.run_worker(shutdown_signal()).await,
            Some(("scheduler", _)) => self.build().await?.run_scheduler(shutdown_signal()).await,
            Some(("migrate", _)) => {
                let app = self.build().await?;
                app.context().db().close().await;
                println!("migrations applied");
                Ok(())
            }
            Some(("openapi", args)) => {
                let docs = self.docs()?;
                print!("{}", if args.get_flag("json") { docs.json() } else { docs.yaml() });
                Ok(())
            }
            Some((name, args)) => {
                let owner =
                    self.module_list().iter().find(|m| m.commands().iter().any(|c| c.get_name() == name)).cloned();
                let owner = owner.ok_or_else(|| ServiceError::not_found("Command"))?;
                let app = self.build().await?;
                let result = owner.run_command(app.context(), name, args).await;
                app.context().db().close().await;
                result
            }
        }
    }

    async fn serve(self, options: ServeOptions) -> Result<(), ServiceError> {
        let addr = self.config().bind_addr;
        let app = self.build().await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| ServiceError::internal(format!("cannot listen on {addr}: {err}")))?;
        app.serve(listener, options, shutdown_signal()).await
    }
}
