//! What every command prints: one JSON object with `--json`, else a line for a person.

use std::io::Write;

use serde::Serialize;

/// Prints `value` as one line of JSON with `--json`, else the line `human` makes.
pub(super) fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", human())?;
    }
    Ok(())
}
