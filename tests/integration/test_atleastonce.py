"""At least once: a prompt POSTed to ComfyUI is in the queue snapshot (what any stop resubmits) one round trip after
ComfyUI's `status` broadcast, not at the next poll_interval, even when it comes while the previous /queue is being
answered. The poll interval is a minute here: only the websocket can make the snapshot current."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port
from test_durability import (FAST as DFAST, Proxy, WrappedSim, assert_once_by_content, outputs_args, snapshot_file,
                             story, submit, successes, wait_exactly_once)
from test_comfy_sim import WS
from test_prekill import call as prekill_call
from test_prevention import LIMIT

N = 40


def snapshot_ids(path):
    try:
        with open(path) as f:
            return {it["prompt_id"] for it in json.load(f)["items"]}
    except (OSError, ValueError):
        return set()


def prekill_scenario(daemon_factory, cgroup_factory, procs, tmp_path, proxy_class, steps, daemon_args):
    """A simulator of prompts of `steps` x 100 ms in its own cgroup, behind proxy_class, and a daemon that restarts it
    with signals and answers systemd-oomd's pre-kill calls at the hook returned. The daemon is started last: a
    failed start still leaves the proxy to close."""
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = WrappedSim(procs, tmp_path, free_port(), ["--model-mb", "50", "--peak-mb", "20", "--leak-mb", "0",
                                                     "--steps", str(steps), "--step-ms", "100", "--pid-file",
                                                     pid_file] + outputs_args(tmp_path), cg)
    proxy = proxy_class(sim.port)
    hook = os.path.join(str(tmp_path), "oomd.prekill.hook", "oomsentry")

    def start():
        return daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file,
                                      "--restart", "signal", "--prekill-hook", hook] + daemon_args + DFAST +
                              ["--http-timeout", "5s"])
    return cg, sim, proxy, hook, start


def last_resort_by_prekill(d, cg, hook):
    """systemd-oomd's pre-kill call for the cgroup: with the API not answering, the daemon's last resort."""
    rel = "/" + os.path.relpath(cg.path, os.path.dirname(cg.path))
    reply, _ = prekill_call(hook, "io.systemd.oom.Prekill.Notify", {"cgroup": rel})
    assert reply == {"parameters": {}}
    stop = d.wait_for(lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and
                      r.get("result") == "stopping", what="the stop")
    assert stop["last_resort"] == 1, stop
    return stop


def test_prompts_posted_during_a_poll_reach_the_snapshot(daemon_factory, sim_factory, tmp_path):
    # prompts that run for minutes: the queue only grows while the test looks at it
    sim = sim_factory(["--model-mb", "10", "--peak-mb", "10", "--leak-mb", "0", "--steps", "1000",
                       "--step-ms", "200"])
    d = daemon_factory("run", ["--url", sim.url, "--restart", "signal", "--poll-interval", "60s"])
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("websocket") == "connected", what="the websocket")
    path = os.path.join(str(tmp_path), "state", "queue-default.json")
    ids = []
    lock = threading.Lock()

    # bursts from four clients at once: broadcasts keep arriving while the daemon's /queue is in flight
    def client():
        got = sim.submit(N // 4)
        with lock:
            ids.extend(got)
    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == N
    deadline = time.time() + 5
    while time.time() < deadline and not set(ids) <= snapshot_ids(path):
        time.sleep(0.05)
    missing = set(ids) - snapshot_ids(path)
    assert not missing, "%d of %d prompts are not in the snapshot 5 s after they were queued (poll_interval 60 s)" % (
        len(missing), N)


class LateProxy(Proxy):
    """The durability tests' proxy with two more behaviours for GET /queue: "fail" closes the connection unanswered
    once (the API looks down) and then "hold": the request is answered by the simulator at once, but the reply is
    held back until release is set, so that it reaches the daemon after the stop."""

    def __init__(self, target_port):
        super().__init__(target_port)
        self.release = threading.Event()
        self.held_bodies = []
        self.holding = threading.Event()

    def _serve(self, c):
        try:
            req = self._read_request(c)
            if req is None or not req[0].startswith(b"GET /queue") or self.mode not in ("fail", "hold"):
                return self._forward(c, req)
            if self.mode == "fail":
                self.mode = "hold"
                c.close()
                return
            reply = self._upstream(req)
            self.held_bodies.append(reply)
            self.holding.set()
            self.release.wait(20)
            c.sendall(reply)
        except OSError:
            pass
        try:
            c.close()
        except OSError:
            pass

    def _upstream(self, req):
        head, body = req
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
        return rh + b"\r\nConnection: close\r\n\r\n" + rb

    def _forward(self, c, req):
        if req is None:
            return
        c.sendall(self._upstream(req))


def test_a_prompt_posted_just_before_the_last_resort_is_owed(daemon_factory, cgroup_factory, procs, tmp_path):
    """The last resort asks the server nothing: the snapshot of its last /queue reply is the queue. A prompt POSTed
    after that reply is lost with the server, unless a /queue already asked is answered after the stop began: that
    answer is the old server's queue too, and what it adds is owed to the next server. Here the API looks down
    (one /queue unanswered), the next /queue is answered with the new prompt in it but held back by the proxy,
    systemd-oomd's pre-kill call makes the daemon stop the server from its snapshot (the last resort: the API does
    not answer), and then the held reply arrives."""
    # prompts of 4 s: the queue stays queued while the test looks at it
    cg, sim, proxy, hook, start = prekill_scenario(daemon_factory, cgroup_factory, procs, tmp_path, LateProxy, 40,
                                                   ["--websocket=no"])
    try:
        d = start()
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid"), what="server found")
        first = submit(sim, 3, "before")
        deadline = time.time() + 30
        while time.time() < deadline and not set(first) <= snapshot_ids(snapshot_file(tmp_path)):
            time.sleep(0.1)
        assert set(first) <= snapshot_ids(snapshot_file(tmp_path)), "the first prompts never reached the snapshot"
        proxy.mode = "fail"
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("errno"), what="the API looking down")
        late = submit(sim, 1, "late")
        (late_id,) = late
        # the reply that holds the late prompt is on its way back when the stop begins
        deadline = time.time() + 10
        while time.time() < deadline and not any(late_id.encode() in b for b in proxy.held_bodies):
            time.sleep(0.05)
        assert any(late_id.encode() in b for b in proxy.held_bodies), "no /queue asked after the late prompt"
        assert late_id not in snapshot_ids(snapshot_file(tmp_path))
        last_resort_by_prekill(d, cg, hook)
        proxy.mode = "pass"
        proxy.release.set()
        ids = dict(first, **late)
        done = wait_exactly_once(sim, list(ids), timeout=120)
        assert done.get(late_id) == 1, ("the late prompt", done, story(d))
        assert all(done.get(i) == 1 for i in ids), (done, story(d))
        assert_once_by_content(tmp_path, ids, d)
    finally:
        proxy.release.set()
        proxy.close()


class HoldQueueProxy(LateProxy):
    """LateProxy that also carries the websocket (the upgrade request and then both directions as they are) and, in
    mode "hang", never answers GET /queue at all: the server died before it could."""

    def __init__(self, target_port):
        super().__init__(target_port)

    def _serve(self, c):
        try:
            return self._serve_request(c, self._read_request(c))
        except OSError:
            pass
        try:
            c.close()
        except OSError:
            pass

    def _serve_request(self, c, req):
        if req is not None and req[0].startswith(b"GET /ws"):
            return self._tunnel(c, req)
        if req is not None and req[0].startswith(b"GET /queue") and self.mode == "hang":
            self.held.append(c)  # never answered, never closed (closed by close())
            return
        self._forward(c, req)
        c.close()

    def _tunnel_opened(self):
        """Called once a websocket is carried; a subclass counts them."""

    def _carried_down(self, n):
        """Called after n bytes went from the server to the daemon over a websocket."""

    def _tunnel(self, c, req):
        up = socket.create_connection(("127.0.0.1", self.target), timeout=None)
        up.sendall(req[0] + b"\r\n\r\n" + req[1])
        self._tunnel_opened()

        def pipe(a, b, down):
            try:
                while True:
                    chunk = a.recv(65536)
                    if not chunk:
                        break
                    b.sendall(chunk)
                    if down:
                        self._carried_down(len(chunk))
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=pipe, args=(up, c, True), daemon=True).start()
        pipe(c, up, False)


def unread_by_daemon(port):
    """Bytes waiting in the receive queues of the daemon's connections to the proxy (ss: client side, dport)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :%d )" % port], capture_output=True,
                         text=True, check=True).stdout
    return sum(int(l.split()[0]) for l in out.splitlines() if l.strip())


@pytest.mark.parametrize("n", [3, 2], ids=["counts", "ids"])
def test_a_prompt_that_finished_after_the_last_queue_reply_is_not_run_again(daemon_factory, cgroup_factory, procs,
                                                                              tmp_path, n):
    """The last resort stops the server from the snapshot of its last /queue reply. A prompt that finished after that
    reply is still its running prompt there, and the /queue its broadcasts wake is never answered (the server is
    stopped first). The prompt must not be resubmitted: it ran once. The prompts behind it run once each.
    counts: ComfyUI's status broadcasts say it left (queue_remaining 3 -> 2 as it ends, 2 again as the worker takes
    the next prompt). ids: 2 -> 1 -> 1 is also what a DELETE of the last pending prompt broadcasts, so the counts
    prove nothing; the next prompt's progress_state (sent to every websocket) says it started, and so that the one
    before it had left the worker."""
    # prompts of 3 s: the first runs while the test looks, the next one has not ended when the stop comes
    cg, sim, proxy, hook, start = prekill_scenario(daemon_factory, cgroup_factory, procs, tmp_path, HoldQueueProxy,
                                                   30, [])
    watch = None
    try:
        d = start()
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("websocket") == "connected", what="the websocket")
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid"), what="server found")
        watch = WS(sim.port, "watch")   # another client of the server, not through the proxy
        ids = submit(sim, n, "ran-once")
        first = next(i for i, seed in ids.items() if seed.endswith("-0"))

        def snapshot_running():
            try:
                with open(snapshot_file(tmp_path)) as f:
                    items = json.load(f)["items"]
            except (OSError, ValueError):
                return None
            return [it["prompt_id"] for it in items if it["running"]], len(items)
        # the snapshot mirrors a reply with the first prompt running and the others pending; then no /queue is answered
        deadline = time.time() + 30
        while time.time() < deadline and snapshot_running() != ([first], n):
            time.sleep(0.05)
        assert snapshot_running() == ([first], n), snapshot_running()
        proxy.mode = "hang"
        # the first prompt ends on the server and the worker takes the second one (the sim's own /queue says so)
        deadline = time.time() + 30
        while time.time() < deadline:
            q = sim.request("GET", "/queue")
            if [it[1] for it in q["queue_running"]] not in ([], [first]):
                break
            time.sleep(0.05)
        assert successes(sim).get(first) == 1, "the first prompt did not finish"
        assert snapshot_running() == ([first], n), "a /queue reply after the finish reached the snapshot"
        # the next prompt is a step in: the broadcasts of its start left the server a step (100 ms) ago
        second = [it[1] for it in sim.request("GET", "/queue")["queue_running"]]
        watch.collect_until(lambda m: m["type"] == "progress_state" and [m["data"]["prompt_id"]] == second and
                            any(v["value"] >= 1 for v in m["data"]["nodes"].values()), timeout=30)
        # its broadcasts are read by the daemon (nothing left in its sockets' receive queues)
        deadline = time.time() + 10
        while time.time() < deadline and unread_by_daemon(proxy.port):
            time.sleep(0.02)
        assert not unread_by_daemon(proxy.port)
        stop = last_resort_by_prekill(d, cg, hook)
        assert stop["saved"] == n - 1, (stop, story(d))
        proxy.mode = "pass"
        done = wait_exactly_once(sim, list(ids), timeout=120)
        assert all(done.get(i) == 1 for i in ids), (done, story(d))
        assert_once_by_content(tmp_path, ids, d)
    finally:
        if watch:
            watch.close()
        proxy.close()


class DrainProxy(HoldQueueProxy):
    """HoldQueueProxy (the websocket carried through) that makes a client POST one prompt straight to the simulator
    during a controlled restart's drain, once the drain's /interrupt has gone through:
      at="history": just before the first GET /history/... after it is forwarded (the drain's lookups, after which
        the daemon used to stop the server without asking /queue again);
      at="look": inside the first GET /queue after such a lookup: the simulator answers it first, then the prompt
        is POSTed, its status broadcast is carried over the websocket to the daemon, and only then does the reply
        go back (the reply says nothing of the prompt; the broadcast came before the reply was read).
    Only while the server that got the /interrupt still runs (its pid file): a prompt POSTed to its successor
    proves nothing."""

    def __init__(self, target_port, sim, pid_file, at):
        super().__init__(target_port)
        self.sim, self.pid_file, self.at = sim, pid_file, at
        self.lock = threading.Lock()
        self.interrupted_pid = None
        self.looked_up = False
        self.late = {}
        self.down = 0  # bytes carried from the server to the daemon over the websocket
        self.tunnels = 0
        self.down_cond = threading.Condition()

    def _sim_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _post_late(self):
        with self.down_cond:
            before = self.down
        self.late.update(submit(self.sim, 1, "late"))
        # its broadcast reached the daemon's socket before whatever follows
        with self.down_cond:
            if self.tunnels:
                assert self.down_cond.wait_for(lambda: self.down > before, timeout=10), "no status broadcast"

    def _serve(self, c):
        try:
            req = self._read_request(c)
            line = req[0].split(b"\r\n")[0] if req else b""
            with self.lock:
                if line.startswith(b"POST /interrupt") and self.interrupted_pid is None:
                    self.interrupted_pid = self._sim_pid()
                due = not self.late and self.interrupted_pid is not None and \
                    self._sim_pid() == self.interrupted_pid
                if due and self.at == "history" and line.startswith(b"GET /history/"):
                    self._post_late()
                elif due and self.at == "look" and line.startswith(b"GET /history/"):
                    self.looked_up = True
                elif due and self.at == "look" and self.looked_up and line.startswith(b"GET /queue"):
                    reply = self._upstream(req)
                    self._post_late()
                    c.sendall(reply)
                    c.close()
                    return
            return self._serve_request(c, req)
        except OSError:
            pass
        try:
            c.close()
        except OSError:
            pass

    def _tunnel_opened(self):
        with self.down_cond:
            self.tunnels += 1

    def _carried_down(self, n):
        with self.down_cond:
            self.down += n
            self.down_cond.notify_all()


def drain_scenario(daemon_factory, cgroup_factory, procs, tmp_path, at, daemon_args):
    """Prompts of 1 s; the daemon restarts the server every two generations (a controlled restart at the generation
    boundary: the prompt just started is interrupted, the pending ones taken out of the queue, the interrupted one
    looked up in /history, then the stop), and a client POSTs a prompt in the middle of it (DrainProxy)."""
    cg = cgroup_factory(LIMIT)
    pid_file = os.path.join(str(tmp_path), "sim.pid")
    sim = WrappedSim(procs, tmp_path, free_port(), ["--model-mb", "50", "--peak-mb", "20", "--leak-mb", "0",
                                                     "--steps", "10", "--step-ms", "100", "--pid-file", pid_file] +
                     outputs_args(tmp_path), cg)
    proxy = DrainProxy(sim.port, sim, pid_file, at)
    try:
        d = daemon_factory("run", ["--url", proxy.url, "--pid-file", pid_file, "--cmdline-pattern", pid_file,
                                   "--restart", "signal", "--restart-every-generations", "2", "--stop-grace", "10s"] +
                           DFAST + daemon_args)
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid"), what="server found")
        if "--websocket=no" not in daemon_args:
            d.wait_for(lambda r: r["event"] == "comfy" and r.get("websocket") == "connected", what="the websocket")
        ids = submit(sim, 4, "drain")
        d.wait_for(lambda r: r["event"] == "action" and r.get("action") == "restart_stop" and
                   r.get("result") == "stopping", timeout=120, what="the controlled restart's stop")
        assert proxy.late, "no prompt POSTed during the drain (between its /interrupt and the stop the daemon " \
            "asked %s):\n%s" % ("no /history" if at == "history" else "no /queue after /history", story(d))
        ids.update(proxy.late)
        done = wait_exactly_once(sim, list(ids), timeout=180)
        (late_id,) = proxy.late
        assert done.get(late_id) == 1, ("the prompt POSTed during the drain", done, story(d))
        assert all(done.get(i) == 1 for i in ids), (done, story(d))
        assert_once_by_content(tmp_path, ids, d)
        assert cg.oom_kills() == 0
    finally:
        proxy.close()


def test_a_prompt_posted_during_the_drains_lookups_is_owed(daemon_factory, cgroup_factory, procs, tmp_path):
    """A controlled restart's drain has emptied the queue and looks the interrupted prompt up in /history; a client
    POSTs a prompt meanwhile (the worker, idle, starts it at once). The daemon used to stop the server after the
    lookup: the prompt died with it, in no snapshot. Now a /queue after the lookups comes before the stop: the
    prompt is interrupted, saved, and runs once on the next server. Without the websocket: /queue alone says."""
    drain_scenario(daemon_factory, cgroup_factory, procs, tmp_path, "history", ["--websocket=no"])


def test_a_prompt_posted_as_the_drains_last_look_is_answered_is_owed(daemon_factory, cgroup_factory, procs,
                                                                     tmp_path):
    """The drain's last /queue before the stop is answered without a prompt a client POSTed just after ComfyUI made
    the reply, but its status broadcast reached the daemon before the reply did: the queue changed around the reply,
    so the daemon looks again instead of stopping, and the prompt is owed to the next server."""
    drain_scenario(daemon_factory, cgroup_factory, procs, tmp_path, "look", [])
