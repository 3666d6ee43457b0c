//! Operator commands: `premise migrate` and `premise users create|set-password`.

use std::io::BufRead;

use anyhow::{Context, bail};
use premise_wire::{Password, Role, Username};

use premise_base::Clock;

use crate::auth::{AccountError, Accounts};
use crate::cli::{RoleArg, UsersCommand};
use crate::config::Config;
use crate::server::open_store;

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    open_store(config).await?;
    tracing::info!("migrations applied");
    Ok(())
}

pub async fn users(config: &Config, command: UsersCommand) -> anyhow::Result<()> {
    let accounts =
        Accounts::new(open_store(config).await?, config.password_hasher(), Clock::system());
    match command {
        UsersCommand::Create { username, password, role } => {
            let username = Username::parse("--username", &username)?;
            let password = Password::parse("--password", &password_or_stdin(password)?)?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::User => Role::User,
            };
            match accounts.create(&username, &password, role).await {
                Ok(()) => tracing::info!(%username, role = role.as_str(), "account created"),
                Err(AccountError::Exists) => bail!("an account named {username} already exists"),
                Err(e) => return Err(e.into()),
            }
        }
        UsersCommand::SetPassword { username, password } => {
            let password = Password::parse("--password", &password_or_stdin(password)?)?;
            match accounts.set_password(&username, &password).await {
                Ok(_) => {
                    tracing::info!(%username, "password set; its earlier tokens no longer hold");
                }
                Err(AccountError::NotFound) => bail!("there is no account named {username}"),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// The `--password` value, or the first line of standard input (keeps it out of `ps`).
fn password_or_stdin(given: Option<String>) -> anyhow::Result<String> {
    if let Some(password) = given {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
