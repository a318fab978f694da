//! Integration tests: one binary (one link, one shared test cluster), a module per subject.

#![allow(
    clippy::unwrap_used,
    reason = "a test that cannot go on should fail loudly"
)]

mod cli;
mod embedded;
mod errors;
mod http;
mod keys;
mod lookups;
mod rls;
mod schema;
mod support;
mod flow;
mod oidc;
mod grants;
mod authorize;
mod endpoints;
mod rotation;
