//! [`ConfigError`]: the one error type of the crate. Its messages reuse Alertmanager 0.25's words
//! where there are some (`undefined receiver "x" used in route`, `bad matcher format: ...`), so
//! that an operator who knows Alertmanager recognises them.

use std::path::PathBuf;

/// Why a configuration (or a matcher, duration, time interval or regular expression in it) was
/// refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not YAML, or its shape is not the configuration's: an unknown key, a value
    /// of the wrong type, a key given twice.
    #[error("{message}")]
    Yaml {
        /// The parser's message, with the line and column where it knows them.
        message: String,
    },
    /// A value or a combination of values that Alertmanager refuses.
    #[error("{reason}")]
    Invalid {
        /// Alertmanager's own words where it has some.
        reason: String,
    },
    /// A matcher (`foo="bar"`, `baz=~"a|b"`) that does not parse.
    #[error("{reason}")]
    Matcher {
        /// The text that was read.
        input: String,
        /// What is wrong with it, in Alertmanager's words.
        reason: String,
    },
    /// A regular expression that does not compile with Go's RE2 syntax.
    #[error("error parsing regexp: {reason}: `{pattern}`")]
    Regex {
        /// The anchored pattern, as Alertmanager shows it (`^(?:...)$`).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A receiver integration Alertmanager accepts but Pharos does not deliver.
    #[error(
        "receiver {receiver:?} uses {integration}, which Pharos does not deliver; \
         supported integrations are webhook_configs and email_configs"
    )]
    UnsupportedIntegration {
        /// The receiver's name.
        receiver: String,
        /// The configuration key, such as `slack_configs`.
        integration: String,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] with the given reason.
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid {
            reason: reason.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;
