//! Prometheus rules without I/O: what the alert service evaluates and `pharos rules` checks and
//! tests.
//!
//! - [`file`]: rule-group YAML as Prometheus reads it, and the checks `promtool check rules` makes;
//! - [`template`]: label and annotation templates, rendered as Prometheus renders them (Go
//!   `text/template` with Prometheus' functions);
//! - [`notation`]: promtool's `input_series` notation (`0+10x5 _ stale`);
//! - evaluation of alerting and recording rules and of their groups, over any
//!   [`RuleStorage`](group::RuleStorage);
//! - [`unittest`]: promtool's `test rules` files, run over memory.

pub mod alerting;
pub mod file;
pub mod group;
pub mod notation;
pub mod recording;
pub mod template;
pub mod unittest;

pub use alerting::{Alert, AlertState, AlertingRule};
pub use file::{
    InvalidRuleFile, Rule, RuleFileError, RuleGroup, RuleKind, load_rule_file, parse_rule_groups,
};
pub use group::{EvaluatedRule, Group, GroupRule, RuleStorage};
pub use unittest::{TestFileOutcome, run_test_file};
