//! End-to-end tests: real `faas-server` and `worker` binaries, real HTTP.
//! One test binary with modules (faster to link than one per file).

mod harness;
mod http;

mod async_calls;
mod async_cli;
mod bounds;
mod browser;
mod build;
mod callbacks;
mod cluster;
mod cluster_attacks;
mod config;
mod core;
mod dashboard;
mod failures;
mod fs_attacks;
mod languages;
mod limits;
mod manifests;
mod nats_queue;
mod operations;
mod outbound;
mod outbound_attacks;
mod packages;
mod projects;
mod reliability;
mod request_ids;
mod sandbox;
mod schedules;
mod scratch;
mod secret_attacks;
mod secrets;
mod sessions;
mod snapshots;
mod wasi;
