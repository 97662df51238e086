//! The targets a process can run, like Loki's `-target`: `all` (every
//! service, the default) or a comma-separated list of services. Targets that
//! are not built yet are refused with a clear message, never served as stubs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One target of `pharos serve --target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    All,
    Config,
    Ingest,
    Query,
    Search,
    Alert,
}

impl Target {
    pub const ALL: [Target; 6] = [
        Target::All,
        Target::Config,
        Target::Ingest,
        Target::Query,
        Target::Search,
        Target::Alert,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::All => "all",
            Target::Config => "config",
            Target::Ingest => "ingest",
            Target::Query => "query",
            Target::Search => "search",
            Target::Alert => "alert",
        }
    }

    /// The targets this version can run, comma-separated.
    pub fn built_listing() -> String {
        Target::ALL
            .iter()
            .filter(|target| target.is_built())
            .map(|target| target.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether this version of Pharos has the service.
    pub fn is_built(self) -> bool {
        matches!(
            self,
            Target::All | Target::Config | Target::Ingest | Target::Search
        )
    }

    /// The services a target list runs, refusing targets not built yet.
    pub fn resolve(targets: &[Target]) -> Result<Vec<Target>, TargetError> {
        let mut services = Vec::new();
        for &target in targets {
            if !target.is_built() {
                return Err(TargetError::NotBuilt(target));
            }
            match target {
                Target::All => services.extend(
                    Target::ALL
                        .iter()
                        .copied()
                        .filter(|t| *t != Target::All && t.is_built()),
                ),
                other => services.push(other),
            }
        }
        services.sort();
        services.dedup();
        if services.is_empty() {
            return Err(TargetError::Empty);
        }
        Ok(services)
    }

    /// The names of the targets, for help texts and errors.
    pub fn listing() -> String {
        Target::ALL
            .iter()
            .map(|target| {
                if target.is_built() {
                    target.name().to_string()
                } else {
                    format!("{} (not built yet)", target.name())
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a target list cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("unknown target {0:?}; targets are: {list}", list = Target::listing())]
    Unknown(String),
    #[error(
        "target `{0}` is not built yet in this version of Pharos; targets available now: {list}",
        list = Target::built_listing()
    )]
    NotBuilt(Target),
    #[error("no target given; targets are: {list}", list = Target::listing())]
    Empty,
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .iter()
            .copied()
            .find(|target| target.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| TargetError::Unknown(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        assert_eq!("CONFIG".parse::<Target>(), Ok(Target::Config));
        assert!(matches!(
            "nope".parse::<Target>(),
            Err(TargetError::Unknown(_))
        ));
        assert_eq!(
            Target::resolve(&[Target::All]),
            Ok(vec![Target::Config, Target::Ingest, Target::Search])
        );
        assert_eq!(
            Target::resolve(&[Target::Config, Target::All]),
            Ok(vec![Target::Config, Target::Ingest, Target::Search])
        );
        assert_eq!(
            Target::resolve(&[Target::Query]),
            Err(TargetError::NotBuilt(Target::Query))
        );
        assert_eq!(Target::resolve(&[]), Err(TargetError::Empty));
    }
}
