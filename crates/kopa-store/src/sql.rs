//! SQL shared by both backends: the visibility rule as a `WHERE` fragment, the object filters, and the
//! planning of a batch write (which objects are new, duplicates or conflicts).
//!
//! Both backends run the same query text; only placeholders (`?N` / `$N`) and list parameters (a JSON
//! array read with `json_each` in SQLite, an array with `= ANY` in PostgreSQL) differ.

use crate::{NewObject, ObjectFilter, PutOutcome, StoredObject, VersionMatch};
use kopa_core::permission::{self, Action, Actor, Producer, Rights};
use kopa_core::{Audience, OrgId, Principal, Reader, Tlp, UserId};
use kopa_stix::Timestamp;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// One bound parameter.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
    /// PostgreSQL only (SQLite gets a JSON array in a `Text`).
    Texts(Vec<String>),
    /// PostgreSQL only.
    Ints(Vec<i64>),
}

/// A query under construction: its text and its parameters, numbered in order.
#[derive(Debug)]
pub(crate) struct Sql {
    pub dialect: Dialect,
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Sql {
            dialect,
            text: String::new(),
            args: Vec::new(),
        }
    }

    /// Bind a parameter and return its placeholder (which may be used several times).
    pub fn bind(&mut self, a: Arg) -> String {
        self.args.push(a);
        let n = self.args.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// `col IN (values)` with the list as one parameter.
    pub fn in_texts(&mut self, col: &str, vals: &[String]) -> String {
        let p = self.bind_texts(vals);
        self.in_bound(col, &p)
    }

    /// Bind a list of texts as one parameter (for [`Sql::in_bound`]).
    pub fn bind_texts(&mut self, vals: &[String]) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                let json = serde_json::to_string(vals).unwrap_or_else(|_| "[]".into());
                self.bind(Arg::Text(json))
            }
            Dialect::Postgres => self.bind(Arg::Texts(vals.to_vec())),
        }
    }

    /// `col IN (list)` for a list bound with [`Sql::bind_texts`] (usable several times).
    pub fn in_bound(&self, col: &str, p: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("{col} IN (SELECT value FROM json_each({p}))"),
            Dialect::Postgres => format!("{col} = ANY({p})"),
        }
    }

    pub fn in_ints(&mut self, col: &str, vals: &[i64]) -> String {
        match self.dialect {
            Dialect::Sqlite => {
                let json = serde_json::to_string(vals).unwrap_or_else(|_| "[]".into());
                let p = self.bind(Arg::Text(json));
                format!("{col} IN (SELECT value FROM json_each({p}))")
            }
            Dialect::Postgres => {
                let p = self.bind(Arg::Ints(vals.to_vec()));
                format!("{col} = ANY({p})")
            }
        }
    }
}

/// The reader's bound parameters.
pub(crate) enum Who {
    /// A person: placeholders of its organisation and user.
    Person { org: String, user: String },
    /// A peer node: placeholders of its node id, its policy's collection ids and highest TLP rank,
    /// and (when the policy names types) its object types.
    Peer {
        node: String,
        collections: String,
        max_tlp: String,
        types: Option<String>,
    },
}

pub(crate) fn who(sql: &mut Sql, r: &Reader) -> Who {
    match r {
        Reader::Person(a) => Who::Person {
            org: sql.bind(Arg::Text(a.org.0.clone())),
            user: sql.bind(Arg::Text(a.user.0.clone())),
        },
        Reader::Peer(p) => Who::Peer {
            node: sql.bind(Arg::Text(p.node.clone())),
            collections: sql.bind_texts(&p.collections),
            max_tlp: sql.bind(Arg::Int(p.max_tlp.rank())),
            types: (!p.object_types.is_empty()).then(|| sql.bind_texts(&p.object_types)),
        },
    }
}

/// The collection of the row `o` is readable by the reader: for a person, its organisation is on
/// the collection's read list; for a peer, the collection is in its policy.
pub(crate) fn readable(sql: &Sql, w: &Who, o: &str) -> String {
    match w {
        Who::Person { org, .. } => format!(
            "EXISTS (SELECT 1 FROM collections c WHERE c.cid = {o}.collection AND (c.read_all = 1 \
             OR EXISTS (SELECT 1 FROM collection_readers r WHERE r.cid = c.cid AND r.org_id = \
             {org})))"
        ),
        Who::Peer { collections, .. } => format!(
            "EXISTS (SELECT 1 FROM collections c WHERE c.cid = {o}.collection AND {})",
            sql.in_bound("c.id", collections)
        ),
    }
}

/// The TLP rule for the row `o`.
///
/// A person (see `Audience::reference_visible`): below RED, not narrowed or the owner organisation
/// or an addressed organisation; RED, the author or a named user.
///
/// A peer (see `PeerAudience::reference_visible`): within its policy's types and TLP cap, never
/// back to the object's origin node, and: below AMBER+STRICT, not narrowed or narrowed to an
/// organisation the peer hosts; AMBER+STRICT, an addressed organisation the peer hosts; RED, a
/// named recipient the peer hosts (hosted = the organisation's, or the user's organisation's,
/// home node is the peer).
pub(crate) fn visible(sql: &Sql, w: &Who, o: &str) -> String {
    let strict = kopa_core::Tlp::AmberStrict.rank();
    let red = kopa_core::Tlp::Red.rank();
    match w {
        Who::Person { org, user } => format!(
            "(({o}.tlp < {red} AND ({o}.narrowed = 0 OR {o}.owner_org = {org} OR EXISTS (SELECT \
             1 FROM object_orgs g WHERE g.seq = {o}.seq AND g.org_id = {org}))) OR ({o}.tlp = \
             {red} AND ({o}.author = {user} OR EXISTS (SELECT 1 FROM object_users n WHERE n.seq = \
             {o}.seq AND n.user_id = {user}))))"
        ),
        Who::Peer {
            node,
            max_tlp,
            types,
            ..
        } => {
            let hosted_org = format!(
                "EXISTS (SELECT 1 FROM object_orgs g JOIN orgs h ON h.id = g.org_id WHERE g.seq = \
                 {o}.seq AND h.node = {node})"
            );
            let hosted_user = format!(
                "EXISTS (SELECT 1 FROM object_users n JOIN users u ON u.id = n.user_id JOIN orgs \
                 h ON h.id = u.org_id WHERE n.seq = {o}.seq AND h.node = {node})"
            );
            let types = types
                .as_ref()
                .map(|t| format!(" AND {}", sql.in_bound(&format!("{o}.type"), t)))
                .unwrap_or_default();
            format!(
                "({o}.tlp <= {max_tlp} AND ({o}.origin IS NULL OR {o}.origin <> {node}){types} \
                 AND (({o}.tlp < {strict} AND ({o}.narrowed = 0 OR {hosted_org})) OR ({o}.tlp = \
                 {strict} AND {hosted_org}) OR ({o}.tlp = {red} AND {hosted_user})))"
            )
        }
    }
}

/// `match[version]` for the row `o`; `None` when every version matches. First and last are taken
/// among the versions the reader can see (and that match `spec_versions`). An empty match means
/// `last`, the TAXII default.
///
/// The caller's query must itself require `o` to be visible to the reader and to match
/// `spec_versions` (every caller does): "`o` is the last such version" is then "no such version of
/// the object is later", a `NOT EXISTS` on the `(stix_id, collection, version)` index. A version
/// whose `superseded` marker is 0 has no later version at all, visible or not, so it is the last
/// one for every reader and the lookup is skipped: most rows of a page need none (see
/// [`supersede_query`], which keeps the marker right).
pub(crate) fn version_cond(
    sql: &mut Sql,
    w: &Who,
    o: &str,
    vm: &VersionMatch,
    spec_versions: &[String],
) -> Option<String> {
    if vm.all {
        return None;
    }
    let last = vm.last || (!vm.first && vm.at.is_empty());
    let mut parts = Vec::new();
    let mut extreme = |sql: &mut Sql, beyond: &str, shortcut: &str| {
        let mut inner = format!(
            "{shortcut}NOT EXISTS (SELECT 1 FROM objects v WHERE v.collection = {o}.collection AND \
             v.stix_id = {o}.stix_id AND v.version {beyond} {o}.version AND {vis}",
            vis = visible(sql, w, "v")
        );
        if !spec_versions.is_empty() {
            inner.push_str(" AND ");
            inner.push_str(&sql.in_texts("v.spec_version", spec_versions));
        }
        inner.push(')');
        parts.push(inner);
    };
    if last {
        extreme(sql, ">", &format!("{o}.superseded = 0 OR "));
    }
    if vm.first {
        extreme(sql, "<", "");
    }
    if !vm.at.is_empty() {
        let at: Vec<i64> = vm.at.iter().map(|t| t.micros()).collect();
        parts.push(sql.in_ints(&format!("{o}.version"), &at));
    }
    Some(format!("({})", parts.join(" OR ")))
}

pub(crate) const OBJECT_COLUMNS: &str =
    "o.seq, o.stix_id, o.type, o.spec_version, o.version, o.date_added, o.json, o.origin";

/// Build a stored object from the eight `OBJECT_COLUMNS`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stored_object(
    seq: i64,
    id: String,
    type_: String,
    spec_version: String,
    version: i64,
    date_added: i64,
    json: String,
    origin: Option<String>,
) -> StoredObject {
    StoredObject {
        seq,
        id,
        type_,
        spec_version,
        version: Timestamp::from_micros(version),
        date_added: Timestamp::from_micros(date_added),
        json,
        origin,
    }
}

/// The conditions of `Objects::objects` and `Objects::count_objects` for collection key `cid`.
fn object_conds(sql: &mut Sql, reader: &Reader, cid: i64, f: &ObjectFilter) -> Vec<String> {
    let w = who(sql, reader);
    let c = sql.bind(Arg::Int(cid));
    let mut conds = vec![
        format!("o.collection = {c}"),
        readable(sql, &w, "o"),
        visible(sql, &w, "o"),
    ];
    if let Some(after) = f.after_seq {
        let p = sql.bind(Arg::Int(after));
        conds.push(format!("o.seq > {p}"));
    }
    if let Some(t) = f.added_after {
        // `date_added` grows with `seq`: turn the time bound into a sequence bound so that the
        // (collection, seq) index drives the scan.
        let p = sql.bind(Arg::Int(t.micros()));
        conds.push(format!(
            "o.seq > COALESCE((SELECT d.seq FROM objects d WHERE d.date_added <= {p} ORDER BY \
             d.date_added DESC LIMIT 1), 0)"
        ));
        conds.push(format!("o.date_added > {p}"));
    }
    if !f.ids.is_empty() {
        conds.push(sql.in_texts("o.stix_id", &f.ids));
    }
    if !f.types.is_empty() {
        conds.push(sql.in_texts("o.type", &f.types));
    }
    if !f.spec_versions.is_empty() {
        conds.push(sql.in_texts("o.spec_version", &f.spec_versions));
    }
    if let Some(v) = version_cond(sql, &w, "o", &f.versions, &f.spec_versions) {
        conds.push(v);
    }
    conds
}

/// The page query of `Objects::objects` for collection key `cid` (fetches `limit + 1` rows).
pub(crate) fn objects_query(dialect: Dialect, who_: &Reader, cid: i64, f: &ObjectFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    let conds = object_conds(&mut sql, who_, cid, f);
    let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX - 1) + 1;
    let l = sql.bind(Arg::Int(limit));
    sql.text = format!(
        "SELECT {OBJECT_COLUMNS} FROM objects o{} WHERE {} ORDER BY o.seq LIMIT {l}",
        by_id_index(dialect, f),
        conds.join(" AND ")
    );
    sql
}

/// For a read of named objects (TAXII's object and versions endpoints, `match[id]`), the index
/// hint that makes SQLite look the ids up in the `(stix_id, collection, version)` key.
///
/// Without statistics SQLite guesses that `collection = ?` alone is selective and walks the
/// `(collection, seq)` index, which spares it the sort of `ORDER BY seq` but reads the whole
/// collection to find the few versions of one object (0.4 s at a million objects). PostgreSQL, whose
/// statistics are kept fresh (see `PgStore::after_write`), picks the key by itself.
fn by_id_index(dialect: Dialect, f: &ObjectFilter) -> &'static str {
    match dialect {
        Dialect::Sqlite if !f.ids.is_empty() => " INDEXED BY objects_key",
        _ => "",
    }
}

/// The query of `Objects::count_objects`: one row, the number of matching versions (the filter's
/// limit ignored).
pub(crate) fn count_query(dialect: Dialect, who_: &Reader, cid: i64, f: &ObjectFilter) -> Sql {
    let mut sql = Sql::new(dialect);
    let conds = object_conds(&mut sql, who_, cid, f);
    sql.text = format!(
        "SELECT count(*) FROM objects o{} WHERE {}",
        by_id_index(dialect, f),
        conds.join(" AND ")
    );
    sql
}

/// The query of `Objects::object_routes`: distinct (id, origin, via) of the given STIX ids, in any
/// collection (the id leads the (stix_id, collection, version) key, which serves it).
pub(crate) fn routes_query(dialect: Dialect, ids: &[String]) -> Sql {
    let mut sql = Sql::new(dialect);
    let cond = sql.in_texts("o.stix_id", ids);
    sql.text = format!(
        "SELECT DISTINCT o.stix_id, o.origin, o.via FROM objects o WHERE o.collection IN (SELECT \
         cid FROM collections) AND {cond} ORDER BY 1, 2, 3"
    );
    sql
}

/// The query of `Objects::marking_labels`: rows (id, JSON text) of the stored marking definitions whose
/// lower-cased id is one of `ids` (already lower-cased), in any collection. The literal type and
/// `lower(stix_id)` match the partial index `objects_marking_definitions`.
pub(crate) fn marking_query(dialect: Dialect, ids: &[String]) -> Sql {
    let mut sql = Sql::new(dialect);
    let cond = sql.in_texts("lower(stix_id)", ids);
    sql.text =
        format!("SELECT stix_id, json FROM objects WHERE type = 'marking-definition' AND {cond}");
    sql
}

/// The answer of [`marking_query`]: the narrowest TLP each id's stored versions define, keyed by the
/// lower-cased id; a definition that carries no TLP (or whose text does not parse) is left out.
pub(crate) fn marking_labels(rows: Vec<(String, String)>) -> HashMap<String, Tlp> {
    let mut out: HashMap<String, Tlp> = HashMap::new();
    for (id, json) in rows {
        let Ok(serde_json::Value::Object(raw)) = serde_json::from_str(&json) else {
            continue;
        };
        if let Some(t) = Tlp::defined_by(&raw) {
            let e = out.entry(id.to_ascii_lowercase()).or_insert(t);
            *e = (*e).max(t);
        }
    }
    out
}

/// The query of `Directory::ids_by_name`: rows (kind, name, id), kind `o` for an organisation and `u`
/// for a user.
pub(crate) fn names_query(dialect: Dialect, orgs: &[String], users: &[String]) -> Sql {
    let mut sql = Sql::new(dialect);
    let o = sql.in_texts("name", orgs);
    let u = sql.in_texts("u.name", users);
    sql.text = format!(
        "SELECT CAST('o' AS TEXT), name, id, node FROM orgs WHERE {o} UNION ALL SELECT CAST('u' \
         AS TEXT), u.name, u.id, g.node FROM users u JOIN orgs g ON g.id = u.org_id WHERE {u}"
    );
    sql
}

/// A row of [`names_query`]: kind (`o` or `u`), name, id, home node.
pub(crate) type NameRow = (String, String, String, Option<String>);

/// The answer of [`names_query`].
pub(crate) fn name_ids(rows: Vec<NameRow>) -> crate::NameIds {
    let mut out = crate::NameIds::default();
    for (kind, name, id, home) in rows {
        if kind == "o" {
            if let Some(h) = home {
                out.org_homes.insert(name.clone(), h);
            }
            out.orgs.insert(name, kopa_core::OrgId(id));
        } else {
            if let Some(h) = home {
                out.user_homes.insert(name.clone(), h);
            }
            out.users.insert(name, kopa_core::UserId(id));
        }
    }
    out
}

/// Turn `limit + 1` fetched rows into a page.
pub(crate) fn page(mut rows: Vec<StoredObject>, limit: usize) -> crate::Page {
    let limit = limit.max(1);
    let more = rows.len() > limit;
    rows.truncate(limit);
    crate::Page {
        objects: rows,
        more,
    }
}

/// The selection of `Objects::delete_object`: the versions it would delete, as (seq, owner
/// organisation, origin node, author), for the permission rule to check each.
pub(crate) fn delete_query(
    dialect: Dialect,
    who_: &Audience,
    cid: i64,
    id: &str,
    versions: &VersionMatch,
    spec_versions: &[String],
) -> Sql {
    let mut sql = Sql::new(dialect);
    let w = who(&mut sql, &Reader::Person(who_.clone()));
    let c = sql.bind(Arg::Int(cid));
    let i = sql.bind(Arg::Text(id.to_string()));
    let mut conds = vec![
        format!("o.collection = {c}"),
        format!("o.stix_id = {i}"),
        readable(&sql, &w, "o"),
        visible(&sql, &w, "o"),
    ];
    if !spec_versions.is_empty() {
        conds.push(sql.in_texts("o.spec_version", spec_versions));
    }
    if let Some(v) = version_cond(&mut sql, &w, "o", versions, spec_versions) {
        conds.push(v);
    }
    sql.text = format!(
        "SELECT o.seq, o.owner_org, o.origin, o.author FROM objects o WHERE {}",
        conds.join(" AND ")
    );
    sql
}

/// One version selected for deletion: (seq, owner organisation, origin node, author).
pub(crate) type DeleteRow = (i64, String, Option<String>, String);

/// Ask the permission rule about every version selected for deletion: the sequence numbers to
/// delete, or the first refusal (then nothing is deleted).
pub(crate) fn may_delete(
    who: &Principal,
    rights: Rights,
    rows: Vec<DeleteRow>,
) -> crate::Result<Vec<i64>> {
    let actor = Actor::Person(who);
    rows.into_iter()
        .map(|(seq, org, node, author)| {
            let owner = Producer {
                org: OrgId(org),
                node,
            };
            let author = UserId(author);
            permission::decide(
                &actor,
                &Action::DeleteObject {
                    rights,
                    owner: &owner,
                    author: &author,
                },
            )
            .map(|()| seq)
            .map_err(|r| crate::StoreError::Refused(r.0))
        })
        .collect()
}

/// Delete the versions with these sequence numbers.
pub(crate) fn delete_seqs_query(dialect: Dialect, seqs: &[i64]) -> Sql {
    let mut sql = Sql::new(dialect);
    let cond = sql.in_ints("seq", seqs);
    sql.text = format!("DELETE FROM objects WHERE {cond}");
    sql
}

/// The producers of the objects already held on the node (in any collection) with the ids of a
/// batch: (stix_id, owner organisation, origin node), the earliest version's first.
pub(crate) fn producers_query(dialect: Dialect, ids: &[String]) -> Sql {
    let mut sql = Sql::new(dialect);
    let cond = sql.in_texts("stix_id", ids);
    sql.text = format!("SELECT stix_id, owner_org, origin FROM objects WHERE {cond} ORDER BY seq");
    sql
}

/// The TAXII status resource `id` as `who` may read it, written once for both dialects: a person
/// reads the statuses its own organisation's users posted, a peer those it posted. Hidden and missing
/// look the same (no row).
pub(crate) fn status_query(dialect: Dialect, who: &Reader, id: &str) -> Sql {
    let mut sql = Sql::new(dialect);
    let id = sql.bind(Arg::Text(id.to_string()));
    let readable = match who {
        Reader::Person(a) => {
            let user = sql.bind(Arg::Text(a.user.0.clone()));
            let org = sql.bind(Arg::Text(a.org.0.clone()));
            format!("(s.owner = {user} OR s.owner IN (SELECT u.id FROM users u WHERE u.org_id = {org}))")
        }
        Reader::Peer(p) => {
            let node = sql.bind(Arg::Text(p.node.clone()));
            format!("s.owner = {node}")
        }
    };
    sql.text = format!(
        "SELECT s.id, s.owner, s.request_timestamp, s.json FROM statuses s WHERE s.id = {id} AND \
         {readable}"
    );
    sql
}

/// Rows of [`producers_query`].
pub(crate) type ProducerRow = (String, String, Option<String>);

/// The producer of each id held (that of its earliest stored version).
pub(crate) fn producers(rows: Vec<ProducerRow>) -> HashMap<String, Producer> {
    let mut out = HashMap::new();
    for (id, org, node) in rows {
        out.entry(id).or_insert(Producer {
            org: OrgId(org),
            node,
        });
    }
    out
}

/// Bring the `superseded` marker of every stored version of the objects `ids` in collection `cid`
/// up to date: 1 when a later version of the same object is stored in the collection, else 0. Run
/// in the transaction of each write that adds a version to an object already stored (or several
/// versions of one object), and after each delete; rows already right are not written.
pub(crate) fn supersede_query(dialect: Dialect, cid: i64, ids: &[String]) -> Sql {
    let mut sql = Sql::new(dialect);
    let c = sql.bind(Arg::Int(cid));
    let cond = sql.in_texts("stix_id", ids);
    sql.text = format!(
        "UPDATE objects SET superseded = 1 - superseded WHERE collection = {c} AND {cond} AND \
         superseded <> CASE WHEN EXISTS (SELECT 1 FROM objects l WHERE l.collection = \
         objects.collection AND l.stix_id = objects.stix_id AND l.version > objects.version) \
         THEN 1 ELSE 0 END"
    );
    sql
}

/// The ids among `rows` (new versions about to be stored) whose `superseded` markers may change:
/// those with a version already stored (`stored`, from [`plan`]) or with more than one new version.
pub(crate) fn supersede_ids(stored: &HashSet<String>, rows: &[Row]) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        let id = r.stix_id.as_str();
        if stored.contains(id) || !seen.insert(id) {
            out.push(r.stix_id.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The query of `Objects::search`: the latest visible version of each object that mentions `value`.
pub(crate) fn search_query(dialect: Dialect, who_: &Audience, value: &str, limit: usize) -> Sql {
    let mut sql = Sql::new(dialect);
    let w = who(&mut sql, &Reader::Person(who_.clone()));
    let v = sql.bind(Arg::Text(normalize_value(value)));
    let last = version_cond(&mut sql, &w, "o", &VersionMatch::last(), &[]).unwrap_or_default();
    let l = sql.bind(Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    sql.text = format!(
        "SELECT {OBJECT_COLUMNS} FROM object_values x JOIN objects o ON o.seq = x.seq WHERE \
         x.value = {v} AND {} AND {} AND {last} ORDER BY o.seq LIMIT {l}",
        readable(&sql, &w, "o"),
        visible(&sql, &w, "o")
    );
    sql
}

/// Search values are matched case-insensitively and without surrounding blanks.
pub(crate) fn normalize_value(v: &str) -> String {
    v.trim().to_lowercase()
}

/// One object version to insert, with everything assigned.
#[derive(Debug)]
pub(crate) struct Row {
    pub seq: i64,
    pub stix_id: String,
    pub type_: String,
    pub spec_version: String,
    pub version: i64,
    pub date_added: i64,
    pub owner_org: String,
    pub author: String,
    pub tlp: i64,
    pub narrowed: i64,
    pub json: String,
    pub origin: Option<String>,
    pub via: Option<String>,
    pub orgs: Vec<String>,
    pub users: Vec<String>,
    pub values: Vec<String>,
}

/// The versions already stored for the ids of a batch: (stix_id, version, json).
pub(crate) type Existing = Vec<(String, i64, String)>;

/// Decide the outcome of each object of a batch, given what is stored in the collection
/// (`existing`) and who produced the ids already held anywhere on the node (`producers`, see
/// [`producers`]). A version whose producer is not the id's is refused by the permission rule
/// (`permission::may_version`) before anything else is said about it, so the refusal reveals only
/// that the id belongs to another producer. Returns the outcomes of the objects that are not new,
/// the indexes of the new ones (in input order), and the ids that have a version stored already
/// (for [`supersede_ids`]).
pub(crate) fn plan(
    objects: &[NewObject],
    existing: Existing,
    mut producers: HashMap<String, Producer>,
) -> (Vec<Option<PutOutcome>>, Vec<usize>, HashSet<String>) {
    // (id, version) -> json, and id -> [(version, json)] for unversioned objects.
    let mut by_key: HashMap<(String, i64), String> = HashMap::new();
    let mut by_id: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for (id, version, json) in existing {
        by_id
            .entry(id.clone())
            .or_default()
            .push((version, json.clone()));
        by_key.insert((id, version), json);
    }
    // Unversioned objects new in this batch: id -> jsons (their version is assigned later).
    let mut new_unversioned: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut outcomes = Vec::with_capacity(objects.len());
    let mut new = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let poster = Producer {
            org: o.steward.owner_org.clone(),
            node: o.origin.clone(),
        };
        // The first object of the batch with a new id makes its producer for the rest of the batch.
        let producer = producers
            .entry(o.id.clone())
            .or_insert_with(|| poster.clone());
        if let Err(refusal) = permission::may_version(producer, &poster) {
            outcomes.push(Some(PutOutcome::Failed {
                message: format!("{}: {refusal}", o.id),
            }));
            continue;
        }
        match o.version {
            Some(v) => {
                let key = (o.id.clone(), v.micros());
                match by_key.get(&key) {
                    Some(json) if *json == o.json => {
                        outcomes.push(Some(PutOutcome::Duplicate { version: v }))
                    }
                    Some(_) => outcomes.push(Some(PutOutcome::Failed {
                        message: format!(
                            "a different object with id {} and version {} is already stored",
                            o.id,
                            v.to_taxii()
                        ),
                    })),
                    None => {
                        by_key.insert(key, o.json.clone());
                        outcomes.push(None);
                        new.push(i);
                    }
                }
            }
            None => {
                let stored = by_id
                    .get(&o.id)
                    .and_then(|vs| vs.iter().find(|(_, j)| *j == o.json));
                if let Some((v, _)) = stored {
                    outcomes.push(Some(PutOutcome::Duplicate {
                        version: Timestamp::from_micros(*v),
                    }));
                } else if new_unversioned
                    .get(o.id.as_str())
                    .is_some_and(|js| js.contains(&o.json.as_str()))
                {
                    // The same object twice in one batch: the first is stored, this one is a
                    // duplicate of it (its version is filled in once assigned).
                    outcomes.push(None);
                    new.push(i);
                } else {
                    new_unversioned
                        .entry(o.id.as_str())
                        .or_default()
                        .push(o.json.as_str());
                    outcomes.push(None);
                    new.push(i);
                }
            }
        }
    }
    (outcomes, new, by_id.into_keys().collect())
}

/// Assign sequence numbers and `date_added` to the new objects (from `first_seq` and `first_added`,
/// consecutive) and fill in their outcomes. Unversioned repeats within the batch become duplicates
/// of their first occurrence.
pub(crate) fn assign(
    objects: &[NewObject],
    outcomes: &mut [Option<PutOutcome>],
    new: &[usize],
    first_seq: i64,
    first_added: i64,
) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::with_capacity(new.len());
    let mut first_of: HashMap<(&str, &str), i64> = HashMap::new();
    let mut k = 0i64;
    for &i in new {
        let o = &objects[i];
        if o.version.is_none() {
            if let Some(&v) = first_of.get(&(o.id.as_str(), o.json.as_str())) {
                outcomes[i] = Some(PutOutcome::Duplicate {
                    version: Timestamp::from_micros(v),
                });
                continue;
            }
        }
        let seq = first_seq + k;
        let date_added = first_added + k;
        k += 1;
        let version = o.version.map_or(date_added, |v| v.micros());
        if o.version.is_none() {
            first_of.insert((o.id.as_str(), o.json.as_str()), version);
        }
        outcomes[i] = Some(PutOutcome::Stored {
            version: Timestamp::from_micros(version),
        });
        let mut values: Vec<String> = o
            .values
            .iter()
            .map(|v| normalize_value(v))
            .filter(|v| !v.is_empty())
            .collect();
        values.sort();
        values.dedup();
        let mut orgs: Vec<String> = o.steward.orgs.iter().map(|x| x.0.clone()).collect();
        orgs.sort();
        orgs.dedup();
        let mut users: Vec<String> = o.steward.users.iter().map(|x| x.0.clone()).collect();
        users.sort();
        users.dedup();
        rows.push(Row {
            seq,
            stix_id: o.id.clone(),
            type_: o.type_.clone(),
            spec_version: o.spec_version.clone(),
            version,
            date_added,
            owner_org: o.steward.owner_org.0.clone(),
            author: o.steward.author.0.clone(),
            tlp: o.steward.tlp.rank(),
            narrowed: i64::from(o.steward.narrowed()),
            json: o.json.clone(),
            origin: o.origin.clone(),
            via: o.via.clone(),
            orgs,
            users,
            values,
        });
    }
    rows
}

/// How many rows `assign` will produce for `new` (unversioned repeats excluded).
pub(crate) fn count_new(objects: &[NewObject], new: &[usize]) -> i64 {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut n = 0;
    for &i in new {
        let o = &objects[i];
        if o.version.is_none() && !seen.insert((o.id.as_str(), o.json.as_str())) {
            continue;
        }
        n += 1;
    }
    n
}

/// The ids of a batch, deduplicated.
pub(crate) fn batch_ids(objects: &[NewObject]) -> Vec<String> {
    let mut ids: Vec<String> = objects.iter().map(|o| o.id.clone()).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Encode a collection's read or write list for storage.
pub(crate) fn access_all(a: &crate::Access) -> i64 {
    i64::from(matches!(a, crate::Access::All))
}

pub(crate) fn access_orgs(a: &crate::Access) -> Vec<String> {
    match a {
        crate::Access::All => Vec::new(),
        crate::Access::Orgs(v) => {
            let mut v: Vec<String> = v.iter().map(|o| o.0.clone()).collect();
            v.sort();
            v.dedup();
            v
        }
    }
}

pub(crate) fn access_from(all: bool, orgs: Vec<String>) -> crate::Access {
    if all {
        crate::Access::All
    } else {
        crate::Access::Orgs(orgs.into_iter().map(kopa_core::OrgId).collect())
    }
}

/// A collection as `who` sees it. A person reads and writes as the collection's lists say; a peer
/// reads and writes the collections of its policy only (it pushes and sends sightings home into
/// them; what it sends is verified on receipt and stored under the received-object rules), and
/// does not see the others.
pub(crate) fn view(c: crate::Collection, who: &Reader) -> crate::CollectionView {
    let (can_read, can_write) = match who {
        Reader::Person(a) => (allows(&c.read, &a.org), allows(&c.write, &a.org)),
        Reader::Peer(p) => {
            let in_policy = p.collections.contains(&c.id);
            (in_policy, in_policy)
        }
    };
    crate::CollectionView {
        collection: c,
        can_read,
        can_write,
    }
}

/// Whether `who` may read the collection with id `id`, given whether its read list admits the
/// person's organisation (`by_list`; ignored for a peer, whose policy decides).
pub(crate) fn reader_may_read(who: &Reader, id: &str, by_list: bool) -> bool {
    match who {
        Reader::Person(_) => by_list,
        Reader::Peer(p) => p.collections.iter().any(|c| c == id),
    }
}

/// The id of a new collection: the given one (a UUID, written in canonical lower-case form) or a
/// fresh UUIDv4.
pub(crate) fn collection_id(given: Option<&str>) -> crate::Result<String> {
    match given {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some(id) => uuid::Uuid::parse_str(id.trim())
            .map(|u| u.to_string())
            .map_err(|e| {
                crate::StoreError::Invalid(format!("collection id {id:?} is not a UUID: {e}"))
            }),
    }
}

pub(crate) fn collection_id_taken(id: &str) -> crate::StoreError {
    crate::StoreError::Conflict(format!("a collection with id {id} already exists"))
}

/// 32 fresh random bytes for a node secret, with the hex text they are stored as.
pub(crate) fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex_encode(&bytes)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored node secret read back; `Backend` when the row was changed into something else.
pub(crate) fn secret_bytes(purpose: &str, text: &str) -> crate::Result<[u8; 32]> {
    let bad =
        || crate::StoreError::backend(format!("node secret {purpose:?} is not 64 hex digits"));
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Refuse a collection alias that is empty or that could be read as a collection id. A path names
/// a collection by its id or its alias, so an alias must never look like an id: a UUID in any of
/// its written forms (hyphenated, simple, braced, `urn:uuid:`) is refused. That the alias is no
/// other collection's id or alias is checked by the backend, inside its write transaction.
pub(crate) fn check_alias(alias: Option<&str>) -> crate::Result<()> {
    let Some(alias) = alias else {
        return Ok(());
    };
    if alias.trim().is_empty() {
        return Err(crate::StoreError::Invalid(
            "a collection alias must not be empty (leave it out instead)".into(),
        ));
    }
    if uuid::Uuid::parse_str(alias.trim()).is_ok() {
        return Err(crate::StoreError::Invalid(format!(
            "collection alias {alias:?} is a UUID: an alias may not look like a collection id \
             (paths name a collection by either)"
        )));
    }
    Ok(())
}

/// The refusal of a collection id or alias that is already some collection's id or alias.
pub(crate) fn collection_name_taken(what: &str, name: &str, holder: &str) -> crate::StoreError {
    crate::StoreError::Conflict(format!(
        "collection {what} {name:?} is already the id or the alias of collection {holder}"
    ))
}

/// Can the organisation `org` read / write under `a`?
pub(crate) fn allows(a: &crate::Access, org: &kopa_core::OrgId) -> bool {
    match a {
        crate::Access::All => true,
        crate::Access::Orgs(v) => v.contains(org),
    }
}

/// A database URL with its password hidden, for messages: `postgres://user:password@host/db` →
/// `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((cred, host)) = rest.rsplit_once('@') {
            let user = cred.split(':').next().unwrap_or("");
            if cred.contains(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}
