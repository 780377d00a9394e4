//! `kopa audit verify`: walk the hash-chained audit log from its first entry, check it against the
//! node's signed checkpoints (`audit-checkpoints.jsonl` in the data directory), and name the first
//! broken link and the last good checkpoint.

use crate::cmd_admin::{admin_config, run_admin, Output};
use crate::StoreArgs;
use clap::Subcommand;
use kopa_core::audit::Verifier;
use kopa_federation::{Checkpoint, NodeKey};
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain and its signed checkpoints; exits 1 and names the first
    /// broken entry (a changed, removed or reordered entry, a log rewritten or cut short past a
    /// checkpoint, a checkpoint not signed with this node's key) and the last good checkpoint.
    ///
    /// `--checkpoint FILE` adds checkpoints of this node's log kept elsewhere: a peer keeps the
    /// latest it obtained in sync (its `GET /api/peers` shows it as `audit_checkpoint`), so a log
    /// cut short or rewritten here, with the checkpoint file too, is still caught.
    Verify {
        /// A file of checkpoints of this node's audit log from elsewhere (repeatable).
        #[arg(long = "checkpoint", value_name = "FILE")]
        checkpoints: Vec<std::path::PathBuf>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Entries read per query.
const BATCH: usize = 10_000;

fn checkpoint_json(c: Option<&Checkpoint>) -> Value {
    c.map_or(Value::Null, |c| json!({"seq": c.seq, "at": c.at}))
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify {
            checkpoints: extra,
            store,
        } => {
            let dir = admin_config(&store)?.data;
            run_admin(&store, |s| async move {
                let mut checkpoints = crate::checkpoints::load(&dir)?;
                for file in &extra {
                    checkpoints.extend(crate::checkpoints::load_file(file)?);
                }
                checkpoints.sort_by_key(|c| c.seq);
                let key = NodeKey::load(&dir)?.map(|k| k.public_key());
                let node = s.node().await?.map(|n| n.id);
                let broken =
                    |seq: i64, reason: String, entries: u64, good: Option<&Checkpoint>| Output {
                        json: json!({"ok": false, "entries": entries, "broken_at": seq,
                                     "reason": reason, "checkpoints": checkpoints.len(),
                                     "last_good_checkpoint": checkpoint_json(good)}),
                        human: format!(
                            "audit log BROKEN at entry {seq}: {reason}; {entries} entries before \
                             it are intact; last good checkpoint: {}",
                            good.map_or("none".into(), |c| format!("entry {} at {}", c.seq, c.at))
                        ),
                        ok: false,
                    };
                // Every checkpoint must be this node's own statement.
                for c in &checkpoints {
                    let ours = key.as_ref().is_some_and(|k| {
                        c.verifies(k) && node.as_deref() == Some(k.node_id().as_str())
                    });
                    if !ours {
                        let reason = format!(
                            "the checkpoint of entry {} (made at {}) is not signed with this \
                             node's key",
                            c.seq, c.at
                        );
                        return Ok(broken(c.seq, reason, 0, None));
                    }
                }
                let mut chain = Verifier::new();
                let mut next_cp = 0;
                let mut good: Option<&Checkpoint> = None;
                let mut after = 0;
                let mut last_seq = 0;
                loop {
                    let batch = s.audit_entries(after, BATCH).await?;
                    let Some(last) = batch.last() else { break };
                    after = last.seq;
                    for e in &batch {
                        if let Err(b) = chain.push(e) {
                            let reason = format!("{} ({} at {})", b.reason, e.action, e.at);
                            let mut out = broken(e.seq, reason, chain.checked(), good);
                            out.json["action"] = json!(e.action);
                            out.json["at"] = json!(e.at);
                            return Ok(out);
                        }
                        last_seq = e.seq;
                        while let Some(c) = checkpoints.get(next_cp).filter(|c| c.seq <= e.seq) {
                            if c.seq == e.seq && c.hash != e.hash {
                                let reason = format!(
                                    "the entry differs from the one checkpointed at {}: the log \
                                     was rewritten",
                                    c.at
                                );
                                let mut out = broken(e.seq, reason, chain.checked() - 1, good);
                                out.json["action"] = json!(e.action);
                                out.json["at"] = json!(e.at);
                                return Ok(out);
                            }
                            if c.seq < e.seq {
                                break;
                            }
                            good = Some(c);
                            next_cp += 1;
                        }
                    }
                }
                if let Some(c) = checkpoints.iter().rev().find(|c| c.seq > last_seq) {
                    let reason = format!(
                        "the log ends at entry {last_seq}, but the checkpoint made at {} covers \
                         entry {}: the log was cut short",
                        c.at, c.seq
                    );
                    return Ok(broken(last_seq + 1, reason, chain.checked(), good));
                }
                Ok(Output {
                    json: json!({"ok": true, "entries": chain.checked(),
                                 "checkpoints": checkpoints.len(),
                                 "last_good_checkpoint": checkpoint_json(good)}),
                    human: format!(
                        "audit log intact: {} entries, {} signed checkpoint(s)",
                        chain.checked(),
                        checkpoints.len()
                    ),
                    ok: true,
                })
            })
        }
    }
}
