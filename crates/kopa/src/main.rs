//! The `kopa` command: serve a node, administer it, and match logs against shared intelligence.

// Production code handles every failure; `unwrap` is for tests (clippy.toml allows it there).
#![warn(clippy::unwrap_used)]

mod checkpoints;
mod cmd_admin;
mod cmd_audit;
mod cmd_import;
mod cmd_match;
mod cmd_pattern;
mod cmd_peer;
mod cmd_serve;
mod config;
mod node;
mod taxii_client;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// mimalloc: the system allocator was a quarter of the cycles of a bulk TAXII POST.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the node: TAXII 2.1 server, REST API, metrics. Creates the node on first start.
    Serve(cmd_serve::ServeArgs),
    /// Configuration: print the documented default file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Organisations: add, list.
    #[command(subcommand)]
    Org(cmd_admin::OrgCommand),
    /// Users: add (prints the user's first token), list.
    #[command(subcommand)]
    User(cmd_admin::UserCommand),
    /// API tokens: add, revoke.
    #[command(subcommand)]
    Token(cmd_admin::TokenCommand),
    /// Collections (sharing rooms): add, list.
    #[command(subcommand)]
    Collection(cmd_admin::CollectionCommand),
    /// The node itself: show its identity.
    #[command(subcommand)]
    Node(cmd_admin::NodeCommand),
    /// Federation peers: add, list, remove.
    #[command(subcommand)]
    Peer(cmd_peer::PeerCommand),
    /// Load STIX 2.1 objects from files (bundles, arrays, JSON lines) as one of the node's users.
    Import(cmd_import::ImportArgs),
    /// The audit log: verify its hash chain.
    #[command(subcommand)]
    Audit(cmd_audit::AuditCommand),
    /// STIX patterns: validate them.
    #[command(subcommand)]
    Pattern(cmd_pattern::PatternCommand),
    /// Match observations or logs against indicators.
    Match(cmd_match::MatchArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the default configuration file, every key with a comment.
    Default,
}

/// Where the node's database is, for the admin commands.
#[derive(Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// Data directory holding the SQLite database (default ./kopa-data).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// PostgreSQL URL instead of the data directory.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Configuration file (default DIR/kopa.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd_serve::run(args),
        Command::Config(ConfigCommand::Default) => {
            print!("{}", config::DEFAULT_FILE);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Org(cmd) => cmd_admin::run_org(cmd),
        Command::User(cmd) => cmd_admin::run_user(cmd),
        Command::Token(cmd) => cmd_admin::run_token(cmd),
        Command::Collection(cmd) => cmd_admin::run_collection(cmd),
        Command::Node(cmd) => cmd_admin::run_node(cmd),
        Command::Peer(cmd) => cmd_peer::run(cmd),
        Command::Import(args) => cmd_import::run(args),
        Command::Audit(cmd) => cmd_audit::run(cmd),
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
