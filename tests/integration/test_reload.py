"""SIGHUP in the middle of a prevention: the re-executed daemon goes on where the one before it was.

The scenario of test_prevention's bigger prompt (interrupt + requeue): the moment the daemon has decided to
interrupt the prompt, the simulator is stopped (SIGSTOP), so that neither the interrupt nor the requeue can happen
before the reload; the daemon reloads (SIGHUP), the simulator goes on (SIGCONT). The image after the reload must
send the /free and /interrupt whose answers died with the image before, still owe the requeue and send it (with the
prompt's own id), keep the cooldown of the rung it used, and every prompt finishes exactly once.
"""
import os
import signal
import subprocess

from conftest import BINARY
from test_prevention import FAST, LIMIT, story

STATE_FILES = ("inflight-",)


def status(tmp_path):
    out = subprocess.run([BINARY, "status", "--socket", str(tmp_path / "status.sock")], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return out.stdout


def ladder_line(text):
    lines = [l for l in text.splitlines() if l.strip().startswith("ladder:")]
    assert len(lines) == 1, text
    return lines[0]


def test_sighup_keeps_a_requeue_and_the_cooldowns(daemon_factory, cgroup_factory, sim_factory, tmp_path):
    cg = cgroup_factory(LIMIT)
    sim = sim_factory(["--model-mb", "450", "--peak-mb", "100", "--leak-mb", "0", "--cache-leak-mb", "300",
                       "--steps", "20", "--step-ms", "100"], cgroup=cg, log=str(tmp_path / "sim.log"))
    # a cooldown far longer than a reload takes, so that "still in cooldown" after it means carried, not new
    # the requests the image after the reload sends wait for the stopped simulator: an HTTP timeout that outlasts
    # the reload and the checks below
    d = daemon_factory("run", ["--url", sim.url] + FAST + ["--cooldown", "60s", "--http-timeout", "15s"])
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
    first = sim.submit(1)
    sim.wait_all_done(first)
    big = sim.submit(1, peak_mb=650)
    d.wait_for(lambda r: r["event"] == "action" and r.get("action") == "interrupt_requeue" and
               r.get("result") == "done", timeout=120, what="the interrupt")
    sim.proc.send_signal(signal.SIGSTOP)
    try:
        before = ladder_line(status(tmp_path))
        assert "requeue owed: " + big[0] in before, before
        assert "interrupt_requeue" in before.split("in cooldown:")[1], before
        n = len(d.records)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda r: r["event"] == "daemon" and r.get("state") == "reloading", since=n, what="reload")
        d.wait_for(lambda r: r["event"] == "daemon" and r.get("state") == "started", since=n, what="restart")
        after = ladder_line(status(tmp_path))
        # the same requeue, the same rung still cooling down (60 s from before the reload, not from now)
        assert "requeue owed: " + big[0] in after, (before, after)
        assert "interrupt_requeue" in after.split("in cooldown:")[1], (before, after)
        left_before = float(before.split("interrupt_requeue ")[1].split(" s")[0])
        left_after = float(after.split("interrupt_requeue ")[1].split(" s")[0])
        assert left_after <= left_before, (before, after)
        assert "taken over from before the reload: the requeue of prompt " + big[0][:36] in d.stderr()
        state = os.path.join(str(tmp_path), "state")
        assert not [f for f in os.listdir(state) if f.startswith(STATE_FILES)], os.listdir(state)
    finally:
        sim.proc.send_signal(signal.SIGCONT)

    try:
        back = d.wait_for(lambda r: r["event"] == "action" and r.get("action") == "requeue", since=n, timeout=60,
                          what="the requeue by the image after the reload")
    except AssertionError:
        raise AssertionError(story(d))
    assert back["result"] == "ok" and back["new_prompt_id"] == big[0], back
    hist = sim.wait_all_done(big, timeout=120, alive=lambda: sim.proc.poll() is None)
    assert [h["status"]["status_str"] if h else None for h in hist] == ["success"], story(d)
    assert cg.oom_kills() == 0, story(d)
    # exactly once: each prompt succeeded once (the big one was interrupted once before)
    lines = sim.prompt_lines()
    for pid in first + big:
        assert [l["status"] for l in lines if l["prompt_id"] == pid].count("success") == 1, lines
