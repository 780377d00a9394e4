//! Property tests of the evaluator on random patterns and observation sets (fixed seed):
//! - `matches_one` agrees with `matches` on one observation;
//! - the binding returned is itself enough: the pattern matches the bound observations alone;
//! - observation-level matching is monotonic: adding observations never loses a match;
//! - an `OR` of single observation expressions matches exactly when one of them matches.

use kopa_pattern::{parse, Observation, Outcome};
use serde_json::json;

/// xorshift64*: small, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const IPS: [&str; 4] = ["10.0.0.1", "10.0.0.2", "192.0.2.5", "2001:db8::1"];
const NAMES: [&str; 4] = ["a.exe", "b.dll", "report.pdf", "x\ny"];

fn observation(rng: &mut Rng, i: usize) -> Observation {
    let first = rng.below(60);
    let last = first + rng.below(3);
    let ts = |s: usize| format!("2024-01-01T00:{:02}:{:02}.250Z", s / 60, s % 60);
    let ip = json!({"type": "ipv4-addr",
        "id": format!("ipv4-addr--{i}"), "value": rng.pick(&IPS[..3])});
    let file = json!({"type": "file", "id": format!("file--{i}"), "name": rng.pick(&NAMES),
        "size": rng.below(4) * 100, "tags": [rng.pick(&["x", "y"]), rng.pick(&["y", "z"])]});
    let mut refs = vec![];
    let mut objects = vec![];
    if rng.below(3) > 0 {
        refs.push(ip["id"].clone());
        objects.push(ip);
    }
    if rng.below(3) > 0 {
        refs.push(file["id"].clone());
        objects.push(file);
    }
    let mut all = vec![
        json!({"type": "observed-data", "id": format!("observed-data--{i}"),
        "first_observed": ts(first), "last_observed": ts(last),
        "number_observed": 1 + rng.below(2), "object_refs": refs}),
    ];
    all.extend(objects);
    Observation::from_json(&serde_json::Value::Array(all))
        .expect("valid")
        .pop()
        .expect("one")
}

fn comparison(rng: &mut Rng) -> String {
    let not = if rng.below(6) == 0 { "NOT " } else { "" };
    match rng.below(9) {
        0 => format!("ipv4-addr:value {not}= '{}'", rng.pick(&IPS)),
        1 => format!(
            "ipv4-addr:value {not}ISSUBSET '{}'",
            rng.pick(&["10.0.0.0/30", "192.0.2.0/24", "0.0.0.0/0"])
        ),
        2 => format!(
            "file:name {not}LIKE '{}'",
            rng.pick(&["%.exe", "_.dll", "report%", "x%"])
        ),
        3 => format!(
            "file:name {not}MATCHES '{}'",
            rng.pick(&["^a", "pdf$", "x.y", "[bd]"])
        ),
        4 => format!(
            "file:size {not}{} {}",
            rng.pick(&["<", "<=", ">", ">=", "=", "!="]),
            rng.below(4) * 100
        ),
        5 => format!(
            "file:tags[*] {not}IN ('{}', 'q')",
            rng.pick(&["x", "y", "z"])
        ),
        6 => format!(
            "{}EXISTS file:{}",
            not,
            rng.pick(&["name", "size", "missing"])
        ),
        7 => format!(
            "file:tags[{}] = '{}'",
            rng.below(3),
            rng.pick(&["x", "y", "z"])
        ),
        _ => format!("file:name {not}IN ('a.exe', 'b.dll')"),
    }
}

fn simple(rng: &mut Rng) -> String {
    let mut c = comparison(rng);
    for _ in 0..rng.below(3) {
        let op = rng.pick(&["AND", "OR"]);
        c = format!("{c} {op} {}", comparison(rng));
    }
    format!("[{c}]")
}

fn pattern(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.below(3) == 0 {
        return simple(rng);
    }
    let a = pattern(rng, depth - 1);
    let b = pattern(rng, depth - 1);
    let mut p = format!("({a} {} {b})", rng.pick(&["AND", "OR", "FOLLOWEDBY"]));
    match rng.below(6) {
        0 => p = format!("{p} WITHIN {} SECONDS", 1 + rng.below(30)),
        1 => p = format!("{p} REPEATS {} TIMES", 1 + rng.below(3)),
        2 => {
            p = format!(
                "{p} START t'2024-01-01T00:00:{:02}Z' STOP t'2024-01-01T00:00:{:02}Z'",
                rng.below(30),
                30 + rng.below(30)
            )
        }
        _ => {}
    }
    p
}

#[test]
fn evaluator_properties() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut matches = 0;
    for round in 0..400 {
        let obs: Vec<Observation> = (0..1 + rng.below(6))
            .map(|i| observation(&mut rng, round * 10 + i))
            .collect();

        // matches_one agrees with matches on one observation.
        let s = parse(&simple(&mut rng)).expect("generated patterns parse");
        for o in &obs {
            let one = s.matches_one(o).expect("single observation pattern");
            assert_eq!(
                one,
                s.matches(std::slice::from_ref(o)).is_match(),
                "{}",
                s.source()
            );
        }

        // OR of single expressions.
        let (a, b) = (simple(&mut rng), simple(&mut rng));
        let or = parse(&format!("{a} OR {b}")).expect("parses");
        let any = |p: &str| {
            obs.iter()
                .any(|o| parse(p).unwrap().matches_one(o) == Some(true))
        };
        assert_eq!(
            or.matches(&obs).is_match(),
            any(&a) || any(&b),
            "{}",
            or.source()
        );

        let p = parse(&pattern(&mut rng, 3)).expect("generated patterns parse");
        match p.matches(&obs) {
            Outcome::Match(bound) => {
                matches += 1;
                assert!(!bound.is_empty() && bound.windows(2).all(|w| w[0] < w[1]));
                // The binding alone suffices.
                let only: Vec<Observation> = bound.iter().map(|i| obs[*i].clone()).collect();
                assert!(
                    p.matches(&only).is_match(),
                    "binding {bound:?} of {} does not match alone",
                    p.source()
                );
                // Monotonic: more observations keep the match.
                let mut more = obs.clone();
                more.push(observation(&mut rng, round * 10 + 9));
                assert!(
                    !matches!(p.matches(&more), Outcome::NoMatch),
                    "{}",
                    p.source()
                );
            }
            Outcome::NoMatch => {
                // Monotonic the other way: a subset of the observations cannot match either.
                let fewer = &obs[..obs.len() - 1];
                assert!(!p.matches(fewer).is_match(), "{}", p.source());
            }
            Outcome::TooComplex => {}
        }
    }
    assert!(
        matches > 40,
        "the random corpus should produce matches ({matches})"
    );
}
