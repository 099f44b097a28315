"""Issue 11 (and the last resort of issue 14): faults between oomsentry and ComfyUI.

oomsentry talks to the simulator through a proxy in this test that can stop answering, answer garbage or cut
replies short; the server is found through the simulator's pid file (the proxy, not the simulator, holds the
URL's port), and while a restarted simulator has not written it yet, by its command line, which names that pid
file (unique to the test: other simulators on the machine must never match). Prompts go straight to the simulator. In each test every prompt finishes exactly once, counted in
the simulator's own log (its state file, appended to across restarts), and the loop keeps serving BPF events.
"""
import fcntl
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time

from conftest import PYTHON, SIM, SUPERVISOR, Sim, free_port

MiB = 1 << 20
LIMIT = 1536 * MiB
SCENARIO = ["--model-mb", "450", "--peak-mb", "350", "--steps", "20", "--step-ms", "100"]
RELEASABLE = SCENARIO + ["--leak-mb", "300"]
SMALL = ["--model-mb", "100", "--peak-mb", "100", "--leak-mb", "0", "--steps", "10", "--step-ms", "100"]
FAST = ["--sample-interval", "200ms", "--poll-interval", "200ms", "--rss-step", "32M", "--cooldown", "3s",
        "--http-timeout", "1s"]


class Proxy:
    """127.0.0.1:PORT in front of the simulator. mode: pass, hang (accepts, reads, never answers), hang_history
    (only GET /history/... is never answered), garbage (200 with a body that is not JSON), truncated (a
    Content-Length the body never reaches, then close)."""

    def __init__(self, target_port):
        self.target = target_port
        self.mode = "pass"
        self.port = free_port()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(64)
        self.url = "http://127.0.0.1:%d" % self.port
        self.held = []
        self.hung_paths = []
        # pass mode: a GET /queue is forwarded only after this many seconds (a busy server answering late)
        self.queue_delay_s = 0.0
        self.posts = []  # [(CLOCK_MONOTONIC ns when read, path)]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_request(c):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        while len(body) < length:
            chunk = c.recv(65536)
            if not chunk:
                break
            body += chunk
        return head, body

    def _serve(self, c):
        try:
            while True:
                req = self._read_request(c)
                if req is None:
                    break
                mode = self.mode
                if mode == "hang_history" and req[0].startswith(b"GET /history"):
                    self.hung_paths.append(req[0].split(b" ")[1].decode())
                    mode = "hang"
                if mode == "hang":
                    self.held.append(c)  # never answered, never closed
                    return
                if mode == "garbage":
                    body = b"<html>this is not ComfyUI\x00\xff</html>"
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                              % (len(body), body))
                    continue
                if mode == "truncated":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                              b"{\"queue_running\": [")
                    break
                head, body = req
                if head.startswith(b"POST "):
                    self.posts.append((time.monotonic_ns(), head.split(b" ")[1].decode()))
                if self.queue_delay_s and head.startswith(b"GET /queue"):
                    time.sleep(self.queue_delay_s)
                head = b"\r\n".join(l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:"))
                up = socket.create_connection(("127.0.0.1", self.target), timeout=10)
                up.sendall(head + b"\r\nConnection: close\r\n\r\n" + body)
                reply = b""
                while True:
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
                up.close()
                rh, _, rb = reply.partition(b"\r\n\r\n")
                rh = b"\r\n".join(l for l in rh.split(b"\r\n") if not l.lower().startswith(b"connection:"))
                c.sendall(rh + b"\r\nConnection: close\r\n\r\n" + rb)
                break
        except OSError:
            pass
        try:
            c.close()
        except OSError:
            pass

    def close(self):
        self.srv.close()
        for c in self.held:
            try:
                c.close()
            except OSError:
                pass


def out_dir(tmp_path):
    """The simulator's --output-directory: its outputs.log outlives server restarts and prompt ids."""
    path = os.path.join(str(tmp_path), "out")
    os.makedirs(path, exist_ok=True)
    return path


def outputs_args(tmp_path):
    return ["--output-directory", out_dir(tmp_path)]


def by_content(tmp_path):
    """seed -> how many times a prompt with that content was saved, across every server and prompt id."""
    count = {}
    try:
        with open(os.path.join(out_dir(tmp_path), "outputs.log")) as f:
            for l in f:
                if l.strip():
                    c = json.loads(l)["filename_prefix"]
                    count[c] = count.get(c, 0) + 1
    except OSError:
        pass
    return count


def submit(sim, n, tag):
    """n prompts, each with its own content (a seed, also SaveImage's filename_prefix), straight to the simulator;
    returns {prompt_id: seed}."""
    out = {}
    for i in range(n):
        seed = "%s-%d" % (tag, i)
        prompt = {"1": {"class_type": "KSampler", "inputs": {"seed": seed}}, "2": {"class_type": "SimControl",
                                                                                   "inputs": {}},
                  "9": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": seed}}}
        out[sim.request("POST", "/prompt", {"prompt": prompt, "client_id": "durability"})["prompt_id"]] = seed
    return out


def successes(sim):
    """prompt_id -> how many times the simulator finished it successfully, across all its restarts."""
    count = {}
    for l in sim.prompt_lines():
        if l["status"] == "success":
            count[l["prompt_id"]] = count.get(l["prompt_id"], 0) + 1
    return count


def wait_exactly_once(sim, ids, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = successes(sim)
        if all(done.get(i, 0) >= 1 for i in ids):
            time.sleep(1.0)  # anything run twice would show now
            return successes(sim)
        time.sleep(0.5)
    return successes(sim)


def assert_once_by_content(tmp_path, ids, d=None):
    """Every prompt's content saved exactly once (a resubmission under a new id would show here, not by id)."""
    deadline = time.time() + 10
    while time.time() < deadline and not all(by_content(tmp_path).get(seed, 0) >= 1 for seed in ids.values()):
        time.sleep(0.2)
    got = by_content(tmp_path)
    assert all(got.get(seed) == 1 for seed in ids.values()), (got, story(d) if d else "")


def story(d):
    keep = ("action", "decision", "comfy", "generation", "oom_victim", "daemon")
    text = "\n".join(r["message"] for r in d.records if r["event"] in keep)
    if os.environ.get("DURABILITY_DEBUG"):
        with open(os.environ["DURABILITY_DEBUG"], "a") as f:
            f.write(text + "\n----\n")
    return text


def wait(d, pred, timeout, what):
    """d.wait_for, with the daemon's story as of the failure in the message."""
    try:
        return d.wait_for(pred, timeout=timeout, what=what)
    except AssertionError:
        raise AssertionError("timed out waiting for %s:\n%s" % (what, story(d)))


def snapshot_file(tmp_path):
    return os.path.join(str(tmp_path), "state", "queue-default.json")


def assert_events_on_time(d, since, pid):
    """The RSS steps of pid journaled since record `since` reached us soon after the kernel saw them."""
    lat = [(r["_recv_ns"] - r["event_monotonic_ns"]) / 1e6 for r in d.records[since:]
           if r["event"] == "rss" and r.get("pid") == pid]
    assert len(lat) >= 10, "the generations moved RSS by 16 MiB steps many times: %s" % lat
    lat.sort()
    med, p90 = statistics.median(lat), lat[int(0.9 * (len(lat) - 1))]
    # a request waits 3 s for a reply that never comes; the RSS steps meanwhile are journaled at once (a loop that
    # waited for the reply would hold them up to 3 s: a median of ~1.5 s). The tail is the shared machine's
    # scheduling (the same in pass mode: DURABILITY_SILENT_MODE=pass), this test's reader included.
    msg = "event -> journal median %.1f ms, p90 %.1f ms (all: %s)" % (med, p90, ["%.1f" % x for x in lat])
    assert med <= 10.0 and p90 <= 100.0 and lat[-1] < 1000, msg
    return med, p90, lat[-1]


def test_silent_comfyui_does_not_hold_the_loop(daemon_factory, cgroup_factory, sim_factory, tmp_path):
    """ComfyUI accepts and never answers: BPF events are still handled and journaled at once."""
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = sim_factory(SCENARIO + ["--leak-mb", "0", "--pid-file", pid_file] + outputs_args(tmp_path), cgroup=cg)
    proxy = Proxy(sim.port)
    proxy.mode = os.environ.get("DURABILITY_SILENT_MODE", "hang")
    try:
        d = daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file, "--rss-step", "16M"] + FAST[:4] +
                           ["--http-timeout", "3s"])
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        since = len(d.records)
        ids = submit(sim, 2, "silent")
        if proxy.mode == "hang":
            d.wait_for(lambda r: r["event"] == "comfy" and "does not answer" in r["message"], timeout=20,
                       what="the silent server reported")
        done = wait_exactly_once(sim, ids, timeout=60)
        assert all(done.get(i) == 1 for i in ids), done
        assert_once_by_content(tmp_path, ids, d)
        assert_events_on_time(d, since, sim.proc.pid)
        assert d.proc.poll() is None
    finally:
        proxy.close()


def test_garbage_and_truncated_replies(daemon_factory, cgroup_factory, sim_factory, tmp_path):
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = sim_factory(SMALL + ["--pid-file", pid_file] + outputs_args(tmp_path), cgroup=cg)
    proxy = Proxy(sim.port)
    try:
        d = daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file] + FAST)
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        for mode in ("garbage", "truncated"):
            proxy.mode = mode
            since = len(d.records)
            d.wait_for(lambda r: r["event"] == "comfy" and "does not answer" in r["message"], since=since,
                       timeout=20, what="%s replies reported" % mode)
            proxy.mode = "pass"
            d.wait_for(lambda r: r["event"] == "comfy" and "answers" in r["message"] and "not" not in r["message"],
                       since=since, timeout=20, what="answers again after %s" % mode)
        ids = submit(sim, 3, "garbage")
        done = wait_exactly_once(sim, ids, timeout=60)
        assert all(done.get(i) == 1 for i in ids), done
        assert_once_by_content(tmp_path, ids, d)
        d.wait_for(lambda r: r["event"] == "generation" and r.get("prompt_id") in ids, timeout=20,
                   what="generations followed after the bad replies")
        assert d.proc.poll() is None, "bad replies never take the daemon down"
    finally:
        proxy.close()


class WrappedSim(Sim):
    """A supervised simulator whose supervisor's command line does not name the simulator's arguments: it runs a
    script that execs the simulator. So a cmdline_pattern made of the pid file's path matches the simulator alone
    (never its supervisor, which a restart must not signal, nor another test's simulator)."""

    def __init__(self, procs, tmp_path, port, args, cgroup):
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.state = os.path.join(str(tmp_path), "sim-%d.state.jsonl" % port)
        script = os.path.join(str(tmp_path), "run-sim.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nexec %s %s --port %d --state-file %s %s\n" % (
                PYTHON, SIM, port, self.state, " ".join(args)))
        os.chmod(script, 0o755)
        self.proc = procs.start([PYTHON, SUPERVISOR, "--restart-delay", "0.3", "--", script],
                                preexec_fn=cgroup.preexec())
        self.wait_ready()


def restart_scenario(daemon_factory, cgroup_factory, procs, tmp_path, sim_args, daemon_args):
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = WrappedSim(procs, tmp_path, free_port(), SMALL + ["--pid-file", pid_file] + outputs_args(tmp_path) + sim_args,
                     cg)
    proxy = Proxy(sim.port)
    d = daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file, "--restart", "signal"] + FAST +
                       daemon_args)
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid"), what="server found")
    return cg, sim, proxy, d


def test_server_ignoring_sigterm_is_killed_after_the_grace(daemon_factory, cgroup_factory, procs, tmp_path):
    cg, sim, proxy, d = restart_scenario(daemon_factory, cgroup_factory, procs, tmp_path, ["--ignore-sigterm"],
                                         ["--restart-every-generations", "2", "--stop-grace", "1s"])
    try:
        ids = submit(sim, 5, "sigterm")
        wait(d, lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and r.get("result") == "escalated",
             120, "SIGKILL after the grace")
        wait(d, lambda r: r["event"] == "action" and r.get("action") == "restart_complete", 120, "restart complete")
        done = wait_exactly_once(sim, ids)
        assert all(done.get(i) == 1 for i in ids), (done, story(d))
        assert_once_by_content(tmp_path, ids, d)
        assert cg.oom_kills() == 0
    finally:
        proxy.close()


def test_server_ignoring_sigterm_while_climbing_is_killed_before_the_limit(daemon_factory, cgroup_factory, procs,
                                                                           tmp_path):
    """A restart's SIGTERM that the server ignores while its memory climbs on (a custom node's background growth):
    the limit comes long before the grace ends, so the SIGKILL comes now, not after the kernel's OOM kill."""
    cg, sim, proxy, d = restart_scenario(daemon_factory, cgroup_factory, procs, tmp_path,
                                         ["--ignore-sigterm", "--idle-leak-mb-per-s", "60"],
                                         ["--restart-every-generations", "1", "--stop-grace", "60s"])
    try:
        submit(sim, 1, "climb")
        stop = wait(d, lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and
                    r.get("result") == "stopping", 60, "the restart's SIGTERM")
        esc = wait(d, lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and
                   r.get("result") == "escalated", 60, "SIGKILL before the limit")
        assert "still climbs" in esc["message"], (esc, story(d))
        # long before the 60 s grace: the limit was ~20 s away at 60 MiB/s
        assert esc["_recv_ns"] - stop["_recv_ns"] < 30e9, story(d)
        assert cg.oom_kills() == 0, story(d)
    finally:
        proxy.close()


def test_daemon_killed_mid_restart_finishes_it(daemon_factory, cgroup_factory, procs, tmp_path):
    cg, sim, proxy, d = restart_scenario(daemon_factory, cgroup_factory, procs, tmp_path, ["--ignore-sigterm"],
                                         ["--restart-every-generations", "2", "--stop-grace", "3s"])
    try:
        ids = submit(sim, 6, "midkill")
        wait(d, lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and r.get("result") == "stopping",
             120, "a restart under way")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        saved = json.load(open(snapshot_file(tmp_path)))
        assert saved["stop"] == "restart" and saved["items"], saved
        # the server ignores SIGTERM and nobody is left to escalate: the new daemon must finish the restart
        pid_file = os.path.join(str(tmp_path), "sim.pid")
        d2 = daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file,
                                    "--restart", "signal", "--restart-every-generations", "2", "--stop-grace", "3s"] +
                            FAST)
        wait(d2, lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and r.get("result") == "resumed",
             30, "the restart resumed")
        done = wait_exactly_once(sim, ids)
        assert all(done.get(i) == 1 for i in ids), (done, story(d2))
        assert_once_by_content(tmp_path, ids, d2)
        assert cg.oom_kills() == 0
    finally:
        proxy.close()


def test_unreachable_at_the_brink_the_last_resort_keeps_the_queue(daemon_factory, cgroup_factory, procs, tmp_path):
    """The leak of test_prevention's scenario, but ComfyUI stops answering before the limit: no /free can work,
    the last resort stops it from the snapshot and resubmits when it answers again. Nothing is lost; a prompt that
    finished after the server's last answer runs again (no one could tell it finished)."""
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = WrappedSim(procs, tmp_path, free_port(), RELEASABLE + ["--pid-file", pid_file] + outputs_args(tmp_path), cg)
    proxy = Proxy(sim.port)
    try:
        d = daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file, "--restart", "signal"] + FAST)
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid"), what="server found")
        ids = submit(sim, 6, "brink")
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if len(json.load(open(snapshot_file(tmp_path)))["items"]) >= 5:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("no snapshot of the queue under state_dir")
        proxy.mode = "hang"
        hang_began = time.time()
        try:
            d.wait_for(lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and
                       r.get("last_resort") == 1, timeout=120, what="the last resort")
        except AssertionError:
            raise AssertionError("no last resort:\n" + story(d) + "\nsimulator: %s" % sim.prompt_lines())
        proxy.mode = "pass"
        done = wait_exactly_once(sim, ids, timeout=300)
        assert all(done.get(i, 0) >= 1 for i in ids), ("nothing lost", done, story(d))
        # A prompt can run twice only when it finished after the server's last answer (the snapshot could not
        # know); every other one exactly once.
        first = {}
        for l in sim.prompt_lines():
            if l["status"] == "success":
                first.setdefault(l["prompt_id"], l.get("time", 0))
        twice = [i for i in ids if done.get(i, 0) > 1]
        assert all(first[i] >= hang_began for i in twice), (done, first, hang_began, story(d))
        assert all(done.get(i) <= 2 for i in ids), done
        content = by_content(tmp_path)
        assert all(1 <= content.get(ids[i], 0) <= (2 if i in twice else 1) for i in ids), (content, done)
        assert cg.oom_kills() == 0, "the kernel never acted:\n" + story(d)
    finally:
        proxy.close()


def test_an_action_does_not_wait_for_a_slow_poll(daemon_factory, cgroup_factory, sim_factory, tmp_path):
    """ComfyUI answers /queue 3 s late (a busy event loop): a rung's /free goes out when it is decided, on a
    connection of its own, not after the poll in flight (one client ran one transfer at a time: the /free waited
    for the slow reply, bench/reaction.py's 39 ms run)."""
    cg = cgroup_factory(512 * MiB)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    # idle, growing 40 MiB/s: with no last resort configured the gentlest rung fires at the act line
    sim = sim_factory(["--model-mb", "0", "--peak-mb", "0", "--leak-mb", "0", "--idle-leak-mb-per-s", "40",
                       "--pid-file", pid_file], cgroup=cg)
    proxy = Proxy(sim.port)
    # polls every 200 ms while memory moves, each answered after 3 s: one is in flight nearly all the time
    proxy.queue_delay_s = 3.0
    try:
        d = daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file,
                                   "--restart", "none"] + FAST[:-2] + ["--http-timeout", "5s"])
        rec = wait(d, lambda r: r["event"] == "action" and r.get("action") in ("free_models", "free_all") and
                   r.get("result") == "done", 60, "a /free rung")
        deadline = time.time() + 10
        while time.time() < deadline and not [t for t, path in proxy.posts if path == "/free"]:
            time.sleep(0.05)
        sent = [t for t, path in proxy.posts if path == "/free"]
        assert sent, ("no POST /free reached the server", proxy.posts)
        # the record is written once the request is handed to libcurl; its arrival here and the proxy's read of the
        # request are both this process's threads: half a second is scheduling slack (the separate client: under 1 ms
        # in 3 runs; the shared one: 1.13 and 1.22 s in 2 of 2)
        lag = (sent[0] - rec["_recv_ns"]) / 1e9
        assert lag < 0.5, "the /free reached the server %.2f s after the action was decided:\n%s" % (lag, story(d))
    finally:
        proxy.queue_delay_s = 0.0
        proxy.close()


def test_silent_history_does_not_hold_the_loop(daemon_factory, cgroup_factory, sim_factory, tmp_path):
    """/queue answers, /history never does: the prompts that ran between two polls are looked up in /history on the
    loop (a synchronous lookup held the loop for the whole HTTP timeout, once per such prompt)."""
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    # short prompts, many of them: while a /history lookup waits, several run unseen
    sim = sim_factory(["--model-mb", "100", "--peak-mb", "120", "--leak-mb", "0", "--steps", "6", "--step-ms", "80",
                       "--pid-file", pid_file] + outputs_args(tmp_path), cgroup=cg)
    proxy = Proxy(sim.port)
    proxy.mode = "hang_history"
    try:
        d = daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file,
                                   "--rss-step", "16M"] + FAST[:4] + ["--http-timeout", "3s"])
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        since = len(d.records)
        ids = submit(sim, 30, "history")
        done = wait_exactly_once(sim, ids, timeout=90)
        assert all(done.get(i) == 1 for i in ids), done
        assert_once_by_content(tmp_path, ids, d)
        # the lookups made: of prompts seen running when they ended (one per poll round, each waiting 3 s) and of
        # those that ran unseen meanwhile (several per round from the second on: a synchronous lookup would hold
        # the loop 3 s for each, and the RSS steps of the prompts running then with it)
        asked = {p.rsplit("/", 1)[-1] for p in proxy.hung_paths}
        assert len(asked & set(ids)) >= 3, ("prompts looked up in /history", proxy.hung_paths)
        assert_events_on_time(d, since, sim.proc.pid)
        assert d.proc.poll() is None
    finally:
        proxy.close()


def test_stuck_local_clients_do_not_hold_the_loop(daemon_factory, cgroup_factory, sim_factory, procs, tmp_path):
    """Clients of the status socket that never read a table larger than the socket buffer, and clients of the
    pre-kill hook that never send their call, arrive all the time: BPF events are still journaled at once, a
    client that reads still gets the table, and each stuck one is hung up on at its deadline."""
    from conftest import BINARY, Cgroup
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = sim_factory(SCENARIO + ["--leak-mb", "0", "--pid-file", pid_file] + outputs_args(tmp_path), cgroup=cg)
    # tracked processes in a cgroup with a long name: each row of the status table names it, so that the table
    # (about 300 KiB) is larger than a UNIX socket's send buffer (about 200 KiB) and a blocking send would wait
    crowd = Cgroup(1 << 30, prefix="oomsentry-test-async-" + "c" * 200 + "-")
    status_sock = os.path.join(str(tmp_path), "status.sock")
    hook = os.path.join(str(tmp_path), "oomd.prekill.hook", "oomsentry")
    stop = threading.Event()
    stuck = []
    try:
        d = daemon_factory("run", ["--url", sim.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file,
                                   "--cgroups", crowd.path, "--prekill-hook", hook, "--rss-step", "16M"] + FAST[:4])
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        procs.start(["/bin/sh", "-c", "for i in $(seq 1100); do sleep 600 & done; wait"], preexec_fn=crowd.enter())
        deadline = time.time() + 60
        table = ""
        while time.time() < deadline:
            table = subprocess.run([BINARY, "status", "--socket", status_sock], capture_output=True, text=True,
                                   timeout=10).stdout
            if table.count(" sleep ") >= 1100:
                break
            time.sleep(0.5)
        assert table.count(" sleep ") >= 1100 and len(table) > 256 * 1024, (len(table), table[-500:])

        def crowd_in():
            # a new stuck client of each kind every second, none ever closed by us
            while not stop.is_set():
                for path in (status_sock, hook):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(path)
                    stuck.append((path, s, time.time()))
                stop.wait(1.0)

        since = len(d.records)
        threading.Thread(target=crowd_in, daemon=True).start()
        ids = submit(sim, 2, "stuck")
        done = wait_exactly_once(sim, ids, timeout=60)
        # a client that reads still gets the whole table while the stuck ones wait
        t0 = time.time()
        out = subprocess.run([BINARY, "status", "--socket", status_sock], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0 and out.stdout.count(" sleep ") >= 1100, out.stderr
        assert time.time() - t0 < 5
        stop.set()
        assert all(done.get(i) == 1 for i in ids), done
        assert_once_by_content(tmp_path, ids, d)
        assert len(stuck) >= 6, len(stuck)
        assert_events_on_time(d, since, sim.proc.pid)
        # every stuck client is hung up on at its deadline (status 2 s, pre-kill 5 s): it reads a part of the
        # table, or nothing, and then the end
        time.sleep(6)
        for path, s, _ in stuck:
            s.settimeout(5)
            try:
                while s.recv(1 << 20):
                    pass
            except ConnectionResetError:
                pass
            except socket.timeout:
                raise AssertionError("a stuck %s client was never hung up on" % path)
        assert d.proc.poll() is None
    finally:
        stop.set()
        for _, s, _ in stuck:
            s.close()
        crowd.destroy()


def stalled_dns_daemon(tmp_path, monkeypatch, hosts_lines):
    """A wrapper that runs the daemon in a mount namespace whose /etc/resolv.conf names a DNS server that reads
    nothing (a UDP socket of this test), with /etc/hosts made of hosts_lines. Returns the socket (close it)."""
    import conftest
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind(("127.9.9.9", 53))  # the lookups land here and are never answered
    resolv = os.path.join(str(tmp_path), "resolv.conf")
    hosts = os.path.join(str(tmp_path), "hosts")
    with open(resolv, "w") as f:
        f.write("nameserver 127.9.9.9\noptions timeout:2 attempts:2\n")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n" + "".join(l + "\n" for l in hosts_lines))
    wrapper = os.path.join(str(tmp_path), "oomsentry-stalled-dns")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec unshare -m sh -c 'mount --bind %s /etc/resolv.conf && mount --bind %s /etc/hosts && "
                "exec %s \"$@\"' oomsentry \"$@\"\n" % (resolv, hosts, conftest.BINARY))
    os.chmod(wrapper, 0o755)
    monkeypatch.setattr(conftest, "BINARY", wrapper)
    return dns


def test_unresolvable_host_does_not_hold_the_loop(daemon_factory, cgroup_factory, sim_factory, tmp_path, monkeypatch):
    """The URL names a host whose DNS server never answers: neither the HTTP client nor the websocket may wait for
    the resolver on the loop (libwebsockets' getaddrinfo, libcurl joining its resolver thread at a timeout held it
    for seconds: median 1.7 s); BPF events are journaled at once while the name is being looked up."""
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = sim_factory(SCENARIO + ["--leak-mb", "0", "--pid-file", pid_file] + outputs_args(tmp_path), cgroup=cg)
    dns = stalled_dns_daemon(tmp_path, monkeypatch, [])
    try:
        d = daemon_factory("run", ["--url", "http://comfyui.stalled-dns.test:%d" % sim.port, "--pid-file", pid_file,
                                   "--cmdline-pattern", pid_file, "--rss-step", "16M"] + FAST[:4] +
                           ["--http-timeout", "3s"])
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        since = len(d.records)
        ids = submit(sim, 2, "dns")
        done = wait_exactly_once(sim, ids, timeout=60)
        assert all(done.get(i) == 1 for i in ids), done
        assert_once_by_content(tmp_path, ids, d)
        # the lookup ran, off the loop, and its failure is what the API's absence is put down to
        wait(d, lambda r: r["event"] == "comfy" and "cannot resolve comfyui.stalled-dns.test" in r["message"], 30,
             "the failed lookup reported")
        assert_events_on_time(d, since, sim.proc.pid)
        assert d.proc.poll() is None
    finally:
        dns.close()


def test_a_host_name_is_followed_through_its_address(daemon_factory, cgroup_factory, sim_factory, tmp_path,
                                                     monkeypatch):
    """A name that resolves (here through /etc/hosts): the API and the websocket are reached at its address."""
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = sim_factory(SMALL + ["--pid-file", pid_file] + outputs_args(tmp_path), cgroup=cg)
    dns = stalled_dns_daemon(tmp_path, monkeypatch, ["127.0.0.1 comfyui.hosts.test"])
    try:
        d = daemon_factory("run", ["--url", "http://comfyui.hosts.test:%d" % sim.port, "--pid-file", pid_file,
                                   "--cmdline-pattern", pid_file] + FAST)
        wait(d, lambda r: r["event"] == "comfy" and r.get("websocket") == "connected", 30, "the websocket")
        ids = submit(sim, 3, "hosts")
        done = wait_exactly_once(sim, ids, timeout=60)
        assert all(done.get(i) == 1 for i in ids), done
        assert_once_by_content(tmp_path, ids, d)
        wait(d, lambda r: r["event"] == "generation" and r.get("prompt_id") in ids, 20, "generations followed")
    finally:
        dns.close()


def test_journald_that_does_not_read_does_not_hold_the_loop(daemon_factory, cgroup_factory, sim_factory, tmp_path,
                                                             monkeypatch):
    """journald's socket accepts datagrams and nobody reads them (the daemon runs in a mount namespace where
    /run/systemd/journal/socket is such a socket of this test): once its queue is full (net.unix.max_dgram_qlen)
    a blocking send would hold the loop for good; every record still reaches standard output at once, and the
    ones the journal could not take are counted."""
    import conftest
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = sim_factory(SCENARIO + ["--leak-mb", "0", "--pid-file", pid_file] + outputs_args(tmp_path), cgroup=cg)
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    deaf_path = os.path.join(str(tmp_path), "journal.sock")
    deaf.bind(deaf_path)
    wrapper = os.path.join(str(tmp_path), "oomsentry-deaf-journal")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec unshare -m sh -c 'mkdir -p /run/systemd/journal && touch /run/systemd/journal/socket "
                "&& mount --bind %s /run/systemd/journal/socket && exec %s \"$@\"' oomsentry \"$@\"\n"
                % (deaf_path, conftest.BINARY))
    os.chmod(wrapper, 0o755)
    monkeypatch.setattr(conftest, "BINARY", wrapper)
    try:
        d = daemon_factory("run", ["--url", sim.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file,
                                   "--rss-step", "16M", "--journal=yes"] + FAST[:4])
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        since = len(d.records)
        ids = submit(sim, 2, "journal")
        done = wait_exactly_once(sim, ids, timeout=60)
        assert all(done.get(i) == 1 for i in ids), done
        assert_once_by_content(tmp_path, ids, d)
        # far more records than journald's queue holds went out meanwhile
        assert len(d.records) - since > 60, len(d.records) - since
        assert_events_on_time(d, since, sim.proc.pid)
        assert "journald did not read" in d.stderr()
        assert d.proc.poll() is None
    finally:
        deaf.close()


# Maps 64 MiB, touches it, unmaps it, again: with a 1 MiB RSS step every pass is dozens of rss records.
CHURN = r"""
import mmap
while True:
    m = mmap.mmap(-1, 64 << 20)
    m.write(b"\1" * (64 << 20))
    m.close()
"""


class StuckStdout:
    """A daemon whose standard output (a pipe) is read until it has started, then not at all until resume()."""

    def __init__(self, tmp_path, args):
        import conftest
        self.go = threading.Event()
        self.go.set()
        self.raw = []
        outer = self

        class D(conftest.Daemon):
            def _read(self):
                for line in self.proc.stdout:
                    outer.go.wait()
                    outer.raw.append(line)
                    self._take(line)

        self.d = D(tmp_path, "observe", args)
        self.go.clear()

    def queued_bytes(self):
        import array
        import fcntl
        import termios
        n = array.array("i", [0])
        fcntl.ioctl(self.d.proc.stdout.fileno(), termios.FIONREAD, n)
        return n[0]

    def pipe_size(self):
        import fcntl
        return fcntl.fcntl(self.d.proc.stdout.fileno(), 1032)  # F_GETPIPE_SZ


def status_lists(sock, pid):
    import conftest
    try:
        out = subprocess.run([conftest.BINARY, "status", "--socket", sock], capture_output=True, text=True,
                             timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and any(line.split()[:1] == [str(pid)] for line in out.stdout.splitlines())


def test_stdout_that_is_not_read_does_not_hold_the_loop(privileged, procs, tmp_path):
    """Standard output is a pipe whose reader stops (a log shipper that hangs, `| less` left open): once the pipe
    is full, a blocking write of a record would hold the loop for good. The loop goes on (a process started
    meanwhile is tracked, `oomsentry status` answers), the records that found no room are dropped and counted,
    and once the pipe is read again one line says how many, and the records go on in order."""
    sock = os.path.join(str(tmp_path), "status.sock")
    s = StuckStdout(tmp_path, ["--rss-step", "1M", "--journal=no", "--cmdline-pattern", "oomsentry-churn"])
    d = s.d
    try:
        churn = procs.start([PYTHON, "-c", CHURN, "oomsentry-churn"])
        deadline = time.time() + 60
        # full: while the churn goes on, the pipe holds no more (a line under PIPE_BUF goes in whole or not at
        # all, and one that does not fit in the last page takes a new one: full is not quite its size)
        last = -1
        while True:
            n = s.queued_bytes()
            if n == last and n > s.pipe_size() // 2:
                break
            assert time.time() < deadline and churn.poll() is None and d.proc.poll() is None, \
                "the pipe never filled: %d bytes in it; stderr:\n%s" % (n, d.stderr())
            last = n
            time.sleep(1)
        # a process started now is seen only by a loop that still handles BPF events
        sleeper = procs.start([PYTHON, "-c", "import time; time.sleep(300)", "oomsentry-churn"])
        deadline = time.time() + 20
        while not status_lists(sock, sleeper.pid):
            assert time.time() < deadline, "the loop stopped while standard output was not read; stderr:\n%s" % \
                d.stderr()
            time.sleep(0.2)
        deadline = time.time() + 60
        while "standard output is not read" not in d.stderr():
            assert time.time() < deadline and d.proc.poll() is None, d.stderr()
            time.sleep(0.2)
        assert status_lists(sock, churn.pid)
        s.go.set()
        notice = d.wait_for(lambda r: r["event"] == "daemon" and r.get("state") == "stdout_dropped", timeout=30,
                            what="the dropped-records line")
        assert notice["dropped"] > 0, notice
        # records of the churn after the gap
        at = d.records.index(notice)
        d.wait_for(lambda r: r["event"] == "rss" and r.get("pid") == churn.pid, since=at + 1, what="records again")
        churn.kill()
        assert d.stop() == 0
        assert not d.find(lambda r: r["event"] == "unparsed"), "torn lines: %s" % d.find(
            lambda r: r["event"] == "unparsed")[:3]
        assert len(d.find(lambda r: r.get("state") == "stdout_dropped")) == 1
        # in order: one process's RSS steps, as the kernel saw them, never go back in time across the gap
        ts = [r["event_monotonic_ns"] for r in d.records if r["event"] == "rss" and r.get("pid") == churn.pid]
        assert len(ts) > 2 and ts == sorted(ts) and len(set(ts)) == len(ts)
        assert d.records[-1].get("state") == "stopped"
    finally:
        s.go.set()
        d.stop()


def test_stderr_that_is_not_read_does_not_hold_the_loop(privileged, cgroup_factory, sim_factory, tmp_path):
    """Standard error is a pipe nobody reads (a service manager's log pipe that hangs): the daemon's messages fill
    it. Here each systemd-oomd pre-kill call for a cgroup that holds no instance is one message; far more of them
    than the pipe and the message queue hold. The loop goes on: every call is answered, `oomsentry status`
    answers, the server's RSS steps are journaled, and a controlled restart (every two generations) runs its
    prompts exactly once. Once the pipe is read again, one message says how many were dropped, and every line is
    whole. (A daemon that wrote standard error from the loop blocked in write() at the pipe's 64 KiB: the next
    call was never answered.)"""
    import conftest
    from test_prekill import call as prekill_call
    cg = cgroup_factory(LIMIT)
    sim = sim_factory(SMALL + outputs_args(tmp_path), cgroup=cg, supervised=True)
    hook = os.path.join(str(tmp_path), "oomd.prekill.hook", "oomsentry")
    sock = os.path.join(str(tmp_path), "status.sock")
    rfd, wfd = os.pipe()
    d = None
    try:
        d = conftest.Daemon(tmp_path, "run", ["--url", sim.url, "--restart", "signal", "--restart-every-generations",
                                              "2", "--prekill-hook", hook, "--journal=no"] + FAST, stderr=wfd)
        os.close(wfd)
        wfd = -1
        d.wait_for(lambda r: r["event"] == "comfy" and "server is pid" in r["message"], what="server found")
        pipe_size = fcntl.fcntl(rfd, 1032)  # F_GETPIPE_SZ
        # each message is about 100 bytes: the pipe and the 256 KiB queue behind it are full many times over
        n = 2 * (pipe_size + (256 << 10)) // 90
        for i in range(n):
            try:
                reply, _ = prekill_call(hook, "io.systemd.oom.Prekill.Notify",
                                        {"cgroup": "/oomsentry-test-none-%d" % i}, timeout=10)
            except socket.timeout:
                raise AssertionError("pre-kill call %d of %d not answered in 10 s (%d bytes wait in standard error): "
                                     "the loop is held" % (i, n, queued(rfd)))
            assert reply == {"parameters": {}}, reply
        assert queued(rfd) >= pipe_size // 2, "the messages never filled standard error: %d bytes" % queued(rfd)
        ids = submit(sim, 5, "stderr")
        since = len(d.records)
        out = subprocess.run([conftest.BINARY, "status", "--socket", sock], capture_output=True, text=True,
                             timeout=10)
        assert out.returncode == 0 and "default" in out.stdout, (out.returncode, out.stdout, out.stderr)
        wait(d, lambda r: r["event"] == "action" and r.get("action") == "restart_complete", 120, "a restart")
        done = wait_exactly_once(sim, ids, timeout=120)
        assert all(done.get(i) == 1 for i in ids), (done, story(d))
        assert_once_by_content(tmp_path, ids, d)
        assert any(r["event"] == "rss" for r in d.records[since:]), "no RSS step journaled"
        # read again, and more messages until one is written (the first ones may still find the queue full): the gap
        # is said before it, once, and every line is whole
        text = b""
        os.set_blocking(rfd, False)
        deadline = time.time() + 30
        k = 0
        while time.time() < deadline and b"/oomsentry-test-none-after" not in text:
            try:
                text += os.read(rfd, 1 << 16)
                continue
            except BlockingIOError:
                pass
            prekill_call(hook, "io.systemd.oom.Prekill.Notify", {"cgroup": "/oomsentry-test-none-after-%d" % k},
                         timeout=10)
            k += 1
            time.sleep(0.05)
        assert b"messages were not written to standard error" in text, text[-2000:]
        assert d.proc.poll() is None
        assert d.stop() == 0
        while True:
            try:
                chunk = os.read(rfd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            text += chunk
        lines = text.decode().splitlines()
        assert all(l.startswith("oomsentry: ") for l in lines), [l for l in lines if not l.startswith("oomsentry: ")][:3]
        gap = [i for i, l in enumerate(lines) if "messages were not written to standard error" in l]
        assert len(gap) == 1, gap
        after = next(i for i, l in enumerate(lines) if "/oomsentry-test-none-after" in l)
        assert gap[0] < after, lines[gap[0] - 2:after + 2]
    finally:
        if wfd >= 0:
            os.close(wfd)
        if d is not None:
            d.stop()
        os.close(rfd)


def queued(fd):
    import array
    import termios
    n = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, n)
    return n[0]
