//! Loading: TOML file + `PXTR_*` environment overrides (the `config` crate), typed
//! deserialization that collects every type error, then semantic validation; each problem gets
//! the file's line (or the environment variable) it came from.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use config::{Environment, File, FileFormat, Value, ValueKind};
use toml_edit::{ImDocument, Item};

use super::error::{ConfigError, Issue};
use super::model::Config;
use super::validate::validate;

/// Environment variables override file keys: `PXTR_<SECTION>__<KEY>`, e.g.
/// `PXTR_EAL__MEMORY_MB=512` or `PXTR_APPLIANCE__NAME=pxtr-2`. Arrays cannot be overridden.
pub const ENV_PREFIX: &str = "PXTR";
const ENV_SEPARATOR: &str = "__";

/// How many type errors one load reports before giving up on the rest of the file.
const MAX_TYPE_ERRORS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key.to_owned()));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            if let Ok(i) = stripped[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &stripped[end + 1..];
        }
    }
    out
}

fn format_path(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn segs_of(err_path: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    err_path
        .iter()
        .filter_map(|s| match s {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Loads and validates a configuration file, with `PXTR_*` overrides from the process
/// environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.to_owned(),
        source,
    })?;
    load_str(&text, path, None)
}

/// The ctl socket a configuration file names (`control.socket`, or its `PXTR_CONTROL__SOCKET`
/// override, or the default), for `pxtr ctl --config`. Only that key is read: the rest is the
/// running appliance's business, and validating it would need what an operator need not have
/// (read access to the IPsec private keys, for one).
pub fn control_socket(path: &Path) -> Result<String, ConfigError> {
    if let Ok(s) = std::env::var(format!("{ENV_PREFIX}_CONTROL{ENV_SEPARATOR}SOCKET")) {
        return Ok(s);
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.to_owned(),
        source,
    })?;
    let doc = ImDocument::parse(text.clone()).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
        ConfigError::Syntax {
            file: path.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    match doc.get("control").and_then(|c| c.get("socket")) {
        None => Ok(super::Control::default().socket),
        Some(v) => v
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ConfigError::Invalid {
                file: path.to_owned(),
                issues: vec![Issue {
                    path: "control.socket".into(),
                    value: v
                        .span()
                        .and_then(|r| text.get(r))
                        .map(|t| t.trim().to_owned()),
                    message: "expected a string (a file path)".into(),
                    line: line_of(&doc, &text, &parse_path("control.socket")),
                    env_var: None,
                }],
            }),
    }
}

/// Loads and validates configuration text; `origin` names it in errors. `env` replaces the
/// process environment as the source of `PXTR_*` overrides when given (tests).
pub fn load_str(
    text: &str,
    origin: &Path,
    env: Option<HashMap<String, String>>,
) -> Result<Config, ConfigError> {
    let doc = ImDocument::parse(text.to_owned()).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError::Syntax {
            file: origin.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    // Variables that are not valid UTF-8 cannot be config overrides: skip them, never panic.
    let env = env.unwrap_or_else(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    });
    let (overrides, mut issues) = env_overrides(env);
    let env_source = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator(ENV_SEPARATOR)
        .try_parsing(false)
        .source(Some(overrides));
    let merged = config::Config::builder()
        .add_source(File::from_str(text, FileFormat::Toml))
        .add_source(env_source)
        .build()
        .map_err(|e| ConfigError::Environment {
            file: origin.to_owned(),
            message: e.to_string(),
        })?;
    // The config crate coerces types when it deserializes ("yes" into 1, 4094.6 into 4095):
    // take its merged tree as plain JSON values and deserialize strictly instead.
    let mut env_paths = HashSet::new();
    let mut tree = to_json(&merged.cache, &mut Vec::new(), &mut env_paths);

    let outcome = deserialize_collecting(&mut tree, &env_paths);
    issues.extend(outcome.issues);
    if let Some(mut config) = outcome.config {
        resolve_paths(&mut config, origin);
        let bad_paths: Vec<String> = issues.iter().map(|i| i.path.clone()).collect();
        for mut issue in validate(&config) {
            // Validation saw the tree with malformed elements removed: renumber to the file's.
            issue.path = format_path(&to_original(&parse_path(&issue.path), &outcome.removed));
            // Skip follow-on reports about a value already reported as malformed.
            if bad_paths.iter().any(|b| {
                issue.path == *b
                    || issue.path.starts_with(&format!("{b}."))
                    || issue.path.starts_with(&format!("{b}["))
            }) {
                continue;
            }
            issues.push(issue);
        }
        if issues.is_empty() {
            return Ok(config);
        }
    }
    for issue in &mut issues {
        let segs = parse_path(&issue.path);
        if issue.env_var.is_none() && env_paths.contains(&format_path(&segs)) {
            issue.env_var = Some(env_var_name(&segs));
        }
        if issue.env_var.is_none() {
            issue.line = line_of(&doc, text, &segs);
        }
    }
    // In file order; environment and whole-file problems last.
    issues.sort_by_key(|i| (i.env_var.is_some(), i.line.unwrap_or(usize::MAX)));
    Err(ConfigError::Invalid {
        file: origin.to_owned(),
        issues,
    })
}

/// Credential files named by a relative path are found next to the configuration file (as a
/// network engineer keeps them: /etc/pxtr/pxtr.toml beside /etc/pxtr/certs/...).
fn resolve_paths(cfg: &mut Config, origin: &Path) {
    let Some(dir) = origin.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return;
    };
    for p in &mut cfg.ipsec.peers {
        for f in [
            &mut p.certificate,
            &mut p.private_key,
            &mut p.ca_certificate,
        ] {
            if !f.is_empty() && Path::new(f.as_str()).is_relative() {
                *f = dir.join(f.as_str()).display().to_string();
            }
        }
    }
}

/// Picks the `PXTR_<SECTION>__<KEY>` overrides out of `env`. Every top-level key is a section,
/// so a PXTR_ variable without the separator belongs to something else and is ignored; one that
/// reaches into an array is refused (arrays are overridden whole or not at all).
fn env_overrides(env: HashMap<String, String>) -> (config::Map<String, String>, Vec<Issue>) {
    let mut overrides = config::Map::new();
    let mut issues = Vec::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix(ENV_PREFIX).and_then(|r| r.strip_prefix('_')) else {
            continue;
        };
        if !rest.contains(ENV_SEPARATOR) {
            continue;
        }
        let parts: Vec<&str> = rest.split(ENV_SEPARATOR).collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || p.bytes().all(|b| b.is_ascii_digit()))
        {
            let mut issue = Issue::new(
                parts.join(".").to_lowercase(),
                Some(format!("{v:?}")),
                "environment variables override single keys of sections; an array element cannot be overridden (set the whole array in the file)",
            );
            issue.env_var = Some(k.clone());
            issues.push(issue);
            continue;
        }
        overrides.insert(k, v);
    }
    (overrides, issues)
}

fn env_var_name(segs: &[Seg]) -> String {
    let keys: Vec<String> = segs
        .iter()
        .map(|s| match s {
            Seg::Key(k) => k.to_uppercase(),
            Seg::Index(i) => i.to_string(),
        })
        .collect();
    format!("{ENV_PREFIX}_{}", keys.join(ENV_SEPARATOR))
}

/// Converts the config crate's tree to JSON, keeping the file's types. Values from the
/// environment are strings: they become numbers or booleans where they read as such (and go
/// back to strings if the field wants one); their paths are collected in `env_paths`.
fn to_json(v: &Value, path: &mut Vec<Seg>, env_paths: &mut HashSet<String>) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.kind {
        ValueKind::Nil => J::Null,
        ValueKind::Boolean(b) => J::Bool(*b),
        ValueKind::I64(n) => J::from(*n),
        ValueKind::U64(n) => J::from(*n),
        ValueKind::I128(n) => i64::try_from(*n)
            .map(J::from)
            .unwrap_or_else(|_| J::String(n.to_string())),
        ValueKind::U128(n) => u64::try_from(*n)
            .map(J::from)
            .unwrap_or_else(|_| J::String(n.to_string())),
        ValueKind::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or(J::Null),
        ValueKind::String(s) => {
            if v.origin() == Some(ENV_ORIGIN) {
                env_paths.insert(format_path(path));
                env_scalar(s)
            } else {
                J::String(s.clone())
            }
        }
        ValueKind::Table(t) => {
            let mut m = serde_json::Map::new();
            for (k, child) in t {
                path.push(Seg::Key(k.clone()));
                m.insert(k.clone(), to_json(child, path, env_paths));
                path.pop();
            }
            J::Object(m)
        }
        ValueKind::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, child) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                out.push(to_json(child, path, env_paths));
                path.pop();
            }
            J::Array(out)
        }
    }
}

/// The config crate's origin label for values from the environment.
const ENV_ORIGIN: &str = "the environment";

fn env_scalar(s: &str) -> serde_json::Value {
    use serde_json::Value as J;
    match s {
        "true" => J::Bool(true),
        "false" => J::Bool(false),
        _ => s
            .parse::<i64>()
            .map(J::from)
            .ok()
            .or_else(|| s.parse::<u64>().map(J::from).ok())
            .unwrap_or_else(|| J::String(s.to_owned())),
    }
}

/// What deserialization found.
struct Outcome {
    /// The config, unless it gave up (too many errors, or one it could not remove).
    config: Option<Config>,
    issues: Vec<Issue>,
    /// Original indices removed from each array (by the array's path in file numbering).
    removed: HashMap<String, Vec<usize>>,
}

/// Deserializes `tree` into a Config, removing each malformed value and trying again so that
/// every type error in the file is reported, not only the first.
fn deserialize_collecting(tree: &mut serde_json::Value, env_paths: &HashSet<String>) -> Outcome {
    let mut issues = Vec::new();
    let mut removed: HashMap<String, Vec<usize>> = HashMap::new();
    let mut stringified: HashSet<String> = HashSet::new();
    for _ in 0..MAX_TYPE_ERRORS * 2 {
        match serde_path_to_error::deserialize::<_, Config>(&*tree) {
            Ok(cfg) => {
                return Outcome {
                    config: Some(cfg),
                    issues,
                    removed,
                }
            }
            Err(err) => {
                let current = segs_of(err.path());
                let original = to_original(&current, &removed);
                let key = format_path(&original);
                // An environment value read as a number or boolean may be meant as a string.
                if env_paths.contains(&key) && !stringified.contains(&key) {
                    if let Some(node) = node_mut(tree, &current) {
                        if !node.is_string() {
                            *node = serde_json::Value::String(node.to_string());
                            stringified.insert(key);
                            continue;
                        }
                    }
                }
                let value = node_mut(tree, &current).and_then(|v| show_value(v));
                let message = clean_serde_message(&err.inner().to_string());
                issues.push(Issue::new(key, value, message));
                if issues.len() >= MAX_TYPE_ERRORS || current.is_empty() || !remove(tree, &current)
                {
                    break;
                }
                if let (Some(Seg::Index(i)), Some(Seg::Index(_))) =
                    (original.last(), current.last())
                {
                    let array = format_path(&original[..original.len() - 1]);
                    let list = removed.entry(array).or_default();
                    list.push(*i);
                    list.sort_unstable();
                }
            }
        }
    }
    // Too many errors, or one we could not remove: report those, and do not validate a config
    // that is not the file's.
    Outcome {
        config: None,
        issues,
        removed,
    }
}

/// Maps array indices in a path of the pruned tree back to the file's numbering.
fn to_original(current: &[Seg], removed: &HashMap<String, Vec<usize>>) -> Vec<Seg> {
    let mut out: Vec<Seg> = Vec::with_capacity(current.len());
    for seg in current {
        match seg {
            Seg::Index(i) => {
                let gone = removed
                    .get(&format_path(&out))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let mut o = *i;
                // The i-th surviving element is the o-th original one.
                loop {
                    let before = gone.iter().filter(|&&r| r < o).count();
                    if !gone.contains(&o) && o - before == *i {
                        break;
                    }
                    o += 1;
                }
                out.push(Seg::Index(o));
            }
            k => out.push(k.clone()),
        }
    }
    out
}

fn node_mut<'a>(
    tree: &'a mut serde_json::Value,
    segs: &[Seg],
) -> Option<&'a mut serde_json::Value> {
    let mut cur = tree;
    for seg in segs {
        cur = match (seg, cur) {
            (Seg::Key(k), serde_json::Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), serde_json::Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn remove(tree: &mut serde_json::Value, segs: &[Seg]) -> bool {
    let Some((last, parent)) = segs.split_last() else {
        return false;
    };
    match (last, node_mut(tree, parent)) {
        (Seg::Key(k), Some(serde_json::Value::Object(m))) => m.remove(k).is_some(),
        (Seg::Index(i), Some(serde_json::Value::Array(a))) if *i < a.len() => {
            a.remove(*i);
            true
        }
        _ => false,
    }
}

fn show_value(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Object(_) => "{...}".to_owned(),
        J::Array(_) => "[...]".to_owned(),
        other => other.to_string(),
    })
}

/// serde's messages name Rust types ("u16", "a borrowed string"); say what the file needs.
fn clean_serde_message(m: &str) -> String {
    m.replace("expected u8", "expected a whole number from 0 to 255")
        .replace("expected u16", "expected a whole number from 0 to 65535")
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected a borrowed string", "expected a string")
        .replace(
            "invalid IP address syntax",
            "not an IP address or prefix (expected e.g. 192.0.2.1, 10.1.0.0/16 or 2001:db8::/32)",
        )
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// Line of the key at `segs`, or of its nearest enclosing key or table present in the file.
fn line_of(doc: &ImDocument<String>, text: &str, segs: &[Seg]) -> Option<usize> {
    #[derive(Clone, Copy)]
    enum Node<'a> {
        Item(&'a Item),
        Value(&'a toml_edit::Value),
        Table(&'a toml_edit::Table),
    }
    let mut best: Option<std::ops::Range<usize>> = None;
    let mut cur = Node::Table(doc.as_table());
    for seg in segs {
        let next = match (seg, cur) {
            (Seg::Key(k), Node::Table(t)) | (Seg::Key(k), Node::Item(Item::Table(t))) => {
                if let Some(span) = t.key(k).and_then(|key| key.span()) {
                    best = Some(span);
                }
                t.get(k).map(Node::Item)
            }
            (Seg::Key(k), Node::Item(Item::Value(toml_edit::Value::InlineTable(t))))
            | (Seg::Key(k), Node::Value(toml_edit::Value::InlineTable(t))) => {
                if let Some(span) = t.key(k).and_then(|key| key.span()) {
                    best = Some(span);
                }
                t.get(k).map(Node::Value)
            }
            (Seg::Index(i), Node::Item(Item::ArrayOfTables(a))) => a.get(*i).map(|t| {
                if let Some(span) = t.span() {
                    best = Some(span);
                }
                Node::Table(t)
            }),
            (Seg::Index(i), Node::Item(Item::Value(toml_edit::Value::Array(a))))
            | (Seg::Index(i), Node::Value(toml_edit::Value::Array(a))) => a.get(*i).map(|v| {
                if let Some(span) = v.span() {
                    best = Some(span);
                }
                Node::Value(v)
            }),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => break,
        }
    }
    best.map(|s| line_col(text, s.start).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for p in [
            "appliance.role",
            "ports[1].addresses[0]",
            "lcores.workers[12].lcore",
            "a[0][1].b",
        ] {
            assert_eq!(format_path(&parse_path(p)), p);
        }
        assert_eq!(
            parse_path("ports[2].mtu"),
            vec![
                Seg::Key("ports".into()),
                Seg::Index(2),
                Seg::Key("mtu".into())
            ]
        );
    }

    #[test]
    fn indices_map_back_to_the_file_after_removals() {
        let mut removed = HashMap::new();
        removed.insert("ports".to_owned(), vec![0, 2]);
        // Survivors of [0,1,2,3,4] after removing 0 and 2 are [1,3,4].
        let at = |i| to_original(&[Seg::Key("ports".into()), Seg::Index(i)], &removed);
        assert_eq!(at(0)[1], Seg::Index(1));
        assert_eq!(at(1)[1], Seg::Index(3));
        assert_eq!(at(2)[1], Seg::Index(4));
        // Other arrays are untouched.
        assert_eq!(
            to_original(&[Seg::Key("sites".into()), Seg::Index(0)], &removed)[1],
            Seg::Index(0)
        );
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("ab\ncd\n", 0), (1, 1));
        assert_eq!(line_col("ab\ncd\n", 4), (2, 2));
    }
}
