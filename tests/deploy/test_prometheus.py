"""deploy/prometheus checked by promtool (Debian's prometheus package): the rules parse, each alert fires on the series
it is meant for and on no other (tests/deploy/oomsentry.rules.test.yml), and each has its runbook section."""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "deploy", "prometheus", "oomsentry.rules.yml")
RULES_TEST = os.path.join(ROOT, "tests", "deploy", "oomsentry.rules.test.yml")


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail("%s is missing: make deps installs it" % name)
    return path


def test_rules_pass_promtool_check():
    r = subprocess.run([tool("promtool"), "check", "rules", RULES], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_each_alert_fires_when_it_should_and_only_then():
    r = subprocess.run([tool("promtool"), "test", "rules", RULES_TEST], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_has_a_unit_test_and_a_runbook_section():
    rules = open(RULES).read()
    alerts = re.findall(r"^\s+- alert: (\w+)$", rules, re.M)
    assert {"OomsentryOOMKill", "OomsentryLadderExhausted", "OomsentryLeakForecast", "OomsentryCrashLoop",
            "OomsentryProbesMissing"} <= set(alerts)
    tested = set(re.findall(r"alertname: (\w+)", open(RULES_TEST).read()))
    assert set(alerts) <= tested, set(alerts) - tested
    ops = open(os.path.join(ROOT, "docs", "operations.md")).read()
    for a in alerts:
        assert re.search(r"^#+ .*`?%s`?" % a, ops, re.M), "docs/operations.md has no section for " + a
        assert "docs/operations.md#%s" % a.lower() in rules
