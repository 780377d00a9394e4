//! Table-driven tests of invalid objects: one named case per rule. Each case takes a valid object, breaks
//! one thing, and checks that the validator reports it at the right JSON path with a message that says so.

use kopa_stix::parse_object;
use serde_json::{json, Value};

const ID: &str = "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
const ID2: &str = "6b616fc1-1505-48e3-8b2c-0d19337bff38";
const TLP2: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

fn id(t: &str) -> String {
    format!("{t}--{ID}")
}

/// A valid object of type `t`.
fn base(t: &str) -> Value {
    let sdo = |extra: Value| {
        let mut v = json!({
            "type": t, "spec_version": "2.1", "id": id(t),
            "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
        });
        merge(&mut v, extra);
        v
    };
    let sco = |extra: Value| {
        let mut v = json!({"type": t, "spec_version": "2.1", "id": id(t)});
        merge(&mut v, extra);
        v
    };
    let v = match t {
        "indicator" => sdo(json!({
            "pattern": "[ipv4-addr:value = '203.0.113.7']", "pattern_type": "stix",
            "valid_from": "2016-01-01T00:00:00Z",
        })),
        "campaign" | "identity" | "threat-actor" | "tool" | "vulnerability" | "attack-pattern" => {
            sdo(json!({"name": "n"}))
        }
        "malware" => sdo(json!({"name": "Poison Ivy", "is_family": true})),
        "malware-analysis" => sdo(json!({"product": "av", "result": "malicious"})),
        "location" => sdo(json!({"region": "northern-europe"})),
        "report" => sdo(
            json!({"name": "r", "published": "2016-04-06T20:03:48Z", "object_refs": [id("indicator")]}),
        ),
        "opinion" => sdo(json!({"opinion": "agree", "object_refs": [id("indicator")]})),
        "observed-data" => sdo(json!({
            "first_observed": "2015-12-21T19:00:00Z", "last_observed": "2015-12-21T19:00:00Z",
            "number_observed": 50, "object_refs": [id("ipv4-addr")],
        })),
        "relationship" => sdo(json!({
            "relationship_type": "indicates", "source_ref": id("indicator"), "target_ref": id("malware"),
        })),
        "sighting" => sdo(json!({"sighting_of_ref": id("indicator")})),
        "marking-definition" => json!({
            "type": t, "spec_version": "2.1", "id": id(t), "created": "2017-01-20T00:00:00.000Z",
            "definition_type": "statement", "definition": {"statement": "Copyright 2019, Example Corp"},
        }),
        "tlp2-marking" => json!({
            "type": "marking-definition", "spec_version": "2.1",
            "id": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            "created": "2022-10-01T00:00:00.000Z", "name": "TLP:CLEAR",
            "extensions": {TLP2: {"extension_type": "property-extension", "tlp_2_0": "clear"}},
        }),
        "language-content" => {
            sdo(json!({"object_ref": id("campaign"), "contents": {"de": {"name": "Bank Angriff"}}}))
        }
        "extension-definition" => sdo(json!({
            "created_by_ref": id("identity"), "name": "n", "schema": "s", "version": "1",
            "extension_types": ["property-extension"],
        })),
        "artifact" => sco(json!({"payload_bin": "aGVsbG8="})),
        "file" => sco(json!({"name": "a.exe"})),
        "network-traffic" => sco(json!({"src_ref": id("ipv4-addr"), "protocols": ["tcp"]})),
        "email-message" => sco(json!({"is_multipart": false})),
        "domain-name" | "ipv4-addr" | "url" => sco(json!({"value": "x"})),
        "autonomous-system" => sco(json!({"number": 15139})),
        "process" => sco(json!({"pid": 1})),
        "windows-registry-key" => sco(json!({"key": "HKEY_LOCAL_MACHINE\\System"})),
        "x509-certificate" => sco(json!({"serial_number": "36:f7"})),
        other => panic!("no base for {other}"),
    };
    assert!(
        parse_object(&v).is_ok(),
        "base {t} must be valid: {:?}",
        parse_object(&v).err()
    );
    v
}

fn merge(v: &mut Value, extra: Value) {
    if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
        m.extend(e);
    }
}

/// `base(t)` with `set` merged in and `remove` taken out.
fn with(t: &str, set: Value, remove: &[&str]) -> Value {
    let mut v = base(t);
    merge(&mut v, set);
    if let Some(m) = v.as_object_mut() {
        for r in remove {
            m.shift_remove(*r);
        }
    }
    v
}

struct Case {
    name: &'static str,
    input: Value,
    path: &'static str,
    word: &'static str,
}

fn case(name: &'static str, input: Value, path: &'static str, word: &'static str) -> Case {
    Case {
        name,
        input,
        path,
        word,
    }
}

fn cases() -> Vec<Case> {
    let ind = "indicator";
    vec![
        // ---- object form, id, type, spec_version ----
        case("not_an_object", json!(["indicator"]), "", "JSON object"),
        case(
            "type_missing",
            with(ind, json!({}), &["type"]),
            "type",
            "missing",
        ),
        case(
            "type_not_string",
            with(ind, json!({"type": 7}), &[]),
            "type",
            "string",
        ),
        case(
            "type_bad_syntax",
            json!({"type": "X_Acme", "id": format!("X_Acme--{ID}"), "spec_version": "2.1"}),
            "type",
            "type name",
        ),
        case(
            "type_double_hyphen",
            json!({"type": "x--acme", "id": format!("x--acme--{ID}")}),
            "type",
            "type name",
        ),
        case(
            "type_bundle",
            json!({"type": "bundle", "id": id("bundle"), "objects": []}),
            "type",
            "bundle",
        ),
        case("id_missing", with(ind, json!({}), &["id"]), "id", "missing"),
        case(
            "id_not_identifier",
            with(ind, json!({"id": "indicator-8e2e2d2b"}), &[]),
            "id",
            "type--UUID",
        ),
        case(
            "id_bad_uuid_version",
            with(
                ind,
                json!({"id": "indicator--8e2e2d2b-17d4-0cbf-938f-98ee46b3cd3f"}),
                &[],
            ),
            "id",
            "UUID",
        ),
        case(
            "id_bad_uuid_variant",
            with(
                ind,
                json!({"id": "indicator--8e2e2d2b-17d4-4cbf-738f-98ee46b3cd3f"}),
                &[],
            ),
            "id",
            "UUID",
        ),
        case(
            "id_type_mismatch",
            with(ind, json!({"id": id("malware")}), &[]),
            "id",
            "does not match",
        ),
        case(
            "spec_version_2_0",
            with(ind, json!({"spec_version": "2.0"}), &[]),
            "spec_version",
            "2.0 is not accepted",
        ),
        case(
            "spec_version_other",
            with(ind, json!({"spec_version": "2.2"}), &[]),
            "spec_version",
            "must be \"2.1\"",
        ),
        case(
            "spec_version_missing_on_sdo",
            with(ind, json!({}), &["spec_version"]),
            "spec_version",
            "2.0",
        ),
        case(
            "spec_version_not_string",
            with(ind, json!({"spec_version": 2.1}), &[]),
            "spec_version",
            "string",
        ),
        // ---- timestamps ----
        case(
            "created_missing",
            with(ind, json!({}), &["created"]),
            "created",
            "missing",
        ),
        case(
            "modified_missing",
            with(ind, json!({}), &["modified"]),
            "modified",
            "missing",
        ),
        case(
            "timestamp_space",
            with(ind, json!({"created": "2016-04-06 20:03:48Z"}), &[]),
            "created",
            "timestamp",
        ),
        case(
            "timestamp_offset",
            with(ind, json!({"modified": "2016-04-06T20:03:48+01:00"}), &[]),
            "modified",
            "timestamp",
        ),
        case(
            "timestamp_bad_date",
            with(ind, json!({"valid_from": "2016-02-30T00:00:00Z"}), &[]),
            "valid_from",
            "timestamp",
        ),
        case(
            "timestamp_not_string",
            with(ind, json!({"created": 1459973028}), &[]),
            "created",
            "timestamp string",
        ),
        case(
            "modified_before_created",
            with(ind, json!({"modified": "2016-04-06T20:03:47.999Z"}), &[]),
            "modified",
            "created",
        ),
        case(
            "valid_until_equal_valid_from",
            with(ind, json!({"valid_until": "2016-01-01T00:00:00.000Z"}), &[]),
            "valid_until",
            "later than valid_from",
        ),
        case(
            "last_seen_before_first_seen",
            with(
                "campaign",
                json!({"first_seen": "2016-01-02T00:00:00Z", "last_seen": "2016-01-01T00:00:00Z"}),
                &[],
            ),
            "last_seen",
            "first_seen",
        ),
        case(
            "sighting_last_seen_before_first_seen",
            with(
                "sighting",
                json!({"first_seen": "2016-01-02T00:00:00Z", "last_seen": "2016-01-01T00:00:00Z"}),
                &[],
            ),
            "last_seen",
            "first_seen",
        ),
        case(
            "last_observed_before_first_observed",
            with(
                "observed-data",
                json!({"last_observed": "2015-12-21T18:59:59Z"}),
                &[],
            ),
            "last_observed",
            "first_observed",
        ),
        case(
            "stop_time_equal_start_time",
            with(
                "relationship",
                json!({"start_time": "2016-01-01T00:00:00Z", "stop_time": "2016-01-01T00:00:00Z"}),
                &[],
            ),
            "stop_time",
            "later than start_time",
        ),
        case(
            "network_traffic_end_before_start",
            with(
                "network-traffic",
                json!({"start": "2016-01-02T00:00:00Z", "end": "2016-01-01T00:00:00Z"}),
                &[],
            ),
            "end",
            "start",
        ),
        case(
            "x509_bad_timestamp",
            with(
                "x509-certificate",
                json!({"validity_not_before": "yesterday"}),
                &[],
            ),
            "validity_not_before",
            "timestamp",
        ),
        // ---- required properties ----
        case(
            "indicator_missing_pattern",
            with(ind, json!({}), &["pattern"]),
            "pattern",
            "missing",
        ),
        case(
            "indicator_missing_pattern_type",
            with(ind, json!({}), &["pattern_type"]),
            "pattern_type",
            "missing",
        ),
        case(
            "indicator_missing_valid_from",
            with(ind, json!({}), &["valid_from"]),
            "valid_from",
            "missing",
        ),
        case(
            "relationship_missing_source_ref",
            with("relationship", json!({}), &["source_ref"]),
            "source_ref",
            "missing",
        ),
        case(
            "relationship_missing_type",
            with("relationship", json!({}), &["relationship_type"]),
            "relationship_type",
            "missing",
        ),
        case(
            "sighting_missing_sighting_of_ref",
            with("sighting", json!({}), &["sighting_of_ref"]),
            "sighting_of_ref",
            "missing",
        ),
        case(
            "observed_data_missing_number",
            with("observed-data", json!({}), &["number_observed"]),
            "number_observed",
            "missing",
        ),
        case(
            "observed_data_both_objects_and_refs",
            with(
                "observed-data",
                json!({"objects": {"0": {"type": "ipv4-addr", "value": "1.2.3.4"}}}),
                &[],
            ),
            "objects",
            "not both",
        ),
        case(
            "observed_data_neither_objects_nor_refs",
            with("observed-data", json!({}), &["object_refs"]),
            "object_refs",
            "exactly one",
        ),
        case(
            "observed_data_object_without_type",
            with(
                "observed-data",
                json!({"objects": {"0": {"value": "1.2.3.4"}}}),
                &["object_refs"],
            ),
            "objects.0.type",
            "missing",
        ),
        case(
            "report_missing_published",
            with("report", json!({}), &["published"]),
            "published",
            "missing",
        ),
        case(
            "identity_missing_name",
            with("identity", json!({}), &["name"]),
            "name",
            "missing",
        ),
        case(
            "malware_missing_is_family",
            with("malware", json!({}), &["is_family"]),
            "is_family",
            "missing",
        ),
        case(
            "malware_family_without_name",
            with("malware", json!({}), &["name"]),
            "name",
            "family",
        ),
        case(
            "malware_analysis_without_result",
            with("malware-analysis", json!({}), &["result"]),
            "result",
            "analysis_sco_refs",
        ),
        case(
            "sco_missing_id",
            with("ipv4-addr", json!({}), &["id"]),
            "id",
            "missing",
        ),
        case(
            "domain_name_missing_value",
            with("domain-name", json!({}), &["value"]),
            "value",
            "missing",
        ),
        case(
            "email_message_missing_is_multipart",
            with("email-message", json!({}), &["is_multipart"]),
            "is_multipart",
            "missing",
        ),
        case(
            "language_content_missing_contents",
            with("language-content", json!({}), &["contents"]),
            "contents",
            "missing",
        ),
        case(
            "language_content_empty_contents",
            with("language-content", json!({"contents": {}}), &[]),
            "contents",
            "at least one",
        ),
        case(
            "extension_definition_missing_created_by_ref",
            with("extension-definition", json!({}), &["created_by_ref"]),
            "created_by_ref",
            "missing",
        ),
        case(
            "opinion_missing_object_refs",
            with("opinion", json!({}), &["object_refs"]),
            "object_refs",
            "missing",
        ),
        // ---- value kinds and ranges ----
        case(
            "number_observed_zero",
            with("observed-data", json!({"number_observed": 0}), &[]),
            "number_observed",
            "range",
        ),
        case(
            "number_observed_too_big",
            with(
                "observed-data",
                json!({"number_observed": 1_000_000_000}),
                &[],
            ),
            "number_observed",
            "range",
        ),
        case(
            "confidence_over_100",
            with(ind, json!({"confidence": 101}), &[]),
            "confidence",
            "range",
        ),
        case(
            "confidence_not_integer",
            with(ind, json!({"confidence": "high"}), &[]),
            "confidence",
            "integer",
        ),
        case(
            "confidence_fraction",
            with(ind, json!({"confidence": 50.5}), &[]),
            "confidence",
            "integer",
        ),
        case(
            "sighting_count_too_big",
            with("sighting", json!({"count": 1_000_000_000}), &[]),
            "count",
            "range",
        ),
        case(
            "port_out_of_range",
            with("network-traffic", json!({"dst_port": 70000}), &[]),
            "dst_port",
            "range",
        ),
        case(
            "as_number_not_integer",
            with("autonomous-system", json!({"number": "AS15139"}), &[]),
            "number",
            "integer",
        ),
        case(
            "encryption_algorithm_unknown",
            with("artifact", json!({"encryption_algorithm": "rot13"}), &[]),
            "encryption_algorithm",
            "one of",
        ),
        case(
            "pid_not_integer",
            with("process", json!({"pid": "1"}), &[]),
            "pid",
            "integer",
        ),
        case(
            "name_not_string",
            with("identity", json!({"name": 42}), &[]),
            "name",
            "string",
        ),
        case(
            "revoked_not_boolean",
            with(ind, json!({"revoked": "false"}), &[]),
            "revoked",
            "boolean",
        ),
        case(
            "labels_empty_list",
            with(ind, json!({"labels": []}), &[]),
            "labels",
            "empty",
        ),
        case(
            "labels_not_list",
            with(ind, json!({"labels": "malicious"}), &[]),
            "labels",
            "list",
        ),
        case(
            "labels_item_not_string",
            with(ind, json!({"labels": ["a", 2]}), &[]),
            "labels[1]",
            "string",
        ),
        case(
            "property_null",
            with(ind, json!({"description": null}), &[]),
            "description",
            "null",
        ),
        case(
            "custom_property_null",
            with(ind, json!({"x_acme_score": null}), &[]),
            "x_acme_score",
            "null",
        ),
        case(
            "opinion_bad_value",
            with("opinion", json!({"opinion": "maybe"}), &[]),
            "opinion",
            "one of",
        ),
        case(
            "latitude_out_of_range",
            with("location", json!({"latitude": 91.0, "longitude": 0.0}), &[]),
            "latitude",
            "range",
        ),
        case(
            "payload_bin_not_base64",
            with("artifact", json!({"payload_bin": "not base64!"}), &[]),
            "payload_bin",
            "base64",
        ),
        case(
            "magic_number_hex_odd",
            with("file", json!({"magic_number_hex": "FFD"}), &[]),
            "magic_number_hex",
            "hexadecimal",
        ),
        case(
            "registry_value_not_object",
            with("windows-registry-key", json!({"values": ["REG_SZ"]}), &[]),
            "values[0]",
            "object",
        ),
        // ---- references ----
        case(
            "created_by_ref_wrong_type",
            with(ind, json!({"created_by_ref": id("indicator")}), &[]),
            "created_by_ref",
            "identity",
        ),
        case(
            "created_by_ref_not_identifier",
            with(ind, json!({"created_by_ref": "ACME Corp"}), &[]),
            "created_by_ref",
            "identifier",
        ),
        case(
            "object_marking_refs_wrong_type",
            with(ind, json!({"object_marking_refs": [id("identity")]}), &[]),
            "object_marking_refs[0]",
            "marking-definition",
        ),
        case(
            "object_marking_refs_not_list",
            with(
                ind,
                json!({"object_marking_refs": id("marking-definition")}),
                &[],
            ),
            "object_marking_refs",
            "list",
        ),
        case(
            "sighting_of_ref_to_sco",
            with("sighting", json!({"sighting_of_ref": id("ipv4-addr")}), &[]),
            "sighting_of_ref",
            "Domain Object",
        ),
        case(
            "observed_data_refs_wrong_type",
            with(
                "sighting",
                json!({"observed_data_refs": [id("indicator")]}),
                &[],
            ),
            "observed_data_refs[0]",
            "observed-data",
        ),
        case(
            "where_sighted_refs_wrong_type",
            with(
                "sighting",
                json!({"where_sighted_refs": [id("location"), id("malware")]}),
                &[],
            ),
            "where_sighted_refs[1]",
            "identity",
        ),
        case(
            "relationship_to_marking",
            with(
                "relationship",
                json!({"target_ref": id("marking-definition")}),
                &[],
            ),
            "target_ref",
            "Domain Object",
        ),
        case(
            "observed_data_object_refs_to_sdo",
            with(
                "observed-data",
                json!({"object_refs": [id("ipv4-addr"), id("indicator")]}),
                &[],
            ),
            "object_refs[1]",
            "Cyber-observable",
        ),
        case(
            "network_traffic_src_ref_wrong_type",
            with("network-traffic", json!({"src_ref": id("url")}), &[]),
            "src_ref",
            "ipv4-addr",
        ),
        case(
            "ipv4_resolves_to_domain",
            with(
                "ipv4-addr",
                json!({"resolves_to_refs": [id("domain-name")]}),
                &[],
            ),
            "resolves_to_refs[0]",
            "mac-addr",
        ),
        case(
            "email_to_refs_wrong_type",
            with("email-message", json!({"to_refs": [id("ipv4-addr")]}), &[]),
            "to_refs[0]",
            "email-addr",
        ),
        case(
            "custom_ref_not_identifier",
            with(ind, json!({"x_acme_target_ref": "somewhere"}), &[]),
            "x_acme_target_ref",
            "identifier",
        ),
        case(
            "custom_refs_not_identifiers",
            with(ind, json!({"x_acme_refs": [id("malware"), 3]}), &[]),
            "x_acme_refs[1]",
            "identifier",
        ),
        case(
            "custom_hex_not_hex",
            with(ind, json!({"x_acme_hex": "zz"}), &[]),
            "x_acme_hex",
            "hexadecimal",
        ),
        // ---- custom property names ----
        case(
            "custom_property_uppercase",
            with(ind, json!({"x_Acme": 1}), &[]),
            "x_Acme",
            "property name",
        ),
        case(
            "custom_property_too_short",
            with(ind, json!({"ab": 1}), &[]),
            "ab",
            "3 to 250",
        ),
        case(
            "custom_property_hyphen",
            with(ind, json!({"x-acme-score": 1}), &[]),
            "x-acme-score",
            "property name",
        ),
        case(
            "custom_property_empty_list",
            with(ind, json!({"x_acme_tags": []}), &[]),
            "x_acme_tags",
            "empty",
        ),
        // ---- hashes ----
        case(
            "md5_wrong_length",
            with(
                "file",
                json!({"hashes": {"MD5": "d41d8cd98f00b204e9800998ecf8427"}}),
                &[],
            ),
            "hashes.MD5",
            "32 hexadecimal",
        ),
        case(
            "sha1_wrong_length",
            with(
                "file",
                json!({"hashes": {"SHA-1": "da39a3ee5e6b4b0d3255bfef95601890afd8070"}}),
                &[],
            ),
            "hashes.SHA-1",
            "40 hexadecimal",
        ),
        case(
            "sha256_not_hex",
            with("file", json!({"hashes": {"SHA-256": "z".repeat(64)}}), &[]),
            "hashes.SHA-256",
            "64 hexadecimal",
        ),
        case(
            "sha512_wrong_length",
            with(
                "artifact",
                json!({"hashes": {"SHA-512": "ab".repeat(32)}}),
                &[],
            ),
            "hashes.SHA-512",
            "128 hexadecimal",
        ),
        case(
            "hash_key_bad_syntax",
            with("file", json!({"hashes": {"my hash": "abc"}}), &[]),
            "hashes.my hash",
            "hash algorithm",
        ),
        case(
            "hash_value_not_string",
            with("file", json!({"hashes": {"SSDEEP": 12}}), &[]),
            "hashes.SSDEEP",
            "string",
        ),
        case(
            "hashes_not_object",
            with("file", json!({"hashes": ["MD5"]}), &[]),
            "hashes",
            "object",
        ),
        // ---- external references, kill chains ----
        case(
            "external_reference_missing_source_name",
            with(
                ind,
                json!({"external_references": [{"url": "https://example.org"}]}),
                &[],
            ),
            "external_references[0].source_name",
            "missing",
        ),
        case(
            "external_reference_only_source_name",
            with(
                ind,
                json!({"external_references": [{"source_name": "acme"}]}),
                &[],
            ),
            "external_references[0]",
            "at least one",
        ),
        case(
            "external_reference_bad_cve",
            with(
                "vulnerability",
                json!({"external_references": [{"source_name": "cve", "external_id": "CVE-16-1"}]}),
                &[],
            ),
            "external_references[0].external_id",
            "CVE",
        ),
        case(
            "external_reference_bad_capec",
            with(
                "attack-pattern",
                json!({"external_references": [{"source_name": "capec", "external_id": "163"}]}),
                &[],
            ),
            "external_references[0].external_id",
            "CAPEC",
        ),
        case(
            "external_reference_bad_hash",
            with(
                ind,
                json!({"external_references": [{"source_name": "a", "url": "u", "hashes": {"SHA-256": "00"}}]}),
                &[],
            ),
            "external_references[0].hashes.SHA-256",
            "64",
        ),
        case(
            "kill_chain_phase_missing_phase_name",
            with(
                ind,
                json!({"kill_chain_phases": [{"kill_chain_name": "lockheed"}]}),
                &[],
            ),
            "kill_chain_phases[0].phase_name",
            "missing",
        ),
        // ---- granular markings ----
        case(
            "granular_selector_missing_property",
            with(
                ind,
                json!({"granular_markings": [{"selectors": ["description"], "marking_ref": id("marking-definition")}]}),
                &[],
            ),
            "granular_markings[0].selectors[0]",
            "does not select",
        ),
        case(
            "granular_selector_index_past_end",
            with(
                ind,
                json!({"labels": ["a"], "granular_markings": [{"selectors": ["labels.[3]"], "lang": "en"}]}),
                &[],
            ),
            "granular_markings[0].selectors[0]",
            "past the end",
        ),
        case(
            "granular_marking_ref_and_lang",
            with(
                ind,
                json!({"granular_markings": [{"selectors": ["pattern"], "marking_ref": id("marking-definition"), "lang": "en"}]}),
                &[],
            ),
            "granular_markings[0].lang",
            "not both",
        ),
        case(
            "granular_marking_no_selectors",
            with(ind, json!({"granular_markings": [{"lang": "en"}]}), &[]),
            "granular_markings[0].selectors",
            "missing",
        ),
        case(
            "granular_marking_ref_wrong_type",
            with(
                ind,
                json!({"granular_markings": [{"selectors": ["pattern"], "marking_ref": id("identity")}]}),
                &[],
            ),
            "granular_markings[0].marking_ref",
            "marking-definition",
        ),
        // ---- extensions ----
        case(
            "extension_without_extension_type",
            with(
                ind,
                json!({"extensions": {format!("extension-definition--{ID2}"): {"rank": 1}}}),
                &[],
            ),
            "extensions.extension-definition--6b616fc1-1505-48e3-8b2c-0d19337bff38.extension_type",
            "missing",
        ),
        case(
            "extension_type_unknown",
            with(
                ind,
                json!({"extensions": {format!("extension-definition--{ID2}"): {"extension_type": "new-thing"}}}),
                &[],
            ),
            "extensions.extension-definition--6b616fc1-1505-48e3-8b2c-0d19337bff38.extension_type",
            "one of",
        ),
        case(
            "extension_definition_key_bad_uuid",
            with(
                ind,
                json!({"extensions": {"extension-definition--1234": {"extension_type": "property-extension"}}}),
                &[],
            ),
            "extensions.extension-definition--1234",
            "identifier",
        ),
        case(
            "extension_not_object",
            with(
                ind,
                json!({"extensions": {format!("extension-definition--{ID2}"): "on"}}),
                &[],
            ),
            "extensions.extension-definition--6b616fc1-1505-48e3-8b2c-0d19337bff38",
            "object",
        ),
        case(
            "predefined_extension_on_wrong_type",
            with(
                "process",
                json!({"extensions": {"archive-ext": {"contains_refs": [id("file")]}}}),
                &[],
            ),
            "extensions.archive-ext",
            "does not apply",
        ),
        case(
            "archive_ext_missing_contains_refs",
            with(
                "file",
                json!({"extensions": {"archive-ext": {"comment": "zip"}}}),
                &[],
            ),
            "extensions.archive-ext.contains_refs",
            "missing",
        ),
        case(
            "pebinary_section_missing_name",
            with(
                "file",
                json!({"extensions": {"windows-pebinary-ext": {"pe_type": "exe", "sections": [{"size": 2}]}}}),
                &[],
            ),
            "extensions.windows-pebinary-ext.sections[0].name",
            "missing",
        ),
        case(
            "icmp_ext_bad_hex",
            with(
                "network-traffic",
                json!({"extensions": {"icmp-ext": {"icmp_type_hex": "8", "icmp_code_hex": "00"}}}),
                &[],
            ),
            "extensions.icmp-ext.icmp_type_hex",
            "hexadecimal",
        ),
        case(
            "extensions_empty",
            with(ind, json!({"extensions": {}}), &[]),
            "extensions",
            "empty",
        ),
        // ---- marking definitions ----
        case(
            "tlp2_bad_level",
            with(
                "tlp2-marking",
                json!({"extensions": {TLP2: {"extension_type": "property-extension", "tlp_2_0": "white"}}}),
                &[],
            ),
            "extensions.extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d.tlp_2_0",
            "one of",
        ),
        case(
            "tlp1_bad_level",
            with(
                "marking-definition",
                json!({"definition_type": "tlp", "definition": {"tlp": "yellow"}}),
                &[],
            ),
            "definition.tlp",
            "one of",
        ),
        case(
            "statement_missing",
            with(
                "marking-definition",
                json!({"definition": {"text": "c"}}),
                &[],
            ),
            "definition.statement",
            "missing",
        ),
        case(
            "definition_type_without_definition",
            with("marking-definition", json!({}), &["definition"]),
            "definition",
            "missing",
        ),
        case(
            "marking_marks_itself",
            with(
                "marking-definition",
                json!({"object_marking_refs": [id("marking-definition")]}),
                &[],
            ),
            "object_marking_refs[0]",
            "itself",
        ),
        case(
            "marking_missing_created",
            with("marking-definition", json!({}), &["created"]),
            "created",
            "missing",
        ),
        // ---- rules between properties ----
        case(
            "location_latitude_without_longitude",
            with("location", json!({"latitude": 48.8}), &[]),
            "longitude",
            "together",
        ),
        case(
            "location_precision_without_coordinates",
            with("location", json!({"precision": 10.0}), &[]),
            "precision",
            "latitude",
        ),
        case(
            "location_without_region_country_or_coordinates",
            with("location", json!({"city": "Paris"}), &["region"]),
            "region",
            "at least one",
        ),
        case(
            "artifact_payload_and_url",
            with(
                "artifact",
                json!({"url": "https://example.org/a", "hashes": {"MD5": "d41d8cd98f00b204e9800998ecf8427e"}}),
                &[],
            ),
            "url",
            "not both",
        ),
        case(
            "artifact_url_without_hashes",
            with(
                "artifact",
                json!({"url": "https://example.org/a"}),
                &["payload_bin"],
            ),
            "hashes",
            "missing",
        ),
        case(
            "network_traffic_without_endpoints",
            with("network-traffic", json!({}), &["src_ref"]),
            "src_ref",
            "at least one",
        ),
        case(
            "network_traffic_active_with_end",
            with(
                "network-traffic",
                json!({"is_active": true, "end": "2016-01-01T00:00:00Z"}),
                &[],
            ),
            "end",
            "is_active",
        ),
        case(
            "email_multipart_with_body",
            with(
                "email-message",
                json!({"is_multipart": true, "body": "hi"}),
                &[],
            ),
            "body",
            "body_multipart",
        ),
        case(
            "email_not_multipart_with_parts",
            with(
                "email-message",
                json!({"body_multipart": [{"body": "hi"}]}),
                &[],
            ),
            "body_multipart",
            "is_multipart",
        ),
        case(
            "extension_types_bad_value",
            with(
                "extension-definition",
                json!({"extension_types": ["new-sdo", "plugin"]}),
                &[],
            ),
            "extension_types[1]",
            "one of",
        ),
        case(
            "observed_data_object_ref_unresolved",
            with(
                "observed-data",
                json!({"objects": {"0": {"type": "domain-name", "value": "example.com", "resolves_to_refs": ["1"]}}}),
                &["object_refs"],
            ),
            "objects.0.resolves_to_refs[0]",
            "does not name",
        ),
    ]
}

#[test]
fn every_invalid_case_is_reported_at_its_path() {
    let mut problems = Vec::new();
    let all = cases();
    let mut names = std::collections::HashSet::new();
    for c in &all {
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
        match parse_object(&c.input) {
            Ok(_) => problems.push(format!("{}: accepted", c.name)),
            Err(errors) => {
                let hit = errors
                    .iter()
                    .any(|e| e.path == c.path && e.message.contains(c.word));
                if !hit {
                    problems.push(format!(
                        "{}: wanted {:?} containing {:?}, got {:#?}",
                        c.name, c.path, c.word, errors
                    ));
                }
                // The object id is named wherever the object has a readable one.
                if let Some(id) = c.input.get("id").and_then(Value::as_str) {
                    assert!(
                        errors.iter().all(|e| e.object_id == id),
                        "{}: errors must name {id}",
                        c.name
                    );
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases wrong:\n{}",
        problems.len(),
        all.len(),
        problems.join("\n")
    );
}

#[test]
fn all_errors_of_an_object_are_collected() {
    let v = json!({
        "type": "indicator", "spec_version": "2.0", "id": id("indicator"),
        "created": "2016-04-06T20:03:48Z", "modified": "yesterday",
        "pattern_type": "stix", "valid_from": "2016-01-01T00:00:00Z",
        "confidence": 500, "labels": [],
        "external_references": [{"source_name": "a", "url": "u"}, {"url": "u"}],
    });
    let errors = parse_object(&v).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "spec_version",
        "modified",
        "pattern",
        "confidence",
        "labels",
        "external_references[1].source_name",
    ] {
        assert!(paths.contains(&p), "{p} not reported in {paths:?}");
    }
    let shown = errors[0].to_string();
    assert_eq!(
        shown,
        format!(
            "{}: spec_version: STIX 2.0 is not accepted: this node takes STIX 2.1 objects only (spec_version \"2.1\")",
            id("indicator")
        )
    );
}

#[test]
fn object_without_id_is_named_unknown() {
    let errors = parse_object(&json!({"type": "indicator"})).unwrap_err();
    assert!(errors.iter().all(|e| e.object_id == "<unknown>"));
    let not_object = parse_object(&json!("indicator")).unwrap_err();
    assert_eq!(
        not_object[0].to_string(),
        "<unknown>: a STIX object must be a JSON object, not a string"
    );
    assert!(errors
        .iter()
        .any(|e| e.path == "id" && e.message.contains("missing")));
}
