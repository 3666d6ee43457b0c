//! Premise's black-box tests, in one test binary: each module drives the real `premise` binary
//! (or several, behind a real nginx, in a container, against a full disk) over HTTP the way an
//! On-Premises or Cloud API integration would, through `support`. One binary links the server
//! once instead of once per area. The storage conformance suite stays with the store
//! (`crates/store/tests/conformance.rs`).
#![recursion_limit = "512"]

#[macro_use]
mod support;

mod auth;
mod bench_smoke;
mod certificates;
mod cloud;
mod cloud_dialect;
mod console;
mod contacts;
mod container;
mod contract;
mod deployment;
mod docs;
mod failover;
mod first_use;
mod http_errors;
mod idempotency;
mod leases;
mod load_balancer;
mod login_limits;
mod media;
mod monitoring;
mod onprem_settings;
mod operations;
mod pipeline;
mod postman;
mod profile;
mod replicas;
mod retention;
mod sandbox;
mod security;
mod slow_clients;
mod storage_faults;
mod usernames;
