use std::fmt;
use std::path::PathBuf;

/// One problem in a configuration: where it is, what was found and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Field path, e.g. `ports[1].mtu` (empty for the whole file).
    pub path: String,
    /// The value found, as written (None when the key is missing).
    pub value: Option<String>,
    /// What is wrong or expected.
    pub message: String,
    /// 1-based line in the file, when the key (or its nearest enclosing table) is in it.
    pub line: Option<usize>,
    /// The environment variable that set the value, when one did.
    pub env_var: Option<String>,
}

impl Issue {
    pub(crate) fn new(
        path: impl Into<String>,
        value: Option<String>,
        message: impl Into<String>,
    ) -> Issue {
        Issue {
            path: path.into(),
            value,
            message: message.into(),
            line: None,
            env_var: None,
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.env_var, self.line) {
            (Some(var), _) => write!(f, "(environment {var}) ")?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            match &self.value {
                Some(v) => write!(f, "{} = {}: {}", self.path, v, self.message),
                None => write!(f, "{}: {}", self.path, self.message),
            }
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: not valid TOML: {message}", file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: environment overrides (PXTR_*) could not be applied: {message}", file.display())]
    Environment { file: PathBuf, message: String },
    #[error("{}: {} problem(s):\n{}", file.display(), issues.len(), list(issues))]
    Invalid { file: PathBuf, issues: Vec<Issue> },
}

fn list(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// The problems found, for an invalid file.
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }
}
