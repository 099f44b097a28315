"""systemd-oomd's pre-kill hook (systemd >= 260): oomsentry answers io.systemd.oom.Prekill.Notify on its Varlink socket,
and for the cgroup of a ComfyUI instance saves the queue and restarts the server before it replies.

Debian 12's systemd (252) has no such hook: this test plays oomd's part exactly as src/oom/oomd-util.c does (connect to
the socket, one call, wait for the reply). A run against a real systemd-oomd needs systemd 260 (see docs/operations.md).
"""
import json
import os
import signal
import socket
import time

from test_prevention import FAST, story


def call(path, method, parameters=None, timeout=10):
    """One Varlink call: a JSON object and a NUL out, the reply up to its NUL back, and how long it took."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    t0 = time.monotonic()
    s.connect(path)
    msg = {"method": method}
    if parameters is not None:
        msg["parameters"] = parameters
    s.sendall(json.dumps(msg).encode() + b"\0")
    buf = b""
    while not buf.endswith(b"\0"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    assert buf.endswith(b"\0"), buf
    return json.loads(buf[:-1].decode()), time.monotonic() - t0


def test_oomd_prekill_notify_restarts_comfyui_with_its_queue(daemon_factory, cgroup_factory, sim_factory, tmp_path):
    cg = cgroup_factory(1536 << 20)
    sim = sim_factory(["--model-mb", "100", "--peak-mb", "50", "--leak-mb", "0", "--steps", "15", "--step-ms", "100"],
                      cgroup=cg, supervised=True)
    hook = os.path.join(str(tmp_path), "oomd.prekill.hook", "oomsentry")
    d = daemon_factory("run", ["--url", sim.url, "--restart", "signal", "--prekill-hook", hook] + FAST)
    d.wait_for(lambda r: r["event"] == "comfy" and "server is pid" in r["message"], what="server found")
    assert oct(os.stat(hook).st_mode & 0o777) == "0o600", "root's socket (oomd overrides file modes)"
    assert "systemd-oomd pre-kill hook listening on " + hook in d.stderr()

    # varlinkctl info / introspect
    info, _ = call(hook, "org.varlink.service.GetInfo", {})
    assert info["parameters"]["interfaces"] == ["io.systemd.oom.Prekill", "org.varlink.service"]
    idl, _ = call(hook, "org.varlink.service.GetInterfaceDescription", {"interface": "io.systemd.oom.Prekill"})
    assert "method Notify(cgroup: string) -> ()" in idl["parameters"]["description"]
    bad, _ = call(hook, "io.systemd.oom.Prekill.Kill", {})
    assert bad["error"] == "org.varlink.service.MethodNotFound"

    # a cgroup that holds no instance: answered at once, nothing done
    other, _ = call(hook, "io.systemd.oom.Prekill.Notify", {"cgroup": "/system.slice/other.service"})
    assert other == {"parameters": {}}

    ids = sim.submit(5)
    d.wait_for(lambda r: r["event"] == "generation" and r.get("status") == "success", timeout=60, what="generation 1")
    # oomd names the cgroup from the hierarchy's root
    rel = "/" + os.path.relpath(cg.path, os.path.dirname(cg.path))
    reply, took = call(hook, "io.systemd.oom.Prekill.Notify", {"cgroup": rel})
    assert reply == {"parameters": {}}
    # systemd-oomd's PrekillHookTimeoutSec= is seconds: the queue must be saved and the stop sent well within it
    assert took < 2.0, took
    act = d.wait_for(lambda r: r["event"] == "action" and r.get("action") == "restart", what="restart by the hook")
    assert act["result"] == "done" and "pre-kill hook" in act["reason"] and rel in act["reason"], act
    assert not d.find(lambda r: r["event"] == "action" and r.get("action") == "restart" and
                      "other.service" in r.get("reason", ""))
    # every prompt comes back on the new server under its own id
    ok = sim.wait_succeeded_in_log(ids)
    assert ok >= set(ids), (len(ok & set(ids)), story(d))
    resub = d.find(lambda r: r["event"] == "action" and r.get("action") == "resubmit")
    assert resub and all(r["result"] == "ok" and r["new_prompt_id"] == r["prompt_id"] for r in resub), resub


def test_a_stalled_server_keeps_its_queue_through_oomds_kill(daemon_factory, cgroup_factory, sim_factory, tmp_path):
    """Under the memory pressure that makes oomd act, the server may not answer /queue in time: the queue of the
    last poll is saved instead, and the prompts survive oomd's SIGKILL (as in tests/vm/guest-prekill)."""
    cg = cgroup_factory(1536 << 20)
    sim = sim_factory(["--model-mb", "50", "--peak-mb", "20", "--leak-mb", "0", "--steps", "15", "--step-ms", "100"],
                      cgroup=cg, supervised=True)
    hook = os.path.join(str(tmp_path), "oomd.prekill.hook", "oomsentry")
    d = daemon_factory("run", ["--url", sim.url, "--restart", "signal", "--prekill-hook", hook,
                               "--http-timeout", "1s"] + FAST)
    found = d.wait_for(lambda r: r["event"] == "comfy" and "server is pid" in r["message"], what="server found")
    server = found["pid"]
    ids = sim.submit(5)
    d.wait_for(lambda r: r["event"] == "generation" and r.get("status") == "success", timeout=60, what="generation 1")
    time.sleep(0.5)  # a poll that saw the rest queued
    os.kill(server, signal.SIGSTOP)
    try:
        reply, took = call(hook, "io.systemd.oom.Prekill.Notify",
                           {"cgroup": "/" + os.path.relpath(cg.path, os.path.dirname(cg.path))})
        assert reply == {"parameters": {}}
        act = d.wait_for(lambda r: r["event"] == "action" and r.get("action") == "restart", what="restart")
        assert act["result"] == "done" and "pre-kill hook" in act["reason"], act
        # the stalled server is asked nothing: the stop works from the snapshot of its last /queue reply
        stop = d.wait_for(lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and
                          r.get("result") == "stopping", what="the stop from the snapshot")
        assert stop["last_resort"] == 1 and stop["saved"] >= 3, stop
    finally:
        # what oomd does once the hooks have answered (oomsentry's last resort may have SIGKILLed it already: a kill
        # that comes at once leaves no time for the SIGTERM grace)
        try:
            os.kill(server, signal.SIGKILL)
        except ProcessLookupError:
            pass
    ok = sim.wait_succeeded_in_log(ids)
    assert ok >= set(ids), (len(ok & set(ids)), story(d))
    resub = d.find(lambda r: r["event"] == "action" and r.get("action") == "resubmit")
    assert len(resub) >= 3 and all(r["result"] == "ok" and r["new_prompt_id"] == r["prompt_id"] for r in resub)


def test_no_hook_unless_configured_and_never_in_observe(daemon_factory, tmp_path):
    hook = os.path.join(str(tmp_path), "hook", "oomsentry")
    o = daemon_factory("observe", ["--prekill-hook", hook])
    assert not os.path.exists(hook), "observe acts on nothing: it must not offer oomd to act"
    o.stop()
    assert "pre-kill hook" not in o.stderr()
    d = daemon_factory("run", [])
    time.sleep(0.5)
    assert "pre-kill hook" not in d.stderr(), "off by default"
