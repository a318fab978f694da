//! `laventecare-auth`: parse the command line, read the configuration, start logging and
//! Sentry, then run the command (see `cli/mod.rs`).

use std::process::ExitCode;

use laventecare_auth::cli::{Cli, Command};
use laventecare_auth::config::Config;
use laventecare_auth::db::embedded::EmbeddedError;

fn main() -> ExitCode {
    let cli: Cli = match laventecare_auth::config::parse_cli(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("laventecare-auth: {e:#}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_args(cli.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("laventecare-auth: {e:#}");
            return ExitCode::from(2);
        }
    };
    // Sentry first, before the runtime's threads exist, as its documentation asks.
    // The server logs its work; a CLI command prints its result and logs only problems.
    let default_filter = match cli.command {
        Command::Serve => "info,sqlx=warn",
        _ => "warn,sqlx=error",
    };
    let _sentry = laventecare_auth::telemetry::init(&config, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("laventecare-auth: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(laventecare_auth::cli::run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            // One clear line; the missing-binaries case names the package to install.
            match e.downcast_ref::<EmbeddedError>() {
                Some(EmbeddedError::MissingBinaries) => eprintln!("laventecare-auth: {e}"),
                _ => eprintln!("laventecare-auth: error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
