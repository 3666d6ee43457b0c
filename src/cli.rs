//! The command line: `premise [serve]`, `premise migrate`, `premise users ...`,
//! `premise sandbox numbers`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "premise",
    version,
    about = "A self-hosted server speaking the WhatsApp Business On-Premises API",
    long_about = "A self-hosted server speaking the WhatsApp Business On-Premises API.\n\n\
        Point an On-Premises integration's base URL at it. Without a subcommand Premise serves \
        on 127.0.0.1:8080 (this machine only; --listen 0.0.0.0:8080 to serve the network, as the \
        container image does) with an embedded SQLite database under ./data/. Every setting is \
        documented in config/default.toml."
)]
pub struct Cli {
    /// Options accepted before or after the subcommand (`premise --database-url URL serve`
    /// and `premise serve --database-url URL` alike).
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// A TOML file overriding config/default.toml (environment variables override it in turn).
    #[arg(
        long,
        global = true,
        env = "PREMISE_CONFIG",
        value_name = "PATH",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB [default: sqlite://data/premise.db]
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080, this machine only]
    #[arg(long, env = "PREMISE_LISTEN", value_name = "ADDR", hide_env_values = true)]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080, this machine only]
    #[arg(long, env = "PREMISE_LISTEN", value_name = "ADDR", hide_env_values = true)]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (the default).
    Serve(ServeArgs),
    /// Apply database migrations, create the default admin account if missing, and exit.
    Migrate,
    /// Manage API accounts from the shell (for operators).
    #[command(subcommand)]
    Users(UsersCommand),
    /// The built-in sandbox WhatsApp network.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Print the test numbers and what sending to each one does (the README's table).
    Numbers,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account. The password is read from standard input unless --password is given.
    Create {
        /// The account's name (what `/v1/users/login` takes).
        #[arg(long)]
        username: String,
        /// Its password (8 to 64 characters with a digit, an upper-case and a lower-case letter
        /// and a symbol); read from standard input when absent, so it stays out of the history.
        #[arg(long)]
        password: Option<String>,
        /// `admin` (every endpoint) or `user` (sending, media, contacts, its own account).
        #[arg(long, value_enum, default_value_t = RoleArg::User)]
        role: RoleArg,
    },
    /// Set an account's password (also clears a pending first-login change). The password is
    /// read from standard input unless --password is given.
    SetPassword {
        /// The account's name.
        #[arg(long)]
        username: String,
        /// The new password; read from standard input when absent.
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    User,
}
