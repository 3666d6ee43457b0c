//! Premise: a self-hosted server speaking the WhatsApp Business On-Premises API.
//!
//! The binary is thin wiring: [`cli`] parses the command line, [`config`] loads and validates
//! settings, [`server`] opens the store and serves [`http`], whose handlers use [`auth`] and
//! the `premise-store` and `premise-wire` crates. See `docs/architecture.md` for the whole picture.

pub mod account;
pub mod auth;
pub mod backup;
pub mod certificates;
pub mod cli;
pub mod config;
pub mod connection;
pub mod http;
pub mod listener;
pub mod operator;
pub mod server;
pub mod telemetry;
pub mod upstream;
