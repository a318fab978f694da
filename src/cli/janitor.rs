//! `janitor`: one run of the janitor, as the server's would do it.

use clap::Subcommand;

use super::output::print;
use crate::config::Config;
use crate::db::Database;

#[derive(Subcommand, Debug)]
pub enum JanitorCommand {
    /// Delete expired sessions, codes, token families and retired keys once, in batches;
    /// does nothing while another janitor (a server's, or another run) is working.
    Run {
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `janitor` subcommand and prints its report.
pub(super) async fn run(command: JanitorCommand, config: &Config, db: &Database) -> anyhow::Result<()> {
    match command {
        JanitorCommand::Run { json } => {
            let report = crate::janitor::run_once(db, config.janitor.batch_size).await?;
            print(json, &report, || match report.message {
                Some(message) => message.to_owned(),
                None => {
                    let lines: Vec<String> = report
                        .sweeps
                        .iter()
                        .map(|s| format!("  {}: {} rows in {} batches", s.sweep, s.deleted, s.batches))
                        .collect();
                    format!("removed {} rows in {} ms:\n{}", report.deleted, report.elapsed_ms, lines.join("\n"))
                }
            })?;
        }
    }
    Ok(())
}
