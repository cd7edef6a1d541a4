//! faas-outbound's integration tests: one binary, real servers on
//! 127.0.0.1 (see `support`).

mod context;
mod limits;
mod policy;
mod proxy;
mod redirects;
mod requests;
mod support;
mod tls;
