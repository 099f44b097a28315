"""pytest plugin for vmtest guests: one JSON line per test outcome in results/results.jsonl (the host's table)."""
import json

OUT = "/mnt/data/results/results.jsonl"


def pytest_runtest_logreport(report):
    # a setup or teardown that does not pass decides the outcome as much as the call does; the host keeps the last
    if report.when == "call" or report.outcome != "passed":
        with open(OUT, "a") as f:
            f.write(json.dumps({"nodeid": report.nodeid, "outcome": report.outcome, "when": report.when}) + "\n")
