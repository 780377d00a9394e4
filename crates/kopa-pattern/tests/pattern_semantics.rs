//! Table-driven tests of the patterning engine: parsing and validation, every comparison operator
//! and its NOT form, object paths and references, observation operators and qualifiers, the
//! specification's own examples (STIX 2.1 §9), and one named test for each documented deviation
//! of the OASIS reference matcher (`stix2-matcher`), showing that Kopa follows the specification.

use kopa_pattern::{parse, validate, Observation, Outcome, MAX_DEPTH};
use serde_json::{json, Value};

/// One observed-data at second `t` (first = last), `n` times, with the given SCOs (object_refs form).
fn obs_at(id: &str, t: u32, n: u64, scos: &[Value]) -> Observation {
    obs_span(id, t, t, n, scos)
}

fn obs_span(id: &str, first: u32, last: u32, n: u64, scos: &[Value]) -> Observation {
    let ts = |s: u32| format!("2024-01-01T00:{:02}:{:02}.000Z", s / 60, s % 60);
    let mut objects = vec![json!({
        "type": "observed-data", "id": id, "first_observed": ts(first), "last_observed": ts(last),
        "number_observed": n,
        "object_refs": scos.iter().map(|o| o["id"].clone()).collect::<Vec<_>>(),
    })];
    objects.extend(scos.iter().cloned());
    let mut v = Observation::from_json(&Value::Array(objects)).expect("valid observed-data");
    v.pop().expect("one observation")
}

fn one(scos: &[Value]) -> Vec<Observation> {
    vec![obs_at("observed-data--1", 0, 1, scos)]
}

fn matched(pattern: &str, obs: &[Observation]) -> bool {
    let p = validate(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    match p.matches(obs) {
        Outcome::Match(_) => true,
        Outcome::NoMatch => false,
        Outcome::TooComplex => panic!("{pattern}: too complex"),
    }
}

fn check_table(obs: &[Observation], cases: &[(&str, &str, bool)]) {
    for (name, pattern, want) in cases {
        assert_eq!(matched(pattern, obs), *want, "case {name}: {pattern}");
    }
}

// ------------------------------------------------------------------------------------------
// Parsing and validation

#[test]
fn validation_table() {
    let cases: &[(&str, &str, Option<usize>)] = &[
        ("simple", "[file:name = 'a']", None),
        ("all operators", "[a:b = 1 AND a:b != 1 AND a:b < 1 AND a:b <= 1 AND a:b > 1 AND a:b >= 1 AND a:b IN (1, 2) AND a:b LIKE 'x' AND a:b MATCHES 'x' AND a:b ISSUBSET '1.2.3.4' AND a:b ISSUPERSET '1.2.3.4']", None),
        ("NOT forms", "[a:b NOT = 1 AND a:b NOT IN () AND a:b NOT LIKE 'x' AND NOT EXISTS a:c]", None),
        ("literals", "[a:b = b'AAA=' OR a:b = h'00ff' OR a:b = t'2020-01-01T00:00:00.5Z' OR a:b = true OR a:b = -1.5]", None),
        ("qualifiers", "[a:b = 1] WITHIN 5 SECONDS REPEATS 2 TIMES START t'2020-01-01T00:00:00Z' STOP t'2020-01-02T00:00:00Z'", None),
        ("paths", "[file:extensions.'windows-pebinary-ext'.sections[*].hashes[0] = 1]", None),
        ("comment", "[a:b = 1] /* c */", None),
        ("base64 with trailing bits", "[a:b = b'AB==']", None),
        ("missing bracket", "a:b = 1", Some(1)),
        ("unclosed", "[a:b = 1", Some(9)),
        ("bad hash", "[file:hashes.MD5 = 'zz']", Some(20)),
        ("bad quoted hash", "[file:hashes.'SHA-256' = 'ab']", Some(26)),
        ("duplicate qualifier", "[a:b = 1] WITHIN 1 SECONDS WITHIN 2 SECONDS", Some(28)),
        ("START needs timestamps", "[a:b = 1] START '2020-01-01T00:00:00Z' STOP '2021-01-01T00:00:00Z'", Some(17)),
        ("property with hyphen", "[a:b-c = 1]", Some(4)),
        ("keyword as property", "[a:AND = 1]", Some(4)),
        ("lower-case operator", "[a:b = 1] and [a:c = 2]", Some(11)),
        ("trailing junk", "[a:b = 1] #", Some(11)),
        ("bad escape", r"[a:b = 'x\y']", Some(8)),
        ("empty", "", Some(1)),
        ("bad timestamp month", "[a:b = t'2020-13-01T00:00:00Z']", Some(8)),
    ];
    for (name, pattern, want) in cases {
        let got = validate(pattern).err().map(|e| e.column());
        assert_eq!(
            got,
            *want,
            "case {name}: {pattern} ({:?})",
            validate(pattern).err()
        );
    }
}

#[test]
fn errors_are_clear() {
    let e = validate("[file:name = ]").unwrap_err();
    assert_eq!(e.column(), 14);
    assert!(
        e.message().contains("expected a literal") && e.message().contains("']'"),
        "{}",
        e.message()
    );
    let e = validate("[file:hashes.MD5 = 'zz']").unwrap_err();
    assert_eq!(e.message(), "'zz' is not a valid MD5 hash");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}[a:b = 1]{}", "(".repeat(100_000), ")".repeat(100_000));
    let e = validate(&deep).unwrap_err();
    assert!(e.message().contains("nesting"), "{}", e.message());
    let inner = format!("[{}a:b = 1{}]", "(".repeat(100_000), ")".repeat(100_000));
    assert!(parse(&inner).unwrap_err().message().contains("nesting"));
    let ok = format!(
        "{}[a:b = 1]{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    assert!(validate(&ok).is_ok());
}

#[test]
fn garbage_never_panics() {
    let seeds = [
        "[a:b = 1]",
        "[file:hashes.'SHA-256' = 'x'] WITHIN 5 SECONDS",
        "([a:b IN (1, 'x', b'AAAA')])",
    ];
    for s in seeds {
        for i in 0..=s.len() {
            for j in i..=s.len() {
                if let (Some(a), Some(b)) = (s.get(..i), s.get(j..)) {
                    let _ = validate(&format!("{a}{b}"));
                    let _ = validate(&format!("{a}é'\\{b}"));
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Comparison operators on one observation

fn sample_scos() -> Vec<Value> {
    vec![
        json!({"type": "file", "id": "file--1", "name": "report.exe", "size": 2048, "ratio": 0.5,
               "is_signed": false, "ctime": "2024-01-01T10:00:00Z",
               "hashes": {"MD5": "79054025255fb1a26e4bc422aef54eb4", "SHA-256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
               "payload_bin": "AAEC", "magic_hex": "cafe",
               "parent_directory_ref": "directory--1", "tags": ["a", "b", "c"],
               "extensions": {"windows-pebinary-ext": {"sections": [{"entropy": 7.5}, {"entropy": 1.0}]}}}),
        json!({"type": "directory", "id": "directory--1", "path": "C:\\Windows"}),
        json!({"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "198.51.100.7"}),
        json!({"type": "ipv6-addr", "id": "ipv6-addr--1", "value": "2001:db8::7"}),
        json!({"type": "email-message", "id": "email-message--1", "from_ref": "email-addr--1",
               "to_refs": ["email-addr--2", "email-addr--missing", "email-addr--1"], "subject": "Multi\nline"}),
        json!({"type": "email-addr", "id": "email-addr--1", "value": "alice@example.com"}),
        json!({"type": "email-addr", "id": "email-addr--2", "value": "bob@example.org"}),
    ]
}

#[test]
fn equality_and_order() {
    let obs = one(&sample_scos());
    check_table(
        &obs,
        &[
            ("string equal", "[file:name = 'report.exe']", true),
            ("string double equal", "[file:name == 'report.exe']", true),
            ("string differs", "[file:name = 'other']", false),
            ("not equal", "[file:name != 'other']", true),
            ("not equal alt", "[file:name <> 'report.exe']", false),
            ("NOT =", "[file:name NOT = 'report.exe']", false),
            ("NOT !=", "[file:name NOT != 'report.exe']", true),
            ("int equal", "[file:size = 2048]", true),
            ("int vs float equal", "[file:size = 2048.0]", true),
            ("float property", "[file:ratio = .5]", true),
            ("bool", "[file:is_signed = false]", true),
            ("bool vs int incompatible", "[file:is_signed = 0]", false),
            ("incompatible != is true", "[file:size != 'x']", true),
            ("less", "[file:size < 4096]", true),
            ("less equal", "[file:size <= 2048]", true),
            ("greater", "[file:size > 2048]", false),
            ("greater equal", "[file:size >= 2048]", true),
            ("NOT <", "[file:size NOT < 4096]", false),
            ("string order by code point", "[file:name > 'Z']", true),
            ("incompatible order is false", "[file:name < 5]", false),
            (
                "incompatible order with NOT is false",
                "[file:name NOT < 5]",
                false,
            ),
            (
                "timestamp equal",
                "[file:ctime = t'2024-01-01T10:00:00.000Z']",
                true,
            ),
            (
                "timestamp order",
                "[file:ctime < t'2024-01-01T10:00:01Z']",
                true,
            ),
            (
                "timestamp vs plain string",
                "[file:name = t'2024-01-01T10:00:00Z']",
                false,
            ),
            (
                "binary property vs b''",
                "[file:payload_bin = b'AAEC']",
                true,
            ),
            ("hex property vs h''", "[file:magic_hex = h'CAFE']", true),
            ("hex property vs binary", "[file:magic_hex = b'yv4=']", true),
            (
                "binary vs string octets",
                "[file:payload_bin = '\u{0}\u{1}\u{2}']",
                true,
            ),
            ("binary order", "[file:magic_hex > h'ca']", true),
            ("missing property", "[file:missing = 1]", false),
            ("missing property with NOT", "[file:missing NOT = 1]", false),
            ("wrong type", "[url:value = 'report.exe']", false),
        ],
    );
}

#[test]
fn set_like_matches() {
    let obs = one(&sample_scos());
    check_table(
        &obs,
        &[
            ("IN hit", "[file:name IN ('x', 'report.exe')]", true),
            ("IN miss", "[file:name IN ('x', 'y')]", false),
            ("IN mixed types", "[file:size IN ('2048', 2048)]", true),
            ("IN empty", "[file:size IN ()]", false),
            ("NOT IN", "[file:name NOT IN ('x', 'y')]", true),
            ("LIKE percent", "[file:name LIKE 'rep%.exe']", true),
            ("LIKE underscore", "[file:name LIKE 'report.ex_']", true),
            ("LIKE whole value", "[file:name LIKE 'report']", false),
            ("NOT LIKE", "[file:name NOT LIKE '%.dll']", true),
            ("LIKE on number", "[file:size LIKE '2%']", false),
            ("MATCHES search", "[file:name MATCHES 'port']", true),
            (
                "MATCHES anchored",
                "[file:name MATCHES '^report\\\\.exe$']",
                true,
            ),
            ("MATCHES miss", "[file:name MATCHES '^port']", false),
            ("NOT MATCHES", "[file:name NOT MATCHES 'dll$']", true),
            (
                "MATCHES unsupported regex is false",
                "[file:name MATCHES '(?=report)']",
                false,
            ),
            (
                "ISSUBSET cidr",
                "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
                true,
            ),
            (
                "ISSUBSET outside",
                "[ipv4-addr:value ISSUBSET '198.51.101.0/24']",
                false,
            ),
            (
                "ISSUBSET single address",
                "[ipv4-addr:value ISSUBSET '198.51.100.7']",
                true,
            ),
            (
                "NOT ISSUBSET",
                "[ipv4-addr:value NOT ISSUBSET '10.0.0.0/8']",
                true,
            ),
            (
                "ISSUPERSET address",
                "[ipv4-addr:value ISSUPERSET '198.51.100.7/32']",
                true,
            ),
            (
                "ISSUPERSET wider",
                "[ipv4-addr:value ISSUPERSET '198.51.100.0/24']",
                false,
            ),
            (
                "ISSUBSET ipv6",
                "[ipv6-addr:value ISSUBSET '2001:db8::/32']",
                true,
            ),
            (
                "ISSUBSET family mismatch",
                "[ipv6-addr:value ISSUBSET '0.0.0.0/0']",
                false,
            ),
            ("EXISTS", "[EXISTS file:hashes.MD5]", true),
            ("EXISTS missing", "[EXISTS file:hashes.SHA1]", false),
            ("NOT EXISTS", "[NOT EXISTS file:hashes.SHA1]", true),
            ("NOT EXISTS present", "[NOT EXISTS file:name]", false),
            (
                "NOT EXISTS needs an object of the type",
                "[NOT EXISTS url:value]",
                false,
            ),
        ],
    );
}

#[test]
fn paths_and_references() {
    let obs = one(&sample_scos());
    check_table(
        &obs,
        &[
            ("quoted key", "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']", true),
            ("list index", "[file:tags[1] = 'b']", true),
            ("list index miss", "[file:tags[0] = 'b']", false),
            ("index out of range", "[file:tags[9] = 'b']", false),
            ("any index", "[file:tags[*] = 'c']", true),
            (
                "nested any index",
                "[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]",
                true,
            ),
            (
                "_ref dereference",
                "[file:parent_directory_ref.path = 'C:\\\\Windows']",
                true,
            ),
            (
                "_ref compares the object, not the id",
                "[file:parent_directory_ref = 'directory--1']",
                false,
            ),
            (
                "_refs any",
                "[email-message:to_refs[*].value = 'alice@example.com']",
                true,
            ),
            (
                "_refs index skips unresolved",
                "[email-message:to_refs[1].value = 'alice@example.com']",
                true,
            ),
            (
                "from_ref MATCHES (spec example)",
                "[email-message:from_ref.value MATCHES '.+\\\\@example\\\\.com$']",
                true,
            ),
            (
                "same SCO for AND",
                "[file:name = 'report.exe' AND file:size = 2048]",
                true,
            ),
            (
                "AND across SCOs never",
                "[file:name = 'report.exe' AND ipv4-addr:value = '198.51.100.7']",
                false,
            ),
            (
                "OR across SCOs",
                "[file:name = 'x' OR ipv4-addr:value = '198.51.100.7']",
                true,
            ),
            (
                "parentheses",
                "[(file:name = 'x' OR file:size = 2048) AND file:is_signed = false]",
                true,
            ),
        ],
    );
}

#[test]
fn inline_objects_form() {
    let od = json!({"type": "observed-data", "id": "observed-data--i", "first_observed": "2024-01-01T00:00:00Z",
        "last_observed": "2024-01-01T00:00:00Z", "number_observed": 1, "objects": {
            "0": {"type": "file", "name": "a.exe", "parent_directory_ref": "1"},
            "1": {"type": "directory", "path": "/tmp"}}});
    let obs = Observation::from_json(&od).unwrap();
    assert!(matched("[file:parent_directory_ref.path = '/tmp']", &obs));
}

// ------------------------------------------------------------------------------------------
// Observation operators and qualifiers

fn ip(v: &str) -> Value {
    json!({"type": "ipv4-addr", "id": format!("ipv4-addr--{v}"), "value": v})
}

#[test]
fn observation_operators_and_qualifiers() {
    // a at 0 s, b at 10 s, a again at 30 s.
    let obs = vec![
        obs_at("observed-data--a1", 0, 1, &[ip("1.1.1.1")]),
        obs_at("observed-data--b", 10, 1, &[ip("2.2.2.2")]),
        obs_at("observed-data--a2", 30, 1, &[ip("1.1.1.1")]),
    ];
    let a = "[ipv4-addr:value = '1.1.1.1']";
    let b = "[ipv4-addr:value = '2.2.2.2']";
    let c = "[ipv4-addr:value = '3.3.3.3']";
    let cases: Vec<(&str, String, bool)> = vec![
        ("AND", format!("{a} AND {b}"), true),
        ("AND missing", format!("{a} AND {c}"), false),
        ("OR", format!("{c} OR {b}"), true),
        ("FOLLOWEDBY in order", format!("{a} FOLLOWEDBY {b}"), true),
        (
            "FOLLOWEDBY with the later a",
            format!("{b} FOLLOWEDBY {a}"),
            true,
        ),
        (
            "FOLLOWEDBY chain",
            format!("{a} FOLLOWEDBY {b} FOLLOWEDBY {a}"),
            true,
        ),
        (
            "FOLLOWEDBY needs a later b",
            format!("{a} FOLLOWEDBY {a} FOLLOWEDBY {b}"),
            false,
        ),
        (
            "AND binds different observations",
            format!("{b} AND {b}"),
            false,
        ),
        (
            "same pattern twice uses two observations",
            format!("{a} AND {a}"),
            true,
        ),
        (
            "WITHIN wide",
            format!("({a} AND {b}) WITHIN 11 SECONDS"),
            true,
        ),
        (
            "WITHIN strict",
            format!("({a} FOLLOWEDBY {b}) WITHIN 10 SECONDS"),
            false,
        ),
        (
            "WITHIN finds the closer pair",
            format!("({b} AND {a}) WITHIN 10.5 SECONDS"),
            true,
        ),
        ("REPEATS", format!("{a} REPEATS 2 TIMES"), true),
        ("REPEATS too many", format!("{a} REPEATS 3 TIMES"), false),
        ("REPEATS 0", format!("{a} REPEATS 0 TIMES"), false),
        (
            "REPEATS WITHIN",
            format!("{a} REPEATS 2 TIMES WITHIN 29 SECONDS"),
            false,
        ),
        (
            "START/STOP inside",
            format!("{b} START t'2024-01-01T00:00:05Z' STOP t'2024-01-01T00:00:11Z'"),
            true,
        ),
        (
            "STOP is exclusive",
            format!("{b} START t'2024-01-01T00:00:00Z' STOP t'2024-01-01T00:00:10Z'"),
            false,
        ),
        (
            "START is inclusive",
            format!("{b} START t'2024-01-01T00:00:10Z' STOP t'2024-01-01T00:00:20Z'"),
            true,
        ),
        (
            "START after STOP never",
            format!("{b} START t'2024-01-01T00:00:20Z' STOP t'2024-01-01T00:00:05Z'"),
            false,
        ),
        (
            "qualifier binds tighter than AND",
            format!("{a} AND {b} WITHIN 1 SECONDS"),
            true,
        ),
        (
            "grouped qualifier",
            format!("({a} AND {b}) START t'2024-01-01T00:00:05Z' STOP t'2024-01-01T00:01:00Z'"),
            true,
        ),
        (
            "nested groups",
            format!("(({c}) OR ({a} FOLLOWEDBY {b})) WITHIN 20 SECONDS"),
            true,
        ),
    ];
    for (name, p, want) in &cases {
        assert_eq!(matched(p, &obs), *want, "case {name}: {p}");
    }
}

#[test]
fn binding_names_the_observations() {
    let obs = vec![
        obs_at("observed-data--x", 0, 1, &[ip("9.9.9.9")]),
        obs_at("observed-data--a", 5, 1, &[ip("1.1.1.1")]),
        obs_at("observed-data--b", 10, 1, &[ip("2.2.2.2")]),
    ];
    let p =
        parse("[ipv4-addr:value = '1.1.1.1'] FOLLOWEDBY [ipv4-addr:value = '2.2.2.2']").unwrap();
    assert_eq!(p.matches(&obs), Outcome::Match(vec![1, 2]));
    assert_eq!(p.matches_one(&obs[1]), None);
    let single = parse("[ipv4-addr:value = '9.9.9.9']").unwrap();
    assert_eq!(single.matches_one(&obs[0]), Some(true));
    assert_eq!(single.matches_one(&obs[1]), Some(false));
}

#[test]
fn number_observed_counts_as_many_observations() {
    let twice = vec![obs_at("observed-data--n", 0, 2, &[ip("1.1.1.1")])];
    let once = vec![obs_at("observed-data--n", 0, 1, &[ip("1.1.1.1")])];
    let p = "[ipv4-addr:value = '1.1.1.1'] AND [ipv4-addr:value = '1.1.1.1']";
    assert!(matched(p, &twice));
    assert!(!matched(p, &once));
    assert!(matched(
        "[ipv4-addr:value = '1.1.1.1'] REPEATS 2 TIMES",
        &twice
    ));
    assert!(!matched(
        "[ipv4-addr:value = '1.1.1.1'] REPEATS 3 TIMES",
        &twice
    ));
}

#[test]
fn spec_examples() {
    // STIX 2.1 §9.9 (pattern examples), evaluated against observations built for them.
    let pe = json!({"type": "file", "id": "file--pe", "name": "foo.dll", "mime_type": "application/x-pdf",
        "hashes": {"SHA-256": "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f",
                   "MD5": "79054025255fb1a26e4bc422aef54eb4"},
        "extensions": {"windows-pebinary-ext": {"sections": [{"name": ".text", "entropy": 7.1}]}}});
    let traffic = json!({"type": "network-traffic", "id": "network-traffic--1", "dst_ref": "ipv4-addr--d",
        "dst_port": 22, "protocols": ["tcp"]});
    let dst = json!({"type": "ipv4-addr", "id": "ipv4-addr--d", "value": "203.0.113.33"});
    let user = json!({"type": "user-account", "id": "user-account--1", "account_type": "unix",
        "user_id": "1007", "account_login": "Peter"});
    let key = json!({"type": "windows-registry-key", "id": "windows-registry-key--1",
        "key": "HKEY_LOCAL_MACHINE\\System\\CurrentControlSet\\Services\\WSALG2"});
    let cert = json!({"type": "x509-certificate", "id": "x509-certificate--1", "issuer": "CN=WEBMAIL",
        "serial_number": "4c:0b:1d:19:74:86:a7:66:b4:1a:bf:40:27:21:76:28"});
    let domain = json!({"type": "domain-name", "id": "domain-name--1", "value": "example.com",
        "resolves_to_refs": ["ipv4-addr--r"]});
    let resolved = json!({"type": "ipv4-addr", "id": "ipv4-addr--r", "value": "198.51.100.1"});
    let artifact = json!({"type": "artifact", "id": "artifact--1", "mime_type": "application/vnd.tcpdump.pcap",
        "payload_bin": "1MOyoQIABAAAAAAAAAAAAP//AAABAAAA"});
    let proc1 = json!({"type": "process", "id": "process--1",
        "command_line": "C:\\>-add GlobalSign.cer -c -s -r localMachine Root"});
    let proc2 = json!({"type": "process", "id": "process--2",
        "command_line": "C:\\>-add GlobalSign.cer -c -s -r localMachineTrustedPublisher"});
    let obs = vec![
        obs_at("observed-data--1", 0, 1, &[pe, traffic, dst, user.clone()]),
        obs_at(
            "observed-data--2",
            60,
            1,
            &[user, key, cert, domain, resolved, artifact, proc1],
        ),
        obs_at("observed-data--3", 200, 1, &[proc2]),
    ];
    let cases: &[(&str, &str, bool)] = &[
        ("hash", "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']", true),
        ("hash and mime", "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f' AND file:mime_type = 'application/x-pdf']", true),
        ("dst_ref", "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value ISSUBSET '203.0.113.33/32']", true),
        ("pe sections", "[file:extensions.'windows-pebinary-ext'.sections[*].entropy > 7.0]", true),
        ("user twice", "[user-account:account_type = 'unix' AND user-account:user_id = '1007' AND user-account:account_login = 'Peter'] AND [user-account:account_type = 'unix' AND user-account:user_id = '1007' AND user-account:account_login = 'Peter']", true),
        ("registry key", "[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\System\\\\CurrentControlSet\\\\Services\\\\WSALG2']", true),
        ("certificate", "[x509-certificate:issuer = 'CN=WEBMAIL' AND x509-certificate:serial_number = '4c:0b:1d:19:74:86:a7:66:b4:1a:bf:40:27:21:76:28']", true),
        ("domain or resolves_to", "[domain-name:value = 'www.5z8.info' OR domain-name:resolves_to_refs[*].value ISSUBSET '198.51.100.1/32']", true),
        ("pcap header", "[artifact:mime_type = 'application/vnd.tcpdump.pcap' AND artifact:payload_bin MATCHES '\\\\xd4\\\\xc3\\\\xb2\\\\xa1\\\\x02\\\\x00\\\\x04\\\\x00']", true),
        ("command lines within 300 s", "[process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachine Root$'] FOLLOWEDBY [process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachineTrustedPublisher$'] WITHIN 300 SECONDS", true),
        ("grouped command lines within 100 s", "([process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachine Root$'] FOLLOWEDBY [process:command_line MATCHES '^.+>-add GlobalSign.cer -c -s -r localMachineTrustedPublisher$']) WITHIN 100 SECONDS", false),
        ("dll or proc", "([file:name = 'foo.dll'] AND [windows-registry-key:key LIKE 'HKEY_LOCAL_MACHINE%']) OR [process:name = 'fooproc' OR process:name = 'procfoo']", true),
        ("md5 repeats", "[file:hashes.MD5 = '79054025255fb1a26e4bc422aef54eb4'] REPEATS 5 TIMES", false),
        ("ssh start stop", "[network-traffic:dst_port = 22] START t'2024-01-01T00:00:00Z' STOP t'2024-01-01T00:00:01Z'", true),
    ];
    check_table(&obs, cases);
}

// ------------------------------------------------------------------------------------------
// The reference matcher's documented deviations: Kopa follows the specification.

#[test]
fn deviation_not_exists_follows_spec() {
    // stix2-matcher 3.0.0 has no EXISTS support. Per §9, NOT EXISTS holds for an SCO of the type
    // that lacks the property.
    let obs = one(&[json!({"type": "file", "id": "file--1", "name": "a"})]);
    assert!(matched("[NOT EXISTS file:size]", &obs));
    assert!(!matched("[NOT EXISTS file:name]", &obs));
    assert!(matched("[EXISTS file:name AND NOT EXISTS file:size]", &obs));
}

#[test]
fn deviation_matches_is_dotall() {
    // The reference uses Python `re` without DOTALL; the spec requires PCRE with DOTALL.
    let obs = one(&[
        json!({"type": "email-message", "id": "email-message--1", "subject": "line one\nline two"}),
    ]);
    assert!(matched("[email-message:subject MATCHES 'one.line']", &obs));
    assert!(matched(
        "[email-message:subject MATCHES '^line.*two$']",
        &obs
    ));
}

#[test]
fn deviation_like_wildcards_match_newlines() {
    let obs = one(&[
        json!({"type": "email-message", "id": "email-message--1", "subject": "line one\nline two"}),
    ]);
    assert!(matched("[email-message:subject LIKE 'line%two']", &obs));
    assert!(matched(
        "[email-message:subject LIKE 'line one_line two']",
        &obs
    ));
}

#[test]
fn deviation_issubset_covers_ipv6_and_plain_addresses() {
    let obs = one(&[
        ip("192.0.2.9"),
        json!({"type": "ipv6-addr", "id": "ipv6-addr--1", "value": "2001:db8:dead:beef::1"}),
    ]);
    assert!(matched(
        "[ipv6-addr:value ISSUBSET '2001:0db8:dead:beef:0000:0000:0000:0000/64']",
        &obs
    ));
    assert!(matched("[ipv4-addr:value ISSUBSET '192.0.2.9']", &obs));
    assert!(matched("[ipv4-addr:value ISSUPERSET '192.0.2.9']", &obs));
    assert!(matched("[ipv4-addr:value ISSUBSET '0.0.0.0/0']", &obs));
}

#[test]
fn deviation_within_boundary_is_strict() {
    // Observations exactly 10 s apart are not within 10 seconds (the reference says they are).
    let obs = vec![
        obs_at("observed-data--a", 0, 1, &[ip("1.1.1.1")]),
        obs_at("observed-data--b", 10, 1, &[ip("2.2.2.2")]),
    ];
    let p = "([ipv4-addr:value = '1.1.1.1'] AND [ipv4-addr:value = '2.2.2.2']) WITHIN 10 SECONDS";
    assert!(!matched(p, &obs));
    let p =
        "([ipv4-addr:value = '1.1.1.1'] AND [ipv4-addr:value = '2.2.2.2']) WITHIN 10.001 SECONDS";
    assert!(matched(p, &obs));
}

#[test]
fn deviation_exponential_binding_is_bounded() {
    // The reference matcher's binding enumeration grows exponentially on patterns like this one;
    // Kopa's search has a step budget and reports TooComplex instead of hanging.
    // 2.2.2.2 is seen first, then 1.1.1.1 forty times: no binding exists, and proving it means
    // trying every choice of 20 of the 40 observations.
    let mut obs = vec![obs_at("observed-data--b", 0, 1, &[ip("2.2.2.2")])];
    obs.extend((1..=40).map(|i| obs_at(&format!("observed-data--{i}"), i, 1, &[ip("1.1.1.1")])));
    let p = parse(
        "([ipv4-addr:value = '1.1.1.1'] REPEATS 20 TIMES) FOLLOWEDBY [ipv4-addr:value = '2.2.2.2']",
    )
    .unwrap();
    assert_eq!(p.matches_with_budget(&obs, 100_000), Outcome::TooComplex);
    // An impossible one that a quick check can rule out is not searched at all.
    let q =
        parse("([ipv4-addr:value = '1.1.1.1'] REPEATS 20 TIMES) AND [ipv4-addr:value = '3.3.3.3']")
            .unwrap();
    assert_eq!(q.matches_with_budget(&obs, 100), Outcome::NoMatch);
    // A satisfiable one finds its binding quickly.
    let q = parse("[ipv4-addr:value = '1.1.1.1'] REPEATS 20 TIMES").unwrap();
    assert!(q.matches_with_budget(&obs, 100_000).is_match());
    // Deep recursion (REPEATS with a huge count) is refused, not a stack overflow.
    let many = vec![obs_at("observed-data--m", 0, 1_000_000, &[ip("1.1.1.1")])];
    let r = parse("[ipv4-addr:value = '1.1.1.1'] REPEATS 100000 TIMES").unwrap();
    assert_eq!(r.matches(&many), Outcome::TooComplex);
}

#[test]
fn unicode_is_nfc_normalised_for_like_and_matches() {
    // "é" precomposed in the pattern, decomposed in the data.
    let obs = one(&[json!({"type": "file", "id": "file--1", "name": "caf\u{65}\u{301}.txt"})]);
    assert!(matched("[file:name LIKE 'caf\u{e9}%']", &obs));
    assert!(matched("[file:name MATCHES '^caf\u{e9}']", &obs));
    // Equality compares code points, without normalisation.
    assert!(!matched("[file:name = 'caf\u{e9}.txt']", &obs));
}
