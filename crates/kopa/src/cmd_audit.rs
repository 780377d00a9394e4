//! `kopa audit verify`: walk the hash-chained audit log from its first entry and name the first
//! broken link.

use crate::cmd_admin::{run_admin, Output};
use crate::StoreArgs;
use clap::Subcommand;
use kopa_core::audit::{entry_hash, AuditEntry, NewAuditEntry, GENESIS};
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

/// Incremental form of `kopa_core::audit::verify`, so that a long log is checked in batches.
struct Chain {
    prev: String,
    expected_seq: i64,
    checked: u64,
}

impl Chain {
    fn new() -> Self {
        Chain {
            prev: GENESIS.to_string(),
            expected_seq: 1,
            checked: 0,
        }
    }

    /// Check the next entry; `Err(reason)` names what is wrong with it.
    fn push(&mut self, e: &AuditEntry) -> Result<(), String> {
        if e.seq != self.expected_seq {
            return Err(format!(
                "expected entry {}, found entry {} (an entry is missing or out of order)",
                self.expected_seq, e.seq
            ));
        }
        if e.prev_hash != self.prev {
            return Err("does not chain to the entry before it".into());
        }
        let fields = NewAuditEntry {
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            origin: e.origin.clone(),
            detail: e.detail.clone(),
        };
        if entry_hash(&e.prev_hash, e.seq, &e.at, &fields) != e.hash {
            return Err("its contents do not match its hash (the entry was changed)".into());
        }
        self.prev = e.hash.clone();
        self.expected_seq += 1;
        self.checked += 1;
        Ok(())
    }
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { store } => run_admin(&store, |s| async move {
            let mut chain = Chain::new();
            let mut after = 0;
            loop {
                let batch = s.audit_entries(after, BATCH).await?;
                let Some(last) = batch.last() else { break };
                after = last.seq;
                for e in &batch {
                    if let Err(reason) = chain.push(e) {
                        return Ok(Output {
                            json: json!({"ok": false, "entries": chain.checked,
                                         "broken_at": e.seq, "reason": reason,
                                         "action": e.action, "at": e.at}),
                            human: format!(
                                "audit log BROKEN at entry {} ({} at {}): {reason}; {} entries before it are intact",
                                e.seq, e.action, e.at, chain.checked
                            ),
                            ok: false,
                        });
                    }
                }
            }
            Ok(Output {
                json: json!({"ok": true, "entries": chain.checked}),
                human: format!("audit log intact: {} entries", chain.checked),
                ok: true,
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let e = NewAuditEntry {
                    actor: "cli".into(),
                    action: "org.add".into(),
                    target: format!("org{seq}"),
                    origin: "local".into(),
                    detail: "{}".into(),
                };
                let at = format!("2026-01-01T00:00:{seq:02}.000000Z");
                let hash = entry_hash(&prev, seq, &at, &e);
                let entry = AuditEntry {
                    seq,
                    at,
                    actor: e.actor,
                    action: e.action,
                    target: e.target,
                    origin: e.origin,
                    detail: e.detail,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                entry
            })
            .collect()
    }

    fn first_break(entries: &[AuditEntry]) -> Option<i64> {
        let mut c = Chain::new();
        entries.iter().find(|e| c.push(e).is_err()).map(|e| e.seq)
    }

    #[test]
    fn agrees_with_core_verify() {
        let good = chain(5);
        assert_eq!(first_break(&good), None);
        assert_eq!(kopa_core::audit::verify(&good), Ok(5));

        let mut changed = chain(5);
        changed[2].target = "other".into();
        assert_eq!(first_break(&changed), Some(3));
        assert_eq!(kopa_core::audit::verify(&changed).unwrap_err().seq, 3);

        let mut removed = chain(5);
        removed.remove(1);
        assert_eq!(first_break(&removed), Some(3));
    }
}
