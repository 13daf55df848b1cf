"""deploy/grafana: the Grafana dashboard and the Prometheus alert rules parse, ask only for
series the daemon exports (the names derived from ``bot.service.metrics.FAMILIES``, plus the
standard ``process_*`` ones its registry carries), and, with Debian's ``promtool``
installed (``make promtool``; ``.ci/run`` requires it), pass ``promtool check rules``, the
rules' own unit tests (``promtool test rules``) and a PromQL syntax check of every
dashboard query. Without promtool those three are skipped and the rest, a structural check
of the YAML and JSON and of every metric name, still runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.service.metrics import FAMILIES, NAMESPACE, Metrics

REPO = Path(__file__).resolve().parents[3]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "krakenbot.json"
ALERTS = GRAFANA / "alerts.yml"

# Words in a PromQL expression that are not series: functions, aggregations, keywords.
PROMQL_WORDS = frozenset({
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "delta", "absent",
    "histogram_quantile", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "topk", "bottomk", "clamp_min", "clamp_max",
    "abs", "time", "vector", "scalar",
})  # fmt: skip


def exported() -> set[str]:
    """Every series name /metrics can carry."""
    names = set()
    for f in FAMILIES:
        full = f"{NAMESPACE}_{f.name}"
        if f.kind == "counter":
            names.add(full + "_total")
        elif f.kind == "histogram":
            names |= {full + "_bucket", full + "_sum", full + "_count"}
        else:
            names.add(full)
    for family in Metrics().registry.collect():  # process_*: the standard collector's
        if family.name.startswith("process_"):
            names |= {s.name for s in family.samples}
    return names


def series_in(expr: str) -> set[str]:
    """The series names an expression asks for (labels, strings and groupings removed;
    Grafana's ``label_values(series, label)``: the series)."""
    grafana = re.fullmatch(r"label_values\(\s*([^,]+),\s*\w+\s*\)", expr)
    if grafana is not None:
        expr = grafana.group(1)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges: [5m], [$__rate_interval]
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+\w*", w)}


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    found = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    found += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_dashboard_asks_only_for_exported_series_from_the_provisioned_source() -> None:
    board = json.loads(DASHBOARD.read_text())
    source = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    names = exported()
    queries = dashboard_queries()
    assert len(queries) > 20
    for expr in queries:
        asked = series_in(expr)
        assert asked, expr
        assert asked <= names, (expr, asked - names)
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
    titles = {p["title"] for p in board["panels"]}
    for wanted in ("PnL per strategy", "Positions (base units)", "Fills per minute",
                   "Rejections per minute, by reason", "Feed lag (seconds since the last frame)",
                   "Reconnects and resyncs", "Checksum failures",
                   "Dead-man's switch: seconds to trigger", "Rate-limit headroom",
                   "Event loop lag"):  # fmt: skip
        assert wanted in titles
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/krakenbot.yml").read_text())
    assert provider["providers"][0]["options"]["path"].endswith("/krakenbot")


def test_the_alert_rules_cover_what_must_wake_someone_with_exported_series() -> None:
    rules = alert_rules()
    names = exported()
    by_name = {r["alert"]: r for r in rules}
    wake = {"KrakenbotHalted", "KrakenbotSwitchNotArmed", "KrakenbotFeedStale",
            "KrakenbotNotReady", "KrakenbotRejectedByKraken", "KrakenbotOrderUnknown",
            "KrakenbotOrderLost", "KrakenbotTasksRestarting", "KrakenbotDown"}  # fmt: skip
    assert wake <= set(by_name)
    for rule in rules:
        asked = series_in(rule["expr"])
        assert asked and asked <= names, (rule["alert"], asked - names)
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"]
    assert by_name["KrakenbotNotReady"]["for"] == "5m"


def test_the_name_check_catches_a_series_the_daemon_does_not_export() -> None:
    assert series_in('sum by (quote) (rate(krakenbot_fills_total{side="buy"}[5m]))') == {
        "krakenbot_fills_total"
    }
    assert not series_in("krakenbot_filled_total") <= exported()


# --------------------------------------------------------------------------- promtool


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("KRAKENBOT_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool required (KRAKENBOT_REQUIRE_PROMTOOL=1) but not installed")
        pytest.skip("promtool not installed (Debian's prometheus package: make promtool)")
    return found


def run(*args: str, cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_checks_the_rules_and_runs_their_tests() -> None:
    tool = promtool()
    assert "SUCCESS" in run(tool, "check", "rules", str(ALERTS), cwd=GRAFANA)
    assert "SUCCESS" in run(tool, "test", "rules", "alerts_test.yml", cwd=GRAFANA)


def test_promtool_parses_every_dashboard_query_and_the_prometheus_config(tmp_path: Path) -> None:
    tool = promtool()
    concrete = [
        q.replace("$__rate_interval", "5m").replace("$strategy", ".*")
        for q in dashboard_queries()
        if not q.startswith("label_values(")  # Grafana's, not PromQL
    ]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{k}", "expr": q} for k, q in enumerate(concrete)
    ]}]}  # fmt: skip
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    assert "SUCCESS" in run(tool, "check", "rules", "queries.yml", cwd=tmp_path)
    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]  # compose mounts it there
    config["rule_files"] = [str(ALERTS)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    assert "SUCCESS" in run(tool, "check", "config", "prometheus.yml", cwd=tmp_path)
