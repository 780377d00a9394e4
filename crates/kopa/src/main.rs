//! The `kopa` command: serve a node, administer it, and match logs against shared intelligence.

mod cmd_match;
mod cmd_pattern;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kopa",
    version,
    about = "Kopa: share threat intelligence under TLP, federated and sovereign"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// STIX patterns: validate them.
    #[command(subcommand)]
    Pattern(cmd_pattern::PatternCommand),
    /// Match observations or logs against indicators.
    Match(cmd_match::MatchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pattern(cmd) => cmd_pattern::run(cmd),
        Command::Match(args) => cmd_match::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
