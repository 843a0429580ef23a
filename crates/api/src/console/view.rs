//! What the console shows of an account, as table cells: the page renders them as HTML, the
//! live endpoint sends the same cells as JSON, so both always say the same. Only fields meant
//! for the account's eyes are read; no password hash, private key or token is ever a cell.

use keyplane_core::audit::AuditEvent;
use keyplane_core::console::AccountOverview;
use keyplane_core::instance::{HostKind, Instance, OpState};
use keyplane_core::keypair::{KeyPair, Namespace};
use serde::Serialize;

/// One table cell: its text and, for states, a class to colour it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// The text shown.
    #[serde(rename = "t")]
    pub text: String,
    /// CSS class, if any.
    #[serde(rename = "c", skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: None,
    }
}

fn marked(text: impl Into<String>, class: String) -> Cell {
    Cell {
        text: text.into(),
        class: Some(class),
    }
}

/// A table: its column heads and rows.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Column heads.
    #[serde(skip)]
    pub heads: &'static [&'static str],
    /// What an empty table says instead.
    #[serde(skip)]
    pub empty: &'static str,
    /// Rows of cells.
    pub rows: Vec<Vec<Cell>>,
}

/// The account's tables, as rendered now.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// Instances.
    pub instances: Table,
    /// Key pairs.
    pub key_pairs: Table,
    /// Agents.
    pub agents: Table,
    /// The audit trail, as filtered.
    pub audit: Table,
    /// How many instances have an operation in progress (the page polls faster meanwhile).
    pub operating: usize,
    /// When this was read, for people.
    pub as_of: String,
}

/// The provider a namespace belongs to, for people.
pub fn namespace_label(ns: Namespace) -> &'static str {
    match ns {
        Namespace::Cvm => "CVM",
        Namespace::Lighthouse => "Lighthouse",
        Namespace::Ecs => "ECS",
    }
}

pub use keyplane_core::console::utc;

fn place(ns: Namespace, region: &str, zone: &str) -> String {
    [namespace_label(ns), region, zone]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" · ")
}

fn bound_keys(o: &AccountOverview, inst: &Instance) -> String {
    if inst.key_ids.is_empty() {
        return "none".into();
    }
    inst.key_ids
        .iter()
        .map(|id| match o.key_name(id) {
            Some(name) => format!("{name} ({id})"),
            None => id.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn op_state(inst: &Instance) -> Cell {
    match inst.latest_operation_state {
        None => cell("—"),
        Some(state) => {
            let class = format!("op op-{}", state.as_str().to_ascii_lowercase());
            match (&inst.latest_operation_error, state) {
                (Some(why), OpState::Failed) => marked(format!("FAILED: {why}"), class),
                _ => marked(state.as_str(), class),
            }
        }
    }
}

fn instance_row(o: &AccountOverview, i: &Instance) -> Vec<Cell> {
    let state_class = format!("state state-{}", i.state.as_str().to_ascii_lowercase());
    vec![
        cell(&i.id),
        cell(&i.name),
        cell(place(i.namespace, &i.region, &i.zone)),
        marked(i.state.as_str(), state_class),
        cell(format!("{}:{}", i.private_ip, i.ssh_port)),
        cell(bound_keys(o, i)),
        cell(i.latest_operation.as_deref().unwrap_or("—")),
        op_state(i),
        cell(i.latest_operation_request_id.as_deref().unwrap_or("—")),
    ]
}

fn key_row(k: &KeyPair) -> Vec<Cell> {
    let bound = if k.associated_instance_ids.is_empty() {
        "not bound".to_string()
    } else {
        k.associated_instance_ids.join(", ")
    };
    vec![
        cell(&k.id),
        cell(&k.name),
        cell(place(k.namespace, &k.region, "")),
        cell(&k.fingerprint_sha256),
        cell(&k.fingerprint_md5),
        cell(bound),
    ]
}

fn host_label(h: HostKind) -> &'static str {
    match h {
        HostKind::Agent => "registered host",
        HostKind::Sandbox => "sandbox instance",
        HostKind::Record => "record",
    }
}

fn agent_row(i: &Instance, seen: Option<i64>, now: i64) -> Vec<Cell> {
    let last_seen = match seen {
        Some(at) => format!("{} ({} s ago)", utc(at), (now - at).max(0)),
        None => "never".into(),
    };
    let applied = if i.applied_generation >= i.desired_generation {
        marked(
            format!("applied (generation {})", i.applied_generation),
            "op op-success".into(),
        )
    } else {
        marked(
            format!(
                "applying generation {} (has {})",
                i.desired_generation, i.applied_generation
            ),
            "op op-operating".into(),
        )
    };
    vec![
        cell(&i.id),
        cell(&i.name),
        cell(host_label(i.host)),
        cell(format!("{}:{}", i.private_ip, i.ssh_port)),
        cell(&i.os_name),
        applied,
        cell(last_seen),
    ]
}

/// The tables of `o` and the audit `events`, read at `now` (unix seconds).
pub fn view(o: &AccountOverview, events: &[AuditEvent], now: i64) -> View {
    let agents = o
        .instances
        .iter()
        .filter(|i| i.host == HostKind::Agent || o.agents_seen.contains_key(&i.id))
        .map(|i| agent_row(i, o.agents_seen.get(&i.id).copied(), now))
        .collect();
    View {
        instances: Table {
            heads: &[
                "Instance",
                "Name",
                "Where",
                "State",
                "Address",
                "Bound keys",
                "Latest operation",
                "Operation state",
                "Request id",
            ],
            empty: "No instances.",
            rows: o.instances.iter().map(|i| instance_row(o, i)).collect(),
        },
        key_pairs: Table {
            heads: &[
                "Key pair",
                "Name",
                "Where",
                "Fingerprint (SHA-256)",
                "Fingerprint (MD5)",
                "Bound to",
            ],
            empty: "No key pairs.",
            rows: o.key_pairs.iter().map(key_row).collect(),
        },
        agents: Table {
            heads: &[
                "Instance",
                "Name",
                "Kind",
                "Address",
                "OS",
                "SSH state",
                "Last seen",
            ],
            empty: "No agent has been heard from.",
            rows: agents,
        },
        audit: super::audit::table(events),
        operating: o.instances.iter().filter(|i| i.is_busy()).count(),
        as_of: utc(now),
    }
}
