//! The conformance harness: the behaviour of the OpenID Foundation's OP test plans, module by
//! module, against the release binary as a black box.
//!
//! It builds the release server (or takes `LCA_RELEASE_BIN`), starts it on its embedded
//! default (a fresh data directory, no configuration but the listen address and issuer),
//! provisions a tenant, a user and the clients through the CLI, and runs every module over
//! loopback http and over https with a self-signed certificate. It prints one table of
//! module → PASS / WARNING / FAIL / SKIPPED with the reason, and fails if any module fails.
//!
//! The modules follow the suite's names and what each of them checks (conformance-suite's
//! `oidcc-*` test modules); `lca-*` modules check what the suite's OP plans do not
//! (refresh-token rotation, RFC 8628, RFC 7662, RFC 7009, PKCE, client credentials).
//!
//! `cargo test --test conformance [NAME…]` runs the modules whose name contains one of the
//! names; `LCA_CONFORMANCE_SCHEMES=http` (or `https`) runs one transport only.

mod agent;
mod check;
mod plans;
/// The release binary, shared with the benches and the release-binary integration tests.
#[path = "../benches/common/server.rs"]
#[allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared with the load tests, whose setup may stop on a failure; this harness uses only release_binary"
)]
mod release;
mod server;

use std::process::ExitCode;
use std::time::Instant;

use futures::StreamExt;

use crate::check::{Status, Verdict};
use crate::plans::Module;
use crate::server::{Scheme, Server};

/// Modules run at once within a transport; a few wait on the clock (`max_age`, code reuse
/// after 30 s), so they overlap.
const PARALLEL: usize = 6;

fn main() -> ExitCode {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    // `cargo test --list` (and IDEs) ask each test binary for its tests; this one is a single run.
    if std::env::args().any(|a| a == "--list") {
        println!("conformance: test");
        return ExitCode::SUCCESS;
    }
    let modules: Vec<Module> = plans::all()
        .into_iter()
        .filter(|m| {
            filters.is_empty() || filters.iter().any(|f| m.name.contains(f.as_str()) || m.plan.contains(f.as_str()))
        })
        .collect();
    if modules.is_empty() {
        println!("conformance: no module matches {filters:?}");
        return ExitCode::SUCCESS;
    }
    let schemes = match std::env::var("LCA_CONFORMANCE_SCHEMES").as_deref() {
        Ok("http") => vec![Scheme::Http],
        Ok("https") => vec![Scheme::Https],
        _ => vec![Scheme::Http, Scheme::Https],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(run(modules, schemes))
}

async fn run(modules: Vec<Module>, schemes: Vec<Scheme>) -> ExitCode {
    let started = Instant::now();
    let bin = match release::release_binary() {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("conformance: cannot build the release server: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    for scheme in schemes {
        let server = match Server::start(&bin, scheme).await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("conformance: the server did not start over {scheme}: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let ctx = match server.provision().await {
            Ok(ctx) => ctx,
            Err(e) => {
                eprintln!("conformance: provisioning over {scheme} failed: {e:#}\n{}", server.log_tail());
                return ExitCode::FAILURE;
            }
        };
        let results: Vec<(usize, Verdict, f64)> = futures::stream::iter(modules.iter().enumerate())
            .map(|(i, m)| {
                let ctx = &ctx;
                async move {
                    let t = Instant::now();
                    let verdict = check::run_module(ctx, m).await;
                    (i, verdict, t.elapsed().as_secs_f64())
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut results = results;
        results.sort_by_key(|(i, _, _)| *i);
        let failed = results.iter().any(|(_, v, _)| v.status == Status::Fail);
        for (i, verdict, secs) in results {
            rows.push((scheme, &modules[i], verdict, secs));
        }
        if failed {
            eprintln!("--- server log over {scheme} (last lines) ---\n{}", server.log_tail());
        }
        server.stop().await;
    }
    print_table(&rows);
    let fails = rows.iter().filter(|r| r.2.status == Status::Fail).count();
    println!("conformance: {} module runs in {:.0} s, {fails} failed", rows.len(), started.elapsed().as_secs_f64());
    if fails > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn print_table(rows: &[(Scheme, &Module, Verdict, f64)]) {
    println!();
    println!("| transport | plan | module | result | reason |");
    println!("|---|---|---|---|---|");
    for (scheme, module, verdict, _) in rows {
        println!(
            "| {scheme} | {} | `{}` | {} | {} |",
            module.plan,
            module.name,
            verdict.status,
            verdict.reason.replace('|', "\\|").replace('\n', " ")
        );
    }
    let count = |s: Status| rows.iter().filter(|r| r.2.status == s).count();
    println!();
    println!(
        "PASS {} · WARNING {} · FAIL {} · SKIPPED {}",
        count(Status::Pass),
        count(Status::Warning),
        count(Status::Fail),
        count(Status::Skipped)
    );
}
