//! Pharos' reading of Alertmanager configurations and routes, checked against Alertmanager
//! 0.25's own `amtool`:
//!
//! - every file under `tests/amtool/valid` is accepted by both, every file under
//!   `tests/amtool/invalid` refused by both, and every file under `tests/amtool/unsupported`
//!   accepted by amtool but refused by Pharos as an integration it does not deliver;
//! - for a table of label sets, `amtool config routes test` and Pharos' matching routes give the
//!   same receivers in the same order;
//! - `amtool config routes show` and Pharos' route tree print the same tree (matchers as
//!   Alertmanager sorts and escapes them, `continue`, effective receivers).
//!
//! Without amtool (Debian's `prometheus-alertmanager`, which `cargo xtask ci` installs) the
//! tests are skipped with the reason printed, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use pharos_routing::{ConfigError, LabelSet, RouteTree, load_config};

/// The amtool to compare with, or `None` (after saying why) when there is none outside CI.
fn amtool() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("amtool"))
            .find(|candidate| candidate.is_file())
    });
    let found = on_path.or_else(|| {
        let fallback = PathBuf::from("/usr/bin/amtool");
        fallback.is_file().then_some(fallback)
    });
    if found.is_none() {
        let reason = "amtool (Alertmanager 0.25, Debian's prometheus-alertmanager) is not \
                      installed: `cargo xtask ci` installs it";
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("{reason}");
        }
        eprintln!("skipping the amtool comparison: {reason}");
    }
    found
}

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/amtool")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no configurations in {}", dir.display());
    files
}

fn valid_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/amtool/valid")
        .join(name)
}

/// Whether `amtool check-config` accepts the file, with what it printed.
fn amtool_accepts(amtool: &Path, file: &Path) -> (bool, String) {
    let output = Command::new(amtool)
        .arg("check-config")
        .arg(file)
        .output()
        .expect("running amtool check-config");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[test]
fn check_config_agrees_with_amtool() {
    let Some(amtool) = amtool() else { return };
    let mut disagreements = Vec::new();
    for (kind, amtool_should_accept) in [("valid", true), ("invalid", false), ("unsupported", true)]
    {
        for file in corpus(kind) {
            let (amtool_ok, amtool_said) = amtool_accepts(&amtool, &file);
            let pharos = load_config(&file);
            let pharos_ok = pharos.is_ok();
            let expected_pharos = kind == "valid";
            let unsupported_as_expected = kind != "unsupported"
                || matches!(pharos, Err(ConfigError::UnsupportedIntegration { .. }));
            if amtool_ok != amtool_should_accept
                || pharos_ok != expected_pharos
                || !unsupported_as_expected
            {
                disagreements.push(format!(
                    "{}: amtool {} ({}), pharos {}",
                    file.display(),
                    if amtool_ok { "accepts" } else { "refuses" },
                    amtool_said.trim().replace('\n', " | "),
                    match &pharos {
                        Ok(_) => "accepts".to_string(),
                        Err(e) => format!("refuses: {e}"),
                    }
                ));
            } else if let Err(e) = &pharos {
                let amtool_verdict = if amtool_ok {
                    "amtool accepts"
                } else {
                    "amtool refuses"
                };
                eprintln!("{}: {amtool_verdict}, pharos refuses: {e}", file.display());
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "disagreements with amtool:\n{}",
        disagreements.join("\n")
    );
}

/// An alert's labels as written in the tables below.
type Labels<'a> = &'a [(&'a str, &'a str)];

/// Label sets to route, per valid configuration.
const ROUTING_TABLE: &[(&str, &[Labels])] = &[
    (
        "01-nested-continue.yml",
        &[
            &[
                ("alertname", "DiskFull"),
                ("team", "database"),
                ("severity", "critical"),
                ("env", "production"),
            ],
            &[
                ("team", "database"),
                ("severity", "info"),
                ("env", "production"),
            ],
            &[
                ("team", "frontend"),
                ("service", "web"),
                ("env", "production"),
            ],
            &[
                ("team", "frontend"),
                ("service", "api"),
                ("env", "production"),
            ],
            &[("team", "frontier"), ("env", "staging")],
            &[("team", "other"), ("env", "staging")],
            &[("team", "other"), ("env", "production")],
            &[],
        ],
    ),
    (
        "02-group-by-all.yml",
        &[
            &[("component", "ingest"), ("alertname", "IngestKafkaLag")],
            &[("component", "ingest"), ("alertname", "IngestDown")],
            &[("component", "ingest"), ("alertname", "Other")],
            &[("component", "query")],
            &[("component", "store"), ("tier", "hot")],
            &[("component", "store"), ("tier", "warm")],
            &[("component", "store"), ("tier", "cold")],
        ],
    ),
    (
        "03-inhibit-rules.yml",
        &[
            &[("severity", "critical"), ("service", "foo1")],
            &[("service", "foo2"), ("severity", "warning")],
            &[("service", "files"), ("severity", "critical")],
            &[("service", "files"), ("severity", "warning")],
            &[("service", "foo3")],
        ],
    ),
    (
        "04-time-intervals.yml",
        &[
            &[("severity", "warning"), ("team", "billing")],
            &[("severity", "warning")],
            &[("severity", "info")],
            &[("severity", "page")],
            &[("severity", "none")],
        ],
    ),
    (
        "05-webhook-email-global-smtp.yml",
        &[
            &[("channel", "webhook")],
            &[("channel", "secure")],
            &[("channel", "both")],
            &[("alertname", "Anything")],
        ],
    ),
    (
        "06-matcher-syntax.yml",
        &[
            &[("service", "api"), ("env", "staging")],
            &[("service", "api"), ("env", "dev")],
            &[("instance", "db-1:9100")],
            &[("code", "503")],
            &[("code", "5x3")],
            &[("path", "/a,b")],
            &[("name", "DiskAlmostFULL")],
            &[("zone", "us-east-1")],
            &[("zone", "eu-west-1")],
            &[("host", "b12"), ("dc", "fra1")],
            &[("host", "b12"), ("dc", "fra-1")],
            &[("host", "b1"), ("dc", "é")],
            &[("quote", "say \"hi\"")],
            &[("version", "v1.2.3")],
            &[("version", "v1x2.3")],
        ],
    ),
    (
        "07-kubernetes.yml",
        &[
            &[("alertname", "Watchdog")],
            &[
                ("alertname", "KubePodCrashLooping"),
                ("namespace", "kube-system"),
                ("severity", "critical"),
            ],
            &[
                ("alertname", "PrometheusDown"),
                ("namespace", "monitoring"),
                ("severity", "warning"),
            ],
            &[("namespace", "monitoring"), ("severity", "info")],
            &[("namespace", "cert-manager")],
            &[("namespace", "team-a-web"), ("severity", "critical")],
            &[("namespace", "team-b-jobs")],
            &[("namespace", "team-c-web"), ("severity", "critical")],
            &[("namespace", "xkube-system")],
        ],
    ),
    (
        "08-anchors-and-nulls.yml",
        &[
            &[("team", "a")],
            &[("team", "b")],
            &[("team", "c")],
            &[("team", "d")],
            &[("team", "e")],
        ],
    ),
];

/// A label as a matcher argument for amtool, value quoted and escaped.
fn amtool_label(name: &str, value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("{name}=\"{escaped}\"")
}

fn amtool_receivers(amtool: &Path, file: &Path, labels: &[(&str, &str)]) -> Vec<String> {
    let output = Command::new(amtool)
        .args(["config", "routes", "test"])
        .arg(format!("--config.file={}", file.display()))
        .args(labels.iter().map(|(n, v)| amtool_label(n, v)))
        .output()
        .expect("running amtool config routes test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "amtool config routes test failed for {} {labels:?}: {stdout}{}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("");
    line.split(',').map(|r| r.trim().to_string()).collect()
}

fn label_set(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn routes_agree_with_amtool() {
    let Some(amtool) = amtool() else { return };
    // Every valid configuration has label sets, and the table names only existing files.
    let listed: Vec<&str> = ROUTING_TABLE.iter().map(|(name, _)| *name).collect();
    for file in corpus("valid") {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            listed.contains(&name),
            "{name} has no label sets in ROUTING_TABLE"
        );
    }

    let mut checked = 0;
    let mut disagreements = Vec::new();
    for (name, label_sets) in ROUTING_TABLE {
        let file = valid_file(name);
        let config = load_config(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        for labels in *label_sets {
            let expected = amtool_receivers(&amtool, &file, labels);
            let actual: Vec<String> = config
                .match_alert(&label_set(labels))
                .iter()
                .map(|node| node.receiver().to_string())
                .collect();
            if expected != actual {
                disagreements.push(format!(
                    "{name} {labels:?}: amtool {expected:?}, pharos {actual:?}"
                ));
            }
            checked += 1;
        }
    }
    eprintln!("{checked} label sets routed the same by amtool and Pharos");
    assert!(checked >= 40, "only {checked} label sets in the table");
    assert!(
        disagreements.is_empty(),
        "routing disagreements:\n{}",
        disagreements.join("\n")
    );
}

/// The lines `amtool config routes show` prints for a tree, without the tree drawing.
fn pharos_tree_lines(tree: &RouteTree) -> Vec<String> {
    tree.nodes()
        .iter()
        .map(|node| {
            let mut line = if node.matchers().is_empty() {
                "default-route".to_string()
            } else {
                node.matchers().to_string()
            };
            if node.continue_matching() {
                line.push_str("  continue: true");
            }
            line.push_str("  receiver: ");
            line.push_str(node.receiver());
            line
        })
        .collect()
}

fn amtool_tree_lines(amtool: &Path, file: &Path) -> Vec<String> {
    let output = Command::new(amtool)
        .args(["config", "routes", "show"])
        .arg(format!("--config.file={}", file.display()))
        .output()
        .expect("running amtool config routes show");
    assert!(output.status.success(), "amtool config routes show failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip_while(|line| !line.starts_with("Routing tree:"))
        .skip(1)
        .map(|line| {
            line.trim_start_matches([' ', '│', '├', '└', '─', '\u{a0}'])
                .trim_end()
                .to_string()
        })
        .filter(|line| !line.is_empty() && line != ".")
        .collect()
}

#[test]
fn route_trees_agree_with_amtool() {
    let Some(amtool) = amtool() else { return };
    let mut disagreements = Vec::new();
    for file in corpus("valid") {
        let config = load_config(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let expected = amtool_tree_lines(&amtool, &file);
        let actual = pharos_tree_lines(config.route_tree());
        if expected != actual {
            disagreements.push(format!(
                "{}:\namtool:\n  {}\npharos:\n  {}",
                file.display(),
                expected.join("\n  "),
                actual.join("\n  ")
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "route trees differ:\n{}",
        disagreements.join("\n")
    );
}

#[test]
fn templates_and_http_files_are_resolved_against_the_config_directory() {
    let config = load_config(&valid_file("05-webhook-email-global-smtp.yml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/amtool/valid");
    assert_eq!(
        config.templates(),
        [
            "/etc/alertmanager/templates/*.tmpl".to_string(),
            base.join("templates/pharos.tmpl")
                .to_string_lossy()
                .into_owned(),
        ]
    );
    assert!(
        config
            .original()
            .starts_with("# Email receivers that take the global SMTP settings")
    );
}

#[test]
fn load_config_reports_missing_files() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let missing = dir.path().join("alertmanager.yml");
    match load_config(&missing) {
        Err(ConfigError::Read { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected a read error, got {other:?}"),
    }
}

/// Matcher strings with the corners of Alertmanager's parser and of Go's regular expressions.
const MATCHER_CORPUS: &[&str] = &[
    r#"v="a""#,
    r#"v=a"#,
    r#"v!=a"#,
    r#"v=~"a|b""#,
    r#"v!~"a.*""#,
    r#"v="""#,
    r#"v="#,
    r#"v=~"""#,
    r#"v=~"\d+""#,
    r#"v=~"\w+""#,
    r#"v=~"\s""#,
    r#"v=~"[\d]+""#,
    r#"v=~"\D""#,
    r#"v=~"\pL+""#,
    r#"v=~"\p{Greek}+""#,
    r#"v=~"(?i)abc""#,
    r#"v=~"\Qa.b\E""#,
    r#"v=~"a{,2}""#,
    r#"v=~"a{2}""#,
    r#"v=~"a{2,}""#,
    r#"v=~"x{""#,
    r#"v=~"[[:alpha:]]+""#,
    r#"v=~"[^[:digit:]]+""#,
    r#"v=~"\101""#,
    r#"v=~"\x41""#,
    r#"v=~"\<a\>""#,
    r#"v=~"[]a]""#,
    r#"v=~"[a&&b]+""#,
    r#"v=~"a**""#,
    r#"v=~"a{2}{3}""#,
    r#"v=~"(?x)a""#,
    r#"v=~"(?<n>a)""#,
    r#"v=~"(?P<n>a)(?P<n>b)""#,
    r#"v=~"\C""#,
    r#"v=~"\8""#,
    r#"v=~"\1""#,
    r#"v=~"\Z""#,
    r#"v=~"a{1001}""#,
    r#"v=~"a{1000}""#,
    r#"v=~"a\b""#,
    r#"v=~"(?s).""#,
    r#"v=~".""#,
    r#"v=~"(?U)a+""#,
    r#"v=~"a|""#,
    r#"v=~"(?)a""#,
    r#"v=~"(?i-s:A.)""#,
    r#"v=~"\z""#,
    r#"v=~"^a$""#,
    r#"v=~"a)|(b""#,
    r#"v="a\"b""#,
    r#"v="a\\b""#,
    r#"v="a\qb""#,
    r#"v=a\"#,
    r#"v="a\nb""#,
    r#"v = " x ""#,
    r#"v=b c"#,
    r#"{v="a",w="b"}"#,
    r#"v="a,b""#,
    r#"v="a\",b""#,
    r#"{v=a,}"#,
    r#"v=a}"#,
    r#"{v=a"#,
    r#"v:w=a"#,
    r#"v"#,
    r#"1v=a"#,
    r#"v-w=a"#,
    r#"v="a"b""#,
    r#"v="ab"#,
    r#"v=ab""#,
    r#"v==a"#,
    r#"v=~=a"#,
    r#"v!a"#,
    r#"v=\"a\""#,
    r#"v=,w=b"#,
];

/// Values of the label `v` the accepted matchers are tried on.
const MATCHER_VALUES: &[&str] = &[
    "", "a", "b", "ab", "A", "Ab", "abc", "ABC", "a.b", "axb", "aa", "aaa", "123", "٣", "é", "é1",
    " ", "a b", "a\"b", "a\\b", "a\\qb", "a\nb", "x{", "a{,2}", "<a>", "]", "&", "αβ", "=a",
    "\"a\"", " x ", "b c", "a,b", "a\",b", "a}", "a\\", "A\n",
];

fn yaml_single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[test]
fn matcher_corpus_agrees_with_amtool() {
    let Some(amtool) = amtool() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");

    // Accepted or refused alike, one matcher at a time.
    let mut accepted = Vec::new();
    let mut disagreements = Vec::new();
    for (index, matcher) in MATCHER_CORPUS.iter().enumerate() {
        let file = dir.path().join(format!("matcher-{index}.yml"));
        let yaml = format!(
            "route:\n  receiver: none\n  routes:\n  - receiver: none\n    matchers: [{}]\nreceivers:\n- name: none\n",
            yaml_single_quoted(matcher)
        );
        std::fs::write(&file, yaml).expect("writing a configuration");
        let (amtool_ok, amtool_said) = amtool_accepts(&amtool, &file);
        let pharos = load_config(&file);
        if amtool_ok != pharos.is_ok() {
            disagreements.push(format!(
                "{matcher}: amtool {} ({}), pharos {:?}",
                if amtool_ok { "accepts" } else { "refuses" },
                amtool_said.trim().replace('\n', " | "),
                pharos.as_ref().err().map(ToString::to_string)
            ));
        }
        if amtool_ok && pharos.is_ok() {
            accepted.push(*matcher);
        }
    }
    assert!(
        disagreements.is_empty(),
        "matchers accepted or refused differently:\n{}",
        disagreements.join("\n")
    );

    // Every accepted matcher on its own route with `continue`, each with its own receiver: the
    // receivers an alert reaches say which matchers it satisfies.
    let mut yaml = String::from("route:\n  receiver: none\n  routes:\n");
    for (index, matcher) in accepted.iter().enumerate() {
        yaml.push_str(&format!(
            "  - receiver: r{index}\n    continue: true\n    matchers: [{}]\n",
            yaml_single_quoted(matcher)
        ));
    }
    yaml.push_str("receivers:\n- name: none\n");
    for index in 0..accepted.len() {
        yaml.push_str(&format!("- name: r{index}\n"));
    }
    let file = dir.path().join("all-matchers.yml");
    std::fs::write(&file, &yaml).expect("writing a configuration");
    let config = load_config(&file).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    for value in MATCHER_VALUES {
        let labels = [("v", *value), ("w", "b"), ("v:w", "a")];
        let expected = amtool_receivers(&amtool, &file, &labels);
        let actual: Vec<String> = config
            .match_alert(&label_set(&labels))
            .iter()
            .map(|node| node.receiver().to_string())
            .collect();
        if expected != actual {
            let describe = |receivers: &[String]| -> Vec<String> {
                receivers
                    .iter()
                    .map(|r| {
                        r.strip_prefix('r')
                            .and_then(|i| i.parse::<usize>().ok())
                            .and_then(|i| accepted.get(i))
                            .map_or_else(|| r.clone(), |m| (*m).to_string())
                    })
                    .collect()
            };
            disagreements.push(format!(
                "v={value:?}: amtool matches {:?}, pharos {:?}",
                describe(&expected),
                describe(&actual)
            ));
        }
    }
    eprintln!(
        "{} matchers read alike by amtool and Pharos ({} accepted), {} label values matched alike",
        MATCHER_CORPUS.len(),
        accepted.len(),
        MATCHER_VALUES.len()
    );
    assert!(
        disagreements.is_empty(),
        "matchers match differently:\n{}",
        disagreements.join("\n")
    );
}

/// Small configurations around one setting each: URLs, addresses, durations, HTTP client and
/// TLS settings, time intervals, inhibition rules, YAML quirks.
const SNIPPET_CORPUS: &[&str] = &[
    // global
    "global: {resolve_timeout: 1h30m}",
    "global: {resolve_timeout: 0}",
    "global: {resolve_timeout: '1.5m'}",
    "global: {resolve_timeout: -1m}",
    "global: {resolve_timeout: 1m1h}",
    "global: {resolve_timeout: ''}",
    "global: {resolve_timeout: 1y2w3d4h5m6s7ms}",
    "global: {smtp_smarthost: 'mail:25'}",
    "global: {smtp_smarthost: mail}",
    "global: {smtp_smarthost: 'mail:'}",
    "global: {smtp_smarthost: '[::1]:25'}",
    "global: {smtp_smarthost: 'a:b:25'}",
    "global: {smtp_auth_password: a, smtp_auth_password_file: b}",
    "global: {smtp_tls_config: {}}",
    "global: {slack_api_url: x}",
    "global: {slack_api_url: '<secret>'}",
    "global: {slack_api_url: 'http://x', slack_api_url_file: y}",
    "global: {pagerduty_url: 'ftp://x'}",
    "global: {opsgenie_api_key: a, opsgenie_api_key_file: b}",
    "global: {smtp_require_tls: null, http_config: null}",
    "global: {http_config: {bearer_token: a, bearer_token_file: b}}",
    "global: {http_config: {authorization: {type: Basic, credentials: x}}}",
    "global: {http_config: {authorization: {credentials: a, credentials_file: b}}}",
    "global: {http_config: {authorization: {credentials: a}, basic_auth: {username: u}}}",
    "global: {http_config: {basic_auth: {username: u, password: p, password_file: f}}}",
    "global: {http_config: {basic_auth: {username_file: x}}}",
    "global: {http_config: {oauth2: {client_id: a, client_secret: b, token_url: 'http://t', scopes: [x], endpoint_params: {a: b}}}}",
    "global: {http_config: {oauth2: {client_id: a, token_url: x}}}",
    "global: {http_config: {oauth2: {client_secret: a, token_url: x}}}",
    "global: {http_config: {oauth2: {client_id: a, client_secret: b}}}",
    "global: {http_config: {proxy_url: 'http://p:3128', proxy_connect_header: {X-A: [b]}}}",
    "global: {http_config: {proxy_connect_header: {X-A: [b]}}}",
    "global: {http_config: {no_proxy: x}}",
    "global: {http_config: {tls_config: {min_version: TLS10, max_version: TLS13}}}",
    "global: {http_config: {tls_config: {min_version: TLS14}}}",
    "global: {http_config: {tls_config: {ca: x}}}",
    "global: {http_config: {follow_redirects: 1}}",
    "global: {http_config: {enable_http2: false, follow_redirects: no}}",
    // receivers
    "receivers: [{name: b}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http://x:abc/'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http://x y/'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http://%41/'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http://x/%zz'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http://[::1/'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http:x'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: ' http://x/'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http://u:p@x:99999/a b?q#f'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'HTTPS://é.example/'}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http://x/', max_alerts: -1}]}]",
    "receivers: [{name: a, webhook_configs: [{url: 'http://x/', timeout: 5s}]}]",
    "receivers: [{name: a, webhook_configs: [{}]}]",
    "receivers: [{name: a, email_configs: [{to: x, from: y, smarthost: 'h:25', headers: {subject: a, Subject: b}}]}]",
    "receivers: [{name: a, email_configs: [{to: x, from: y, smarthost: 'h:25', auth_password: p, auth_password_file: f}]}]",
    "receivers: [{name: a, email_configs: [{from: y, smarthost: 'h:25'}]}]",
    "receivers: [{name: a, email_configs: [{to: x, smarthost: 'h:25'}]}]",
    "receivers: [{name: a, msteams_configs: []}]",
    "receivers: [{name: a}, {}]",
    // routes
    "route: {receiver: a, match: {}}",
    "route: {receiver: a, group_by: ['...', '...']}",
    "route: {receiver: a, group_by: ['a:b']}",
    "route: {receiver: a, group_by: ['']}",
    "route: {receiver: a, repeat_interval: 0s}",
    "route: {receiver: a, group_wait: 0s}",
    "route: {receiver: a, group_wait: 5}",
    "route: {receiver: a, routes: [{match: {'a:b': x}}]}",
    "route: {receiver: a, routes: [{match: {a: null, b: 1, c: true}}]}",
    "route: {receiver: a, routes: [{match: {a: [x]}}]}",
    "route: {receiver: a, routes: [{match_re: {a: null}}]}",
    "route: {receiver: a, routes: [{match_re: {a: ''}}]}",
    "route: {receiver: a, routes: [{matchers: 'x=y'}]}",
    "route: {receiver: a, routes: [{continue: true}]}",
    "route: {receiver: a, mute_time_intervals: [x]}\ntime_intervals: [{name: x}]",
    "route: {receiver: a, active_time_intervals: [x]}\ntime_intervals: [{name: x}]",
    "route: {receiver: a, routes: [{active_time_intervals: [x]}]}\nmute_time_intervals: [{name: x}]",
    "templates: ['*.tmpl', '/nonexistent/x.tmpl']",
    "templates: ['[']",
    "templates: x",
    // inhibition
    "inhibit_rules: [{}]",
    "inhibit_rules: [{name: x}]",
    "inhibit_rules: [{equal: ['a:b']}]",
    "inhibit_rules: [{equal: [a, a]}]",
    "inhibit_rules: [{source_match: {'a-b': x}}]",
    "inhibit_rules: [{target_match_re: {a: '('}}]",
    "inhibit_rules: [{source_matchers: ['a=~\"x{2}{3}\"']}]",
    // time intervals
    "time_intervals: [{name: x, time_intervals: [{location: Local}, {location: ''}, {location: EST}]}]",
    "time_intervals: [{name: x, time_intervals: [{location: utc}]}]",
    "time_intervals: [{name: x, time_intervals: [{time_zone: UTC}]}]",
    "time_intervals: [{name: x, time_intervals: [{months: ['13', '0', '-1', March]}]}]",
    "time_intervals: [{name: x, time_intervals: [{months: [mar]}]}]",
    "time_intervals: [{name: x, time_intervals: [{months: ['march:january']}]}]",
    "time_intervals: [{name: x, time_intervals: [{weekdays: ['friday:monday']}]}]",
    "time_intervals: [{name: x, time_intervals: [{weekdays: ['1']}]}]",
    "time_intervals: [{name: x, time_intervals: [{weekdays: ['monday:tuesday:wednesday']}]}]",
    "time_intervals: [{name: x, time_intervals: [{days_of_month: ['5:-1', '+1', 1, '-3:-1']}]}]",
    "time_intervals: [{name: x, time_intervals: [{days_of_month: ['0']}]}]",
    "time_intervals: [{name: x, time_intervals: [{days_of_month: ['-1:5']}]}]",
    "time_intervals: [{name: x, time_intervals: [{days_of_month: ['28:-3']}]}]",
    "time_intervals: [{name: x, time_intervals: [{days_of_month: [' 1']}]}]",
    "time_intervals: [{name: x, time_intervals: [{years: ['-5', '0']}]}]",
    "time_intervals: [{name: x, time_intervals: [{years: ['2030:2020']}]}]",
    "time_intervals: [{name: x, time_intervals: [{times: [{start_time: '00:00', end_time: '24:00'}]}]}]",
    "time_intervals: [{name: x, time_intervals: [{times: [{start_time: '00:00', end_time: '24:01'}]}]}]",
    "time_intervals: [{name: x, time_intervals: [{times: [{start_time: '9:00', end_time: '17:00'}]}]}]",
    "time_intervals: [{name: x, time_intervals: [{times: [{start_time: '00:00'}]}]}]",
    "time_intervals: [{name: x, time_intervals: [{times: [{start_time: '00:00', end_time: '01:00', x: 1}]}]}]",
    "time_intervals: [{name: x, time_intervals: null}, {name: y, time_intervals: [{}]}]",
    "time_intervals: [{time_intervals: []}]",
    "time_intervals: [{name: x}]\nmute_time_intervals: [{name: x}]",
    "mute_time_intervals: [{name: x}, {name: x}]",
    // YAML
    "",
    "# only a comment",
    "route: null",
    "base: 1",
];

/// A snippet completed with a default route and receiver where it has none.
fn complete_snippet(snippet: &str) -> String {
    if snippet.is_empty() || snippet.starts_with('#') || snippet.starts_with("route: null") {
        return format!("{snippet}\nreceivers: [{{name: a}}]\n");
    }
    let mut yaml = snippet.to_string();
    yaml.push('\n');
    if !snippet.contains("route:") {
        yaml.push_str("route: {receiver: a}\n");
    }
    if !snippet.contains("receivers:") {
        yaml.push_str("receivers: [{name: a}]\n");
    }
    yaml
}

#[test]
fn snippet_corpus_agrees_with_amtool() {
    let Some(amtool) = amtool() else { return };
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut disagreements = Vec::new();
    let mut accepted = 0;
    for (index, snippet) in SNIPPET_CORPUS.iter().enumerate() {
        let yaml = complete_snippet(snippet);
        let file = dir.path().join(format!("snippet-{index}.yml"));
        std::fs::write(&file, &yaml).expect("writing a configuration");
        let (amtool_ok, amtool_said) = amtool_accepts(&amtool, &file);
        let pharos = load_config(&file);
        if amtool_ok != pharos.is_ok() {
            disagreements.push(format!(
                "{snippet:?}: amtool {} ({}), pharos {:?}",
                if amtool_ok { "accepts" } else { "refuses" },
                amtool_said.trim().replace('\n', " | "),
                pharos.as_ref().err().map(ToString::to_string)
            ));
        }
        accepted += usize::from(amtool_ok);
    }
    eprintln!(
        "{} configurations read alike by amtool and Pharos ({accepted} accepted by amtool)",
        SNIPPET_CORPUS.len()
    );
    assert!(
        disagreements.is_empty(),
        "configurations accepted or refused differently:\n{}",
        disagreements.join("\n")
    );
}
