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
    let at = kopa_stix::Timestamp::now().to_taxii();
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
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a checkpoint", path.display(), i + 1))
        })
        .collect()
}
