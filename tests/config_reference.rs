//! docs/configuration.md against the configuration structs, both ways: every key the structs
//! accept is documented in the section of its table, and every key the document lists is one
//! the structs accept.
//!
//! The keys come from the structs themselves, through their derived `Deserialize` and
//! `deny_unknown_fields`: deserializing a table that holds only an unknown key fails with
//! serde's "unknown field `…`, expected one of `a`, `b`, …", which lists every field the table
//! takes. Probing each field with a one-key table and with an array of one such table tells
//! tables and arrays of tables (whose fields are probed in turn) from plain values. So a field
//! added to any struct, however deep (`[[ports]]`, `[[map_server.sites]]`,
//! `map_server.sites[].eid_prefixes`, ...), shows up here without this file changing.
//!
//! The document's side: a heading whose text is a TOML table name (`## [eal]`,
//! `### [[lisp.map_servers]]`, `#### [[map_server.sites.eid_prefixes]]`) opens the section of
//! that table; the first cell of each table row in the section names its keys in backticks
//! (several keys may share a row: `` `local_address`, `remote_address` ``). A key whose value
//! is a table or an array of tables is documented by that table's own section.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pxtr::config::Config;
use serde_json::{json, Value};

const PROBE: &str = "__pxtr_probe__";

/// The fields of the table at `path` (a JSON document with the probe placed there), if the
/// value at `path` is a table; `None` if it is a plain value.
fn fields_at(doc: Value) -> Option<Vec<String>> {
    let err = serde_json::from_value::<Config>(doc).expect_err("the probe key is not a field");
    let msg = err.to_string();
    let rest = msg.strip_prefix(&format!("unknown field `{PROBE}`"))?;
    if rest.contains("there are no fields") {
        return Some(Vec::new());
    }
    let expected = rest
        .split_once("expected")
        .unwrap_or_else(|| panic!("unexpected serde message: {msg}"))
        .1;
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// Builds the JSON document that puts `leaf` at `path`; an element step (`[]`) wraps it in a
/// one-element array.
fn place(path: &[String], leaf: Value) -> Value {
    path.iter().rev().fold(leaf, |inner, step| {
        if step == "[]" {
            Value::Array(vec![inner])
        } else {
            json!({ step.as_str(): inner })
        }
    })
}

/// A table the configuration accepts.
struct Table {
    /// An array of tables (`[[ports]]`), not a single one (`[eal]`).
    array: bool,
    fields: Vec<String>,
}

/// Every table the structs accept, by its dotted name ("" for the top level, "ports",
/// "ports.neighbors", "map_server.sites.eid_prefixes", ...), with its fields.
fn tables_from_structs() -> BTreeMap<String, Table> {
    let mut out = BTreeMap::new();
    // (JSON path with "[]" for array elements, dotted table name, array of tables)
    let mut todo: Vec<(Vec<String>, String, bool)> = vec![(Vec::new(), String::new(), false)];
    while let Some((path, name, array)) = todo.pop() {
        let fields = fields_at(place(&path, json!({ PROBE: 1 })))
            .unwrap_or_else(|| panic!("{name:?} was probed as a table but is not one"));
        for f in &fields {
            let child = if name.is_empty() {
                f.clone()
            } else {
                format!("{name}.{f}")
            };
            let mut p = path.clone();
            p.push(f.clone());
            if fields_at(place(&p, json!({ PROBE: 1 }))).is_some() {
                todo.push((p, child, false));
                continue;
            }
            p.push("[]".into());
            if fields_at(place(&p, json!({ PROBE: 1 }))).is_some() {
                todo.push((p, child, true));
            }
        }
        out.insert(name, Table { array, fields });
    }
    out
}

/// The document's sections: table name → keys listed in its rows. Rows before the first
/// table heading belong to the top level ("").
fn tables_from_doc(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    out.insert(section.clone(), BTreeSet::new());
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        if line.starts_with('#') {
            let title = line.trim_start_matches('#').trim();
            if title.starts_with('[') && title.ends_with(']') {
                section = title.trim_matches(|c| c == '[' || c == ']').to_owned();
                assert!(
                    out.insert(section.clone(), BTreeSet::new()).is_none(),
                    "docs/configuration.md: section [{section}] appears twice"
                );
            }
            continue;
        }
        let Some(row) = line.strip_prefix('|') else {
            continue;
        };
        let first = row.split('|').next().unwrap_or("").trim();
        if !first.starts_with('`') {
            continue; // a header or separator row
        }
        let keys = out.get_mut(&section).expect("section inserted");
        for k in first.split('`').skip(1).step_by(2) {
            keys.insert(k.to_owned());
        }
    }
    out
}

fn section_title(name: &str, structs: &BTreeMap<String, Table>) -> String {
    if structs.get(name).is_some_and(|t| t.array) {
        format!("[[{name}]]")
    } else {
        format!("[{name}]")
    }
}

fn check(doc: &str) -> Vec<String> {
    let structs = tables_from_structs();
    let documented = tables_from_doc(doc);
    let mut problems = Vec::new();
    for (table, Table { fields, .. }) in &structs {
        let title = section_title(table, &structs);
        let Some(keys) = documented.get(table) else {
            problems.push(format!(
                "table {title} ({} keys) has no section: add a heading `{title}` with a table of its keys",
                fields.len()
            ));
            continue;
        };
        for f in fields {
            let child = if table.is_empty() {
                f.clone()
            } else {
                format!("{table}.{f}")
            };
            // A table's own section documents it (a row in the parent may point there).
            if !keys.contains(f) && !structs.contains_key(&child) {
                let at = if table.is_empty() {
                    "the top level (a table before the first section)".to_owned()
                } else {
                    format!("section {title}")
                };
                problems.push(format!("key `{f}` is not documented under {at}"));
            }
        }
    }
    for (section, keys) in &documented {
        let title = section_title(section, &structs);
        let Some(Table { fields, .. }) = structs.get(section) else {
            problems.push(format!(
                "section {title} documents a table the configuration does not have"
            ));
            continue;
        };
        for k in keys {
            if !fields.contains(k) {
                problems.push(format!(
                    "section {title} documents `{k}`, which is not a key of that table (keys: {})",
                    fields.join(", ")
                ));
            }
        }
    }
    problems
}

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    let problems = check(&doc());
    assert!(
        problems.is_empty(),
        "docs/configuration.md and src/config/model.rs disagree:\n  - {}",
        problems.join("\n  - ")
    );
}

/// The probe finds what the structs hold, nested arrays of tables included, so the check above
/// is not vacuous.
#[test]
fn the_probe_sees_nested_tables() {
    let t = tables_from_structs();
    for (table, field) in [
        ("", "ports"),
        ("eal", "memory_mb"),
        ("ports", "kernel_addresses"),
        ("ports.neighbors", "mac"),
        ("lcores.workers", "queue"),
        ("lisp.map_servers", "key_id"),
        ("lisp.static_mappings.rlocs", "weight"),
        ("map_server.sites", "eid_prefixes"),
        ("map_server.sites.eid_prefixes", "accept_more_specifics"),
        ("ipsec.peers", "remote_rlocs"),
    ] {
        assert!(
            t.get(table)
                .is_some_and(|t| t.fields.iter().any(|x| x == field)),
            "{table}.{field} not found; tables: {:?}",
            t.keys().collect::<Vec<_>>()
        );
    }
    // Plain values are not taken for tables.
    assert!(!t.contains_key("lisp.rlocs"));
    assert!(!t.contains_key("appliance.role"));
    assert!(t["ports"].array && t["map_server.sites.eid_prefixes"].array);
    assert!(!t["eal"].array && !t["lcores"].array);
    // The top-level tables are those Config::default() serializes.
    let top: BTreeSet<String> = match serde_json::to_value(Config::default()).unwrap() {
        Value::Object(m) => m.keys().cloned().collect(),
        v => panic!("{v}"),
    };
    assert_eq!(top, t[""].fields.iter().cloned().collect());
}

/// The check catches a key missing from the document, a key the document invents, and a
/// missing section.
#[test]
fn the_check_catches_drift() {
    let good = doc();
    assert!(check(&good).is_empty());
    let missing = good.replacen("| `file_prefix` |", "| file_prefix |", 1);
    assert!(check(&missing)
        .iter()
        .any(|p| p.contains("`file_prefix`") && p.contains("[eal]")));
    let invented = good.replacen("| `file_prefix` |", "| `file_prefix`, `no_such_key` |", 1);
    assert!(check(&invented).iter().any(|p| p.contains("`no_such_key`")));
    let no_section = good.replacen("[[ports.neighbors]]", "Neighbours", 1);
    assert!(check(&no_section)
        .iter()
        .any(|p| p.contains("[[ports.neighbors]]") && p.contains("no section")));
}
