//! Signed checkpoints of the audit log, kept in the data directory (`audit-checkpoints.jsonl`, one
//! JSON object per line, private to the node's user): `kopa serve` writes one at start, every
//! [`INTERVAL`] while the log grows and at every clean stop; `kopa audit verify` checks the log
//! against them.

use anyhow::Context;
use kopa_federation::{Checkpoint, NodeKey, CHECKPOINT_FILE_NAME};
use kopa_store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a running node checkpoints its audit log (when it has grown).
pub const INTERVAL: Duration = Duration::from_secs(15 * 60);

pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE_NAME)
}

/// Sign the audit log's last entry and append the checkpoint, unless `last` already covers it.
/// Returns the entry covered.
pub async fn write(
    store: &dyn Store,
    key: &NodeKey,
    dir: &Path,
    last: Option<i64>,
) -> anyhow::Result<Option<i64>> {
    let Some((seq, hash)) = store.audit_head().await? else {
        return Ok(last);
    };
    if last == Some(seq) {
        return Ok(last);
    }
    let at = store.clock().now().to_taxii();
    let c = Checkpoint::sign(key, seq, &hash, &at);
    let path = path_in(dir);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(&c)?)
        .and_then(|()| f.sync_data())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(seq))
}

/// The checkpoints kept in `dir` (none when there is no file), or the line that cannot be read.
pub fn load(dir: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let path = path_in(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => lines(&text, &path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Checkpoints one per line, or the line that is not one.
fn lines(text: &str, path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a checkpoint", path.display(), i + 1))
        })
        .collect()
}

/// Checkpoints obtained elsewhere (from a peer that keeps this node's latest as a witness): a file
/// holding one checkpoint, the answer of `GET /api/checkpoint` (`{"checkpoint": …}`), a peer's
/// entry of `GET /api/peers` (`{"audit_checkpoint": …}`), or checkpoints one per line.
pub fn load_file(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        let inner = ["checkpoint", "audit_checkpoint"]
            .iter()
            .find_map(|k| v.get(*k))
            .unwrap_or(&v);
        return serde_json::from_value(inner.clone())
            .map(|c| vec![c])
            .with_context(|| {
                format!(
                "{}: not a checkpoint (expected one, an answer of GET /api/checkpoint, a peer of \
                 GET /api/peers, or one per line)",
                path.display()
            )
            });
    }
    lines(&text, path)
}
