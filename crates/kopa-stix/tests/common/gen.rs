//! A deterministic generator of valid STIX 2.1 objects of every type, with random optional properties,
//! custom properties, extensions and markings. Used by the round-trip test and the throughput example.
//!
//! The property lists here are written independently of the validator's tables, from the specification,
//! so that the round-trip test also checks the validator against a second reading of the spec.

#![allow(dead_code, clippy::collapsible_match)]

use serde_json::{json, Map, Value};

/// xorshift64*: small, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo) as u64 + 1)) as i64
    }
}

#[derive(Clone, Copy)]
enum G {
    S,
    SL,
    Ts,
    B,
    I(i64, i64),
    F(f64, f64),
    E(&'static [&'static str]),
    Ref(&'static [&'static str]),
    Refs(&'static [&'static str]),
    Hashes,
    Dict,
    Hex,
    Bin,
    ExtRefs,
    Kcp,
    Langs,
}

const SDO_TYPES: &[&str] = &[
    "attack-pattern",
    "campaign",
    "course-of-action",
    "grouping",
    "identity",
    "incident",
    "indicator",
    "infrastructure",
    "intrusion-set",
    "location",
    "malware",
    "malware-analysis",
    "note",
    "observed-data",
    "opinion",
    "report",
    "threat-actor",
    "tool",
    "vulnerability",
    "x-acme-widget",
];
const SCO_TYPES: &[&str] = &[
    "artifact",
    "autonomous-system",
    "directory",
    "domain-name",
    "email-addr",
    "email-message",
    "file",
    "ipv4-addr",
    "ipv6-addr",
    "mac-addr",
    "mutex",
    "network-traffic",
    "process",
    "software",
    "url",
    "user-account",
    "windows-registry-key",
    "x509-certificate",
];
const ANY: &[&str] = &[
    "indicator",
    "malware",
    "ipv4-addr",
    "relationship",
    "file",
    "identity",
    "x-acme-widget",
    "sighting",
];
const SCO_OR_SRO: &[&str] = &["ipv4-addr", "file", "domain-name", "relationship", "url"];
const REL_END: &[&str] = &[
    "indicator",
    "malware",
    "threat-actor",
    "ipv4-addr",
    "file",
    "x-acme-widget",
];

fn sdo_props(t: &str) -> (&'static [(&'static str, G)], &'static [&'static str]) {
    use G::*;
    match t {
        "attack-pattern" => (
            &[
                ("name", S),
                ("description", S),
                ("aliases", SL),
                ("kill_chain_phases", Kcp),
            ],
            &["name"],
        ),
        "campaign" => (
            &[
                ("name", S),
                ("description", S),
                ("aliases", SL),
                ("first_seen", Ts),
                ("last_seen", Ts),
                ("objective", S),
            ],
            &["name"],
        ),
        "course-of-action" => (&[("name", S), ("description", S)], &["name"]),
        "grouping" => (
            &[
                ("name", S),
                ("description", S),
                ("context", S),
                ("object_refs", Refs(ANY)),
            ],
            &["context", "object_refs"],
        ),
        "identity" => (
            &[
                ("name", S),
                ("description", S),
                ("roles", SL),
                ("identity_class", S),
                ("sectors", SL),
                ("contact_information", S),
            ],
            &["name"],
        ),
        "incident" => (
            &[("name", S), ("description", S), ("kill_chain_phases", Kcp)],
            &["name"],
        ),
        "indicator" => (
            &[
                ("name", S),
                ("description", S),
                ("indicator_types", SL),
                ("pattern", S),
                ("pattern_type", S),
                ("pattern_version", S),
                ("valid_from", Ts),
                ("valid_until", Ts),
                ("kill_chain_phases", Kcp),
            ],
            &["pattern", "pattern_type", "valid_from"],
        ),
        "infrastructure" => (
            &[
                ("name", S),
                ("description", S),
                ("infrastructure_types", SL),
                ("aliases", SL),
                ("kill_chain_phases", Kcp),
                ("first_seen", Ts),
                ("last_seen", Ts),
            ],
            &["name"],
        ),
        "intrusion-set" => (
            &[
                ("name", S),
                ("description", S),
                ("aliases", SL),
                ("first_seen", Ts),
                ("last_seen", Ts),
                ("goals", SL),
                ("resource_level", S),
                ("primary_motivation", S),
                ("secondary_motivations", SL),
            ],
            &["name"],
        ),
        "location" => (
            &[
                ("name", S),
                ("description", S),
                ("region", S),
                ("country", S),
                ("administrative_area", S),
                ("city", S),
                ("street_address", S),
                ("postal_code", S),
            ],
            &[],
        ),
        "malware" => (
            &[
                ("name", S),
                ("description", S),
                ("malware_types", SL),
                ("is_family", B),
                ("aliases", SL),
                ("kill_chain_phases", Kcp),
                ("first_seen", Ts),
                ("last_seen", Ts),
                ("operating_system_refs", Refs(&["software"])),
                ("architecture_execution_envs", SL),
                ("implementation_languages", SL),
                ("capabilities", SL),
                ("sample_refs", Refs(&["file", "artifact"])),
            ],
            &["is_family"],
        ),
        "malware-analysis" => (
            &[
                ("product", S),
                ("version", S),
                ("host_vm_ref", Ref(&["software"])),
                ("operating_system_ref", Ref(&["software"])),
                ("installed_software_refs", Refs(&["software"])),
                ("configuration_version", S),
                ("modules", SL),
                ("analysis_engine_version", S),
                ("analysis_definition_version", S),
                ("submitted", Ts),
                ("analysis_started", Ts),
                ("analysis_ended", Ts),
                ("result_name", S),
                ("result", S),
                ("analysis_sco_refs", Refs(SCO_TYPES)),
                ("sample_ref", Ref(&["file", "network-traffic", "artifact"])),
            ],
            &["product"],
        ),
        "note" => (
            &[
                ("abstract", S),
                ("content", S),
                ("authors", SL),
                ("object_refs", Refs(ANY)),
            ],
            &["content", "object_refs"],
        ),
        "observed-data" => (
            &[
                ("first_observed", Ts),
                ("last_observed", Ts),
                ("number_observed", I(1, 999_999_999)),
            ],
            &["first_observed", "last_observed", "number_observed"],
        ),
        "opinion" => (
            &[
                ("explanation", S),
                ("authors", SL),
                (
                    "opinion",
                    E(&[
                        "strongly-disagree",
                        "disagree",
                        "neutral",
                        "agree",
                        "strongly-agree",
                    ]),
                ),
                ("object_refs", Refs(ANY)),
            ],
            &["opinion", "object_refs"],
        ),
        "report" => (
            &[
                ("name", S),
                ("description", S),
                ("report_types", SL),
                ("published", Ts),
                ("object_refs", Refs(ANY)),
            ],
            &["name", "published", "object_refs"],
        ),
        "threat-actor" => (
            &[
                ("name", S),
                ("description", S),
                ("threat_actor_types", SL),
                ("aliases", SL),
                ("first_seen", Ts),
                ("last_seen", Ts),
                ("roles", SL),
                ("goals", SL),
                ("sophistication", S),
                ("resource_level", S),
                ("primary_motivation", S),
                ("secondary_motivations", SL),
                ("personal_motivations", SL),
            ],
            &["name"],
        ),
        "tool" => (
            &[
                ("name", S),
                ("description", S),
                ("tool_types", SL),
                ("aliases", SL),
                ("kill_chain_phases", Kcp),
                ("tool_version", S),
            ],
            &["name"],
        ),
        "vulnerability" => (&[("name", S), ("description", S)], &["name"]),
        "relationship" => (
            &[
                (
                    "relationship_type",
                    E(&[
                        "indicates",
                        "uses",
                        "related-to",
                        "attributed-to",
                        "x-acme-hosts",
                    ]),
                ),
                ("description", S),
                ("source_ref", Ref(REL_END)),
                ("target_ref", Ref(REL_END)),
                ("start_time", Ts),
                ("stop_time", Ts),
            ],
            &["relationship_type", "source_ref", "target_ref"],
        ),
        "sighting" => (
            &[
                ("description", S),
                ("first_seen", Ts),
                ("last_seen", Ts),
                ("count", I(0, 999_999_999)),
                (
                    "sighting_of_ref",
                    Ref(&["indicator", "malware", "x-acme-widget", "campaign"]),
                ),
                ("observed_data_refs", Refs(&["observed-data"])),
                ("where_sighted_refs", Refs(&["identity", "location"])),
                ("summary", B),
            ],
            &["sighting_of_ref"],
        ),
        _ => (&[("name", S), ("x_acme_size", I(0, 1000))], &[]),
    }
}

fn sco_props(t: &str) -> (&'static [(&'static str, G)], &'static [&'static str]) {
    use G::*;
    match t {
        "artifact" => (
            &[
                ("mime_type", S),
                ("payload_bin", Bin),
                ("hashes", Hashes),
                (
                    "encryption_algorithm",
                    E(&["AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated"]),
                ),
                ("decryption_key", S),
            ],
            &[],
        ),
        "autonomous-system" => (
            &[("number", I(0, 4_294_967_295)), ("name", S), ("rir", S)],
            &["number"],
        ),
        "directory" => (
            &[
                ("path", S),
                ("path_enc", S),
                ("ctime", Ts),
                ("mtime", Ts),
                ("atime", Ts),
                ("contains_refs", Refs(&["file", "directory"])),
            ],
            &["path"],
        ),
        "domain-name" => (
            &[
                ("value", S),
                (
                    "resolves_to_refs",
                    Refs(&["ipv4-addr", "ipv6-addr", "domain-name"]),
                ),
            ],
            &["value"],
        ),
        "email-addr" => (
            &[
                ("value", S),
                ("display_name", S),
                ("belongs_to_ref", Ref(&["user-account"])),
            ],
            &["value"],
        ),
        "email-message" => (
            &[
                ("date", Ts),
                ("content_type", S),
                ("from_ref", Ref(&["email-addr"])),
                ("sender_ref", Ref(&["email-addr"])),
                ("to_refs", Refs(&["email-addr"])),
                ("cc_refs", Refs(&["email-addr"])),
                ("bcc_refs", Refs(&["email-addr"])),
                ("message_id", S),
                ("subject", S),
                ("received_lines", SL),
                ("additional_header_fields", Dict),
                ("raw_email_ref", Ref(&["artifact"])),
            ],
            &[],
        ),
        "file" => (
            &[
                ("hashes", Hashes),
                ("size", I(0, i64::MAX)),
                ("name", S),
                ("name_enc", S),
                ("magic_number_hex", Hex),
                ("mime_type", S),
                ("ctime", Ts),
                ("mtime", Ts),
                ("atime", Ts),
                ("parent_directory_ref", Ref(&["directory"])),
                ("contains_refs", Refs(SCO_TYPES)),
                ("content_ref", Ref(&["artifact"])),
            ],
            &[],
        ),
        "ipv4-addr" | "ipv6-addr" => (
            &[
                ("value", S),
                ("resolves_to_refs", Refs(&["mac-addr"])),
                ("belongs_to_refs", Refs(&["autonomous-system"])),
            ],
            &["value"],
        ),
        "mac-addr" | "url" => (&[("value", S)], &["value"]),
        "mutex" => (&[("name", S)], &["name"]),
        "network-traffic" => (
            &[
                ("start", Ts),
                ("is_active", B),
                (
                    "src_ref",
                    Ref(&["ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"]),
                ),
                ("dst_ref", Ref(&["ipv4-addr", "ipv6-addr"])),
                ("src_port", I(0, 65535)),
                ("dst_port", I(0, 65535)),
                ("protocols", SL),
                ("src_byte_count", I(0, 1 << 40)),
                ("dst_byte_count", I(0, 1 << 40)),
                ("src_packets", I(0, 1 << 30)),
                ("dst_packets", I(0, 1 << 30)),
                ("ipfix", Dict),
                ("src_payload_ref", Ref(&["artifact"])),
                ("dst_payload_ref", Ref(&["artifact"])),
                ("encapsulates_refs", Refs(&["network-traffic"])),
                ("encapsulated_by_ref", Ref(&["network-traffic"])),
            ],
            &["protocols"],
        ),
        "process" => (
            &[
                ("is_hidden", B),
                ("pid", I(0, 1 << 22)),
                ("created_time", Ts),
                ("cwd", S),
                ("command_line", S),
                ("environment_variables", Dict),
                ("opened_connection_refs", Refs(&["network-traffic"])),
                ("creator_user_ref", Ref(&["user-account"])),
                ("image_ref", Ref(&["file"])),
                ("parent_ref", Ref(&["process"])),
                ("child_refs", Refs(&["process"])),
            ],
            &[],
        ),
        "software" => (
            &[
                ("name", S),
                ("cpe", S),
                ("swid", S),
                ("languages", SL),
                ("vendor", S),
                ("version", S),
            ],
            &["name"],
        ),
        "user-account" => (
            &[
                ("user_id", S),
                ("credential", S),
                ("account_login", S),
                ("account_type", S),
                ("display_name", S),
                ("is_service_account", B),
                ("is_privileged", B),
                ("can_escalate_privs", B),
                ("is_disabled", B),
                ("account_created", Ts),
                ("account_expires", Ts),
                ("credential_last_changed", Ts),
                ("account_first_login", Ts),
                ("account_last_login", Ts),
            ],
            &[],
        ),
        "windows-registry-key" => (
            &[
                ("key", S),
                ("modified_time", Ts),
                ("creator_user_ref", Ref(&["user-account"])),
                ("number_of_subkeys", I(0, 10_000)),
            ],
            &[],
        ),
        "x509-certificate" => (
            &[
                ("is_self_signed", B),
                ("hashes", Hashes),
                ("version", S),
                ("serial_number", S),
                ("signature_algorithm", S),
                ("issuer", S),
                ("validity_not_before", Ts),
                ("validity_not_after", Ts),
                ("subject", S),
                ("subject_public_key_algorithm", S),
                ("subject_public_key_modulus", S),
                ("subject_public_key_exponent", I(3, 65537)),
            ],
            &[],
        ),
        _ => (&[("value", S)], &[]),
    }
}

pub fn uuid(rng: &mut Rng) -> String {
    let a = rng.next();
    let b = rng.next();
    let variant = *rng.pick(&['8', '9', 'a', 'b']);
    let version = *rng.pick(&['4', '4', '5', '1']);
    format!(
        "{:08x}-{:04x}-{}{:03x}-{}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        version,
        a & 0xfff,
        variant,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

pub fn ident(rng: &mut Rng, t: &str) -> String {
    format!("{t}--{}", uuid(rng))
}

const WORDS: &[&str] = &[
    "alpha",
    "Bravo",
    "évasion",
    "203.0.113.7",
    "evil.example",
    "multi\nline",
    "quote \" and \\ slash",
    "日本語",
    "emoji 🦀",
    "",
    " ",
    "tab\tthere",
    "<script>",
    "control \u{1}",
    "ünïcödé",
];

fn string(rng: &mut Rng) -> String {
    let n = rng.range(1, 3);
    (0..n)
        .map(|_| *rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn timestamp(rng: &mut Rng) -> (i64, String) {
    let secs = rng.range(0, 4_000_000_000);
    (secs, fmt_ts(rng, secs))
}

fn fmt_ts(rng: &mut Rng, secs: i64) -> String {
    let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    let base = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    match rng.below(4) {
        0 => format!("{base}Z"),
        1 => format!("{base}.{:03}Z", rng.below(1000)),
        2 => format!("{base}.{:06}Z", rng.below(1_000_000)),
        _ => format!("{base}.{:09}Z", rng.below(1_000_000_000)),
    }
}

fn fmt_ts_millis(rng: &mut Rng, secs: i64) -> String {
    loop {
        let s = fmt_ts(rng, secs);
        if s.len() >= 24 {
            return s;
        }
    }
}

fn hex(rng: &mut Rng, digits: usize) -> String {
    let mut s = String::with_capacity(digits);
    while s.len() < digits {
        s.push_str(&format!("{:016x}", rng.next()));
    }
    s.truncate(digits);
    if rng.chance(20) {
        s = s.to_uppercase();
    }
    s
}

fn hashes(rng: &mut Rng) -> Value {
    let mut m = Map::new();
    let algos: &[(&str, usize)] = &[
        ("MD5", 32),
        ("SHA-1", 40),
        ("SHA-256", 64),
        ("SHA-512", 128),
        ("SHA3-256", 64),
        ("SHA3-512", 128),
    ];
    for (a, n) in algos {
        if rng.chance(40) || m.is_empty() && *a == "SHA-512" {
            m.insert(a.to_string(), Value::String(hex(rng, *n)));
        }
    }
    if rng.chance(20) {
        m.insert(
            "SSDEEP".into(),
            json!("3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C"),
        );
    }
    if rng.chance(10) {
        m.insert("x_acme-hash".into(), json!(hex(rng, 20)));
    }
    Value::Object(m)
}

fn custom_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 2 { 5 } else { 8 }) {
        0 => Value::String(string(rng)),
        1 => json!(rng.range(-1_000_000_000_000, 1_000_000_000_000)),
        2 => json!((rng.next() % 1_000_000) as f64 / 7.0),
        3 => json!(rng.chance(50)),
        4 => json!(u64::MAX - rng.below(1000)),
        5 => Value::Array(
            (0..rng.range(1, 3))
                .map(|_| custom_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for i in 0..rng.range(0, 3) {
                m.insert(
                    format!("Key-{i} {}", rng.below(99)),
                    custom_value(rng, depth + 1),
                );
            }
            m.insert("nested_null".into(), Value::Null);
            Value::Object(m)
        }
    }
}

fn gen(rng: &mut Rng, g: G) -> Value {
    match g {
        G::S => Value::String(string(rng)),
        G::SL => Value::Array((0..rng.range(1, 4)).map(|_| Value::String(string(rng))).collect()),
        G::Ts => Value::String(timestamp(rng).1),
        G::B => json!(rng.chance(50)),
        G::I(lo, hi) => json!(rng.range(lo, hi)),
        G::F(lo, hi) => json!(lo + (hi - lo) * (rng.below(10_001) as f64 / 10_000.0)),
        G::E(vals) => json!(rng.pick(vals)),
        G::Ref(ts) => {
            let t = *rng.pick(ts);
            json!(ident(rng, t))
        }
        G::Refs(ts) => Value::Array(
            (0..rng.range(1, 4))
                .map(|_| {
                    let t = *rng.pick(ts);
                    json!(ident(rng, t))
                })
                .collect(),
        ),
        G::Hashes => hashes(rng),
        G::Dict => {
            let mut m = Map::new();
            for i in 0..rng.range(1, 3) {
                m.insert(format!("K{i}-{}", rng.below(1000)), Value::String(string(rng)));
            }
            Value::Object(m)
        }
        G::Hex => {
            let n = 2 * rng.range(1, 8) as usize;
            json!(hex(rng, n))
        }
        G::Bin => json!(*rng.pick(&["aGVsbG8=", "aGVsbG8gd29ybGQ=", "AAEC", "VGhpcyBpcyBhIHRlc3Q="])),
        G::ExtRefs => Value::Array(
            (0..rng.range(1, 3))
                .map(|_| match rng.below(4) {
                    0 => json!({"source_name": "cve", "external_id": format!("CVE-20{:02}-{:04}", rng.below(25), rng.range(1, 99999))}),
                    1 => json!({"source_name": "capec", "external_id": format!("CAPEC-{}", rng.below(700)), "url": "https://capec.mitre.org/"}),
                    2 => json!({"source_name": string(rng), "url": "https://example.org/a?b=c", "hashes": hashes(rng)}),
                    _ => json!({"source_name": "mitre-attack", "external_id": format!("T{}", 1000 + rng.below(600)), "description": string(rng)}),
                })
                .collect(),
        ),
        G::Langs => Value::Array(
            (0..rng.range(1, 3))
                .map(|_| json!(rng.pick(&["en", "fr", "de", "es", "ru", "zh", "ja"])))
                .collect(),
        ),
        G::Kcp => Value::Array(
            (0..rng.range(1, 3))
                .map(|_| json!({"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": string(rng)}))
                .collect(),
        ),
    }
}

fn add_props(rng: &mut Rng, m: &mut Map<String, Value>, props: &[(&str, G)], required: &[&str]) {
    for (name, g) in props {
        if required.contains(name) || rng.chance(45) {
            m.insert(name.to_string(), gen(rng, *g));
        }
    }
}

/// Make `later` follow `earlier` when both are present (strictly when `strict`).
fn order(rng: &mut Rng, m: &mut Map<String, Value>, earlier: &str, later: &str, strict: bool) {
    if let Some(Value::String(a)) = m.get(earlier) {
        if m.contains_key(later) {
            let a = kopa_stix::Timestamp::parse(a)
                .map(|t| t.micros() / 1_000_000)
                .unwrap_or(0);
            let delta = rng.range(if strict { 1 } else { 0 }, 100_000_000);
            let s = fmt_ts(rng, a + delta + 1);
            m.insert(later.to_string(), Value::String(s));
        }
    }
}

fn custom_props(rng: &mut Rng, m: &mut Map<String, Value>) {
    for i in 0..rng.range(0, 3) {
        let name = match rng.below(4) {
            0 => format!("x_acme_prop_{i}"),
            1 => format!("kopa_{i}_plain"),
            2 => format!("x_acme_{i}_ref"),
            _ => format!("x_acme_{i}_hex"),
        };
        let v = if name.ends_with("_ref") {
            json!(ident(rng, "indicator"))
        } else if name.ends_with("_hex") {
            json!(hex(rng, 8))
        } else {
            custom_value(rng, 0)
        };
        m.insert(name, v);
    }
}

fn markings(rng: &mut Rng, m: &mut Map<String, Value>) {
    if rng.chance(40) {
        let tlp = *rng.pick(&[
            "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
        ]);
        m.insert("object_marking_refs".into(), json!([tlp]));
    }
}

fn granular(rng: &mut Rng, m: &mut Map<String, Value>) {
    if !rng.chance(15) {
        return;
    }
    let keys: Vec<String> = m.keys().filter(|k| *k != "id").cloned().collect();
    let k = rng.pick(&keys).clone();
    let sel = match m.get(&k) {
        Some(Value::Array(a)) if !a.is_empty() => format!("{k}.[{}]", rng.below(a.len() as u64)),
        _ => k,
    };
    let gm = if rng.chance(50) {
        json!({"selectors": [sel], "marking_ref": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"})
    } else {
        json!({"selectors": [sel], "lang": "fr"})
    };
    m.insert("granular_markings".into(), json!([gm]));
}

fn ext_def_extension(rng: &mut Rng, m: &mut Map<String, Value>) {
    if !rng.chance(20) {
        return;
    }
    let key = format!("extension-definition--{}", uuid(rng));
    let ext = if rng.chance(50) {
        json!({"extension_type": "property-extension", "rank": rng.below(10), "note": string(rng), "id": "a1"})
    } else {
        m.insert("acme_toplevel".into(), json!(string(rng)));
        json!({"extension_type": "toplevel-property-extension"})
    };
    let mut exts = match m.remove("extensions") {
        Some(Value::Object(e)) => e,
        _ => Map::new(),
    };
    exts.insert(key, ext);
    m.insert("extensions".into(), Value::Object(exts));
}

fn sco_extensions(rng: &mut Rng, t: &str, m: &mut Map<String, Value>) {
    if !rng.chance(40) {
        return;
    }
    let (name, v) = match t {
        "file" => match rng.below(5) {
            0 => (
                "archive-ext",
                json!({"contains_refs": [ident(rng, "file"), ident(rng, "directory")], "comment": string(rng)}),
            ),
            1 => (
                "ntfs-ext",
                json!({"sid": "S-1-5-21", "alternate_data_streams": [{"name": "second.stream", "size": 25536, "hashes": hashes(rng)}]}),
            ),
            2 => (
                "pdf-ext",
                json!({"version": "1.7", "is_optimized": true, "document_info_dict": {"Title": "Sample"}, "pdfid0": "DFCE52BD827ECF765649852119D", "pdfid1": "57A1E0F9ED2AE523E313C"}),
            ),
            3 => (
                "raster-image-ext",
                json!({"image_height": 768, "image_width": 1024, "bits_per_pixel": 72, "exif_tags": {"Make": "Nikon", "XResolution": 4928}}),
            ),
            _ => (
                "windows-pebinary-ext",
                json!({"pe_type": "exe", "machine_hex": "014c", "number_of_sections": 4, "time_date_stamp": "2016-01-22T12:31:12Z", "pointer_to_symbol_table_hex": "74726144", "number_of_symbols": 4542568, "size_of_optional_header": 224, "characteristics_hex": "818f", "optional_header": {"magic_hex": "010b", "major_linker_version": 2, "address_of_entry_point": 4096, "checksum_hex": "00", "hashes": hashes(rng)}, "sections": [{"name": "CODE", "entropy": 0.061089, "hashes": hashes(rng)}, {"name": "DATA", "size": 2}]}),
            ),
        },
        "network-traffic" => match rng.below(4) {
            0 => (
                "http-request-ext",
                json!({"request_method": "get", "request_value": "/download.html", "request_version": "http/1.1", "request_header": {"Accept-Encoding": "gzip,deflate", "Host": "www.example.com"}, "message_body_length": 0, "message_body_data_ref": ident(rng, "artifact")}),
            ),
            1 => (
                "icmp-ext",
                json!({"icmp_type_hex": "08", "icmp_code_hex": "00"}),
            ),
            2 => (
                "socket-ext",
                json!({"address_family": "AF_INET", "socket_type": "SOCK_STREAM", "is_listening": true, "options": {"SO_TEST": 1000}, "socket_descriptor": 3}),
            ),
            _ => ("tcp-ext", json!({"src_flags_hex": "00000002"})),
        },
        "process" => match rng.below(2) {
            0 => (
                "windows-process-ext",
                json!({"aslr_enabled": true, "dep_enabled": true, "priority": "HIGH_PRIORITY_CLASS", "owner_sid": "S-1-5-21", "startup_info": {"lpDesktop": "WinSta0"}, "integrity_level": "high"}),
            ),
            _ => (
                "windows-service-ext",
                json!({"service_name": "sirvizio", "display_name": "Sirvizio", "start_type": "SERVICE_AUTO_START", "service_dll_refs": [ident(rng, "file")], "service_type": "SERVICE_WIN32_OWN_PROCESS", "service_status": "SERVICE_RUNNING", "descriptions": ["a", "b"]}),
            ),
        },
        "user-account" => (
            "unix-account-ext",
            json!({"gid": 1001, "groups": ["wheel"], "home_dir": "/home/jdoe", "shell": "/bin/bash"}),
        ),
        _ => return,
    };
    m.insert("extensions".into(), json!({ name: v }));
}

fn sdo(rng: &mut Rng, t: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!(t));
    m.insert("spec_version".into(), json!("2.1"));
    m.insert("id".into(), json!(ident(rng, t)));
    if rng.chance(50) {
        m.insert("created_by_ref".into(), json!(ident(rng, "identity")));
    }
    // created and modified of SDOs and SROs are precise to the millisecond at least.
    let c = rng.range(0, 4_000_000_000);
    let cs = fmt_ts_millis(rng, c);
    m.insert("created".into(), json!(cs));
    let later = c + rng.range(1, 1_000_000);
    let ms = fmt_ts_millis(rng, later);
    m.insert("modified".into(), json!(ms));
    let (props, required) = sdo_props(t);
    add_props(rng, &mut m, props, required);
    for (k, g) in [
        ("revoked", G::B),
        ("labels", G::SL),
        ("confidence", G::I(0, 100)),
        ("lang", G::E(&["en", "fr", "de"])),
        ("external_references", G::ExtRefs),
    ] {
        if rng.chance(25) {
            m.insert(k.into(), gen(rng, g));
        }
    }
    // Rules that tie properties together.
    for (a, b, strict) in [
        ("first_seen", "last_seen", false),
        ("valid_from", "valid_until", true),
        ("start_time", "stop_time", true),
        ("first_observed", "last_observed", false),
    ] {
        order(rng, &mut m, a, b, strict);
    }
    match t {
        "observed-data" => {
            if rng.chance(70) {
                m.insert("object_refs".into(), gen(rng, G::Refs(SCO_OR_SRO)));
            } else {
                m.insert("objects".into(), json!({"0": {"type": "ipv4-addr", "value": "198.51.100.3"}, "1": {"type": "domain-name", "value": "example.com", "resolves_to_refs": ["0"]}}));
            }
        }
        "location" => {
            if rng.chance(50) {
                m.insert("latitude".into(), gen(rng, G::F(-90.0, 90.0)));
                m.insert("longitude".into(), gen(rng, G::F(-180.0, 180.0)));
                if rng.chance(50) {
                    m.insert("precision".into(), gen(rng, G::F(0.0, 10_000.0)));
                }
            } else if !m.contains_key("country") {
                m.insert("region".into(), json!("northern-europe"));
            }
        }
        "malware" => {
            if m.get("is_family") == Some(&json!(true)) && !m.contains_key("name") {
                m.insert("name".into(), json!("Poison Ivy"));
            }
        }
        "malware-analysis" => {
            if !m.contains_key("result") && !m.contains_key("analysis_sco_refs") {
                m.insert("result".into(), json!("malicious"));
            }
        }
        _ => {}
    }
    if t == "indicator" {
        m.insert(
            "pattern".into(),
            json!("[ipv4-addr:value = '203.0.113.7'] OR [domain-name:value = 'evil.example']"),
        );
    }
    custom_props(rng, &mut m);
    markings(rng, &mut m);
    ext_def_extension(rng, &mut m);
    granular(rng, &mut m);
    m
}

fn sco(rng: &mut Rng, t: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!(t));
    if rng.chance(70) {
        m.insert("spec_version".into(), json!("2.1"));
    }
    m.insert("id".into(), json!(ident(rng, t)));
    let (props, required) = sco_props(t);
    add_props(rng, &mut m, props, required);
    if rng.chance(10) {
        m.insert("defanged".into(), json!(true));
    }
    match t {
        "artifact" => {
            if !m.contains_key("payload_bin") {
                m.insert("url".into(), json!("https://example.org/sample.bin"));
                m.insert("hashes".into(), hashes(rng));
            }
        }
        "email-message" => {
            let multi = rng.chance(50);
            m.insert("is_multipart".into(), json!(multi));
            if multi {
                m.insert("body_multipart".into(), json!([{"content_type": "text/plain; charset=utf-8", "content_disposition": "inline", "body": "Cats are funny!"}, {"content_type": "image/png", "body_raw_ref": ident(rng, "artifact")}]));
            } else if rng.chance(50) {
                m.insert("body".into(), json!(string(rng)));
            }
        }
        "file" => {
            if !m.contains_key("hashes") && !m.contains_key("name") {
                m.insert("name".into(), json!("qwerty.dll"));
            }
        }
        "network-traffic" => {
            if !m.contains_key("src_ref") && !m.contains_key("dst_ref") {
                m.insert("dst_ref".into(), json!(ident(rng, "ipv4-addr")));
            }
            if m.get("is_active") != Some(&json!(true)) && m.contains_key("start") && rng.chance(50)
            {
                m.insert("end".into(), json!("2100-01-01T00:00:00Z"));
            }
        }
        "windows-registry-key" => {
            if rng.chance(50) {
                m.insert("values".into(), json!([{"name": "Foo", "data": "qwerty", "data_type": "REG_SZ"}, {"name": "", "data": "42", "data_type": "REG_DWORD"}]));
            }
        }
        "x509-certificate" => {
            order(
                rng,
                &mut m,
                "validity_not_before",
                "validity_not_after",
                false,
            );
            if rng.chance(30) {
                m.insert("x509_v3_extensions".into(), json!({"basic_constraints": "critical,CA:TRUE, pathlen:0", "private_key_usage_period_not_before": "2016-03-12T12:00:00Z", "private_key_usage_period_not_after": "2018-03-12T12:00:00Z"}));
            }
        }
        _ => {}
    }
    sco_extensions(rng, t, &mut m);
    custom_props(rng, &mut m);
    markings(rng, &mut m);
    ext_def_extension(rng, &mut m);
    granular(rng, &mut m);
    m
}

fn marking(rng: &mut Rng) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!("marking-definition"));
    m.insert("spec_version".into(), json!("2.1"));
    m.insert("id".into(), json!(ident(rng, "marking-definition")));
    m.insert("created".into(), json!(timestamp(rng).1));
    match rng.below(4) {
        0 => {
            let (level, id) = *rng.pick(&[
                (
                    "white",
                    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
                ),
                (
                    "green",
                    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
                ),
                (
                    "amber",
                    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
                ),
                (
                    "red",
                    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
                ),
            ]);
            // TLP 1.0 markings are exactly the objects the specification defines.
            m.insert("id".into(), json!(id));
            m.insert("created".into(), json!("2017-01-20T00:00:00.000Z"));
            m.insert("definition_type".into(), json!("tlp"));
            m.insert(
                "name".into(),
                json!(format!("TLP:{}", level.to_uppercase())),
            );
            m.insert("definition".into(), json!({ "tlp": level }));
            return m;
        }
        1 => {
            m.insert("definition_type".into(), json!("statement"));
            m.insert("definition".into(), json!({"statement": string(rng)}));
        }
        2 => {
            let level = *rng.pick(&["clear", "green", "amber", "amber+strict", "red"]);
            m.insert(
                "name".into(),
                json!(format!("TLP:{}", level.to_uppercase())),
            );
            m.insert("extensions".into(), json!({"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {"extension_type": "property-extension", "tlp_2_0": level}}));
        }
        _ => {
            m.insert("definition_type".into(), json!("x-acme-caveat"));
            m.insert(
                "definition".into(),
                json!({"caveat": string(rng), "level": 3}),
            );
        }
    }
    if rng.chance(30) {
        m.insert("created_by_ref".into(), json!(ident(rng, "identity")));
    }
    if rng.chance(20) {
        m.insert("external_references".into(), gen(rng, G::ExtRefs));
    }
    custom_props(rng, &mut m);
    m
}

fn meta(rng: &mut Rng, t: &str) -> Map<String, Value> {
    let mut m = sdo(rng, "x-tmp-type");
    m.retain(|k, _| !matches!(k.as_str(), "name" | "x_acme_size" | "granular_markings"));
    m.insert("type".into(), json!(t));
    m.insert("id".into(), json!(ident(rng, t)));
    match t {
        "language-content" => {
            m.insert("object_ref".into(), json!(ident(rng, "campaign")));
            m.insert("object_modified".into(), json!(timestamp(rng).1));
            m.insert("contents".into(), json!({"de": {"name": "Bank Angriff 1", "description": "Weitere Informationen über Banküberfall"}, "fr": {"name": "Attaque Bank 1", "labels": ["a", "b"]}}));
        }
        _ => {
            m.insert("created_by_ref".into(), json!(ident(rng, "identity")));
            m.insert("name".into(), json!("Kopa recipients"));
            m.insert(
                "schema".into(),
                json!("https://kopa.example/schemas/recipients.json"),
            );
            m.insert("version".into(), json!("1.0.0"));
            m.insert(
                "extension_types".into(),
                json!(["property-extension", "toplevel-property-extension"]),
            );
            if rng.chance(50) {
                m.insert("extension_properties".into(), json!(["acme_toplevel"]));
            }
        }
    }
    m
}

/// All object types this generator produces, in order.
pub fn all_types() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = SDO_TYPES.to_vec();
    v.extend_from_slice(&[
        "relationship",
        "sighting",
        "marking-definition",
        "language-content",
        "extension-definition",
    ]);
    v.extend_from_slice(SCO_TYPES);
    v.push("x-acme-observable");
    v
}

/// One valid object of type `t`.
pub fn object(rng: &mut Rng, t: &str) -> Value {
    let m = match t {
        "marking-definition" => marking(rng),
        "language-content" | "extension-definition" => meta(rng, t),
        "x-acme-observable" => sco(rng, t),
        _ if SCO_TYPES.contains(&t) => sco(rng, t),
        _ => sdo(rng, t),
    };
    // Shuffle key order now and then: properties may come in any order.
    if rng.chance(30) {
        let mut entries: Vec<(String, Value)> = m.into_iter().collect();
        for i in (1..entries.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            entries.swap(i, j);
        }
        return Value::Object(entries.into_iter().collect());
    }
    Value::Object(m)
}

/// `n` valid objects cycling through every type.
pub fn corpus(seed: u64, n: usize) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    let types = all_types();
    (0..n)
        .map(|i| object(&mut rng, types[i % types.len()]))
        .collect()
}
