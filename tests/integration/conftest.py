"""Fixtures for oomsentry's integration tests: the real kernel, real memory cgroups, real processes.

Every cgroup is created as oomsentry-test-* under the memory controller (/sys/fs/cgroup/memory on cgroup v1,
/sys/fs/cgroup on v2) and removed afterwards; every process a
test starts is tracked and killed at teardown. Tests that need root/BPF skip elsewhere, but fail under CI=true.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sim"))
import memcg  # noqa: E402
from memcg import MemoryCgroup  # noqa: E402  (shared with the demo and the benchmarks)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# TEST_OOMSENTRY_BINARY runs the tests against another build (a reproduction against main's binary, say).
BINARY = os.environ.get("TEST_OOMSENTRY_BINARY") or os.path.join(ROOT, "oomsentry")
SIM = os.path.join(ROOT, "tests", "sim", "comfy_sim.py")
SUPERVISOR = os.path.join(ROOT, "tests", "sim", "supervisor.py")
PYTHON = "/usr/bin/python3"
MEMCG_ROOT = "/sys/fs/cgroup/memory"


def skip_or_fail(reason):
    """A missing privilege is a skip on a developer laptop, a failure in CI (CI must run everything)."""
    if os.environ.get("CI") == "true":
        pytest.fail("required under CI=true: " + reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def privileged():
    if os.geteuid() != 0:
        skip_or_fail("needs root (BPF, cgroups)")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        skip_or_fail("kernel without BTF")
    if not memcg.available():
        skip_or_fail("no memory cgroup controller (v1 at %s or v2 at %s)" % (memcg.V1_ROOT, memcg.V2_ROOT))
    if not os.access(BINARY, os.X_OK):
        pytest.fail("build oomsentry first (make)")
    return True


# The allocator refuses to run outside its limited cgroup: outside one it would exhaust the machine.
ALLOCATOR = r"""
import sys, time, mmap
if "oomsentry-test" not in open("/proc/self/cgroup").read():
    sys.exit(97)
step = int(sys.argv[1]) << 20
keep = []
while True:
    m = mmap.mmap(-1, step)
    for off in range(0, step, 4096):
        m[off] = 1
    keep.append(m)
    time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
"""


class Cgroup(MemoryCgroup):
    """Test cgroups are named oomsentry-test-*."""

    def __init__(self, limit_bytes, prefix=None):
        # several people testing on one machine each keep to their own names
        super().__init__(limit_bytes, prefix or os.environ.get("TEST_CGROUP_PREFIX", "oomsentry-test-"))

    preexec = MemoryCgroup.enter


@pytest.fixture
def cgroup_factory(privileged):
    made = []

    def make(limit_bytes):
        cg = Cgroup(limit_bytes)
        made.append(cg)
        return cg
    yield make
    for cg in made:
        cg.destroy()


class Procs:
    """Processes started by a test; all are killed at teardown."""

    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def procs():
    ps = Procs()
    yield ps
    ps.cleanup()


class Daemon:
    """`oomsentry observe|run --json` with its JSON lines collected by a reader thread."""

    def __init__(self, tmp_path, mode, args, env=None, stderr=None):
        """stderr: where the daemon's standard error goes (a descriptor); a file read by stderr() by default."""
        self.records = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.stderr_path = os.path.join(str(tmp_path), "oomsentry-%s.stderr" % uuid.uuid4().hex[:6])
        # own runtime (instance locks) and state (what is learnt, persisted lineage) directories: each test starts
        # from nothing, and tests of other sessions on this machine watch other instances
        cmd = [BINARY, mode, "--json", "--socket", os.path.join(str(tmp_path), "status.sock"),
               "--incident-dir", os.path.join(str(tmp_path), "incidents"),
               "--runtime-dir", os.path.join(str(tmp_path), "run"),
               "--state-dir", os.path.join(str(tmp_path), "state")] + list(args)
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(self.stderr_path, "w") if stderr is None
                                     else stderr, env=e, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.wait_for(lambda r: r["event"] == "daemon" and r.get("state") == "started", timeout=30,
                      what="daemon start")

    def _read(self):
        for line in self.proc.stdout:
            self._take(line)

    def _take(self, line):
        """One line of the daemon's standard output, as a record."""
        line = line.strip()
        if not line:
            return
        try:
            rec = json.loads(line)
        except ValueError:
            rec = {"event": "unparsed", "message": line}
        # when the line reached us (CLOCK_MONOTONIC, as the records' EVENT_MONOTONIC_NS)
        rec["_recv_ns"] = time.monotonic_ns()
        with self.cond:
            self.records.append(rec)
            self.cond.notify_all()

    def find(self, pred):
        with self.lock:
            return [r for r in self.records if pred(r)]

    def wait_for(self, pred, timeout=30, what="record", since=0):
        """The first record from index `since` on that matches."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for r in self.records[since:]:
                    if pred(r):
                        return r
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self.cond.wait(min(left, 0.2))
        raise AssertionError("timed out waiting for %s; daemon rc=%s; stderr:\n%s\nlast records:\n%s" % (
            what, self.proc.poll(), self.stderr(), "\n".join(json.dumps(r) for r in self.records[-25:])))

    def stderr(self):
        try:
            return open(self.stderr_path).read()[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(timeout=5)
        return self.proc.returncode


@pytest.fixture
def daemon_factory(privileged, tmp_path):
    made = []

    def make(mode="observe", args=(), env=None):
        d = Daemon(tmp_path, mode, args, env)
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


def journald_listening(path):
    """A socket file left by a journald that is gone refuses connections."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture(scope="session")
def journald(privileged):
    """A journal to read records back from: the machine's own, or one we start (PID 1 is not systemd here)."""
    sock = "/run/systemd/journal/socket"
    started = None
    if not journald_listening(sock):
        binary = "/lib/systemd/systemd-journald"
        if not os.access(binary, os.X_OK):
            skip_or_fail("no systemd-journald binary (apt-get install systemd)")
        started = subprocess.Popen([binary], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if journald_listening(sock):
                break
            time.sleep(0.05)
        else:
            started.kill()
            pytest.fail("systemd-journald did not create " + sock)
    yield sock
    if started:
        started.terminate()
        started.wait(timeout=10)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sim:
    """The ComfyUI simulator as a real python3 process (optionally in a memory cgroup, optionally supervised)."""

    def __init__(self, procs, tmp_path, port, args=(), cgroup=None, supervised=False, log=None):
        self.port = port
        args = list(args)
        host = args[args.index("--listen") + 1] if "--listen" in args else "127.0.0.1"
        self.url = "http://%s:%d" % (host, port)
        self.state = os.path.join(str(tmp_path), "sim-%d.state.jsonl" % port)
        self.sup_log = os.path.join(str(tmp_path), "supervisor-%d.log" % port)
        cmd = [PYTHON, SIM, "--port", str(port), "--state-file", self.state] + list(args)
        if supervised:
            cmd = [PYTHON, SUPERVISOR, "--restart-delay", "0.3", "--log", self.sup_log, "--"] + cmd
        self.proc = procs.start(cmd, preexec_fn=cgroup.preexec() if cgroup else None,
                                stdout=open(log, "w") if log else subprocess.DEVNULL, stderr=subprocess.STDOUT if log else subprocess.DEVNULL)
        self.wait_ready()

    def request(self, method, path, body=None, timeout=5):
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return json.loads(text) if text else None

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.request("GET", "/system_stats", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise AssertionError("simulator on port %d did not answer" % self.port)

    def submit(self, n, steps=None, **inputs):
        ids = []
        for i in range(n):
            node = {"class_type": "SimControl", "inputs": dict(inputs)}
            if steps:
                node["inputs"]["steps"] = steps
            prompt = {"1": {"class_type": "KSampler", "inputs": {"seed": i}}, "2": node}
            ids.append(self.request("POST", "/prompt", {"prompt": prompt, "client_id": "oomsentry-test"})["prompt_id"])
        return ids

    def history(self, prompt_id):
        try:
            return self.request("GET", "/history/" + prompt_id).get(prompt_id)
        except Exception:
            return None

    def wait_all_done(self, ids, timeout=240, alive=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            done = [self.history(i) for i in ids]
            if all(h and h["status"]["completed"] for h in done):
                return done
            if alive is not None and not alive():
                break
            time.sleep(0.3)
        return [self.history(i) for i in ids]

    def wait_succeeded_in_log(self, ids, timeout=150):
        """The prompt ids the simulator's own log reports as successful; ComfyUI keeps /history in memory, so
        after a restart only this log knows every prompt."""
        deadline = time.time() + timeout
        while True:
            ok = {l["prompt_id"] for l in self.prompt_lines() if l["status"] == "success"}
            if ok >= set(ids) or time.time() > deadline:
                return ok
            time.sleep(0.5)

    def prompt_lines(self):
        try:
            with open(self.state) as f:
                return [json.loads(l) for l in f if l.strip() and json.loads(l).get("event") == "prompt"]
        except OSError:
            return []


@pytest.fixture
def sim_factory(procs, tmp_path):
    def make(args=(), cgroup=None, supervised=False, port=None, log=None):
        return Sim(procs, tmp_path, port or free_port(), args, cgroup, supervised, log)
    return make
