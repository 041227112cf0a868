//! `saas`, the command line of the saas-rs SDK: `saas new` scaffolds an app on the SDK,
//! `saas generate` adds modules and payment strategies to it, `saas doctor` checks its
//! settings and the services they name.

mod app;
mod doctor;
mod generate;
mod names;
mod new;
mod render;
mod templates;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The `saas` command line.
#[derive(Debug, Parser)]
#[command(name = "saas", version, about = "Scaffold and grow SaaS backends on the saas-rs SDK")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an app in a new folder NAME: the chosen SDK modules composed, an example module, tests, Docker and CI files
    New(new::NewArgs),
    /// Add a module or a payment strategy to the app in this folder
    #[command(subcommand)]
    Generate(generate::GenerateCommand),
    /// Check the app's configuration and that its database, Redis, SMTP and Stripe settings work
    Doctor,
    /// Render a template folder with cargo-generate (run by `saas new` in a child process)
    #[command(hide = true)]
    RenderTemplate(render::RenderArgs),
}

/// A failure to report to the user: the message says what went wrong and what to do.
#[derive(Debug)]
pub struct Failure(pub String);

impl Failure {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The result of a command.
pub type CliResult<T> = Result<T, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::New(args) => new::run(args),
        Command::Generate(command) => generate::run(command),
        Command::Doctor => doctor::run(),
        Command::RenderTemplate(args) => render::render(args),
    };
    match result {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
