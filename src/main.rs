use std::process::ExitCode;

use clap::Parser;
use premise::cli::{Cli, Command};
use premise::config::{Config, Overrides};
use premise::{operator, server, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    let listen = match &command {
        Command::Serve(args) => args.listen.clone(),
        _ => None,
    };
    let overrides = Overrides { listen, database_url: cli.global.database_url };
    let config = match Config::load(cli.global.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("premise: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let result = match command {
        Command::Serve(_) => server::serve(config).await,
        Command::Migrate => operator::migrate(&config).await,
        Command::Users(users) => operator::users(&config, users).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "premise stopped with an error");
            eprintln!("premise: {e:#}");
            ExitCode::FAILURE
        }
    }
}
