//! Fuzz the ECS JSON-lines reader: any bytes are read without a panic, bad lines are counted.
#![no_main]
use kopa_pattern::input::json::{read_json_lines, JsonScanner};
use kopa_pattern::input::Mapping;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mapping = Mapping::ecs();
    let scanner = JsonScanner::new(&mapping);
    let mut good = 0u64;
    let mut bad = 0u64;
    let lines = read_json_lines(data, &scanner, |_, f| {
        good += 1;
        for (t, _, v) in f.iter() {
            assert!((t as usize) < mapping.targets.len());
            let _ = v.len();
        }
        let _ = f.time();
    }, |_| bad += 1)
    .unwrap();
    assert!(good + bad <= lines);
});
