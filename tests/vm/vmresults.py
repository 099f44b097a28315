"""pytest plugin for vmtest: one JSON line per test outcome in $VMTEST_RESULTS/results.jsonl (the table's cells)."""
import json
import os

OUT = os.path.join(os.environ.get("VMTEST_RESULTS", "/mnt/data/results"), "results.jsonl")


def pytest_runtest_logreport(report):
    # a setup or teardown that does not pass decides the outcome as much as the call does; the host keeps the last
    if report.when == "call" or report.outcome != "passed":
        # a known failure (pytest.mark.xfail, with its reason) that failed as expected is its own cell, not a pass
        outcome = "xfailed" if report.outcome == "skipped" and hasattr(report, "wasxfail") else report.outcome
        with open(OUT, "a") as f:
            f.write(json.dumps({"nodeid": report.nodeid, "outcome": outcome, "when": report.when}) + "\n")
