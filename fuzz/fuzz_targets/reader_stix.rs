//! Fuzz the STIX observed-data reader and the matcher on what it reads: no panic on any input.
#![no_main]
use kopa_pattern::input::stix::read_stix;
use kopa_pattern::matcher::{IndicatorInput, Matcher, Session};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let (obs, _bad) = read_stix(data);
    let (m, _) = Matcher::compile([IndicatorInput {
        id: "indicator--1".into(),
        modified: 0,
        pattern: "[ipv4-addr:value ISSUBSET '10.0.0.0/8'] OR [file:name LIKE '%.exe']".into(),
        valid_from: None,
        valid_until: None,
        revoked: false,
    }]);
    let mut s = Session::new(Arc::new(m), 0);
    for o in &obs {
        let _ = o.fields();
        s.match_stix(o);
    }
    let _ = s.finish();
});
