"""Issue 14: a fast subset of the prevention matrix (bench/matrix.py runs all of it, `make bench`).

Each shape first shows that the kernel OOM-kills it without a watchdog, then runs under `oomsentry run --restart
signal` with every other setting at its default, at the shape's pace and ten times faster: no kernel OOM kill, and
every prompt that can fit finished exactly once (counted by content in the simulator's outputs log, across server
restarts). The shapes cover a releasable leak, an unreleasable one, 0.2 s generations and a prompt that cannot fit.

KNOWN_FAILING lists the runs that fail on main today, each with what happens (P1..P8 name the failure patterns of
the matrix's findings); they are xfail(strict=False) until the daemon is fixed -- remove an entry when its run
passes. A failing run's assertion message carries its timeline.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sim"))
import shapes  # noqa: E402

SUBSET = ["releasable-250", "unreleasable-250", "short-gens-0.2s", "one-big-prompt"]
KNOWN_FAILING = {
    # (shape, pace): what happens on main today
}


def explain(res):
    lines = res.timeline.splitlines()
    keep = [l for l in lines if "[generation]" not in l and "[forecast]" not in l]
    return "%s %s x%d: %s\ntimeline (last 60 lines, generation/forecast records left out):\n%s" % (
        res.shape.name, res.mode, res.pace, "; ".join(res.problems()) or "ok", "\n".join(keep[-60:]))


@pytest.mark.parametrize("name", SUBSET)
def test_shape_is_oom_killed_without_a_watchdog(privileged, tmp_path, name):
    res = shapes.run_shape(shapes.BY_NAME[name], "without", 1, str(tmp_path), "oomsentry-test-matrix-",
                           keep=str(tmp_path / "kept"))
    assert res.error is None, explain(res)
    assert res.oom_kills >= 1, explain(res)
    assert res.finished < len(res.fit), explain(res)


def with_params():
    out = []
    for name in SUBSET:
        for pace in (1, 10):
            why = KNOWN_FAILING.get((name, pace))
            marks = [pytest.mark.xfail(reason=why, strict=False)] if why else []
            out.append(pytest.param(name, pace, marks=marks, id="%s-x%d" % (name, pace)))
    return out


@pytest.mark.parametrize("name,pace", with_params())
def test_oomsentry_prevents_the_kill(privileged, tmp_path, name, pace):
    res = shapes.run_shape(shapes.BY_NAME[name], "with", pace, str(tmp_path), "oomsentry-test-matrix-",
                           keep=str(tmp_path / "kept"))
    assert res.error is None, explain(res)
    assert res.oom_kills == 0, explain(res)
    assert res.exactly_once == len(res.fit), explain(res)
