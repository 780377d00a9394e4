//! Fuzz the Zeek TSV reader: any bytes are read without a panic.
#![no_main]
use kopa_pattern::input::{zeek::read_zeek, Mapping};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mapping = Mapping::zeek();
    let mut n = 0u64;
    let lines = read_zeek(data, &mapping, |_, f| n += f.len() as u64, |b| assert!(b.line >= 1)).unwrap();
    let _ = (n, lines);
});
