#!/usr/bin/env python3
"""Checks of deploy/ that need no server, run by `cargo xtask image` (needs PyYAML).

  check_deploy.py check DEPLOY_DIR   the Compose file's structure and the Grafana dashboards
  check_deploy.py exprs DEPLOY_DIR   every PromQL expression of the dashboards (template
                                     variables filled in) and of the Prometheus rules, one per
                                     line as "<where>\t<expr>", for xtask to run through a
                                     Pharos' /api/v1/query
"""

import json
import pathlib
import re
import sys

import yaml

PHAROS_SERVICES = ["config", "ingest", "query", "search", "alert"]
IMAGE = "ghcr.io/pharos-platform/pharos"

# Grafana's built-in variables, and a value each that PromQL accepts.
BUILTINS = {
    "$__rate_interval": "1m",
    "${__rate_interval}": "1m",
    "$__interval": "15s",
    "${__interval}": "15s",
    "$__range": "1h",
    "${__range}": "1h",
}


class Failures:
    def __init__(self):
        self.messages = []
        self.checks = 0

    def check(self, condition, message):
        self.checks += 1
        if not condition:
            self.messages.append(message)


def check_compose(deploy, failures):
    path = deploy / "docker-compose.yml"
    compose = yaml.safe_load(path.read_text())
    services = compose.get("services", {})
    for name in ["postgres", "migrate", *PHAROS_SERVICES, "prometheus", "grafana"]:
        failures.check(name in services, f"{path.name}: no service {name}")
    postgres = services.get("postgres", {})
    failures.check(
        str(postgres.get("image", "")).startswith("postgres:15"),
        f"{path.name}: postgres is not postgres:15",
    )
    failures.check("healthcheck" in postgres, f"{path.name}: postgres has no healthcheck")
    migrate = services.get("migrate", {})
    failures.check(migrate.get("command") == ["migrate"], f"{path.name}: migrate does not run `pharos migrate`")
    failures.check(
        migrate.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
        f"{path.name}: migrate does not wait for a healthy postgres",
    )
    for name in PHAROS_SERVICES:
        service = services.get(name, {})
        where = f"{path.name}: service {name}"
        failures.check(IMAGE in str(service.get("image", "")), f"{where}: image is not {IMAGE}")
        failures.check(str(service.get("user", "")) == "65532:65532", f"{where}: does not run as 65532:65532")
        command = service.get("command", [])
        failures.check(command[:1] == ["serve"], f"{where}: command is not `serve ...`")
        env = service.get("environment", {})
        failures.check(
            str(env.get("PHAROS_DATABASE_URL", "")).startswith("postgres://"),
            f"{where}: PHAROS_DATABASE_URL is not a PostgreSQL URL",
        )
        failures.check("PHAROS_SERVER__AUTH__TOKENS" in env, f"{where}: no PHAROS_SERVER__AUTH__TOKENS")
        depends = service.get("depends_on", {})
        failures.check(
            depends.get("migrate", {}).get("condition") == "service_completed_successfully",
            f"{where}: does not wait for migrate",
        )
        # The settings file each service mounts exists and runs exactly that service.
        mounts = [str(volume) for volume in service.get("volumes", [])]
        settings = [m.split(":")[0] for m in mounts if m.endswith(":/etc/pharos/pharos.toml:ro")]
        failures.check(len(settings) == 1, f"{where}: mounts no settings file at /etc/pharos/pharos.toml")
        for source in settings:
            file = (deploy / source).resolve()
            failures.check(file.is_file(), f"{where}: {source} does not exist")
            if file.is_file():
                failures.check(
                    re.search(rf'^target = \["{name}"\]', file.read_text(), re.M) is not None,
                    f"{where}: {source} does not set target = [\"{name}\"]",
                )
        failures.check("--config" in command, f"{where}: the command does not pass --config")
        test = service.get("healthcheck", {}).get("test", [])
        expected = ["CMD", "pharos", "health", "--service", f"pharos.{name}.v1.{name.capitalize()}Service"]
        failures.check(test == expected, f"{where}: the healthcheck is not {expected}")
    wiring = {
        "ingest": ["PHAROS_INGEST__CONFIG_TOKEN"],
        "alert": ["PHAROS_ALERT__SERVICE_TOKEN"],
        "query": ["PHAROS_QUERY__SERVICE_TOKEN"],
    }
    for name, keys in wiring.items():
        env = services.get(name, {}).get("environment", {})
        for key in keys:
            failures.check(key in env, f"{path.name}: service {name} has no {key}")
    # Every bind mount's source exists (relative to deploy/).
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                failures.check(
                    (deploy / source).exists(), f"{path.name}: service {name} mounts {source}, which does not exist"
                )
    named = set((compose.get("volumes") or {}).keys())
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                failures.check(source in named, f"{path.name}: service {name} uses undeclared volume {source}")


def dashboards(deploy):
    return sorted((deploy / "grafana" / "dashboards").glob("*.json"))


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def check_dashboards(deploy, failures):
    files = dashboards(deploy)
    failures.check(len(files) >= 2, "grafana/dashboards: expected two dashboards")
    uids = set()
    for file in files:
        where = f"grafana/dashboards/{file.name}"
        try:
            dashboard = json.loads(file.read_text())
        except json.JSONDecodeError as error:
            failures.check(False, f"{where}: not JSON: {error}")
            continue
        failures.check(dashboard.get("uid") and dashboard["uid"] not in uids, f"{where}: missing or repeated uid")
        uids.add(dashboard.get("uid"))
        failures.check(dashboard.get("title"), f"{where}: no title")
        failures.check(isinstance(dashboard.get("schemaVersion"), int) and dashboard["schemaVersion"] >= 36,
                       f"{where}: schemaVersion missing or older than 36")
        failures.check(dashboard.get("id") is None, f"{where}: a provisioned dashboard must not carry an id")
        ids = set()
        panels = list(panels_of(dashboard))
        failures.check(len(panels) >= 2, f"{where}: fewer than two panels")
        for panel in panels:
            if panel.get("type") == "row":
                continue
            pwhere = f"{where}: panel {panel.get('title')!r}"
            failures.check(panel.get("id") not in ids, f"{pwhere}: repeated id {panel.get('id')}")
            ids.add(panel.get("id"))
            failures.check(panel.get("title"), f"{where}: a panel without title")
            grid = panel.get("gridPos", {})
            failures.check(all(k in grid for k in "hwxy"), f"{pwhere}: no gridPos")
            targets = panel.get("targets", [])
            if panel.get("type") != "text":
                failures.check(targets, f"{pwhere}: no targets")
            for target in targets:
                failures.check(target.get("expr"), f"{pwhere}: target {target.get('refId')} has no expr")
                failures.check(target.get("refId"), f"{pwhere}: a target without refId")
        names = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
        for panel in panels:
            for target in panel.get("targets", []):
                for variable in re.findall(r"\$\{?(\w+)", target.get("expr", "")):
                    failures.check(
                        variable.startswith("__") or variable in names,
                        f"{where}: panel {panel.get('title')!r} uses undefined variable ${variable}",
                    )


def fill(expr, variables):
    for builtin, value in BUILTINS.items():
        expr = expr.replace(builtin, value)
    for name, value in sorted(variables.items(), key=lambda item: -len(item[0])):
        expr = expr.replace("${" + name + ":regex}", value).replace("${" + name + "}", value)
        expr = re.sub(r"\$" + name + r"\b", value, expr)
    return expr


def dashboard_exprs(deploy):
    for file in dashboards(deploy):
        dashboard = json.loads(file.read_text())
        variables = {}
        for variable in dashboard.get("templating", {}).get("list", []):
            current = variable.get("current", {}).get("value")
            if isinstance(current, list):
                current = "|".join(current)
            if current in (None, "", "$__all"):
                current = ".*" if variable.get("includeAll") else "up"
            if variable.get("type") == "datasource":
                continue
            variables[variable["name"]] = str(current)
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if variable.get("type") == "query" and query:
                match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", query)
                if match:
                    yield f"{file.name}: variable {variable['name']}", fill(match.group(1), variables)
                elif not query.startswith("label_values(") and not query.startswith("metrics("):
                    inner = re.fullmatch(r"\s*query_result\((.*)\)\s*", query)
                    yield f"{file.name}: variable {variable['name']}", fill(inner.group(1) if inner else query, variables)
        for panel in panels_of(dashboard):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    yield f"{file.name}: {panel.get('title')} [{target.get('refId')}]", fill(target["expr"], variables)


def rule_exprs(deploy):
    for file in sorted((deploy / "prometheus" / "rules").glob("*.rules.yml")):
        for group in yaml.safe_load(file.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("record") or rule.get("alert")
                yield f"{file.name}: {name}", rule["expr"]


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "exprs"):
        print(__doc__, file=sys.stderr)
        return 2
    deploy = pathlib.Path(sys.argv[2]).resolve()
    if sys.argv[1] == "exprs":
        for where, expr in [*dashboard_exprs(deploy), *rule_exprs(deploy)]:
            print(f"{where}\t{' '.join(expr.split())}")
        return 0
    failures = Failures()
    check_compose(deploy, failures)
    check_dashboards(deploy, failures)
    for message in failures.messages:
        print(f"FAILED {message}", file=sys.stderr)
    passed = failures.checks - len(failures.messages)
    print(f"deploy checks: {passed} of {failures.checks} hold", file=sys.stderr)
    return 1 if failures.messages else 0


if __name__ == "__main__":
    sys.exit(main())
