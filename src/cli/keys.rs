//! `keys`: rotate the signing keys.

use clap::Subcommand;

use super::output::print;
use crate::db::Database;
use crate::db::audit::Actor;
use crate::master_key::MasterKey;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Replace the signing key of every algorithm. Tokens signed before keep validating: the
    /// retired keys stay in the JWKS until those tokens have expired.
    Rotate {
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `keys` subcommand as `operator` and prints its result.
pub(super) async fn run(
    command: KeysCommand,
    db: &Database,
    operator: &Actor,
    master_key: &MasterKey,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate { json } => {
            let policy = crate::tokens::KeyRotationPolicy::default();
            let report = crate::tokens::rotate_signing_keys_by(db, operator, master_key, &policy).await?;
            print(json, &report, || {
                let created: Vec<String> = report.created.iter().map(|k| format!("{} {}", k.alg, k.kid)).collect();
                format!("new signing keys:\n  {}\n(running servers pick them up within a minute)", created.join("\n  "))
            })?;
        }
    }
    Ok(())
}
