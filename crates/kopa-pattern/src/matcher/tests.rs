//! Tests of the bulk matcher: table cases, the atomic swap, and a property test that the indexed
//! matcher returns exactly what the plain evaluator returns.

use super::*;
use crate::input::stix::read_stix;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

fn ind(id: &str, pattern: &str) -> IndicatorInput {
    IndicatorInput {
        id: id.into(),
        modified: 0,
        pattern: pattern.into(),
        valid_from: None,
        valid_until: None,
        revoked: false,
    }
}

/// Records as (field, value) pairs with a time; returns the matcher's results.
fn run(m: Matcher, records: &[(&str, Vec<(&str, &str)>)]) -> Vec<MatchResult> {
    let mapping = Mapping::ecs();
    let m = Arc::new(m);
    let plan = m.plan(&mapping);
    let mut s = Session::new(Arc::clone(&m), 1_700_000_000_000);
    for (n, (time, fields)) in records.iter().enumerate() {
        let lf = fields_of(&mapping, time, fields);
        s.match_record(&plan, &mapping, &lf, &|| format!("t:{}", n + 1));
    }
    s.finish().0
}

fn fields_of(mapping: &Mapping, time: &str, fields: &[(&str, &str)]) -> LineFields {
    let mut lf = LineFields::new();
    lf.clear();
    if !time.is_empty() {
        lf.offer_time(0, time);
    }
    for (f, v) in fields {
        let t = mapping.target_of(f).expect("mapped field") as u16;
        let kind = if v.parse::<i64>().is_ok() && *f == "file.size" {
            Kind::Int
        } else {
            Kind::Str
        };
        lf.push(t, kind, v);
    }
    lf
}

fn summary(r: &[MatchResult]) -> Vec<(String, Vec<String>)> {
    r.iter()
        .map(|x| (x.indicator.clone(), x.observations.clone()))
        .collect()
}

#[test]
fn each_index_kind() {
    let (m, errors) = Matcher::compile([
        ind("i-eq", "[ipv4-addr:value = '10.0.0.1']"),
        ind("i-in", "[domain-name:value IN ('a.example', 'b.example')]"),
        ind("i-cidr", "[ipv4-addr:value ISSUBSET '10.0.0.0/24']"),
        ind("i-super", "[ipv6-addr:value ISSUPERSET '2001:db8::1']"),
        ind("i-like", "[url:value LIKE 'http://%.example/x%']"),
        ind(
            "i-re",
            "[url:value MATCHES '^http://b\\\\.example/[0-9]+$']",
        ),
        ind("i-hash", "[file:hashes.'SHA-256' = 'aa']"),
        ind(
            "i-and",
            "[file:hashes.'SHA-256' = 'aa' AND file:name = 'x.exe']",
        ),
        ind("i-not", "[domain-name:value != 'a.example']"),
        ind(
            "i-multi",
            "[ipv4-addr:value = '10.0.0.1'] FOLLOWEDBY [domain-name:value = 'b.example']",
        ),
        ind("i-bad", "[ipv4-addr:value = "),
    ]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].location, "i-bad");
    assert_eq!(m.stats().exact, 7);
    assert_eq!(m.stats().verified, 2);
    assert_eq!(m.stats().multi, 1);
    let r = run(
        m,
        &[
            (
                "2024-01-01T00:00:00Z",
                vec![
                    ("source.ip", "10.0.0.1"),
                    ("dns.question.name", "a.example"),
                ],
            ),
            (
                "2024-01-01T00:00:01Z",
                vec![
                    ("destination.ip", "2001:db8::/64"),
                    ("url.full", "http://a.example/xyz"),
                ],
            ),
            (
                "2024-01-01T00:00:02Z",
                vec![
                    ("url.full", "http://b.example/123"),
                    ("dns.question.name", "b.example"),
                ],
            ),
            (
                "2024-01-01T00:00:03Z",
                vec![("file.hash.sha256", "aa"), ("file.name", "x.exe")],
            ),
            (
                "2024-01-01T00:00:04Z",
                vec![("file.hash.sha256", "aa"), ("file.name", "y.exe")],
            ),
        ],
    );
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        summary(&r),
        vec![
            ("i-eq".into(), s(&["t:1"])),
            ("i-in".into(), s(&["t:1", "t:3"])),
            ("i-cidr".into(), s(&["t:1"])),
            ("i-super".into(), s(&["t:2"])),
            ("i-like".into(), s(&["t:2"])),
            ("i-re".into(), s(&["t:3"])),
            ("i-hash".into(), s(&["t:4", "t:5"])),
            ("i-and".into(), s(&["t:4"])),
            ("i-not".into(), s(&["t:3"])),
            ("i-multi".into(), s(&["t:1", "t:3"])),
        ]
    );
}

#[test]
fn validity_revocation_versions() {
    let mut a = ind("v", "[ipv4-addr:value = '10.0.0.1']");
    a.valid_from = Some(1_704_067_200_000); // 2024-01-01
    a.valid_until = Some(1_704_153_600_000); // 2024-01-02
    let mut old = ind("w", "[ipv4-addr:value = '10.0.0.1']");
    old.modified = 1;
    let mut new = ind("w", "[ipv4-addr:value = '10.0.0.2']");
    new.modified = 2;
    let mut revoked_old = ind("r", "[ipv4-addr:value = '10.0.0.1']");
    revoked_old.modified = 1;
    let mut revoked = ind("r", "[ipv4-addr:value = '10.0.0.1']");
    revoked.modified = 2;
    revoked.revoked = true;
    let (m, _) = Matcher::compile([a, new, old, revoked_old, revoked]);
    assert_eq!(m.stats().active, 2);
    let r = run(
        m,
        &[
            ("2023-12-31T23:59:59Z", vec![("source.ip", "10.0.0.1")]),
            ("2024-01-01T12:00:00Z", vec![("source.ip", "10.0.0.1")]),
            (
                "2024-01-02T00:00:00Z",
                vec![("source.ip", "10.0.0.1"), ("destination.ip", "10.0.0.2")],
            ),
        ],
    );
    assert_eq!(
        summary(&r),
        vec![
            ("v".into(), vec!["t:2".to_string()]),
            ("w".into(), vec!["t:3".to_string()]),
        ]
    );
}

#[test]
fn swap_is_atomic_for_running_sessions() {
    let (a, _) = Matcher::compile([ind("a", "[domain-name:value = 'x.example']")]);
    let shared = SharedMatcher::new(a);
    let mapping = Mapping::ecs();
    let snap = shared.load();
    let (b, _) = Matcher::compile([ind("b", "[domain-name:value = 'x.example']")]);
    shared.store(b);
    let lf = fields_of(&mapping, "", &[("dns.question.name", "x.example")]);
    let mut old = Session::new(snap, 0);
    let mut new = Session::new(shared.load(), 0);
    let plan_old = old.m.plan(&mapping);
    let plan_new = new.m.plan(&mapping);
    old.match_record(&plan_old, &mapping, &lf, &|| "r".into());
    new.match_record(&plan_new, &mapping, &lf, &|| "r".into());
    assert_eq!(old.finish().0[0].indicator, "a");
    assert_eq!(new.finish().0[0].indicator, "b");
}

#[test]
fn stix_observations() {
    let bundle = r#"{"type":"bundle","id":"bundle--1","objects":[
      {"type":"observed-data","id":"observed-data--1","first_observed":"2020-01-01T00:00:00Z","last_observed":"2020-01-01T00:00:00Z","number_observed":3,"object_refs":["network-traffic--1","ipv4-addr--1"]},
      {"type":"network-traffic","id":"network-traffic--1","dst_ref":"ipv4-addr--1","protocols":["tcp"]},
      {"type":"ipv4-addr","id":"ipv4-addr--1","value":"198.51.100.7"}]}"#;
    let (obs, bad) = read_stix(bundle.as_bytes());
    assert!(bad.is_empty());
    let (m, _) = Matcher::compile([
        ind("a", "[ipv4-addr:value = '198.51.100.7']"),
        ind("b", "[network-traffic:dst_ref.value = '198.51.100.7']"),
        ind("c", "[network-traffic:protocols[*] = 'tcp']"),
        ind("d", "[network-traffic:dst_ref.value = '198.51.100.8']"),
    ]);
    let mut s = Session::new(Arc::new(m), 0);
    for o in &obs {
        s.match_stix(o);
    }
    let (r, _) = s.finish();
    let names: Vec<&str> = r.iter().map(|x| x.indicator.as_str()).collect();
    assert_eq!(names, vec!["a", "b", "c"]);
    assert_eq!(r[0].count, 3);
    assert_eq!(r[0].observations, vec!["observed-data--1".to_string()]);
}

// ------------------------------------------------------------------------------------------------
// Property: indexed matcher == plain evaluator.

const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.2",
    "10.0.1.7",
    "192.168.1.1",
    "2001:db8::1",
    "2001:db8:1::5",
    "10.0.0.0/30",
];
const DOMAINS: &[&str] = &[
    "a.example",
    "b.example",
    "evil.test",
    "xn--e-9ga.test",
    "é.test",
];
const URLS: &[&str] = &[
    "http://a.example/x",
    "https://b.example/login?id=7",
    "http://evil.test/\npayload",
    "ftp://é.test/e\u{301}",
];
const HASHES: &[&str] = &["aa", "bb", "cc"];
const NAMES: &[&str] = &["x.exe", "y.dll", "Z.EXE"];

fn comparison() -> impl Strategy<Value = String> {
    let lit = |v: &'static [&'static str]| prop::sample::select(v.to_vec());
    prop_oneof![
        lit(IPS).prop_map(|v| format!("ipv4-addr:value = '{v}'")),
        lit(IPS).prop_map(|v| format!("ipv6-addr:value = '{v}'")),
        lit(DOMAINS).prop_map(|v| format!("domain-name:value = '{v}'")),
        lit(URLS).prop_map(|v| format!("url:value = '{v}'")),
        lit(HASHES).prop_map(|v| format!("file:hashes.'SHA-256' = '{v}'")),
        (lit(DOMAINS), lit(DOMAINS))
            .prop_map(|(a, b)| format!("domain-name:value IN ('{a}', '{b}')")),
        prop::sample::select(vec![
            "10.0.0.0/24",
            "10.0.0.0/8",
            "10.0.0.1",
            "10.0.0.0/31",
            "0.0.0.0/0",
            "bad"
        ])
        .prop_map(|c| format!("ipv4-addr:value ISSUBSET '{c}'")),
        prop::sample::select(vec!["2001:db8::/32", "2001:db8::1/128", "::/0"])
            .prop_map(|c| format!("ipv6-addr:value ISSUBSET '{c}'")),
        prop::sample::select(vec!["10.0.0.1", "10.0.0.2/32", "10.0.0.0/24"])
            .prop_map(|c| format!("ipv4-addr:value ISSUPERSET '{c}'")),
        prop::sample::select(vec![
            "%.example",
            "a%",
            "_.example",
            "%",
            "%test",
            "%é%",
            "http://%",
            "%\npay%",
            "%e\u{301}"
        ])
        .prop_map(|p| format!("url:value LIKE '{p}'")),
        prop::sample::select(vec!["%.example", "_.test", "%vil%"])
            .prop_map(|p| format!("domain-name:value LIKE '{p}'")),
        prop::sample::select(vec![
            "^https?://",
            "example",
            "[0-9]$",
            ".*",
            "(a|b)\\.example",
            "(?i)EVIL",
            "e\\.test$",
            "pay.*load",
            "^é"
        ])
        .prop_map(|p| format!("url:value MATCHES '{}'", p.replace('\\', "\\\\"))),
        prop::sample::select(vec!["^[ab]\\.", "test$"])
            .prop_map(|p| format!("domain-name:value MATCHES '{}'", p.replace('\\', "\\\\"))),
        lit(NAMES).prop_map(|v| format!("file:name = '{v}'")),
        lit(DOMAINS).prop_map(|v| format!("domain-name:value != '{v}'")),
        lit(NAMES).prop_map(|v| format!("file:name NOT LIKE '{v}'")),
        Just("file:size > 100".to_string()),
        Just("file:size = 5".to_string()),
        Just("EXISTS file:name".to_string()),
        Just("NOT EXISTS file:name".to_string()),
    ]
}

fn comparison_expr() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => comparison(),
        1 => (comparison(), comparison()).prop_map(|(a, b)| format!("{a} AND {b}")),
        1 => (comparison(), comparison()).prop_map(|(a, b)| format!("{a} OR {b}")),
        1 => (comparison(), comparison(), comparison()).prop_map(|(a, b, c)| format!("({a} OR {b}) AND {c}")),
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => comparison_expr().prop_map(|c| format!("[{c}]")),
        1 => (comparison_expr(), comparison_expr()).prop_map(|(a, b)| format!("[{a}] AND [{b}]")),
        1 => (comparison_expr(), comparison_expr()).prop_map(|(a, b)| format!("[{a}] OR [{b}]")),
        1 => (comparison_expr(), comparison_expr()).prop_map(|(a, b)| format!("[{a}] FOLLOWEDBY [{b}]")),
        1 => comparison_expr().prop_map(|a| format!("[{a}] REPEATS 2 TIMES")),
        1 => (comparison_expr(), comparison_expr()).prop_map(|(a, b)| format!("([{a}] AND [{b}]) WITHIN 3 SECONDS")),
    ]
}

type Rec = (u32, Vec<(&'static str, &'static str)>);

fn record() -> impl Strategy<Value = Rec> {
    let field = prop_oneof![
        prop::sample::select(IPS.to_vec()).prop_map(|v| ("source.ip", v)),
        prop::sample::select(IPS.to_vec()).prop_map(|v| ("destination.ip", v)),
        prop::sample::select(DOMAINS.to_vec()).prop_map(|v| ("dns.question.name", v)),
        prop::sample::select(URLS.to_vec()).prop_map(|v| ("url.full", v)),
        prop::sample::select(HASHES.to_vec()).prop_map(|v| ("file.hash.sha256", v)),
        prop::sample::select(NAMES.to_vec()).prop_map(|v| ("file.name", v)),
        prop::sample::select(vec!["5", "500"]).prop_map(|v| ("file.size", v)),
    ];
    (0u32..10, prop::collection::vec(field, 0..4))
}

#[test]
fn indexed_matcher_equals_plain_evaluator() {
    let config = Config {
        cases: 48,
        rng_seed: RngSeed::Fixed(0x6b6f7061),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = (
        prop::collection::vec((pattern(), prop::option::of(0u32..10)), 1..25),
        prop::collection::vec(record(), 0..30),
    );
    runner
        .run(&strategy, |(patterns, records)| {
            check(&patterns, &records);
            Ok(())
        })
        .unwrap();
}

fn check(patterns: &[(String, Option<u32>)], records: &[Rec]) {
    let mapping = Mapping::ecs();
    let base = 1_704_067_200_000i64;
    let time = |s: u32| {
        chrono::DateTime::from_timestamp_millis(base + i64::from(s) * 1000)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let inds: Vec<IndicatorInput> = patterns
        .iter()
        .enumerate()
        .map(|(i, (p, from))| {
            let mut x = ind(&format!("indicator-{i}"), p);
            x.valid_from = from.map(|s| base + i64::from(s) * 1000);
            x
        })
        .collect();
    let (m, errors) = Matcher::compile(inds.clone());
    assert!(errors.is_empty(), "{errors:?}");
    let times: Vec<String> = records.iter().map(|(s, _)| time(*s)).collect();
    let recs: Vec<(&str, Vec<(&str, &str)>)> = records
        .iter()
        .zip(&times)
        .map(|((_, f), t)| (t.as_str(), f.clone()))
        .collect();
    let got = run(m, &recs);

    // The plain evaluator over every observation.
    let observations: Vec<Observation> = recs
        .iter()
        .enumerate()
        .map(|(n, (t, f))| {
            let lf = fields_of(&mapping, t, f);
            let label = format!("t:{}", n + 1);
            let od = lf.to_observed_data(&mapping, &label, lf.time().unwrap());
            let mut o = Observation::from_observed_data(&od, |_| None).unwrap();
            o.id = label;
            o
        })
        .collect();
    let mut want = Vec::new();
    for x in &inds {
        let p = crate::parse(&x.pattern).unwrap();
        let from = x.valid_from.unwrap_or(i64::MIN);
        let valid: Vec<&Observation> = observations
            .iter()
            .enumerate()
            .filter(|(n, _)| base + i64::from(records[*n].0) * 1000 >= from)
            .map(|(_, o)| o)
            .collect();
        let hits: Vec<String> = if p.single_observation().is_some() {
            valid
                .iter()
                .filter(|o| p.matches_one(o) == Some(true))
                .map(|o| o.id.clone())
                .collect()
        } else {
            let all: Vec<Observation> = valid.iter().map(|o| (*o).clone()).collect();
            match p.matches(&all) {
                Outcome::Match(b) => {
                    let mut ids: Vec<String> = b.iter().map(|&i| all[i].id.clone()).collect();
                    ids.sort_by_key(|l| l[2..].parse::<usize>().unwrap());
                    ids
                }
                _ => vec![],
            }
        };
        if !hits.is_empty() {
            want.push((x.id.clone(), hits));
        }
    }
    let mut got = summary(&got);
    for (_, v) in &mut got {
        v.sort_by_key(|l| l[2..].parse::<usize>().unwrap());
    }
    // Multi-observation patterns: the same verdict; the binding may differ only when the evaluator
    // could have bound other observations (they are all valid bindings), so compare verdicts there.
    let multi: Vec<&String> = inds
        .iter()
        .filter(|x| {
            crate::parse(&x.pattern)
                .unwrap()
                .single_observation()
                .is_none()
        })
        .map(|x| &x.id)
        .collect();
    let strip = |v: &[(String, Vec<String>)]| -> Vec<(String, Vec<String>)> {
        v.iter()
            .map(|(i, o)| {
                (
                    i.clone(),
                    if multi.contains(&i) {
                        vec![]
                    } else {
                        o.clone()
                    },
                )
            })
            .collect()
    };
    assert_eq!(
        strip(&got),
        strip(&want),
        "patterns: {patterns:#?}\nrecords: {records:?}"
    );
}
