//! The route tree as Alertmanager 0.25's `dispatch/route.go` builds and walks it.
//!
//! Each node holds its matchers (old-style `match`/`match_re` folded in, sorted) and its
//! effective [`RouteOptions`]: `receiver`, `group_by`, `group_wait`, `group_interval` and
//! `repeat_interval` are inherited from the parent unless set; `mute_time_intervals` and
//! `active_time_intervals` are not inherited (Alertmanager 0.25 takes them from the node alone).
//! [`RouteTree::match_alert`] walks depth-first, left to right: a node whose matchers hold
//! matches; its children are tried in order, stopping after the first that matches unless that
//! one has `continue: true`; a matching node none of whose children match is a result itself.
//!
//! Alerts are grouped per route by the values of the `group_by` labels (all labels with
//! `group_by: ['...']`); [`RouteNode::group_key`] is Alertmanager's group key text, such as
//! `{}/{team="db"}:{alertname="Down"}`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::config::RouteConfig;
use crate::labels::{LabelSet, label_set_string};
use crate::matcher::Matchers;

/// The root route's defaults (`dispatch.DefaultRouteOpts`).
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// See [`DEFAULT_GROUP_WAIT`].
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// See [`DEFAULT_GROUP_WAIT`].
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 60 * 60);

/// The options in effect for alerts that a route matches, after inheritance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteOptions {
    /// The receiver notified.
    pub receiver: String,
    /// The labels alerts are grouped by (ignored when `group_by_all`).
    pub group_by: BTreeSet<String>,
    /// `group_by: ['...']`: group by every label.
    pub group_by_all: bool,
    /// How long a new group waits before its first notification.
    pub group_wait: Duration,
    /// How long a group waits before notifying about new alerts in it.
    pub group_interval: Duration,
    /// How long before a notification that changed nothing is sent again.
    pub repeat_interval: Duration,
    /// Names of time intervals during which this route sends nothing.
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside which this route sends nothing (none: always active).
    pub active_time_intervals: Vec<String>,
}

/// One node of the tree.
#[derive(Clone, Debug)]
pub struct RouteNode {
    index: usize,
    parent: Option<usize>,
    children: Vec<usize>,
    matchers: Matchers,
    continue_matching: bool,
    options: RouteOptions,
    key: String,
    id: String,
}

impl RouteNode {
    /// The node's index in [`RouteTree::nodes`] (0 is the root; parents come before children).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The parent's index; `None` for the root.
    pub fn parent(&self) -> Option<usize> {
        self.parent
    }

    /// The children's indexes, in configuration order.
    pub fn children(&self) -> &[usize] {
        &self.children
    }

    /// The matchers an alert must satisfy (sorted as Alertmanager sorts them).
    pub fn matchers(&self) -> &Matchers {
        &self.matchers
    }

    /// Whether matching goes on with the next sibling after this route matched.
    pub fn continue_matching(&self) -> bool {
        self.continue_matching
    }

    /// The effective options.
    pub fn options(&self) -> &RouteOptions {
        &self.options
    }

    /// The receiver (a shortcut for `options().receiver`).
    pub fn receiver(&self) -> &str {
        &self.options.receiver
    }

    /// Alertmanager's route key: the parent's key, `/`, then this node's matchers
    /// (`{}/{team="db"}`). Siblings with the same matchers share it.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Alertmanager's route ID: the key followed by `/` and the position among the siblings
    /// (`{}/{team="db"}/0`); the root's ID is its key, `{}`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The labels of `alert` that alerts are grouped by on this route.
    pub fn group_labels(&self, alert: &LabelSet) -> LabelSet {
        alert
            .iter()
            .filter(|(name, _)| self.options.group_by_all || self.options.group_by.contains(*name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// Alertmanager's group key for `alert` on this route: `route key:grouping labels`, as in
    /// `{}/{team="db"}:{alertname="Down", cluster="eu"}`.
    pub fn group_key(&self, alert: &LabelSet) -> String {
        format!(
            "{}:{}",
            self.key,
            label_set_string(&self.group_labels(alert))
        )
    }
}

/// The route tree, nodes stored depth-first (parents before children, siblings in order).
#[derive(Clone, Debug)]
pub struct RouteTree {
    nodes: Vec<RouteNode>,
}

impl RouteTree {
    /// Builds the tree of a validated root route.
    pub fn new(root: &RouteConfig) -> Self {
        let mut tree = Self { nodes: Vec::new() };
        let defaults = RouteOptions {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        };
        tree.add(root, None, None, &defaults, "");
        tree
    }

    fn add(
        &mut self,
        config: &RouteConfig,
        parent: Option<usize>,
        position: Option<usize>,
        inherited: &RouteOptions,
        parent_key: &str,
    ) -> usize {
        let mut options = inherited.clone();
        if let Some(receiver) = &config.receiver {
            options.receiver = receiver.clone();
        }
        if !config.group_by.is_empty() {
            options.group_by = config.group_by.iter().cloned().collect();
            options.group_by_all = false;
        } else if config.group_by_all {
            options.group_by_all = true;
        }
        if let Some(wait) = config.group_wait {
            options.group_wait = wait;
        }
        if let Some(interval) = config.group_interval {
            options.group_interval = interval;
        }
        if let Some(interval) = config.repeat_interval {
            options.repeat_interval = interval;
        }
        options.mute_time_intervals = config.mute_time_intervals.clone();
        options.active_time_intervals = config.active_time_intervals.clone();

        let key = if parent.is_some() {
            format!("{parent_key}/{}", config.matchers)
        } else {
            config.matchers.to_string()
        };
        let id = match position {
            Some(position) => format!("{key}/{position}"),
            None => key.clone(),
        };
        let index = self.nodes.len();
        self.nodes.push(RouteNode {
            index,
            parent,
            children: Vec::new(),
            matchers: config.matchers.clone(),
            continue_matching: config.continue_matching,
            options: options.clone(),
            key: key.clone(),
            id,
        });
        let mut children = Vec::with_capacity(config.routes.len());
        for (child_position, child) in config.routes.iter().enumerate() {
            children.push(self.add(child, Some(index), Some(child_position), &options, &key));
        }
        self.nodes[index].children = children;
        index
    }

    /// The root route.
    pub fn root(&self) -> &RouteNode {
        // `new` always pushes the root first.
        &self.nodes[0]
    }

    /// Every node, depth-first (as `Route.Walk` visits them).
    pub fn nodes(&self) -> &[RouteNode] {
        &self.nodes
    }

    /// The node at `index`.
    pub fn get(&self, index: usize) -> Option<&RouteNode> {
        self.nodes.get(index)
    }

    /// The node with Alertmanager's route ID `id`.
    pub fn find_by_id(&self, id: &str) -> Option<&RouteNode> {
        self.nodes.iter().find(|node| node.id == id)
    }

    /// Every route that handles an alert with these labels, in Alertmanager's order; each has
    /// its effective options. Never empty: the root matches everything.
    pub fn match_alert(&self, labels: &LabelSet) -> Vec<&RouteNode> {
        let mut found = Vec::new();
        self.match_from(0, labels, &mut found);
        found.into_iter().map(|index| &self.nodes[index]).collect()
    }

    /// Whether the node at `index` matches; its results are appended to `found`.
    fn match_from(&self, index: usize, labels: &LabelSet, found: &mut Vec<usize>) -> bool {
        let node = &self.nodes[index];
        if !node.matchers.matches(labels) {
            return false;
        }
        let before = found.len();
        for &child in &node.children {
            if self.match_from(child, labels, found) && !self.nodes[child].continue_matching {
                break;
            }
        }
        if found.len() == before {
            found.push(index);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_config;

    use crate::labels::label_set as labels;

    fn tree(yaml: &str) -> RouteTree {
        parse_config(yaml)
            .unwrap_or_else(|e| panic!("{e}"))
            .route_tree()
            .clone()
    }

    const TREE: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  routes:
  - matchers: ['team="db"']
    receiver: db
    continue: true
    group_by: [cluster]
    repeat_interval: 1h
    routes:
    - matchers: [severity=page]
      receiver: db-pager
      group_wait: 0s
    - matchers: [severity=~"warn|info"]
  - match: {team: db}
    receiver: db-archive
    group_by: ['...']
    routes:
    - matchers: [env=dev]
  - match_re: {team: "web|api"}
    receiver: frontend
receivers:
- name: default
- name: db
- name: db-pager
- name: db-archive
- name: frontend
"#;

    fn receivers(tree: &RouteTree, pairs: &[(&str, &str)]) -> Vec<String> {
        tree.match_alert(&labels(pairs))
            .iter()
            .map(|node| node.receiver().to_string())
            .collect()
    }

    #[test]
    fn matching_follows_continue_and_depth_first_order() {
        let tree = tree(TREE);
        assert_eq!(
            receivers(&tree, &[("team", "db"), ("severity", "page")]),
            ["db-pager", "db-archive"]
        );
        assert_eq!(receivers(&tree, &[("team", "db")]), ["db", "db-archive"]);
        assert_eq!(receivers(&tree, &[("team", "web")]), ["frontend"]);
        assert_eq!(receivers(&tree, &[("team", "webx")]), ["default"]);
        assert_eq!(receivers(&tree, &[]), ["default"]);
    }

    #[test]
    fn children_inherit_options_unless_set() {
        let tree = tree(TREE);
        let found = tree.match_alert(&labels(&[("team", "db"), ("severity", "warn")]));
        let warn = found[0].options();
        assert_eq!(warn.receiver, "db");
        assert_eq!(warn.group_by, BTreeSet::from(["cluster".to_string()]));
        assert_eq!(warn.group_wait, Duration::from_secs(10));
        assert_eq!(warn.group_interval, DEFAULT_GROUP_INTERVAL);
        assert_eq!(warn.repeat_interval, Duration::from_secs(3600));

        let page = tree.match_alert(&labels(&[("team", "db"), ("severity", "page")]));
        assert_eq!(page[0].options().group_wait, Duration::ZERO);

        let dev = tree.match_alert(&labels(&[("team", "db"), ("env", "dev")]));
        let dev = dev[1].options();
        assert_eq!(dev.receiver, "db-archive");
        assert!(dev.group_by_all);
    }

    #[test]
    fn keys_and_ids_are_alertmanagers() {
        let tree = tree(TREE);
        let ids: Vec<&str> = tree.nodes().iter().map(RouteNode::id).collect();
        assert_eq!(
            ids,
            [
                "{}",
                "{}/{team=\"db\"}/0",
                "{}/{team=\"db\"}/{severity=\"page\"}/0",
                "{}/{team=\"db\"}/{severity=~\"warn|info\"}/1",
                "{}/{team=\"db\"}/1",
                "{}/{team=\"db\"}/{env=\"dev\"}/0",
                "{}/{team=~\"^(?:web|api)$\"}/2",
            ]
        );
        assert_eq!(tree.nodes()[1].key(), tree.nodes()[4].key());
        assert_eq!(
            tree.find_by_id("{}/{team=\"db\"}/1").map(RouteNode::index),
            Some(4)
        );
    }

    #[test]
    fn group_keys_use_the_grouping_labels() {
        let tree = tree(TREE);
        let alert = labels(&[("alertname", "Down"), ("team", "db"), ("cluster", "eu")]);
        let found = tree.match_alert(&alert);
        assert_eq!(
            found[0].group_key(&alert),
            r#"{}/{team="db"}:{cluster="eu"}"#
        );
        assert_eq!(
            found[1].group_key(&alert),
            r#"{}/{team="db"}:{alertname="Down", cluster="eu", team="db"}"#
        );
        let root_alert = labels(&[("alertname", "Down"), ("x", "1")]);
        assert_eq!(
            tree.root().group_key(&root_alert),
            r#"{}:{alertname="Down"}"#
        );
        // A label named in group_by but absent is left out.
        let no_name = labels(&[("x", "1")]);
        assert_eq!(tree.root().group_key(&no_name), "{}:{}");
    }

    #[test]
    fn time_intervals_are_not_inherited() {
        let tree = tree(
            r#"
route:
  receiver: a
  routes:
  - receiver: a
    mute_time_intervals: [nights]
    active_time_intervals: [weekdays]
    routes:
    - matchers: [x=1]
time_intervals:
- name: nights
- name: weekdays
receivers:
- name: a
"#,
        );
        assert_eq!(tree.nodes()[1].options().mute_time_intervals, ["nights"]);
        assert_eq!(
            tree.nodes()[1].options().active_time_intervals,
            ["weekdays"]
        );
        assert!(tree.nodes()[2].options().mute_time_intervals.is_empty());
        assert!(tree.nodes()[2].options().active_time_intervals.is_empty());
    }

    #[test]
    fn empty_group_by_inherits_and_wildcard_then_labels_resets() {
        let tree = tree(
            r#"
route:
  receiver: a
  group_by: ['...']
  routes:
  - group_by: []
    routes:
    - group_by: [b]
receivers:
- name: a
"#,
        );
        assert!(tree.nodes()[1].options().group_by_all);
        assert!(!tree.nodes()[2].options().group_by_all);
        assert_eq!(
            tree.nodes()[2].options().group_by,
            BTreeSet::from(["b".to_string()])
        );
    }
}
