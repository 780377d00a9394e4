//! `kopa pattern …`: work with STIX patterns.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PatternCommand {
    /// Validate patterns, one per line (standard input when no file is given).
    Validate { files: Vec<std::path::PathBuf> },
}

pub fn run(cmd: PatternCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PatternCommand::Validate { .. } => anyhow::bail!("not yet implemented"),
    }
}
