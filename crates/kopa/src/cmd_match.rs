//! `kopa match`: match observations or logs against indicators.

use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct MatchArgs {}

pub fn run(_args: MatchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet implemented")
}
