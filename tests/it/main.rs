//! Integration tests: one binary (one link, one shared test cluster), a module per subject.

#![allow(clippy::unwrap_used, reason = "a test that cannot go on should fail loudly")]

mod abuse;
mod acr;
mod admin_browser;
mod admin_isolation;
mod admin_pages;
mod admin_rls;
mod admin_roles;
mod admin_world;
mod api;
mod api_resources;
mod audit;
mod backchannel;
mod authorize;
mod browser;
mod chrome;
mod claims;
mod client_metadata;
mod container;
mod cli;
mod device;
mod embedded;
mod dpop;
mod endpoints;
mod errors;
mod esp32;
mod events;
mod fault;
mod floods;
mod fleet;
mod flow;
mod fuzz;
mod grace;
mod grants;
mod instances;
mod invitations;
mod http;
mod janitor;
mod keys;
mod language;
mod layers;
mod lookups;
mod mail;
mod metrics;
mod mfa;
mod oidc;
mod openid_client;
mod par;
mod passkeys;
mod profile;
mod proxies;
/// The release binary started as a black box on its embedded default, shared with the
/// benches and the conformance harness.
#[path = "../../benches/common/server.rs"]
#[allow(dead_code)]
mod release_server;
mod registration;
mod reset;
mod resources;
mod rls;
mod rls_login;
mod rotation;
mod satellite;
mod smtp;
/// The satellite API of the examples (its verifier and telemetry endpoint), tested here
/// against the real provider; its `main` is not used here.
#[path = "../../examples/satellite/main.rs"]
#[allow(dead_code)]
mod satellite_api;
mod schema;
mod stamp;
mod support;
mod tls;
mod token_sizes;
mod verification;
