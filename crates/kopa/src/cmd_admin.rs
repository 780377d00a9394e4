//! Administration from the command line: organisations, users, tokens, collections and the node.
//!
//! Each command works against `--data DIR` or `--database URL`, also while the server runs, writes
//! an audit entry (actor `cli`, origin `local`) for every change, and with `--json` prints exactly
//! one JSON object on stdout (`{"error": …}` on failure, with a non-zero exit).

use crate::{config, node, StoreArgs};
use anyhow::{bail, Context};
use clap::Subcommand;
use kopa_core::names::{new_name, NameKind};
use kopa_core::permission::{decide, Account, Action, Actor};
use kopa_core::{Role, UserId};
use kopa_store::{Access, AdminAct, Administered, NewCollection, Store, StoreError};
use serde_json::{json, Value};
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Add an organisation (hosted here, or with --peer a directory entry hosted on a peer node).
    Add {
        name: String,
        /// The organisation is hosted on this peer (its name in `kopa peer list`): a directory entry
        /// that audiences can name, whose users never sign in here.
        #[arg(long, value_name = "PEER")]
        peer: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List organisations.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user to an organisation and print their first token (shown only here). A user of an
    /// organisation hosted on a peer gets no token (`"token": null`): it is a directory entry that
    /// audiences can name.
    Add {
        name: String,
        /// The user's organisation (its name).
        #[arg(long)]
        org: String,
        /// reader (reads), analyst (also writes intelligence) or org-admin (also manages the users of
        /// its organisation).
        #[arg(long, default_value = "reader")]
        role: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List users.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Let a user who lost every token in again: print a one-time enrolment code (shown only here)
    /// that the user redeems for a new token with `POST /api/enrol`. Every token the user still has
    /// is revoked; the enrolment is written to the audit log and shown to the user (`GET /api/me`).
    Enrol {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Refused: a token is made only by its own user (`POST /api/users/NAME/tokens`). A user who
    /// lost every token is let in again with `kopa user enrol NAME`.
    Add {
        user: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by its id (the part between `kopa_` and the next `_`).
    Revoke {
        #[arg(value_name = "TOKEN-ID")]
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum CollectionCommand {
    /// Add a collection (a sharing room): who reads it, who writes it.
    Add {
        title: String,
        /// A short unique name for the collection.
        #[arg(long)]
        alias: Option<String>,
        /// The collection id (a UUID), to make the same sharing room on several nodes. Default: a
        /// new random id.
        #[arg(long, value_name = "UUID")]
        id: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Organisations that read it: a comma-separated list of names, or `all`.
        #[arg(long, value_name = "ORG,…|all")]
        read: String,
        /// Organisations that write to it: a comma-separated list of names, or `all`.
        #[arg(long, value_name = "ORG,…|all")]
        write: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List collections with their read and write lists.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Show the node's identity.
    Show {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The result of one admin command: the JSON object and the human line.
pub struct Output {
    pub json: Value,
    pub human: String,
    pub ok: bool,
}

impl Output {
    fn ok(json: Value, human: impl Into<String>) -> Self {
        Output {
            json,
            human: human.into(),
            ok: true,
        }
    }
}

/// Load the configuration for an admin command from its flags.
pub fn admin_config(args: &StoreArgs) -> anyhow::Result<config::Config> {
    let loaded = config::load(&config::Flags {
        config: args.config.clone(),
        data: args.data.clone(),
        database: args.database.clone(),
        listen: None,
    })?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded.config)
}

/// Run an admin command against the node's store and print its output.
pub fn run_admin<F, Fut>(args: &StoreArgs, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = anyhow::Result<Output>>,
{
    let result = (|| {
        let config = admin_config(args)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        rt.block_on(async {
            let store = node::open_existing(&config).await?;
            f(store).await
        })
    })();
    match result {
        Ok(out) => {
            if args.json {
                println!("{}", out.json);
            } else {
                println!("{}", out.human);
            }
            Ok(if out.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) if args.json => {
            println!("{}", json!({ "error": format!("{e:#}") }));
            eprintln!("error: {e:#}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e),
    }
}

fn store_err(what: &str, e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Backend { .. } => anyhow::Error::new(e).context(format!("cannot {what}")),
        other => anyhow::anyhow!("cannot {what}: {other}"),
    }
}

pub fn run_org(cmd: OrgCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OrgCommand::Add { name, peer, store } => run_admin(&store, |s| async move {
            permit(&Action::AdministerNode)?;
            let orgs = s
                .orgs()
                .await
                .map_err(|e| store_err("list organisations", e))?;
            let name = new_name(
                NameKind::Organisation,
                &name,
                orgs.iter().map(|o| o.name.as_str()),
            )
            .map_err(|e| anyhow::anyhow!("cannot add the organisation: {e}"))?;
            let node = match &peer {
                None => None,
                Some(peer) => {
                    let record = s.peer(peer).await.map_err(|e| match e {
                        StoreError::NotFound(_) => anyhow::anyhow!(
                            "--peer: no peer named {peer:?} (declare it with `kopa peer add`)"
                        ),
                        e => store_err("look up the peer", e),
                    })?;
                    Some(record.peer.node_id)
                }
            };
            let act = AdminAct::AddOrg {
                name: name.clone(),
                node: node.clone(),
            };
            let org = s
                .administer(act, Some(node::cli_by(json!({ "node": node }))))
                .await
                .and_then(Administered::org)
                .map_err(|e| match e {
                    StoreError::Conflict(_) => {
                        anyhow::anyhow!("an organisation named {name:?} already exists")
                    }
                    e => store_err("add the organisation", e),
                })?;
            let human = match (&peer, &org.node) {
                (Some(peer), Some(node)) => format!(
                    "organisation {} added (id {}), hosted on peer {peer} (node {node})",
                    org.name, org.id.0
                ),
                _ => format!("organisation {} added (id {})", org.name, org.id.0),
            };
            Ok(Output::ok(
                json!({"id": org.id, "name": org.name, "node": org.node}),
                human,
            ))
        }),
        OrgCommand::List { store } => run_admin(&store, |s| async move {
            let orgs = s
                .orgs()
                .await
                .map_err(|e| store_err("list organisations", e))?;
            let human = orgs
                .iter()
                .map(|o| match &o.node {
                    None => format!("{}\t{}", o.id.0, o.name),
                    Some(node) => format!("{}\t{}\thosted on {node}", o.id.0, o.name),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let list: Vec<Value> = orgs
                .iter()
                .map(|o| json!({"id": o.id, "name": o.name, "node": o.node}))
                .collect();
            Ok(Output::ok(json!({ "organisations": list }), human))
        }),
    }
}

fn parse_role(role: &str) -> anyhow::Result<Role> {
    match Role::parse(role) {
        Some(r @ (Role::Reader | Role::Analyst | Role::OrgAdmin)) => Ok(r),
        Some(Role::Admin) => {
            bail!("the admin role belongs to the node's administrator only; use reader, analyst or org-admin")
        }
        None => bail!("unknown role {role:?}: use reader, analyst or org-admin"),
    }
}

async fn find_org(s: &dyn Store, name: &str) -> anyhow::Result<kopa_store::Org> {
    s.org_by_name(name).await.map_err(|e| match e {
        StoreError::NotFound(_) => {
            anyhow::anyhow!("unknown organisation {name:?} (add it with `kopa org add {name:?}`)")
        }
        e => store_err("look up the organisation", e),
    })
}

async fn find_user(s: &dyn Store, name: &str) -> anyhow::Result<kopa_store::User> {
    s.user_by_name(name).await.map_err(|e| match e {
        StoreError::NotFound(_) => anyhow::anyhow!("unknown user {name:?}"),
        e => store_err("look up the user", e),
    })
}

/// Ask the permission rule whether the operator at the command line may do `action`.
fn permit(action: &Action<'_>) -> anyhow::Result<()> {
    decide(&Actor::Operator, action).map_err(|r| anyhow::anyhow!("{r}"))
}

/// A user and its organisation, by the user's name.
async fn find_account(
    s: &dyn Store,
    name: &str,
) -> anyhow::Result<(kopa_store::User, kopa_store::Org)> {
    let user = find_user(s, name).await?;
    let org = find_org(s, &user.org_name).await?;
    Ok((user, org))
}

/// The account of `user` as a target of the permission rule.
fn account<'a>(user: &'a kopa_store::User, org: &kopa_store::Org) -> Account<'a> {
    Account {
        user: &user.id,
        org: &user.org,
        role: user.role,
        directory: org.node.is_some(),
    }
}

pub fn run_user(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            name,
            org,
            role,
            store,
        } => {
            run_admin(&store, |s| async move {
                let role = parse_role(&role)?;
                let org = find_org(&*s, &org).await?;
                permit(&Action::AddUser {
                    org: &org.id,
                    role,
                    directory: org.node.is_some(),
                })?;
                let users = s.users().await.map_err(|e| store_err("list users", e))?;
                let name = new_name(NameKind::User, &name, users.iter().map(|u| u.name.as_str()))
                    .map_err(|e| anyhow::anyhow!("cannot add the user: {e}"))?;
                // A directory entry (a user of an organisation on another node) gets no token.
                let id = UserId::new();
                let (record, token) = match &org.node {
                    Some(_) => (None, None),
                    None => {
                        let (record, token) = kopa_server::new_token(&id);
                        (Some(record), Some(token))
                    }
                };
                let detail = json!({"org": org.name, "role": role.as_str(), "node": org.node,
                                    "token_id": record.as_ref().map(|t| &t.id)});
                let act = AdminAct::AddUser {
                    id,
                    name: name.clone(),
                    org: org.id.clone(),
                    role,
                    token: record,
                };
                let user = s
                    .administer(act, Some(node::cli_by(detail)))
                    .await
                    .and_then(Administered::user)
                    .map_err(|e| match e {
                        StoreError::Conflict(_) => {
                            anyhow::anyhow!("a user named {name:?} already exists")
                        }
                        e => store_err("add the user", e),
                    })?;
                let Some(token) = token else {
                    let home = org.node.clone().unwrap_or_default();
                    return Ok(Output::ok(
                        json!({"name": user.name, "org": org.name, "role": role.as_str(),
                               "node": home, "token": null}),
                        format!(
                            "user {} added to {} (hosted on node {home}); no token: it signs in \
                             on its own node",
                            user.name, org.name
                        ),
                    ));
                };
                Ok(Output::ok(
                    json!({"name": user.name, "org": org.name, "role": role.as_str(), "token": token}),
                    format!(
                        "user {} ({}) added to {}; token (shown only now): {token}",
                        user.name,
                        role.as_str(),
                        org.name
                    ),
                ))
            })
        }
        UserCommand::Enrol { name, store } => run_admin(&store, |s| async move {
            let (user, org) = find_account(&*s, &name).await?;
            permit(&Action::Enrol(account(&user, &org)))?;
            let (record, code) = kopa_server::enrolment::new_code(&user.id, "cli", s.clock().now());
            let revoked = s
                .add_enrolment_audited(
                    &record,
                    Some(node::cli_entry(
                        "user.enrol",
                        &user.name,
                        json!({"enrolment_id": record.id}),
                    )),
                )
                .await
                .map_err(|e| store_err("issue the enrolment code", e))?;
            let expires = record.expires_at.to_taxii();
            Ok(Output::ok(
                json!({"user": user.name, "code": code, "expires_at": expires,
                       "tokens_revoked": revoked}),
                format!(
                    "enrolment code for {} (shown only now, valid until {expires}, used once; \
                     {revoked} token(s) revoked): {code}",
                    user.name
                ),
            ))
        }),
        UserCommand::List { store } => run_admin(&store, |s| async move {
            let users = s.users().await.map_err(|e| store_err("list users", e))?;
            let human = users
                .iter()
                .map(|u| format!("{}\t{}\t{}", u.name, u.org_name, u.role.as_str()))
                .collect::<Vec<_>>()
                .join("\n");
            let list: Vec<Value> = users
                .iter()
                .map(|u| {
                    json!({"id": u.id, "name": u.name, "org": u.org_name, "role": u.role.as_str()})
                })
                .collect();
            Ok(Output::ok(json!({ "users": list }), human))
        }),
    }
}

pub fn run_token(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Add { user, store } => run_admin(&store, |s| async move {
            let (user, org) = find_account(&*s, &user).await?;
            // The rule refuses the operator a token for anyone: it says how to enrol instead.
            permit(&Action::AddToken(account(&user, &org)))?;
            bail!("the permission rule allowed the operator to mint a token: refusing anyway")
        }),
        TokenCommand::Revoke { id, store } => run_admin(&store, |s| async move {
            s.revoke_token_audited(&id, Some(node::cli_entry("token.revoke", &id, json!({}))))
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => anyhow::anyhow!("unknown token id {id:?}"),
                    e => store_err("revoke the token", e),
                })?;
            Ok(Output::ok(
                json!({"id": id, "revoked": true}),
                format!("token {id} revoked"),
            ))
        }),
    }
}

async fn parse_access(s: &dyn Store, flag: &str, list: &str) -> anyhow::Result<Access> {
    if list.trim().eq_ignore_ascii_case("all") {
        return Ok(Access::All);
    }
    let mut ids = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let org = find_org(s, name)
            .await
            .with_context(|| format!("in --{flag}"))?;
        if !ids.contains(&org.id) {
            ids.push(org.id);
        }
    }
    if ids.is_empty() {
        bail!("--{flag} names no organisation: give ORG,… or all");
    }
    Ok(Access::Orgs(ids))
}

fn access_names(a: &Access, orgs: &[kopa_store::Org]) -> Value {
    match a {
        Access::All => json!("all"),
        Access::Orgs(ids) => {
            let mut names: Vec<String> = ids
                .iter()
                .map(|id| {
                    orgs.iter()
                        .find(|o| &o.id == id)
                        .map(|o| o.name.clone())
                        .unwrap_or_else(|| id.0.clone())
                })
                .collect();
            names.sort();
            json!(names)
        }
    }
}

pub fn run_collection(cmd: CollectionCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CollectionCommand::Add {
            title,
            alias,
            id,
            description,
            read,
            write,
            store,
        } => run_admin(&store, |s| async move {
            let title = title.trim().to_string();
            if title.is_empty() {
                bail!("a collection title must not be empty");
            }
            let new = NewCollection {
                id: id.map(|i| i.trim().to_string()),
                title: title.clone(),
                description,
                alias: alias.filter(|a| !a.trim().is_empty()),
                read: parse_access(&*s, "read", &read).await?,
                write: parse_access(&*s, "write", &write).await?,
            };
            permit(&Action::AdministerNode)?;
            let orgs = s.orgs().await.unwrap_or_default();
            let detail = json!({"title": new.title, "alias": new.alias,
                                "read": access_names(&new.read, &orgs),
                                "write": access_names(&new.write, &orgs)});
            let c = s
                .administer(AdminAct::AddCollection(new), Some(node::cli_by(detail)))
                .await
                .and_then(Administered::collection)
                .map_err(|e| match e {
                    StoreError::Conflict(m) | StoreError::Invalid(m) => {
                        anyhow::anyhow!("cannot add the collection: {m}")
                    }
                    e => store_err("add the collection", e),
                })?;
            Ok(Output::ok(
                json!({"id": c.id, "title": c.title}),
                format!("collection {} added (id {})", c.title, c.id),
            ))
        }),
        CollectionCommand::List { store } => run_admin(&store, |s| async move {
            let orgs = s
                .orgs()
                .await
                .map_err(|e| store_err("list organisations", e))?;
            // Every collection is read or written by at least one organisation: the union of what
            // each organisation sees is every collection.
            let mut cols: Vec<kopa_store::Collection> = Vec::new();
            for org in &orgs {
                let who = kopa_core::Audience {
                    org: org.id.clone(),
                    user: kopa_core::UserId(String::new()),
                };
                let views = s
                    .collections(&who.into())
                    .await
                    .map_err(|e| store_err("list collections", e))?;
                for v in views {
                    if !cols.iter().any(|c| c.id == v.collection.id) {
                        cols.push(v.collection);
                    }
                }
            }
            let list: Vec<Value> = cols
                .iter()
                .map(|c| {
                    json!({"id": c.id, "title": c.title, "alias": c.alias,
                           "description": c.description,
                           "read": access_names(&c.read, &orgs), "write": access_names(&c.write, &orgs)})
                })
                .collect();
            let human = list
                .iter()
                .map(|c| {
                    format!(
                        "{}\t{}\tread: {}\twrite: {}",
                        c["id"].as_str().unwrap_or(""),
                        c["title"].as_str().unwrap_or(""),
                        c["read"],
                        c["write"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output::ok(json!({ "collections": list }), human))
        }),
    }
}

pub fn run_node(cmd: NodeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NodeCommand::Show { store } => {
            // run_admin reads the configuration again and reports its errors; here it only gives
            // the data directory (where the key is) and node.url.
            let cfg = admin_config(&store).ok();
            run_admin(&store, |s| async move {
                let n = s
                    .node()
                    .await
                    .map_err(|e| store_err("read the node", e))?
                    .context("the node is not initialised")?;
                let cfg = cfg.context("cannot read the configuration")?;
                let key = kopa_federation::NodeKey::load(&cfg.data)?;
                let public_key = key.as_ref().map(|k| k.public_key().encode());
                let human = match &public_key {
                    Some(pk) => format!(
                        "node {} (id {}) public key {pk} url {}",
                        n.name,
                        n.id,
                        cfg.node_url.as_deref().unwrap_or("(none: set node.url)")
                    ),
                    None => format!(
                        "node {} (id {}) has no key yet in {}: `kopa serve` makes it",
                        n.name,
                        n.id,
                        cfg.data.display()
                    ),
                };
                Ok(Output::ok(
                    json!({"id": n.id, "name": n.name, "public_key": public_key,
                           "url": cfg.node_url}),
                    human,
                ))
            })
        }
    }
}
