//! The STIX 2.1 object model as data: for every predefined object type and predefined extension, which
//! properties exist, what kind of value each takes and which are required.
//!
//! The validator in `validate.rs` walks these tables; adding a property or a type is a one-line change here.

/// What a reference property may point to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum R {
    /// Any STIX identifier.
    Any,
    /// Only these object types.
    Types(&'static [&'static str]),
    /// An SDO (predefined or custom): anything that is not a known SCO, SRO or meta object.
    Sdo,
    /// An SCO (predefined or custom): anything that is not a known SDO, SRO or meta object.
    Sco,
    /// An SCO or an SRO.
    ScoOrSro,
    /// The end of a relationship: an SDO or an SCO.
    RelEnd,
}

/// The kind of value a property takes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum K {
    /// Checked by the caller (`type`, `id`, `spec_version`).
    Skip,
    Str,
    StrList,
    Ts,
    /// A timestamp precise to the millisecond at least (`created`/`modified` of SDOs and SROs).
    TsMillis,
    Bool,
    Int(i64, i64),
    Num(f64, f64),
    Enum(&'static [&'static str]),
    EnumList(&'static [&'static str]),
    Ref(R),
    Refs(R),
    Hashes,
    Dict,
    Hex,
    Bin,
    ExtRefs,
    KillChain,
    Granular,
    Extensions,
    /// A nested object with its own shape.
    Obj(&'static Shape),
    /// A non-empty list of nested objects of one shape.
    ObjList(&'static Shape),
    /// observed-data `objects`: a dictionary of embedded observables.
    Observables,
    /// language-content `contents`: language code → dictionary of translated properties.
    Contents,
}

/// Properties of an object or of a nested object.
#[derive(Debug)]
pub(crate) struct Shape {
    pub props: &'static [(&'static str, K)],
    pub required: &'static [&'static str],
}

/// Broad category of a STIX object type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectCategory {
    /// STIX Domain Object (attack-pattern, indicator, …).
    Sdo,
    /// STIX Cyber-observable Object (ipv4-addr, file, …).
    Sco,
    /// STIX Relationship Object (relationship, sighting).
    Sro,
    /// marking-definition, language-content, extension-definition.
    Meta,
    /// A type the specification does not define (custom object, or a new type from an extension).
    Custom,
}

pub(crate) struct TypeSpec {
    pub category: ObjectCategory,
    pub shape: Shape,
    /// Predefined extensions of this type (SCOs only).
    pub extensions: &'static [(&'static str, &'static Shape)],
}

const MAX: i64 = i64::MAX;
const COUNT_MAX: i64 = 999_999_999;

const IDENTITY: R = R::Types(&["identity"]);
const MARKING: R = R::Types(&["marking-definition"]);
const SOFTWARE: R = R::Types(&["software"]);
const ARTIFACT: R = R::Types(&["artifact"]);
const FILE_OR_DIR: R = R::Types(&["file", "directory"]);
const EMAIL_ADDR: R = R::Types(&["email-addr"]);
const USER_ACCOUNT: R = R::Types(&["user-account"]);
const NETWORK_TRAFFIC: R = R::Types(&["network-traffic"]);
const ADDRESS: R = R::Types(&["ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"]);

pub(crate) const OPINION_ENUM: &[&str] = &[
    "strongly-disagree",
    "disagree",
    "neutral",
    "agree",
    "strongly-agree",
];
pub(crate) const EXTENSION_TYPE_ENUM: &[&str] = &[
    "new-sdo",
    "new-sco",
    "new-sro",
    "property-extension",
    "toplevel-property-extension",
];
/// encryption-algorithm-enum (closed).
pub(crate) const ENCRYPTION_ALGORITHM_ENUM: &[&str] =
    &["AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated"];
pub(crate) const TLP1_ENUM: &[&str] = &["white", "green", "amber", "red"];
pub(crate) const TLP2_ENUM: &[&str] = &["clear", "green", "amber", "amber+strict", "red"];
/// The extension definition of the TLP 2.0 marking definitions published by OASIS.
pub const TLP2_EXTENSION_ID: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// Properties every SDO and SRO (and language-content, extension-definition) may carry.
pub(crate) const SDO_COMMON: &[(&str, K)] = &[
    ("type", K::Skip),
    ("spec_version", K::Skip),
    ("id", K::Skip),
    ("created_by_ref", K::Ref(IDENTITY)),
    ("created", K::TsMillis),
    ("modified", K::TsMillis),
    ("revoked", K::Bool),
    ("labels", K::StrList),
    ("confidence", K::Int(0, 100)),
    ("lang", K::Str),
    ("external_references", K::ExtRefs),
    ("object_marking_refs", K::Refs(MARKING)),
    ("granular_markings", K::Granular),
    ("extensions", K::Extensions),
];
/// Common properties as checked on custom objects: timestamps of any precision.
pub(crate) const CUSTOM_COMMON: &[(&str, K)] = &[
    ("type", K::Skip),
    ("spec_version", K::Skip),
    ("id", K::Skip),
    ("created_by_ref", K::Ref(IDENTITY)),
    ("created", K::Ts),
    ("modified", K::Ts),
    ("revoked", K::Bool),
    ("labels", K::StrList),
    ("confidence", K::Int(0, 100)),
    ("lang", K::Str),
    ("external_references", K::ExtRefs),
    ("object_marking_refs", K::Refs(MARKING)),
    ("granular_markings", K::Granular),
    ("extensions", K::Extensions),
];
pub(crate) const SDO_REQUIRED: &[&str] = &["type", "spec_version", "id", "created", "modified"];

/// Properties every SCO may carry.
pub(crate) const SCO_COMMON: &[(&str, K)] = &[
    ("type", K::Skip),
    ("spec_version", K::Skip),
    ("id", K::Skip),
    ("object_marking_refs", K::Refs(MARKING)),
    ("granular_markings", K::Granular),
    ("defanged", K::Bool),
    ("extensions", K::Extensions),
];
pub(crate) const SCO_REQUIRED: &[&str] = &["type", "id"];

/// Properties of marking-definition objects (which are not versioned: no `modified` is required).
pub(crate) const MARKING_COMMON: &[(&str, K)] = &[
    ("type", K::Skip),
    ("spec_version", K::Skip),
    ("id", K::Skip),
    ("created_by_ref", K::Ref(IDENTITY)),
    ("created", K::Ts),
    ("modified", K::Ts),
    ("external_references", K::ExtRefs),
    ("object_marking_refs", K::Refs(MARKING)),
    ("granular_markings", K::Granular),
    ("extensions", K::Extensions),
];
pub(crate) const MARKING_REQUIRED: &[&str] = &["type", "spec_version", "id", "created"];

macro_rules! shape {
    ([$($name:literal : $kind:expr),* $(,)?], [$($req:literal),* $(,)?]) => {
        Shape { props: &[$(($name, $kind)),*], required: &[$($req),*] }
    };
}

macro_rules! types {
    ($($name:literal => $cat:ident { $($body:tt)* } $(ext [$($ext:literal => $eshape:expr),* $(,)?])? ;)*) => {
        pub(crate) fn type_spec(t: &str) -> Option<&'static TypeSpec> {
            match t {
                $($name => {
                    static SPEC: TypeSpec = TypeSpec {
                        category: ObjectCategory::$cat,
                        shape: shape!($($body)*),
                        extensions: &[$($(($ext, &$eshape)),*)?],
                    };
                    Some(&SPEC)
                })*
                _ => None,
            }
        }
        /// Every object type the specification defines.
        pub const PREDEFINED_TYPES: &[&str] = &[$($name),*];
    };
}

static MIME_PART: Shape = shape!(
    [
        "body": K::Str,
        "body_raw_ref": K::Ref(R::Types(&["artifact", "file"])),
        "content_type": K::Str,
        "content_disposition": K::Str,
    ],
    []
);
static ADS: Shape = shape!(["name": K::Str, "hashes": K::Hashes, "size": K::Int(0, MAX)], ["name"]);
static SECTION: Shape = shape!(
    ["name": K::Str, "size": K::Int(0, MAX), "entropy": K::Num(f64::MIN, f64::MAX), "hashes": K::Hashes],
    ["name"]
);
static OPTIONAL_HEADER: Shape = shape!(
    [
        "magic_hex": K::Hex,
        "checksum_hex": K::Hex,
        "subsystem_hex": K::Hex,
        "dll_characteristics_hex": K::Hex,
        "hashes": K::Hashes,
    ],
    []
);
static REG_VALUE: Shape = shape!(["name": K::Str, "data": K::Str, "data_type": K::Str], []);
static X509_EXT: Shape = shape!(
    [
        "private_key_usage_period_not_before": K::Ts,
        "private_key_usage_period_not_after": K::Ts,
    ],
    []
);

static ARCHIVE_EXT: Shape =
    shape!(["contains_refs": K::Refs(FILE_OR_DIR), "comment": K::Str], ["contains_refs"]);
static NTFS_EXT: Shape = shape!(["sid": K::Str, "alternate_data_streams": K::ObjList(&ADS)], []);
static PDF_EXT: Shape = shape!(
    ["version": K::Str, "is_optimized": K::Bool, "document_info_dict": K::Dict, "pdfid0": K::Str, "pdfid1": K::Str],
    []
);
static RASTER_EXT: Shape = shape!(
    [
        "image_height": K::Int(i64::MIN, MAX),
        "image_width": K::Int(i64::MIN, MAX),
        "bits_per_pixel": K::Int(i64::MIN, MAX),
        "exif_tags": K::Dict,
    ],
    []
);
static PE_EXT: Shape = shape!(
    [
        "pe_type": K::Str,
        "imphash": K::Str,
        "machine_hex": K::Hex,
        "number_of_sections": K::Int(0, MAX),
        "time_date_stamp": K::Ts,
        "pointer_to_symbol_table_hex": K::Hex,
        "number_of_symbols": K::Int(0, MAX),
        "size_of_optional_header": K::Int(0, MAX),
        "characteristics_hex": K::Hex,
        "file_header_hashes": K::Hashes,
        "optional_header": K::Obj(&OPTIONAL_HEADER),
        "sections": K::ObjList(&SECTION),
    ],
    ["pe_type"]
);
static HTTP_EXT: Shape = shape!(
    [
        "request_method": K::Str,
        "request_value": K::Str,
        "request_version": K::Str,
        "request_header": K::Dict,
        "message_body_length": K::Int(0, MAX),
        "message_body_data_ref": K::Ref(ARTIFACT),
    ],
    ["request_method", "request_value"]
);
static ICMP_EXT: Shape =
    shape!(["icmp_type_hex": K::Hex, "icmp_code_hex": K::Hex], ["icmp_type_hex", "icmp_code_hex"]);
static SOCKET_EXT: Shape = shape!(
    [
        "address_family": K::Str,
        "is_blocking": K::Bool,
        "is_listening": K::Bool,
        "options": K::Dict,
        "socket_type": K::Str,
        "socket_descriptor": K::Int(0, MAX),
        "socket_handle": K::Int(i64::MIN, MAX),
    ],
    ["address_family"]
);
static TCP_EXT: Shape = shape!(["src_flags_hex": K::Hex, "dst_flags_hex": K::Hex], []);
static WIN_PROCESS_EXT: Shape = shape!(
    [
        "aslr_enabled": K::Bool,
        "dep_enabled": K::Bool,
        "priority": K::Str,
        "owner_sid": K::Str,
        "window_title": K::Str,
        "startup_info": K::Dict,
        "integrity_level": K::Str,
    ],
    []
);
static WIN_SERVICE_EXT: Shape = shape!(
    [
        "service_name": K::Str,
        "descriptions": K::StrList,
        "display_name": K::Str,
        "group_name": K::Str,
        "start_type": K::Str,
        "service_dll_refs": K::Refs(R::Types(&["file"])),
        "service_type": K::Str,
        "service_status": K::Str,
    ],
    []
);
static UNIX_ACCOUNT_EXT: Shape = shape!(
    ["gid": K::Int(i64::MIN, MAX), "groups": K::StrList, "home_dir": K::Str, "shell": K::Str],
    []
);

types! {
    // ---- SDOs ----
    "attack-pattern" => Sdo {
        ["name": K::Str, "description": K::Str, "aliases": K::StrList, "kill_chain_phases": K::KillChain],
        ["name"]
    };
    "campaign" => Sdo {
        ["name": K::Str, "description": K::Str, "aliases": K::StrList, "first_seen": K::Ts, "last_seen": K::Ts,
         "objective": K::Str],
        ["name"]
    };
    "course-of-action" => Sdo { ["name": K::Str, "description": K::Str], ["name"] };
    "grouping" => Sdo {
        ["name": K::Str, "description": K::Str, "context": K::Str, "object_refs": K::Refs(R::Any)],
        ["context", "object_refs"]
    };
    "identity" => Sdo {
        ["name": K::Str, "description": K::Str, "roles": K::StrList, "identity_class": K::Str,
         "sectors": K::StrList, "contact_information": K::Str],
        ["name"]
    };
    "incident" => Sdo {
        ["name": K::Str, "description": K::Str, "kill_chain_phases": K::KillChain],
        ["name"]
    };
    "indicator" => Sdo {
        ["name": K::Str, "description": K::Str, "indicator_types": K::StrList, "pattern": K::Str,
         "pattern_type": K::Str, "pattern_version": K::Str, "valid_from": K::Ts, "valid_until": K::Ts,
         "kill_chain_phases": K::KillChain],
        ["pattern", "pattern_type", "valid_from"]
    };
    "infrastructure" => Sdo {
        ["name": K::Str, "description": K::Str, "infrastructure_types": K::StrList, "aliases": K::StrList,
         "kill_chain_phases": K::KillChain, "first_seen": K::Ts, "last_seen": K::Ts],
        ["name"]
    };
    "intrusion-set" => Sdo {
        ["name": K::Str, "description": K::Str, "aliases": K::StrList, "first_seen": K::Ts, "last_seen": K::Ts,
         "goals": K::StrList, "resource_level": K::Str, "primary_motivation": K::Str,
         "secondary_motivations": K::StrList],
        ["name"]
    };
    "location" => Sdo {
        ["name": K::Str, "description": K::Str, "latitude": K::Num(-90.0, 90.0),
         "longitude": K::Num(-180.0, 180.0), "precision": K::Num(0.0, f64::MAX), "region": K::Str,
         "country": K::Str, "administrative_area": K::Str, "city": K::Str, "street_address": K::Str,
         "postal_code": K::Str],
        []
    };
    "malware" => Sdo {
        ["name": K::Str, "description": K::Str, "malware_types": K::StrList, "is_family": K::Bool,
         "aliases": K::StrList, "kill_chain_phases": K::KillChain, "first_seen": K::Ts, "last_seen": K::Ts,
         "operating_system_refs": K::Refs(SOFTWARE), "architecture_execution_envs": K::StrList,
         "implementation_languages": K::StrList, "capabilities": K::StrList,
         "sample_refs": K::Refs(R::Types(&["file", "artifact"]))],
        ["is_family"]
    };
    "malware-analysis" => Sdo {
        ["product": K::Str, "version": K::Str, "host_vm_ref": K::Ref(SOFTWARE),
         "operating_system_ref": K::Ref(SOFTWARE), "installed_software_refs": K::Refs(SOFTWARE),
         "configuration_version": K::Str, "modules": K::StrList, "analysis_engine_version": K::Str,
         "analysis_definition_version": K::Str, "submitted": K::Ts, "analysis_started": K::Ts,
         "analysis_ended": K::Ts, "result_name": K::Str, "result": K::Str, "analysis_sco_refs": K::Refs(R::Sco),
         "sample_ref": K::Ref(R::Types(&["file", "network-traffic", "artifact"]))],
        ["product"]
    };
    "note" => Sdo {
        ["abstract": K::Str, "content": K::Str, "authors": K::StrList, "object_refs": K::Refs(R::Any)],
        ["content", "object_refs"]
    };
    "observed-data" => Sdo {
        ["first_observed": K::Ts, "last_observed": K::Ts, "number_observed": K::Int(1, COUNT_MAX),
         "objects": K::Observables, "object_refs": K::Refs(R::ScoOrSro)],
        ["first_observed", "last_observed", "number_observed"]
    };
    "opinion" => Sdo {
        ["explanation": K::Str, "authors": K::StrList, "opinion": K::Enum(OPINION_ENUM),
         "object_refs": K::Refs(R::Any)],
        ["opinion", "object_refs"]
    };
    "report" => Sdo {
        ["name": K::Str, "description": K::Str, "report_types": K::StrList, "published": K::Ts,
         "object_refs": K::Refs(R::Any)],
        ["name", "published", "object_refs"]
    };
    "threat-actor" => Sdo {
        ["name": K::Str, "description": K::Str, "threat_actor_types": K::StrList, "aliases": K::StrList,
         "first_seen": K::Ts, "last_seen": K::Ts, "roles": K::StrList, "goals": K::StrList,
         "sophistication": K::Str, "resource_level": K::Str, "primary_motivation": K::Str,
         "secondary_motivations": K::StrList, "personal_motivations": K::StrList],
        ["name"]
    };
    "tool" => Sdo {
        ["name": K::Str, "description": K::Str, "tool_types": K::StrList, "aliases": K::StrList,
         "kill_chain_phases": K::KillChain, "tool_version": K::Str],
        ["name"]
    };
    "vulnerability" => Sdo { ["name": K::Str, "description": K::Str], ["name"] };

    // ---- SROs ----
    "relationship" => Sro {
        ["relationship_type": K::Str, "description": K::Str, "source_ref": K::Ref(R::RelEnd),
         "target_ref": K::Ref(R::RelEnd), "start_time": K::Ts, "stop_time": K::Ts],
        ["relationship_type", "source_ref", "target_ref"]
    };
    "sighting" => Sro {
        ["description": K::Str, "first_seen": K::Ts, "last_seen": K::Ts, "count": K::Int(0, COUNT_MAX),
         "sighting_of_ref": K::Ref(R::Sdo), "observed_data_refs": K::Refs(R::Types(&["observed-data"])),
         "where_sighted_refs": K::Refs(R::Types(&["identity", "location"])), "summary": K::Bool],
        ["sighting_of_ref"]
    };

    // ---- meta objects ----
    "marking-definition" => Meta {
        ["name": K::Str, "definition_type": K::Str, "definition": K::Dict],
        []
    };
    "language-content" => Meta {
        ["object_ref": K::Ref(R::Any), "object_modified": K::Ts, "contents": K::Contents],
        ["object_ref", "contents"]
    };
    "extension-definition" => Meta {
        ["name": K::Str, "description": K::Str, "schema": K::Str, "version": K::Str,
         "extension_types": K::EnumList(EXTENSION_TYPE_ENUM), "extension_properties": K::StrList],
        ["created_by_ref", "name", "schema", "version", "extension_types"]
    };

    // ---- SCOs ----
    "artifact" => Sco {
        ["mime_type": K::Str, "payload_bin": K::Bin, "url": K::Str, "hashes": K::Hashes,
         "encryption_algorithm": K::Enum(ENCRYPTION_ALGORITHM_ENUM), "decryption_key": K::Str],
        []
    };
    "autonomous-system" => Sco { ["number": K::Int(i64::MIN, MAX), "name": K::Str, "rir": K::Str], ["number"] };
    "directory" => Sco {
        ["path": K::Str, "path_enc": K::Str, "ctime": K::Ts, "mtime": K::Ts, "atime": K::Ts,
         "contains_refs": K::Refs(FILE_OR_DIR)],
        ["path"]
    };
    "domain-name" => Sco {
        ["value": K::Str, "resolves_to_refs": K::Refs(R::Types(&["ipv4-addr", "ipv6-addr", "domain-name"]))],
        ["value"]
    };
    "email-addr" => Sco {
        ["value": K::Str, "display_name": K::Str, "belongs_to_ref": K::Ref(USER_ACCOUNT)],
        ["value"]
    };
    "email-message" => Sco {
        ["is_multipart": K::Bool, "date": K::Ts, "content_type": K::Str, "from_ref": K::Ref(EMAIL_ADDR),
         "sender_ref": K::Ref(EMAIL_ADDR), "to_refs": K::Refs(EMAIL_ADDR), "cc_refs": K::Refs(EMAIL_ADDR),
         "bcc_refs": K::Refs(EMAIL_ADDR), "message_id": K::Str, "subject": K::Str,
         "received_lines": K::StrList, "additional_header_fields": K::Dict, "body": K::Str,
         "body_multipart": K::ObjList(&MIME_PART), "raw_email_ref": K::Ref(ARTIFACT)],
        ["is_multipart"]
    };
    "file" => Sco {
        ["hashes": K::Hashes, "size": K::Int(0, MAX), "name": K::Str, "name_enc": K::Str,
         "magic_number_hex": K::Hex, "mime_type": K::Str, "ctime": K::Ts, "mtime": K::Ts, "atime": K::Ts,
         "parent_directory_ref": K::Ref(R::Types(&["directory"])), "contains_refs": K::Refs(R::Sco),
         "content_ref": K::Ref(ARTIFACT)],
        []
    } ext [
        "archive-ext" => ARCHIVE_EXT,
        "ntfs-ext" => NTFS_EXT,
        "pdf-ext" => PDF_EXT,
        "raster-image-ext" => RASTER_EXT,
        "windows-pebinary-ext" => PE_EXT,
    ];
    "ipv4-addr" => Sco {
        ["value": K::Str, "resolves_to_refs": K::Refs(R::Types(&["mac-addr"])),
         "belongs_to_refs": K::Refs(R::Types(&["autonomous-system"]))],
        ["value"]
    };
    "ipv6-addr" => Sco {
        ["value": K::Str, "resolves_to_refs": K::Refs(R::Types(&["mac-addr"])),
         "belongs_to_refs": K::Refs(R::Types(&["autonomous-system"]))],
        ["value"]
    };
    "mac-addr" => Sco { ["value": K::Str], ["value"] };
    "mutex" => Sco { ["name": K::Str], ["name"] };
    "network-traffic" => Sco {
        ["start": K::Ts, "end": K::Ts, "is_active": K::Bool, "src_ref": K::Ref(ADDRESS),
         "dst_ref": K::Ref(ADDRESS), "src_port": K::Int(0, 65535), "dst_port": K::Int(0, 65535),
         "protocols": K::StrList, "src_byte_count": K::Int(0, MAX), "dst_byte_count": K::Int(0, MAX),
         "src_packets": K::Int(0, MAX), "dst_packets": K::Int(0, MAX), "ipfix": K::Dict,
         "src_payload_ref": K::Ref(ARTIFACT), "dst_payload_ref": K::Ref(ARTIFACT),
         "encapsulates_refs": K::Refs(NETWORK_TRAFFIC), "encapsulated_by_ref": K::Ref(NETWORK_TRAFFIC)],
        ["protocols"]
    } ext [
        "http-request-ext" => HTTP_EXT,
        "icmp-ext" => ICMP_EXT,
        "socket-ext" => SOCKET_EXT,
        "tcp-ext" => TCP_EXT,
    ];
    "process" => Sco {
        ["is_hidden": K::Bool, "pid": K::Int(i64::MIN, MAX), "created_time": K::Ts, "cwd": K::Str,
         "command_line": K::Str, "environment_variables": K::Dict,
         "opened_connection_refs": K::Refs(NETWORK_TRAFFIC), "creator_user_ref": K::Ref(USER_ACCOUNT),
         "image_ref": K::Ref(R::Types(&["file"])), "parent_ref": K::Ref(R::Types(&["process"])),
         "child_refs": K::Refs(R::Types(&["process"]))],
        []
    } ext [
        "windows-process-ext" => WIN_PROCESS_EXT,
        "windows-service-ext" => WIN_SERVICE_EXT,
    ];
    "software" => Sco {
        ["name": K::Str, "cpe": K::Str, "swid": K::Str, "languages": K::StrList, "vendor": K::Str,
         "version": K::Str],
        ["name"]
    };
    "url" => Sco { ["value": K::Str], ["value"] };
    "user-account" => Sco {
        ["user_id": K::Str, "credential": K::Str, "account_login": K::Str, "account_type": K::Str,
         "display_name": K::Str, "is_service_account": K::Bool, "is_privileged": K::Bool,
         "can_escalate_privs": K::Bool, "is_disabled": K::Bool, "account_created": K::Ts,
         "account_expires": K::Ts, "credential_last_changed": K::Ts, "account_first_login": K::Ts,
         "account_last_login": K::Ts],
        []
    } ext [
        "unix-account-ext" => UNIX_ACCOUNT_EXT,
    ];
    "windows-registry-key" => Sco {
        ["key": K::Str, "values": K::ObjList(&REG_VALUE), "modified_time": K::Ts,
         "creator_user_ref": K::Ref(USER_ACCOUNT), "number_of_subkeys": K::Int(0, MAX)],
        []
    };
    "x509-certificate" => Sco {
        ["is_self_signed": K::Bool, "hashes": K::Hashes, "version": K::Str, "serial_number": K::Str,
         "signature_algorithm": K::Str, "issuer": K::Str, "validity_not_before": K::Ts,
         "validity_not_after": K::Ts, "subject": K::Str, "subject_public_key_algorithm": K::Str,
         "subject_public_key_modulus": K::Str, "subject_public_key_exponent": K::Int(i64::MIN, MAX),
         "x509_v3_extensions": K::Obj(&X509_EXT)],
        []
    };
}

/// The category of an object type: predefined SDO, SCO, SRO, meta object, or custom.
pub fn category(type_: &str) -> ObjectCategory {
    type_spec(type_).map_or(ObjectCategory::Custom, |s| s.category)
}

/// Predefined SCO extension names (for any SCO type).
pub(crate) fn is_predefined_extension_name(name: &str) -> bool {
    matches!(
        name,
        "archive-ext"
            | "ntfs-ext"
            | "pdf-ext"
            | "raster-image-ext"
            | "windows-pebinary-ext"
            | "http-request-ext"
            | "icmp-ext"
            | "socket-ext"
            | "tcp-ext"
            | "windows-process-ext"
            | "windows-service-ext"
            | "unix-account-ext"
    )
}
