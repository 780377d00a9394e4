//! Fuzz the CSV reader: any bytes are read without a panic.
#![no_main]
use kopa_pattern::input::{csv::read_csv, Mapping};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mapping = Mapping::ecs();
    let mut n = 0u64;
    let _ = read_csv(data, &mapping, |_, f| n += f.len() as u64, |b| assert!(b.line >= 1));
});
