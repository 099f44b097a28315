# SPDX-License-Identifier: GPL-2.0
"""Tests that earn the simulator our trust: ComfyUI's routes and JSON shapes, the prompt lifecycle, real
memory that grows and is released like ComfyUI's, deferred /free, interrupt, resubmission, websocket
delivery, orphan workers, crash modes, and the supervisor. Run: /usr/bin/python3 -m pytest -q tests/sim"""

import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "comfy_sim.py")
SUPERVISOR = os.path.join(HERE, "supervisor.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
MIB = 1 << 20


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=5.0, interval=0.02, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    return None


def vmrss(pid):
    return int(proc_status(pid, "VmRSS").split()[0]) * 1024


def ppid_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def children_of(pid):
    """The simulator's workers: multiprocessing spawn children (its resource tracker is not one of them)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if ppid_of(int(d)) == pid:
                    with open("/proc/%s/cmdline" % d, "rb") as f:
                        if b"spawn_main" in f.read():
                            out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def kill_quietly(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def assert_close_mib(actual_bytes, expected_mib, what):
    """Within 10 % of the expected growth (at least 3 MiB: interpreter noise)."""
    tol = max(0.10 * expected_mib, 3.0)
    actual = actual_bytes / MIB
    assert abs(actual - expected_mib) <= tol, "%s: %.1f MiB, expected %.1f +- %.1f" % (what, actual, expected_mib, tol)


def control(steps=4, step_ms=20, **kw):
    inputs = {"steps": steps, "step_ms": step_ms}
    inputs.update(kw)
    return {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sim.safetensors"}},
            "3": {"class_type": "SimControl", "inputs": inputs},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}}}


class Sim:
    def __init__(self, tmp_path, *extra, name="sim"):
        self.port = free_port()
        self.state_file = str(tmp_path / ("%s.state.jsonl" % name))
        self.pid_file = str(tmp_path / ("%s.pid" % name))
        self.out_path = tmp_path / ("%s.out" % name)
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen([PY, SIM, "--port", str(self.port), "--state-file", self.state_file,
                                      "--pid-file", self.pid_file] + [str(a) for a in extra],
                                     stdout=self.out, stderr=subprocess.STDOUT, cwd=str(tmp_path))
        self.pid = self.proc.pid
        wait_until(self.ready, timeout=10, what="simulator on port %d" % self.port)

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("simulator exited with %s:\n%s" % (self.proc.returncode, self.output()))
        try:
            return self.request("GET", "/system_stats")[0] == 200
        except OSError:
            return False

    def output(self):
        self.out.flush()
        return self.out_path.read_text()

    def request(self, method, path, body=None, headers=None, timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if body is not None and not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, data, r
        finally:
            conn.close()

    def get(self, path):
        status, data, _ = self.request("GET", path)
        assert status == 200, (path, status, data)
        return json.loads(data)

    def post(self, path, body=None, expect=200):
        status, data, _ = self.request("POST", path, body if body is not None else b"")
        assert status == expect, (path, status, data)
        return json.loads(data) if data else None

    def submit(self, prompt=None, **kw):
        body = {"prompt": prompt if prompt is not None else control()}
        body.update(kw)
        return self.post("/prompt", body)

    def history(self, prompt_id):
        return self.get("/history/" + prompt_id).get(prompt_id)

    def wait_done(self, prompt_id, timeout=10):
        return wait_until(lambda: self.history(prompt_id), timeout=timeout, what="history of " + prompt_id)

    def wait_running(self, prompt_id, timeout=5):
        wait_until(lambda: [i for i in self.get("/queue")["queue_running"] if i[1] == prompt_id],
                   timeout=timeout, what="%s running" % prompt_id)

    def rss(self):
        return vmrss(self.pid)

    def state_lines(self):
        if not os.path.exists(self.state_file):
            return []
        with open(self.state_file) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


@pytest.fixture
def sims(tmp_path):
    """Factory; every simulator (and every extra pid registered in .pids) is killed at teardown."""
    started = []

    class Factory:
        pids = []

        def __call__(self, *extra, name=None):
            s = Sim(tmp_path, *extra, name=name or "sim%d" % len(started))
            started.append(s)
            return s

    f = Factory()
    yield f
    for s in started:
        s.stop()
    for pid in f.pids:
        kill_quietly(pid)


@pytest.fixture
def sim(sims):
    return sims("--model-mb", 8, "--peak-mb", 4, "--leak-mb", 2, "--steps", 4, "--step-ms", 10)


class WS:
    """Minimal RFC 6455 client: enough to check the server's side."""

    def __init__(self, port, client_id=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        path = "/ws" + ("?clientId=" + client_id if client_id is not None else "")
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, port, key)).encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, "connection closed during handshake"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), lines
        hdrs = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        expect = base64.b64encode(digest).decode()
        assert hdrs["sec-websocket-accept"] == expect
        assert hdrs["upgrade"].lower() == "websocket"

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError()
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_frame(self, timeout=5):
        self.sock.settimeout(timeout)
        b0, b1 = self._read(2)
        assert not b1 & 0x80, "server frames must not be masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return b0 & 0x0F, self._read(n)

    def recv_json(self, timeout=5):
        while True:
            op, payload = self.recv_frame(timeout)
            if op == 0x1:
                return json.loads(payload)

    def send_frame(self, opcode, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        else:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def collect_until(self, pred, timeout=10):
        msgs = []
        end = time.monotonic() + timeout
        while True:
            m = self.recv_json(timeout=max(0.1, end - time.monotonic()))
            msgs.append(m)
            if pred(m):
                return msgs

    def drain(self, seconds):
        msgs = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msgs.append(self.recv_json(timeout=max(0.05, end - time.monotonic())))
            except socket.timeout:
                break
        return msgs

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------------------------------------
# routes and shapes
# ---------------------------------------------------------------------------------------------------------


def test_ws_accept_is_rfc6455():
    """The accept token of RFC 6455 section 1.3's own example: a wrong GUID passes a test that shares it but no
    real client (libwebsockets, browsers) connects."""
    sys.path.insert(0, HERE)
    import comfy_sim
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    assert base64.b64encode(hashlib.sha1((key + comfy_sim.WS_GUID).encode()).digest()).decode() == \
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

def test_routes_and_shapes(sim):
    st = sim.get("/system_stats")
    assert set(st) == {"system", "devices"}
    sysd = st["system"]
    assert sysd["os"] == "posix" and sysd["ram_total"] > 0 and 0 < sysd["ram_free"] <= sysd["ram_total"]
    assert sysd["comfyui_version"] == "0.3.x-sim" and sysd["pytorch_version"] == "sim"
    assert sysd["embedded_python"] is False and isinstance(sysd["argv"], list) and sysd["python_version"]
    assert st["devices"] == [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0,
                              "torch_vram_total": 0, "torch_vram_free": 0}]
    assert sim.get("/queue") == {"queue_running": [], "queue_pending": []}
    assert sim.get("/api/queue") == {"queue_running": [], "queue_pending": []}
    assert sim.get("/prompt") == {"exec_info": {"queue_remaining": 0}}
    assert sim.get("/history") == {}
    assert sim.get("/history/no-such-id") == {}
    status, body, r = sim.request("GET", "/")
    assert status == 200 and r.getheader("Content-Type").startswith("text/html") and b"ComfyUI" in body
    assert sim.request("GET", "/no/such/route")[0] == 404
    assert sim.request("POST", "/system_stats", b"{}")[0] == 405
    assert sim.request("GET", "/free")[0] == 405
    # One python3 process, like ComfyUI, and keep-alive works (libcurl reuses connections).
    assert comm(sim.pid) == "python3" and children_of(sim.pid) == []
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/queue")
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["queue_pending"] == []
    conn.request("POST", "/free", body="{}")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b""
    conn.close()


def test_bad_requests_get_400_and_never_crash(sim):
    for path, body in [("/prompt", b"{bad json"), ("/prompt", b"\xff\xfe"), ("/prompt", b"[" * 100000),
                       ("/free", b"nope"), ("/free", b""), ("/queue", b"[1, 2]"), ("/history", b"1"),
                       ("/interrupt", b"{oops"), ("/interrupt", b"[]")]:
        status, data, _ = sim.request("POST", path, body)
        assert status == 400, (path, body[:20], status, data)
        assert "error" in json.loads(data)
    out = sim.post("/prompt", {"client_id": "x"}, expect=400)
    assert out["error"]["type"] == "no_prompt" and out["node_errors"] == {}
    out = sim.post("/prompt", {"prompt": [1, 2]}, expect=400)
    assert out["error"]["type"] == "invalid_prompt" and out["node_errors"] == {}
    assert sim.post("/prompt", {"prompt": {}, "number": "NaN"}, expect=400)["error"]
    assert sim.post("/prompt", {"prompt": {}, "extra_data": [1]}, expect=400)["error"]
    assert sim.post("/queue", {"delete": "abc"}, expect=400)["error"]
    out = sim.post("/prompt", {"prompt": control(steps=-1, peak_mb="big")}, expect=400)
    assert out["error"]["type"] == "prompt_outputs_failed_validation"
    errs = out["node_errors"]["3"]
    assert errs["class_type"] == "SimControl"
    assert sorted(e["extra_info"]["input_name"] for e in errs["errors"]) == ["peak_mb", "steps"]
    assert sim.request("GET", "/history?max_items=x")[0] == 400
    # Garbage on the wire and a lying Content-Length.
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        s.sendall(b"\x00\x01GARBAGE\r\n\r\n")
        assert b"Error" in s.recv(200)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        s.sendall(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b" 501 " in s.recv(100)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        s.sendall(b"POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        assert b" 400 " in s.recv(100)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        s.sendall(b"POST /prompt HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
        assert b" 413 " in s.recv(100)
    # Nothing of the above was queued, and the server still works.
    assert sim.get("/queue") == {"queue_running": [], "queue_pending": []}
    pid = sim.submit()["prompt_id"]
    assert sim.wait_done(pid)["status"]["status_str"] == "success"
    assert sim.proc.poll() is None


# ---------------------------------------------------------------------------------------------------------
# prompt lifecycle
# ---------------------------------------------------------------------------------------------------------

def test_prompt_lifecycle_and_history(sim):
    prompt = control(steps=3, step_ms=10)
    r = sim.submit(prompt, client_id="c1", extra_data={"extra_pnginfo": {"workflow": {}}})
    assert set(r) == {"prompt_id", "number", "node_errors"} and r["number"] == 0 and r["node_errors"] == {}
    pid = r["prompt_id"]
    h = sim.wait_done(pid)
    assert set(h) == {"prompt", "outputs", "status", "meta"} and h["outputs"] == {} and h["meta"] == {}
    number, hid, hprompt, extra, outputs = h["prompt"]
    assert (number, hid, hprompt, outputs) == (0, pid, prompt, ["3", "9"])
    assert extra["client_id"] == "c1" and extra["extra_pnginfo"] == {"workflow": {}}
    assert isinstance(extra["create_time"], int)
    st = h["status"]
    assert st["status_str"] == "success" and st["completed"] is True
    assert [m[0] for m in st["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    for _, data in st["messages"]:
        assert data["prompt_id"] == pid and isinstance(data["timestamp"], int)
    assert st["messages"][1][1]["nodes"] == []
    assert sim.get("/queue") == {"queue_running": [], "queue_pending": []}
    # Numbers count up; max_items keeps the newest entries, offset pages from the oldest.
    r2 = sim.submit(control(steps=1, step_ms=0))
    assert r2["number"] == 1
    sim.wait_done(r2["prompt_id"])
    assert list(sim.get("/history")) == [pid, r2["prompt_id"]]
    assert list(sim.get("/history?max_items=1")) == [r2["prompt_id"]]
    assert list(sim.get("/history?max_items=1&offset=0")) == [pid]
    # Opaque prompts without SimControl use the command-line defaults.
    r3 = sim.submit({"1": {"class_type": "KSampler", "inputs": {}}, "x": 5})
    assert sim.wait_done(r3["prompt_id"])["status"]["completed"] is True
    sim.post("/history", {"delete": [pid]})
    assert pid not in sim.get("/history")
    sim.post("/history", {"clear": True})
    assert sim.get("/history") == {}


def test_node_error_goes_to_history(sim):
    pid = sim.submit(control(steps=5, step_ms=5, error_at_step=2))["prompt_id"]
    st = sim.wait_done(pid)["status"]
    assert st["status_str"] == "error" and st["completed"] is False
    ev, data = st["messages"][-1]
    assert ev == "execution_error"
    assert data["node_id"] == "3" and data["node_type"] == "SimControl" and data["executed"] == ["4"]
    assert data["exception_type"] == "RuntimeError" and "step 2/5" in data["exception_message"]


# ---------------------------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------------------------

def test_memory_grows_and_free_releases(sims):
    s = sims("--model-mb", 48, "--peak-mb", 24, "--leak-mb", 16, "--cache-leak-mb", 8, "--node-leak-mb", 8,
             "--steps", 4, "--step-ms", 10)
    base = s.rss()

    p1 = s.submit({"1": {"class_type": "KSampler", "inputs": {}}})["prompt_id"]
    s.wait_done(p1)
    assert_close_mib(s.rss() - base, 48 + 16 + 8 + 8, "after generation 1")
    p2 = s.submit({"1": {"class_type": "KSampler", "inputs": {}}})["prompt_id"]
    s.wait_done(p2)
    assert_close_mib(s.rss() - base, 48 + 2 * (16 + 8 + 8), "after generation 2")

    # Idle: unload_models frees the model and the leak attached to it within a second.
    t0 = time.monotonic()
    s.post("/free", {"unload_models": True})
    wait_until(lambda: s.rss() - base < 40 * MIB, timeout=1.0, what="unload_models to act")
    assert time.monotonic() - t0 < 1.0
    assert_close_mib(s.rss() - base, 2 * (8 + 8), "after unload_models")
    st = s.get("/sim/state")
    assert st["model_loaded"] is False and st["model_leak_bytes"] == 0 and st["cache_leak_bytes"] == 16 * MIB

    # free_memory: the executor cache too; the custom-node leak stays until a restart.
    s.post("/free", {"free_memory": True})
    wait_until(lambda: s.get("/sim/state")["cache_leak_bytes"] == 0, timeout=1.0, what="free_memory to act")
    # the pages come back to the kernel a moment after the cache is dropped (seen: 4 MiB over, once, in a clean run)
    wait_until(lambda: abs((s.rss() - base) / MIB - 2 * 8) <= 3.0, timeout=2.0, what="free_memory's pages back")
    assert_close_mib(s.rss() - base, 2 * 8, "after free_memory")

    # The next prompt reloads the model.
    p3 = s.submit({"1": {"class_type": "KSampler", "inputs": {}}})["prompt_id"]
    s.wait_done(p3)
    assert_close_mib(s.rss() - base, 2 * 8 + 48 + 16 + 8 + 8, "after generation 3 (model reloaded)")

    # The state file is the ground truth tests of oomsentry read.
    lines = s.state_lines()
    prompts = [l for l in lines if l["event"] == "prompt"]
    frees = [l for l in lines if l["event"] == "free"]
    assert [(l["prompt_id"], l["generation"], l["status"]) for l in prompts] == \
        [(p1, 1, "success"), (p2, 2, "success"), (p3, 3, "success")]
    assert [l["allocated_mib"]["model"] for l in prompts] == [48, 0, 48]
    assert prompts[0]["allocated_mib"] == {"model": 48, "peak": 24, "leak": 16, "cache_leak": 8, "node_leak": 8,
                                           "worker_leak": 0}
    # The peak is seen mid-generation (all of it at the last step) and is gone at the end.
    assert_close_mib(prompts[0]["rss_peak_bytes"] - prompts[0]["rss_start_bytes"], 48 + 24 + 16 + 8 + 8, "peak 1")
    assert_close_mib(prompts[0]["rss_end_bytes"] - prompts[0]["rss_start_bytes"], 48 + 16 + 8 + 8, "end 1")
    assert [f["flags"] for f in frees] == [{"unload_models": True}, {"free_memory": True}]
    assert frees[0]["freed_bytes"] == {"models": (48 + 2 * 16) * MIB}
    assert frees[1]["freed_bytes"] == {"models": 0, "cache": 2 * 8 * MIB}
    out = s.output()
    assert out.count("start generation=") == 3 and out.count("end status=success") == 3


def test_free_while_busy_is_deferred_until_prompt_ends(sims):
    s = sims("--model-mb", 32, "--peak-mb", 0, "--leak-mb", 16, "--steps", 20, "--step-ms", 40)
    base = s.rss()
    pid = s.submit({"1": {"class_type": "KSampler", "inputs": {}}})["prompt_id"]
    wait_until(lambda: s.rss() - base > 32 * MIB, what="model loaded")
    s.post("/free", {"unload_models": True, "free_memory": True})
    assert s.get("/sim/state")["pending_flags"] == {"unload_models": True, "free_memory": True}
    lowest_while_running = None
    while not s.history(pid):
        rss = s.rss()
        if not s.history(pid):       # still running when the sample was taken
            lowest_while_running = rss if lowest_while_running is None else min(lowest_while_running, rss)
        time.sleep(0.02)
    assert lowest_while_running is not None and lowest_while_running - base > 30 * MIB, \
        "/free acted during the prompt"
    assert s.history(pid)["status"]["status_str"] == "success"
    wait_until(lambda: s.rss() - base < 6 * MIB, timeout=1.0, what="deferred /free to act after the prompt")
    assert s.get("/sim/state")["pending_flags"] == {}


def test_checkpoints_stay_loaded_side_by_side_and_load_mid_prompt(sims):
    """Model switching: each ckpt_name is its own checkpoint, kept until /free; model_load_step loads it in the
    middle of the generation (after the prompt started), not at the loader node."""
    s = sims("--model-mb", 24, "--peak-mb", 0, "--leak-mb", 0)
    base = s.rss()

    def prompt(ckpt, **kw):
        p = control(**kw)
        p["4"]["inputs"]["ckpt_name"] = ckpt
        return p
    a = s.submit(prompt("a.safetensors", steps=1, step_ms=0))["prompt_id"]
    s.wait_done(a)
    assert s.get("/sim/state")["models_loaded"] == ["a.safetensors"]
    # b loads 1.2 s into its prompt: room for a slow machine between "running" and the look
    b = s.submit(prompt("b.safetensors", steps=4, step_ms=400, model_load_step=3, model_mb=40))["prompt_id"]
    s.wait_running(b)
    assert s.get("/sim/state")["models_loaded"] == ["a.safetensors"], "b loads at step 3, not before"
    s.wait_done(b)
    st = s.get("/sim/state")
    assert st["models_loaded"] == ["a.safetensors", "b.safetensors"] and st["model_loads"] == 2
    assert_close_mib(s.rss() - base, 24 + 40, "two checkpoints side by side")
    s.wait_done(s.submit(prompt("a.safetensors", steps=1, step_ms=0))["prompt_id"])
    assert s.get("/sim/state")["model_loads"] == 2, "a loaded checkpoint is not loaded again"
    s.post("/free", {"unload_models": True})
    wait_until(lambda: s.get("/sim/state")["models_loaded"] == [], what="unload_models")
    wait_until(lambda: s.rss() - base < 3 * MIB, what="both checkpoints released")


def test_worker_leak_lives_in_the_worker_process(sims):
    s = sims("--model-mb", 0, "--peak-mb", 0, "--leak-mb", 0, "--worker-leak-mb", 24, "--steps", 3,
             "--step-ms", 5)
    base = s.rss()
    for _ in range(2):
        s.wait_done(s.submit()["prompt_id"])
    st = s.get("/sim/state")
    worker = st["leak_worker_pid"]
    assert worker and worker != s.pid and ppid_of(worker) == s.pid and comm(worker) == "python3"
    assert st["leak_worker_bytes"] == 48 * MIB
    assert vmrss(worker) >= 48 * MIB
    assert s.rss() - base < 8 * MIB, "the server itself does not grow"
    # /free gives nothing back: only the worker's end does
    s.post("/free", {"unload_models": True, "free_memory": True})
    time.sleep(0.3)
    assert vmrss(worker) >= 48 * MIB
    os.kill(s.pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(worker), what="worker ends with its server (pipe closed)")


def test_idle_growth_only_while_idle(sims):
    s = sims("--model-mb", 0, "--peak-mb", 0, "--leak-mb", 0, "--idle-leak-mb-per-s", 100)
    wait_until(lambda: s.get("/sim/state")["node_leak_bytes"] >= 40 * MIB, timeout=3, what="idle growth")
    p = s.submit(control(steps=5, step_ms=200))["prompt_id"]
    s.wait_running(p)
    time.sleep(0.1)
    during = s.get("/sim/state")["node_leak_bytes"]
    time.sleep(0.5)
    assert s.get("/sim/state")["node_leak_bytes"] == during, "no growth while a prompt runs"
    s.wait_done(p)
    s.post("/free", {"unload_models": True, "free_memory": True})
    wait_until(lambda: s.get("/sim/state")["node_leak_bytes"] > during + 20 * MIB, timeout=3,
               what="growth again once idle, and /free does not release it")


def test_saved_outputs_are_logged_once_per_success(sims, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    s = sims("--model-mb", 0, "--peak-mb", 0, "--leak-mb", 0, "--output-directory", str(out), "--steps", 2,
             "--step-ms", 5)

    def named(prefix, **kw):
        p = control(**kw)
        p["9"]["inputs"]["filename_prefix"] = prefix
        return p
    ok = s.submit(named("first"))["prompt_id"]
    bad = s.submit(named("broken", error_at_step=1))["prompt_id"]
    again = s.submit(named("first"))["prompt_id"]
    for pid in (ok, bad, again):
        s.wait_done(pid)
    lines = [json.loads(l) for l in (out / "outputs.log").read_text().splitlines()]
    assert [(l["filename_prefix"], l["prompt_id"], l["pid"]) for l in lines] == \
        [("first", ok, s.pid), ("first", again, s.pid)], "an error saves nothing; a second success is a second line"


def test_torch_tensors_hold_the_memory(sims):
    if subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode != 0:
        pytest.skip("python3-torch is not installed (make bench installs it)")
    s = sims("--torch", "--model-mb", 32, "--peak-mb", 24, "--leak-mb", 16, "--steps", 4, "--step-ms", 5)
    base = s.rss()
    p = s.wait_done(s.submit()["prompt_id"])
    assert p["status"]["status_str"] == "success"
    assert_close_mib(s.rss() - base, 32 + 16, "model and leak resident as tensors")
    rec = [l for l in s.state_lines() if l["event"] == "prompt"][0]
    assert_close_mib(rec["rss_peak_bytes"] - rec["rss_start_bytes"], 32 + 24 + 16, "the working set at its peak")
    s.post("/free", {"unload_models": True})
    wait_until(lambda: s.rss() - base < 4 * MIB, what="tensors released by /free")


def test_interrupt_stops_at_next_step(sim):
    pid = sim.submit(control(steps=200, step_ms=20))["prompt_id"]
    sim.wait_running(pid)
    time.sleep(0.1)
    sim.post("/interrupt", {"prompt_id": "someone-else"})     # only the running one may be interrupted
    time.sleep(0.2)
    assert sim.history(pid) is None
    t0 = time.monotonic()
    sim.post("/interrupt", {"prompt_id": pid})
    h = sim.wait_done(pid, timeout=2)
    assert time.monotonic() - t0 < 0.5
    st = h["status"]
    assert st["status_str"] == "error" and st["completed"] is False
    ev, data = st["messages"][-1]
    assert ev == "execution_interrupted"
    assert data["prompt_id"] == pid and data["node_id"] == "3" and data["node_type"] == "SimControl"
    assert data["executed"] == ["4"]
    assert sim.state_lines()[-1]["status"] == "interrupted"

    # No body: interrupt whatever runs.
    pid2 = sim.submit(control(steps=200, step_ms=20))["prompt_id"]
    sim.wait_running(pid2)
    sim.post("/interrupt")
    assert sim.wait_done(pid2, timeout=2)["status"]["messages"][-1][0] == "execution_interrupted"

    # An interrupt while idle is lost, as in ComfyUI (cleared when the next prompt starts).
    sim.post("/interrupt", {})
    pid3 = sim.submit(control(steps=2, step_ms=5))["prompt_id"]
    assert sim.wait_done(pid3)["status"]["status_str"] == "success"


def test_resubmit_with_original_prompt_id(sim):
    r = sim.submit(control(steps=2, step_ms=5), prompt_id="client-chosen-id", client_id="c9")
    assert r["prompt_id"] == "client-chosen-id"
    first = sim.wait_done("client-chosen-id")
    r = sim.submit(control(steps=2, step_ms=5), prompt_id="client-chosen-id", number=7, front=True,
                   extra_data=first["prompt"][3])
    assert r == {"prompt_id": "client-chosen-id", "number": 7.0, "node_errors": {}}
    wait_until(lambda: sim.get("/sim/state")["generation"] == 2
               and sim.get("/prompt")["exec_info"]["queue_remaining"] == 0, what="second run")
    hist = sim.get("/history")
    assert list(hist) == ["client-chosen-id"]
    h = hist["client-chosen-id"]
    assert h["prompt"][0] == 7.0 and h["prompt"][3]["client_id"] == "c9"
    assert h["status"]["status_str"] == "success"


def test_front_goes_first_and_queue_edits(sim):
    a = sim.submit(control(steps=500, step_ms=10))["prompt_id"]
    sim.wait_running(a)
    b = sim.submit(control(steps=1, step_ms=0))["prompt_id"]
    c = sim.submit(control(steps=1, step_ms=0))["prompt_id"]
    d = sim.submit(control(steps=1, step_ms=0), front=True)
    assert d["number"] == -3
    d = d["prompt_id"]
    q = sim.get("/queue")
    assert [i[1] for i in q["queue_running"]] == [a]
    assert [(i[0], i[1]) for i in q["queue_pending"]] == [(-3, d), (1, b), (2, c)]
    assert all(len(i) == 5 for i in q["queue_pending"] + q["queue_running"])
    assert sim.get("/prompt") == {"exec_info": {"queue_remaining": 4}}
    sim.post("/queue", {"delete": [c, "not-queued"]})
    assert [i[1] for i in sim.get("/queue")["queue_pending"]] == [d, b]
    sim.post("/interrupt", {"prompt_id": a})
    hd, hb = sim.wait_done(d), sim.wait_done(b)
    assert hd["status"]["messages"][0][1]["timestamp"] <= hb["status"]["messages"][0][1]["timestamp"]
    assert sim.history(c) is None
    # clear drops pending work, not the running prompt.
    e = sim.submit(control(steps=500, step_ms=10))["prompt_id"]
    sim.wait_running(e)
    f = sim.submit(control(steps=1, step_ms=0))["prompt_id"]
    sim.post("/queue", {"clear": True})
    q = sim.get("/queue")
    assert q["queue_pending"] == [] and [i[1] for i in q["queue_running"]] == [e]
    sim.post("/interrupt")
    sim.wait_done(e)
    assert sim.history(f) is None


# ---------------------------------------------------------------------------------------------------------
# websocket
# ---------------------------------------------------------------------------------------------------------

def test_websocket_status_progress_and_routing(sim):
    ws1 = WS(sim.port, "t1")
    ws2 = WS(sim.port, "t2")
    ws3 = WS(sim.port)
    try:
        first = ws1.recv_json()
        assert first == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "t1"}}
        assert ws2.recv_json()["data"]["sid"] == "t2"
        sid3 = ws3.recv_json()["data"]["sid"]
        assert len(sid3) == 32 and int(sid3, 16) >= 0

        pid = sim.submit(control(steps=3, step_ms=10), client_id="t1")["prompt_id"]
        msgs = ws1.collect_until(lambda m: m["type"] == "executing" and m["data"]["node"] is None)
        types = [m["type"] for m in msgs]
        assert "status" in types
        core = [m for m in msgs if m["type"] not in ("status", "progress_state")]
        assert [m["type"] for m in core] == ["execution_start", "execution_cached"] + ["executing"] + \
            ["executing"] + ["progress"] * 3 + ["executing", "execution_success", "executing"]
        assert [m["data"]["node"] for m in core if m["type"] == "executing"] == ["4", "3", "9", None]
        assert [(m["data"]["value"], m["data"]["max"], m["data"]["node"], m["data"]["prompt_id"])
                for m in core if m["type"] == "progress"] == [(1, 3, "3", pid), (2, 3, "3", pid), (3, 3, "3", pid)]
        assert core[0]["data"]["prompt_id"] == pid and isinstance(core[0]["data"]["timestamp"], int)
        statuses = [m["data"]["status"]["exec_info"]["queue_remaining"] for m in msgs if m["type"] == "status"]
        assert statuses[-1] == 0 and 1 in statuses
        # progress_state: each node's start, each step, each end, with every node that is not pending
        states = [m["data"] for m in msgs if m["type"] == "progress_state"]
        assert {d["prompt_id"] for d in states} == {pid}
        assert [(n, d["nodes"][n]["state"], d["nodes"][n]["value"]) for d, n in
                zip(states, ["4", "4", "3", "3", "3", "3", "3", "9", "9"])] == \
            [("4", "running", 0), ("4", "finished", 1), ("3", "running", 0), ("3", "running", 1),
             ("3", "running", 2), ("3", "running", 3), ("3", "finished", 3), ("9", "running", 0),
             ("9", "finished", 1)]
        assert len(states) == 9 and {n["state"] for n in states[-1]["nodes"].values()} == {"finished"}

        # Other clients see the status and progress_state broadcasts of someone else's prompt, nothing else.
        others = ws2.drain(0.3)
        assert others and {m["type"] for m in others} == {"status", "progress_state"}
        assert [m["data"] for m in others if m["type"] == "progress_state"] == states

        # Without a client_id: progress is broadcast; executing and execution_* are not sent (ComfyUI's
        # execution.py sends them only to a client_id); progress_state as always.
        sim.submit(control(steps=2, step_ms=10))
        got = ws3.collect_until(lambda m: m["type"] == "progress" and m["data"]["value"] == 2)
        got += ws3.drain(0.3)
        assert not [m for m in got if m["type"].startswith("execution_") or m["type"] == "executing"]
        assert {"progress", "progress_state", "status"} == {m["type"] for m in got}

        # Ping is answered with a pong carrying the same payload; close is echoed.
        ws1.drain(0.2)
        ws1.send_frame(0x9, b"hello")
        op, payload = ws1.recv_frame()
        while op == 0x1:
            op, payload = ws1.recv_frame()
        assert (op, payload) == (0xA, b"hello")
        ws1.send_frame(0x1, b'{"type": "feature_flags", "data": {}}')   # client messages are accepted
        ws1.send_frame(0x8, struct.pack("!H", 1000))
        op, payload = ws1.recv_frame()
        while op == 0x1:
            op, payload = ws1.recv_frame()
        assert op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000
    finally:
        for w in (ws1, ws2, ws3):
            w.close()
    # Not an upgrade -> 400; the server is still fine.
    assert sim.request("GET", "/ws?clientId=x")[0] == 400
    assert sim.get("/prompt") == {"exec_info": {"queue_remaining": 0}}


def test_websocket_unmasked_frame_is_a_protocol_error(sim):
    ws = WS(sim.port, "bad")
    try:
        ws.recv_json()
        ws.sock.sendall(struct.pack("!BB", 0x81, 2) + b"hi")
        op, payload = ws.recv_frame()
        assert op == 0x8 and struct.unpack("!H", payload[:2])[0] == 1002
    finally:
        ws.close()
    assert sim.get("/queue")["queue_pending"] == []


# ---------------------------------------------------------------------------------------------------------
# processes: workers, crashes, signals
# ---------------------------------------------------------------------------------------------------------

def test_workers_survive_sigkill_of_parent(sims):
    s = sims("--workers", 2, "--worker-mb", 16, "--model-mb", 0)
    workers = wait_until(lambda: len(children_of(s.pid)) == 2 and children_of(s.pid), what="2 workers")
    sims.pids.extend(workers)
    for w in workers:
        wait_until(lambda: vmrss(w) >= 16 * MIB, what="worker %d memory" % w)
        assert comm(w) == "python3"
    assert sorted(s.get("/sim/state")["worker_pids"]) == sorted(workers)
    s.proc.kill()
    assert s.proc.wait(timeout=5) == -signal.SIGKILL
    time.sleep(0.5)
    for w in workers:
        assert pid_alive(w), "worker %d died with its parent" % w
        assert ppid_of(w) != s.pid and vmrss(w) >= 16 * MIB
    for w in workers:
        os.kill(w, signal.SIGTERM)
    for w in workers:
        wait_until(lambda: not pid_alive(w), what="worker %d to exit on SIGTERM" % w)


def test_graceful_sigterm_takes_workers_and_pid_file(sims):
    s = sims("--workers", 1, "--worker-mb", 4)
    workers = wait_until(lambda: children_of(s.pid), what="worker")
    sims.pids.extend(workers)
    with open(s.pid_file) as f:
        assert int(f.read()) == s.pid
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=5) == 0
    assert not os.path.exists(s.pid_file)
    wait_until(lambda: not pid_alive(workers[0]), what="worker to exit with its parent")
    assert "got SIGTERM, shutting down" in s.output()


def test_sigterm_stops_allocating_at_once_and_completes_nothing(sims, tmp_path):
    """ComfyUI has no SIGTERM handler: the kernel ends it mid-prompt. The simulator's graceful shutdown must not
    let the running prompt keep growing or finish meanwhile."""
    out = tmp_path / "out"
    out.mkdir()
    s = sims("--model-mb", 0, "--peak-mb", 0, "--leak-mb", 200, "--steps", 100, "--step-ms", 5,
             "--output-directory", str(out))
    p = s.submit(control(steps=100, step_ms=5))["prompt_id"]
    s.wait_running(p)
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=5) == 0
    assert [l for l in s.state_lines() if l["event"] == "prompt"] == [], "the running prompt never completes"
    assert not (out / "outputs.log").exists()


def test_a_model_load_halts_between_slices_when_stopped():
    """A 300 MiB checkpoint made resident by one madvise went on charging memory for ~170 ms after SIGTERM, which
    the real server (killed by the kernel at once) never does: the load asks the stop check every slice."""
    sys.path.insert(0, HERE)
    import comfy_sim

    class Stopped(Exception):
        pass
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise Stopped()
    size = 16 * comfy_sim.TOUCH_SLICE
    r = comfy_sim.Region(size, "model")
    comfy_sim._stop_check = check
    try:
        before = vmrss(os.getpid())
        with pytest.raises(Stopped):
            r.touch_all()
        grown = vmrss(os.getpid()) - before
    finally:
        comfy_sim._stop_check = None
        r.release()
    assert len(calls) == 3
    assert grown <= 2 * comfy_sim.TOUCH_SLICE + MIB, grown


def test_sigint_is_graceful(sims):
    s = sims()
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(timeout=5) == 0
    assert not os.path.exists(s.pid_file)


@pytest.mark.parametrize("mode,rc", [("exit0", 0), ("exit1", 1), ("segv", -signal.SIGSEGV),
                                     ("abort", -signal.SIGABRT)])
def test_crash_modes(sims, mode, rc):
    s = sims("--crash-at-generation", 1, "--crash-mode", mode, "--model-mb", 4, "--peak-mb", 4,
             "--leak-mb", 0, "--steps", 4, "--step-ms", 5)
    s.submit()
    assert s.proc.wait(timeout=10) == rc
    assert s.state_lines() == []                        # died mid-generation: nothing recorded
    assert "simulated crash (%s) at generation 1 step 2/4" % mode in s.output()
    assert os.path.exists(s.pid_file)                   # a crash leaves its pid file behind, like a real one


def test_crash_at_third_generation(sims):
    s = sims("--crash-at-generation", 3, "--crash-mode", "exit0", "--model-mb", 4, "--peak-mb", 2,
             "--leak-mb", 1, "--steps", 2, "--step-ms", 5)
    for _ in range(3):
        s.submit()
    assert s.proc.wait(timeout=10) == 0
    assert [(l["generation"], l["status"]) for l in s.state_lines()] == [(1, "success"), (2, "success")]


# ---------------------------------------------------------------------------------------------------------
# supervisor
# ---------------------------------------------------------------------------------------------------------

def test_supervisor_restarts_then_gives_up(tmp_path):
    log = tmp_path / "sup.log"
    p = subprocess.run([PY, SUPERVISOR, "--restart-delay", "0.05", "--max-restarts", "2", "--log", str(log),
                        "--", PY, "-c", "import sys; sys.exit(3)"], timeout=20, capture_output=True)
    assert p.returncode == 3
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    assert all("exited status=exit:3" in l for l in lines)
    assert "restart 1 in 0.05s" in lines[0] and "restart 2 in 0.05s" in lines[1]
    assert "giving up after 2 restarts" in lines[2]


def test_supervisor_usage_errors(tmp_path):
    assert subprocess.run([PY, SUPERVISOR, "true"], capture_output=True, timeout=10).returncode == 2
    p = subprocess.run([PY, SUPERVISOR, "--max-restarts", "0", "--", "/nonexistent/cmd"], capture_output=True,
                       timeout=10)
    assert p.returncode == 127 and b"cannot start" in p.stderr


def test_supervisor_restarts_killed_sim_and_forwards_sigterm(tmp_path):
    port = free_port()
    log = tmp_path / "sup.log"
    pid_file = tmp_path / "sim.pid"
    sup = subprocess.Popen([PY, SUPERVISOR, "--restart-delay", "0.1", "--log", str(log), "--",
                            PY, SIM, "--port", str(port), "--pid-file", str(pid_file), "--model-mb", "0"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = []

    def sim_pid():
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        seen.append(pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/system_stats")
            return pid if conn.getresponse().status == 200 else None
        except OSError:
            return None
        finally:
            conn.close()

    try:
        pid1 = wait_until(sim_pid, timeout=10, what="supervised sim")
        assert ppid_of(pid1) == sup.pid
        assert os.getpgid(pid1) == pid1 != os.getpgid(sup.pid)     # own process group
        os.kill(pid1, signal.SIGKILL)
        pid2 = wait_until(lambda: (sim_pid() or pid1) != pid1 and sim_pid(), timeout=10, what="restarted sim")
        assert pid2 != pid1
        lines = log.read_text().splitlines()
        assert len(lines) == 1 and "child pid=%d killed status=signal:9 (SIGKILL)" % pid1 in lines[0]
        assert "restart 1 in 0.1s" in lines[0]
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=10) == 0
        wait_until(lambda: not pid_alive(pid2), what="sim to stop")
        assert not pid_file.exists()                 # the sim got SIGTERM (graceful), not SIGKILL
        last = log.read_text().splitlines()[-1]
        assert "stopping on SIGTERM: child pid=%d exited status=exit:0" % pid2 in last
    finally:
        if sup.poll() is None:
            sup.kill()
            sup.wait()
        for pid in set(seen):
            kill_quietly(pid)
