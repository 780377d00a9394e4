//! Objects as the field writes them — examples from the STIX 2.1 specification, the OASIS TLP 2.0
//! marking definitions, objects as the `stix2` library and common producers (MITRE ATT&CK, OpenCTI)
//! emit them — must all be accepted unchanged. A false rejection is the worst outcome for users.

#![recursion_limit = "512"]

use kopa_stix::{parse_object, ObjectCategory};
use serde_json::{json, Value};

fn examples() -> Vec<Value> {
    vec![
        // TLP 1.0 marking definitions (STIX 2.1 section 7.2.1.4).
        json!({"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp", "name": "TLP:WHITE", "definition": {"tlp": "white"}}),
        json!({"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp", "name": "TLP:RED", "definition": {"tlp": "red"}}),
        // Statement marking.
        json!({"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", "created": "2016-08-01T00:00:00.000Z", "definition_type": "statement", "definition": {"statement": "Copyright 2019, Example Corp"}}),
        // TLP 2.0 marking definitions as OASIS publishes them.
        json!({"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "created": "2022-10-01T00:00:00.000Z", "name": "TLP:AMBER+STRICT", "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {"extension_type": "property-extension", "tlp_2_0": "amber+strict"}}}),
        json!({"type": "marking-definition", "spec_version": "2.1", "id": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "created": "2022-10-01T00:00:00.000Z", "name": "TLP:CLEAR", "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {"extension_type": "property-extension", "tlp_2_0": "clear"}}}),
        // The TLP 2.0 extension definition.
        json!({"id": "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d", "type": "extension-definition", "spec_version": "2.1", "name": "Traffic Light Protocol (TLP) Definition Extension", "description": "This extension defines the TLP v2.0 marking definitions.", "created": "2022-09-26T00:00:00.000Z", "modified": "2022-09-26T00:00:00.000Z", "created_by_ref": "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01", "schema": "https://github.com/oasis-open/cti-stix-common-objects/tree/main/extension-definition-specifications/traffic-light-protocol-v2.0", "version": "1.0.0", "extension_types": ["property-extension"]}),
        // Spec examples.
        json!({"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z", "indicator_types": ["malicious-activity"], "name": "Poison Ivy Malware", "description": "This file is part of Poison Ivy", "pattern": "[ file:hashes.'SHA-256' = '4bac27393bdd9777ce02453256c5577cd02275510b2227f473d03f533924f877' ]", "pattern_type": "stix", "valid_from": "2016-01-01T00:00:00Z"}),
        json!({"type": "sighting", "spec_version": "2.1", "id": "sighting--ee20065d-2555-424f-ad9e-0f8428623c75", "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "created": "2016-04-06T20:08:31.000Z", "modified": "2016-04-06T20:08:31.000Z", "first_seen": "2015-12-21T19:00:00Z", "last_seen": "2015-12-21T19:00:00Z", "count": 50, "sighting_of_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "observed_data_refs": ["observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf"], "where_sighted_refs": ["identity--b67d30ff-02ac-498a-92f9-32f845f448ff"]}),
        json!({"type": "observed-data", "spec_version": "2.1", "id": "observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf", "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "created": "2016-04-06T19:58:16.000Z", "modified": "2016-04-06T19:58:16.000Z", "first_observed": "2015-12-21T19:00:00Z", "last_observed": "2015-12-21T19:00:00Z", "number_observed": 50, "object_refs": ["ipv4-addr--efcd5e80-570d-4131-b213-62cb18eaa6a8", "domain-name--ecb120bf-2694-4902-a737-62b74539a41b"]}),
        json!({"type": "observed-data", "spec_version": "2.1", "id": "observed-data--b67d30ff-02ac-498a-92f9-32f845f448cf", "created": "2016-04-06T19:58:16.000Z", "modified": "2016-04-06T19:58:16.000Z", "first_observed": "2015-12-21T19:00:00Z", "last_observed": "2015-12-21T19:00:00Z", "number_observed": 1, "objects": {"0": {"type": "file", "hashes": {"SHA-256": "bf07a7fbb825fc0aae7bf4a1177b2b31fcf8a3feeaf7092761e18c859ee52a9c"}, "name": "sirvizio.exe"}}}),
        json!({"type": "malware-analysis", "spec_version": "2.1", "id": "malware-analysis--d25167b7-fed0-4068-9ccd-a73dd2c5b07c", "created": "2020-01-16T18:52:24.277Z", "modified": "2020-01-16T18:52:24.277Z", "product": "microsoft", "analysis_engine_version": "5.1.0", "analysis_definition_version": "053514-0", "result": "malicious"}),
        json!({"type": "language-content", "id": "language-content--b86bd89f-98bb-4fa9-8cb2-9ad421da981d", "spec_version": "2.1", "created": "2017-02-08T21:31:22.007Z", "modified": "2017-02-08T21:31:22.007Z", "object_ref": "campaign--12a111f0-b824-4baf-a224-83b80237a094", "object_modified": "2017-02-08T21:31:22.007Z", "contents": {"de": {"name": "Bank Angriff 1", "description": "Weitere Informationen über Banküberfall"}, "fr": {"name": "Attaque Bank 1", "description": "Plus d'informations sur la crise bancaire"}}}),
        json!({"type": "location", "spec_version": "2.1", "id": "location--a6e9345f-5a15-4c29-8bb3-7dcc5d168d64", "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "created": "2016-04-06T20:03:00.000Z", "modified": "2016-04-06T20:03:00.000Z", "latitude": 48.8566, "longitude": 2.3522}),
        json!({"type": "location", "spec_version": "2.1", "id": "location--a6e9345f-5a15-4c29-8bb3-7dcc5d168d64", "created": "2016-04-06T20:03:00.000Z", "modified": "2016-04-06T20:03:00.000Z", "region": "northern-america", "country": "ca", "administrative_area": "CA-QC"}),
        json!({"type": "relationship", "spec_version": "2.1", "id": "relationship--57b56a43-b8b0-4cba-9deb-34e3e1faed9e", "created": "2016-04-06T20:06:37.000Z", "modified": "2016-04-06T20:06:37.000Z", "relationship_type": "indicates", "source_ref": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "target_ref": "malware--31b940d4-6f7f-459a-80ea-9c1f17b5891b"}),
        json!({"type": "malware", "spec_version": "2.1", "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", "created": "2016-05-12T08:17:27.000Z", "modified": "2016-05-12T08:17:27.000Z", "name": "Cryptolocker", "description": "...", "malware_types": ["ransomware"], "is_family": false}),
        json!({"type": "malware", "spec_version": "2.1", "id": "malware--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", "created": "2016-05-12T08:17:27.000Z", "modified": "2016-05-12T08:17:27.000Z", "is_family": false, "sample_refs": ["file--6ce09d9c-0ad3-5ebf-900c-e3cb288955b5"]}),
        json!({"type": "grouping", "spec_version": "2.1", "id": "grouping--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3", "created_by_ref": "identity--a463ffb3-1bd9-4d94-b02d-74e4f1658283", "created": "2015-12-21T19:59:11.000Z", "modified": "2015-12-21T19:59:11.000Z", "name": "The Black Vine Cyberespionage Group", "description": "A simple collection of Black Vine Cyberespionage Group attributed intel", "context": "suspicious-activity", "object_refs": ["indicator--26ffb872-1dd9-446e-b6f5-d58527e5b5d2", "campaign--83422c77-904c-4dc1-aff5-5c38f3a2c55c", "relationship--f82356ae-fe6c-437c-9c24-6b64314ae68a", "file--0203b5c8-f8b6-4ddb-9ad0-527d727f968b"]}),
        json!({"type": "opinion", "spec_version": "2.1", "id": "opinion--b01efc25-77b4-4003-b18b-f6e24b5cd9f7", "created_by_ref": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "created": "2016-05-12T08:17:27.000Z", "modified": "2016-05-12T08:17:27.000Z", "object_refs": ["relationship--16d2358f-3b0d-4c88-b047-0da2f7ed4471"], "opinion": "strongly-disagree", "explanation": "This doesn't seem like it is feasible."}),
        json!({"type": "note", "spec_version": "2.1", "id": "note--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", "created": "2016-05-12T08:17:27.000Z", "modified": "2016-05-12T08:17:27.000Z", "external_references": [{"source_name": "job-tracker", "external_id": "job-id-1234"}], "abstract": "Tracking Team Note#1", "content": "This note indicates the various steps taken by the threat analyst team to investigate this specific campaign.", "authors": ["John Doe"], "object_refs": ["campaign--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"]}),
        json!({"type": "report", "spec_version": "2.1", "id": "report--84e4d88f-44ea-4bcd-bbf3-b2c1c320bcb3", "created_by_ref": "identity--a463ffb3-1bd9-4d94-b02d-74e4f1658283", "created": "2015-12-21T19:59:11.000Z", "modified": "2015-12-21T19:59:11.000Z", "name": "The Black Vine Cyberespionage Group", "report_types": ["campaign"], "published": "2016-01-20T17:00:00.000Z", "object_refs": ["indicator--26ffb872-1dd9-446e-b6f5-d58527e5b5d2"]}),
        json!({"type": "vulnerability", "spec_version": "2.1", "id": "vulnerability--0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061", "created": "2016-05-12T08:17:27.000Z", "modified": "2016-05-12T08:17:27.000Z", "name": "CVE-2016-1234", "external_references": [{"source_name": "cve", "external_id": "CVE-2016-1234"}]}),
        // SCOs (UUIDv5 ids as stix2 derives them).
        json!({"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.3"}),
        json!({"type": "ipv4-addr", "id": "ipv4-addr--FF26C055-6336-5BC5-B98D-13D6226742DD", "value": "198.51.100.0/24"}),
        json!({"type": "domain-name", "spec_version": "2.1", "id": "domain-name--3c10e93f-798e-5a26-a0c1-08156efab7f5", "value": "example.com", "resolves_to_refs": ["ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd"]}),
        json!({"type": "file", "spec_version": "2.1", "id": "file--fb0419a8-f09c-57f8-be64-71a80417591c", "extensions": {"windows-pebinary-ext": {"pe_type": "exe", "machine_hex": "014c", "number_of_sections": 4, "time_date_stamp": "2016-01-22T12:31:12Z", "pointer_to_symbol_table_hex": "74726144", "number_of_symbols": 4542568, "size_of_optional_header": 224, "characteristics_hex": "818f", "optional_header": {"magic_hex": "010b", "major_linker_version": 2, "minor_linker_version": 25, "size_of_code": 512, "size_of_initialized_data": 283648, "size_of_uninitialized_data": 0, "address_of_entry_point": 4096, "base_of_code": 4096, "base_of_data": 8192, "image_base": 14548992, "section_alignment": 4096, "file_alignment": 4096, "major_os_version": 1, "minor_os_version": 0, "major_image_version": 0, "minor_image_version": 0, "major_subsystem_version": 4, "minor_subsystem_version": 0, "win32_version_value_hex": "00", "size_of_image": 299008, "size_of_headers": 4096, "checksum_hex": "00", "subsystem_hex": "03", "dll_characteristics_hex": "00", "size_of_stack_reserve": 100000, "size_of_stack_commit": 8192, "size_of_heap_reserve": 100000, "size_of_heap_commit": 4096, "loader_flags_hex": "abdbffde", "number_of_rva_and_sizes": 3758087646_u64}, "sections": [{"name": "CODE", "entropy": 0.061089}, {"name": "DATA", "entropy": 7.980693}, {"name": "NicolasB", "entropy": 0.607433}, {"name": ".idata", "entropy": 0.607433}]}}}),
        json!({"type": "email-message", "spec_version": "2.1", "id": "email-message--cf9b4b7f-14c8-5955-8065-020e0316b559", "is_multipart": true, "received_lines": ["from mail.example.com ([198.51.100.3]) by smtp.gmail.com with ESMTPSA id q23sm23309939wme.17.2016.07.19.07.20.32 (version=TLS1_2 cipher=ECDHE-RSA-AES128-GCM-SHA256 bits=128/128); Tue, 19 Jul 2016 07:20:40 -0700 (PDT)"], "content_type": "multipart/mixed", "date": "2016-06-19T14:20:40.000Z", "from_ref": "email-addr--89f52ea8-d6ef-51e9-8fce-6a29236436ed", "to_refs": ["email-addr--d1b3bf0c-f02a-51a1-8102-11aba7959868"], "cc_refs": ["email-addr--e4ee5301-b52d-59cd-a8fa-8036738c7194"], "subject": "Check out this picture of a cat!", "additional_header_fields": {"Content-Disposition": "inline", "X-Mailer": "Mutt/1.5.23", "X-Originating-IP": "198.51.100.3"}, "body_multipart": [{"content_type": "text/plain; charset=utf-8", "content_disposition": "inline", "body": "Cats are funny!"}, {"content_type": "image/png", "content_disposition": "attachment; filename=\"tabby.png\"", "body_raw_ref": "artifact--4cce66f8-6eaa-53cb-85d5-3a85fca3a6c5"}, {"content_type": "application/zip", "content_disposition": "attachment; filename=\"tabby_pics.zip\"", "body_raw_ref": "file--6ce09d9c-0ad3-5ebf-900c-e3cb288955b5"}]}),
        json!({"type": "network-traffic", "spec_version": "2.1", "id": "network-traffic--09ca55c3-97e5-5966-bad0-1d41d557ae13", "src_ref": "ipv4-addr--89830c10-2e94-57fa-8ca6-e0537d2719d1", "dst_ref": "ipv4-addr--45f4c6fb-2d7d-576a-a571-edc78d899a72", "src_port": 2487, "dst_port": 1723, "protocols": ["ipv4", "pptp"], "src_byte_count": 35779, "dst_byte_count": 935750, "encapsulates_refs": ["network-traffic--53e0bf48-2eee-5c03-8bde-ed7049d2c0a3"]}),
        json!({"type": "windows-registry-key", "spec_version": "2.1", "id": "windows-registry-key--2ba37ae7-2745-5082-9dfd-9486dad41016", "key": "hkey_local_machine\\system\\bar\\foo", "values": [{"name": "Foo", "data": "qwerty", "data_type": "REG_SZ"}, {"name": "Bar", "data": "42", "data_type": "REG_DWORD"}]}),
        json!({"type": "artifact", "spec_version": "2.1", "id": "artifact--6f437177-6e48-5cf8-9d9e-872a2bddd641", "mime_type": "application/zip", "payload_bin": "iVBORw0KGgoAAAANSUhEUgAAADI="}),
        json!({"type": "x509-certificate", "spec_version": "2.1", "id": "x509-certificate--b595eaf0-0b28-5dad-9e8e-0fab9c1facc9", "issuer": "C=ZA, ST=Western Cape, L=Cape Town, O=Thawte Consulting cc, OU=Certification Services Division, CN=Thawte Server CA/emailAddress=server-certs@thawte.com", "validity_not_before": "2016-03-12T12:00:00Z", "validity_not_after": "2016-08-21T12:00:00Z", "subject": "C=US, ST=Maryland, L=Pasadena, O=Brent Baccala, OU=FreeSoft, CN=www.freesoft.org/emailAddress=baccala@freesoft.org", "serial_number": "36:f7:d4:32:f4:ab:70:ea:d3:ce:98:6e:ea:99:93:49:32:0a:b7:06", "x509_v3_extensions": {"basic_constraints": "critical,CA:TRUE, pathlen:0", "name_constraints": "permitted;IP:192.168.0.0/255.255.0.0", "policy_contraints": "requireExplicitPolicy:3", "key_usage": "critical, keyCertSign", "extended_key_usage": "critical,codeSigning,1.2.3.4", "subject_key_identifier": "hash", "authority_key_identifier": "keyid,issuer", "subject_alternative_name": "email:my@other.address,RID:1.2.3.4", "issuer_alternative_name": "issuer:copy", "crl_distribution_points": "URI:http://myhost.com/myca.crl", "inhibit_any_policy": "2", "private_key_usage_period_not_before": "2016-03-12T12:00:00Z", "private_key_usage_period_not_after": "2018-03-12T12:00:00Z", "certificate_policies": "1.2.4.5, 1.1.3.4"}}),
        // A new SDO type defined by an extension, and a plain custom object.
        json!({"type": "my-favorite-sdo", "spec_version": "2.1", "id": "my-favorite-sdo--ac97aae4-83f1-46ca-a351-7aeb76678189", "created": "2014-02-20T09:16:08.989000Z", "modified": "2014-02-20T09:16:08.989000Z", "name": "This is the name of my favorite", "some_property_name1": "value1", "some_property_name2": "value2", "extensions": {"extension-definition--9c59fd79-4215-4ba2-920d-3e4f320e1e62": {"extension_type": "new-sdo"}}}),
        json!({"type": "x-example-com-customobject", "spec_version": "2.1", "id": "x-example-com-customobject--4527e5de-8572-446a-a57a-706f15467461", "created": "2016-08-01T00:00:00.000Z", "modified": "2016-08-01T00:00:00.000Z", "some_custom_property": "some value", "some_custom_property2": "some other value"}),
        json!({"type": "x-acme-sensor-hit", "id": "x-acme-sensor-hit--4527e5de-8572-546a-a57a-706f15467461", "hits": 3}),
        // Toplevel property extension.
        json!({"type": "indicator", "spec_version": "2.1", "id": "indicator--e97bfccf-8970-4a3c-9cd1-5b5b97ed5d0c", "created": "2014-02-20T09:16:08.989Z", "modified": "2014-02-20T09:16:08.989Z", "name": "File hash for Poison Ivy variant", "description": "This file hash indicates that a sample of Poison Ivy is present.", "labels": ["malicious-activity"], "pattern": "[file:hashes.'SHA-256' = 'ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c']", "pattern_type": "stix", "valid_from": "2014-02-20T09:00:00Z", "rank": 5, "toxicity": 8, "extensions": {"extension-definition--71736db5-10db-43d3-b0e3-65cf81601fe1": {"extension_type": "toplevel-property-extension"}}}),
        // MITRE ATT&CK style.
        json!({"type": "attack-pattern", "id": "attack-pattern--0042a9f5-f053-4769-b3ef-9ad018dfa298", "created": "2020-01-14T17:18:32.126Z", "created_by_ref": "identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5", "external_references": [{"source_name": "mitre-attack", "external_id": "T1055.011", "url": "https://attack.mitre.org/techniques/T1055/011"}, {"url": "https://www.malwaretech.com/2013/08/powerloader-injection-something-truly.html", "description": "MalwareTech. (2013, August 13). PowerLoader Injection.", "source_name": "MalwareTech Power Loader Aug 2013"}, {"source_name": "capec", "external_id": "CAPEC-640", "url": "https://capec.mitre.org/data/definitions/640.html"}], "object_marking_refs": ["marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168"], "modified": "2023-04-21T12:24:40.867Z", "name": "Extra Window Memory Injection", "description": "Adversaries may inject...", "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "defense-evasion"}, {"kill_chain_name": "mitre-attack", "phase_name": "privilege-escalation"}], "x_mitre_attack_spec_version": "3.1.0", "x_mitre_deprecated": false, "x_mitre_detection": "Monitor for API calls", "x_mitre_domains": ["enterprise-attack"], "x_mitre_is_subtechnique": true, "x_mitre_modified_by_ref": "identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5", "x_mitre_platforms": ["Windows"], "x_mitre_version": "1.0", "spec_version": "2.1", "x_mitre_data_sources": ["Process: OS API Execution"]}),
        // OpenCTI style.
        json!({"id": "indicator--4099edd7-1efd-54aa-9736-7bcd7219b78b", "spec_version": "2.1", "type": "indicator", "created": "2023-01-01T10:00:00.000Z", "modified": "2023-01-02T10:00:00.000Z", "confidence": 75, "lang": "en", "labels": ["c2"], "name": "203.0.113.7", "pattern_type": "stix", "pattern": "[ipv4-addr:value = '203.0.113.7']", "valid_from": "2023-01-01T10:00:00.000Z", "valid_until": "2024-01-01T10:00:00.000Z", "x_opencti_score": 50, "x_opencti_detection": false, "x_mitre_platforms": ["windows"], "x_opencti_main_observable_type": "IPv4-Addr", "revoked": false, "object_marking_refs": ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"], "created_by_ref": "identity--18fe5225-fee1-5627-ad3e-20c14435b024", "external_references": [{"source_name": "AlienVault", "url": "https://otx.alienvault.com/pulse/1"}], "extensions": {"extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba": {"extension_type": "property-extension", "id": "1f5a1c0e-4e43-4f62-a1f2-6b0d1a0d6b1a", "type": "Indicator", "created_at": "2023-01-01T10:00:00.000Z", "is_inferred": false}}}),
        // Granular markings with list selectors.
        json!({"type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z", "pattern": "[ipv4-addr:value = '1.2.3.4']", "pattern_type": "stix", "valid_from": "2016-01-01T00:00:00Z", "labels": ["a", "b"], "external_references": [{"source_name": "x", "url": "https://example.org"}], "granular_markings": [{"marking_ref": "marking-definition--089a6ecb-cc15-43cc-9494-767639779123", "selectors": ["labels.[1]", "external_references.[0].url", "pattern"]}, {"lang": "fr", "selectors": ["labels"]}]}),
    ]
}

#[test]
fn examples_from_the_field_are_accepted_unchanged() {
    for v in examples() {
        match parse_object(&v) {
            Ok(obj) => assert_eq!(serde_json::Value::Object(obj.raw), v),
            Err(e) => panic!("rejected {}: {e:#?}", v["id"]),
        }
    }
}

#[test]
fn categories_and_versions() {
    let all = examples();
    let tlp = parse_object(&all[3]).unwrap();
    assert_eq!(tlp.category(), ObjectCategory::Meta);
    assert_eq!(tlp.version(), tlp.created);
    let sco = parse_object(&all[23]).unwrap();
    assert!(!all[23].as_object().unwrap().contains_key("spec_version"));
    assert_eq!(sco.category(), ObjectCategory::Sco);
    assert_eq!(sco.spec_version, "2.1", "SCOs without spec_version are 2.1");
    assert_eq!(sco.version(), None);
    let ind = parse_object(&all[6]).unwrap();
    assert_eq!(ind.category(), ObjectCategory::Sdo);
    assert_eq!(
        ind.version().map(|t| t.to_stix_millis()).as_deref(),
        Some("2016-04-06T20:03:48.000Z")
    );
    let custom = all
        .iter()
        .find(|v| v["type"] == "x-acme-sensor-hit")
        .unwrap();
    assert_eq!(
        parse_object(custom).unwrap().category(),
        ObjectCategory::Custom
    );
}

#[test]
fn identifiers() {
    assert!(kopa_stix::is_identifier(
        "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
    ));
    assert_eq!(
        kopa_stix::identifier_type("x-acme--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"),
        Some("x-acme")
    );
    for bad in [
        "indicator",
        "indicator--",
        "indicator--8e2e2d2b17d44cbf938f98ee46b3cd3f",
        "Indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
    ] {
        assert!(!kopa_stix::is_identifier(bad), "{bad}");
    }
}

/// 53 objects of every type produced by the OASIS `stix2` library 3.0.2 (generated once, kept as data):
/// what the reference library writes, Kopa must accept unchanged.
#[test]
fn objects_written_by_the_stix2_library_are_accepted() {
    let text = include_str!("fixtures/stix2-library-objects.jsonl");
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        match parse_object(&v) {
            Ok(obj) => assert_eq!(Value::Object(obj.raw), v),
            Err(e) => panic!("rejected {}: {e:#?}", v["id"]),
        }
        n += 1;
    }
    assert_eq!(n, 53);
}
