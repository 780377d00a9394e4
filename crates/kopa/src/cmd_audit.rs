//! `kopa audit verify`: walk the hash-chained audit log from its first entry and name the first
//! broken link.

use crate::cmd_admin::{run_admin, Output};
use crate::StoreArgs;
use clap::Subcommand;
use kopa_core::audit::Verifier;
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; exits 1 and names the first broken entry when it is broken.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Entries read per query.
const BATCH: usize = 10_000;

pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { store } => run_admin(&store, |s| async move {
            let mut chain = Verifier::new();
            let mut after = 0;
            loop {
                let batch = s.audit_entries(after, BATCH).await?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                for e in &batch {
                    if let Err(broken) = chain.push(e) {
                        let reason = broken.reason;
                        return Ok(Output {
                            json: json!({"ok": false, "entries": chain.checked(),
                                         "broken_at": e.seq, "reason": reason,
                                         "action": e.action, "at": e.at}),
                            human: format!(
                                "audit log BROKEN at entry {} ({} at {}): {reason}; {} entries before it are intact",
                                e.seq, e.action, e.at, chain.checked()
                            ),
                            ok: false,
                        });
                    }
                }
            }
            Ok(Output {
                json: json!({"ok": true, "entries": chain.checked()}),
                human: format!("audit log intact: {} entries", chain.checked()),
                ok: true,
            })
        }),
    }
}
