//! `kopa pattern …`: validate STIX patterns, and evaluate them over observed-data.

use anyhow::Context;
use clap::Subcommand;
use kopa_pattern::{Observation, Outcome};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PatternCommand {
    /// Validate patterns, one per line (standard input when no file is given). Prints one JSON
    /// line per input line: {"pattern": P, "valid": true} or {"pattern": P, "valid": false,
    /// "error": MSG, "column": N}. Exits with status 1 when any pattern is invalid.
    Validate { files: Vec<PathBuf> },
    /// Evaluate patterns (one per line of the pattern file) over sets of observations. Each
    /// observations file is one STIX bundle (or JSON list of objects), or JSON lines with one
    /// bundle per line; each bundle is one set. Prints per pattern one JSON line:
    /// {"pattern": P, "results": ["match" | "nomatch" | "too_complex", …]} (one per set) or
    /// {"pattern": P, "error": MSG, "column": N} for an invalid pattern.
    Match {
        /// File with one pattern per line.
        #[arg(long)]
        pattern_file: PathBuf,
        /// Observation files.
        #[arg(long, required = true, num_args = 1..)]
        observations: Vec<PathBuf>,
        /// Step budget per evaluation.
        #[arg(long, default_value_t = kopa_pattern::DEFAULT_BUDGET)]
        budget: u64,
    },
}

pub fn run(cmd: PatternCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PatternCommand::Validate { files } => validate(&files),
        PatternCommand::Match {
            pattern_file,
            observations,
            budget,
        } => match_patterns(&pattern_file, &observations, budget),
    }
}

/// Lines of a reader, without their line ending; bytes that are not UTF-8 are replaced.
fn for_each_line(
    r: impl Read,
    mut f: impl FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        f(&String::from_utf8_lossy(&buf))?;
    }
}

fn validate(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut all_valid = true;
    let mut check = |line: &str| -> anyhow::Result<()> {
        let v = match kopa_pattern::validate(line) {
            Ok(_) => json!({"pattern": line, "valid": true}),
            Err(e) => {
                all_valid = false;
                json!({"pattern": line, "valid": false, "error": e.message(), "column": e.column()})
            }
        };
        writeln!(out, "{v}")?;
        Ok(())
    };
    if files.is_empty() {
        for_each_line(std::io::stdin().lock(), &mut check)?;
    } else {
        for f in files {
            let file =
                std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
            for_each_line(file, &mut check)?;
        }
    }
    out.flush()?;
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The observation sets of one file.
fn load_sets(path: &Path) -> anyhow::Result<Vec<Vec<Observation>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let docs: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(v) => vec![v],
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    docs.iter()
        .enumerate()
        .map(|(i, d)| {
            Observation::from_json(d)
                .with_context(|| format!("{}: set {}: bad observed-data", path.display(), i + 1))
        })
        .collect()
}

fn match_patterns(pattern_file: &Path, files: &[PathBuf], budget: u64) -> anyhow::Result<ExitCode> {
    let mut sets = Vec::new();
    for f in files {
        sets.extend(load_sets(f)?);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let file = std::fs::File::open(pattern_file)
        .with_context(|| format!("cannot open {}", pattern_file.display()))?;
    for_each_line(file, |line| {
        let v = match kopa_pattern::parse(line) {
            Ok(p) => {
                let results: Vec<&str> = sets
                    .iter()
                    .map(|s| match p.matches_with_budget(s, budget) {
                        Outcome::Match(_) => "match",
                        Outcome::NoMatch => "nomatch",
                        Outcome::TooComplex => "too_complex",
                    })
                    .collect();
                json!({"pattern": line, "results": results})
            }
            Err(e) => json!({"pattern": line, "error": e.message(), "column": e.column()}),
        };
        writeln!(out, "{v}")?;
        Ok(())
    })?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
