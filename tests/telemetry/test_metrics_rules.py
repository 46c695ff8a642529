"""The alert rules pass ``promtool check rules`` and their unit tests (``promtool test rules``), and the
Grafana dashboard is valid JSON whose every query names only metrics the gateway exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llmswitch.telemetry.metrics_families import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "llmswitch.json"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def test_promtool_checks_the_alert_rules() -> None:
    out = subprocess.run([_promtool(), "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 13 rules found" in out.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    out = subprocess.run([_promtool(), "test", "rules", "alerts_test.yml"], cwd=RULES, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def _exported() -> set[str]:
    names = set()
    for fam in FAMILIES:
        if fam.kind == "counter":
            names.add(fam.name + "_total")
        elif fam.kind == "histogram":
            names.update(fam.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(fam.name)
    return names


LABELS = {label for fam in FAMILIES for label in fam.labels}


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:llmswitch|gen_ai)_[a-z_]+)\b", expr)) - LABELS


def test_dashboard_and_alerts_use_only_exported_metrics() -> None:
    exported = _exported()
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", ())]
    exprs += re.findall(r"expr: \|?\n?((?:.|\n)*?)\n\s+(?:for|labels):", (RULES / "alerts.yml").read_text())
    assert len(exprs) > 40
    used = set().union(*(_metric_names(e) for e in exprs))
    assert used - exported == set()
    # every family is on the dashboard
    assert {f.name for f in FAMILIES} - {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used} == set()
