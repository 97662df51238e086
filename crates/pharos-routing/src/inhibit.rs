//! Inhibition as Alertmanager 0.25's `inhibit/inhibit.go` does it: a firing alert that matches
//! a rule's source matchers mutes alerts that match its target matchers when the `equal` labels
//! have the same values in both (an absent label equals an absent or empty one). When the
//! target matches the source side too, alerts that match both sides do not count, so an alert
//! never inhibits itself.

use std::borrow::Borrow;

use crate::labels::{Fingerprint, LabelSet, fingerprint};
use crate::matcher::Matchers;

/// One `inhibit_rules` entry, its old-style `*_match`/`*_match_re` maps folded into matchers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InhibitRule {
    /// What a source (inhibiting) alert matches.
    pub source_matchers: Matchers,
    /// What a target (inhibited) alert matches.
    pub target_matchers: Matchers,
    /// Labels whose values must be equal in source and target.
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// The fingerprint of the first firing alert that inhibits `target` under this rule.
    ///
    /// `firing` are the alerts currently firing (resolved ones must be left out), in any order;
    /// the one returned is the first in that order, where Alertmanager takes whichever its
    /// cache lists first.
    pub fn inhibited_by<L: Borrow<LabelSet>>(
        &self,
        target: &LabelSet,
        firing: &[L],
    ) -> Option<Fingerprint> {
        if !self.target_matchers.matches(target) {
            return None;
        }
        let exclude_two_sided = self.source_matchers.matches(target);
        firing
            .iter()
            .map(Borrow::borrow)
            .filter(|source| self.source_matchers.matches(source))
            .filter(|source| self.equal_labels_match(source, target))
            .find(|source| !(exclude_two_sided && self.target_matchers.matches(source)))
            .map(fingerprint)
    }

    fn equal_labels_match(&self, source: &LabelSet, target: &LabelSet) -> bool {
        self.equal.iter().all(|name| {
            let source_value = source.get(name).map(String::as_str).unwrap_or("");
            let target_value = target.get(name).map(String::as_str).unwrap_or("");
            source_value == target_value
        })
    }
}

/// Whether `target` is inhibited by one of `firing` under any of `rules`: the fingerprint of
/// the inhibiting alert under the first rule that inhibits it, as Alertmanager's `Mutes` stops
/// at the first such rule.
pub fn is_inhibited<L: Borrow<LabelSet>>(
    rules: &[InhibitRule],
    target: &LabelSet,
    firing: &[L],
) -> Option<Fingerprint> {
    rules
        .iter()
        .find_map(|rule| rule.inhibited_by(target, firing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::parse_matchers;

    use crate::labels::label_set as labels;

    fn rule(source: &str, target: &str, equal: &[&str]) -> InhibitRule {
        InhibitRule {
            source_matchers: Matchers::new(parse_matchers(source).unwrap_or_default()),
            target_matchers: Matchers::new(parse_matchers(target).unwrap_or_default()),
            equal: equal.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn critical_inhibits_warning_of_the_same_cluster() {
        let rules = [rule(
            r#"severity="critical""#,
            r#"severity="warning""#,
            &["cluster", "alertname"],
        )];
        let source = labels(&[
            ("alertname", "Down"),
            ("cluster", "eu"),
            ("severity", "critical"),
        ]);
        let target = labels(&[
            ("alertname", "Down"),
            ("cluster", "eu"),
            ("severity", "warning"),
        ]);
        let other_cluster = labels(&[
            ("alertname", "Down"),
            ("cluster", "us"),
            ("severity", "warning"),
        ]);
        assert_eq!(
            is_inhibited(&rules, &target, &[&source]),
            Some(fingerprint(&source))
        );
        assert_eq!(is_inhibited(&rules, &other_cluster, &[&source]), None);
        assert_eq!(is_inhibited(&rules, &target, &[&target]), None);
        assert_eq!(is_inhibited::<LabelSet>(&rules, &target, &[]), None);
    }

    #[test]
    fn missing_equal_labels_count_as_empty() {
        let rules = [rule("a=1", "b=1", &["zone"])];
        let source = labels(&[("a", "1")]);
        let target = labels(&[("b", "1"), ("zone", "")]);
        assert!(is_inhibited(&rules, &target, &[&source]).is_some());
        let target_with_zone = labels(&[("b", "1"), ("zone", "x")]);
        assert!(is_inhibited(&rules, &target_with_zone, &[&source]).is_none());
    }

    #[test]
    fn an_alert_matching_both_sides_does_not_inhibit_itself() {
        // Source: any alert of the team; target: the same. Without the exclusion every alert
        // of the team would inhibit every other one, itself included.
        let rules = [rule("team=db", "team=db", &["team"])];
        let first = labels(&[("team", "db"), ("alertname", "A")]);
        let second = labels(&[("team", "db"), ("alertname", "B")]);
        assert_eq!(is_inhibited(&rules, &first, &[&first, &second]), None);
    }

    #[test]
    fn a_two_sided_target_is_still_inhibited_by_a_one_sided_source() {
        let rules = [rule("severity=~critical|warning", "severity=warning", &[])];
        let target = labels(&[("severity", "warning")]);
        let critical = labels(&[("severity", "critical")]);
        assert_eq!(
            is_inhibited(&rules, &target, &[&target, &critical]),
            Some(fingerprint(&critical))
        );
    }
}
