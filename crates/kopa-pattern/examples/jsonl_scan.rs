//! Measures the JSON-lines reader alone: every record of a file read through the ECS mapping, no
//! indicators. Run with
//! `cargo run --release -p kopa-pattern --example jsonl_scan -- FILE [ROUNDS]`; it prints records per
//! CPU-second of each round (the file is read into memory first, so disk and page-cache copies do
//! not count).

use kopa_pattern::input::json::{read_json_lines, JsonScanner};
use kopa_pattern::input::Mapping;

#[path = "common/clock.rs"]
mod clock;
use clock::Clock;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: jsonl_scan FILE [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: u32 = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let bytes = std::fs::read(&path)?;
    let mapping = Mapping::ecs();
    let scanner = JsonScanner::new(&mapping);
    for _ in 0..rounds {
        let clock = Clock::start();
        let mut values = 0usize;
        let mut bad = 0usize;
        let records = read_json_lines(
            &bytes[..],
            &scanner,
            |_, fields| values += fields.len(),
            |_| bad += 1,
        )?;
        let secs = clock.secs();
        println!(
            "{records} records, {bad} bad, {values} mapped values: {:.0} records per CPU-second",
            records as f64 / secs
        );
    }
    Ok(())
}
