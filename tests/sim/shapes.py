# SPDX-License-Identifier: GPL-2.0
"""The prevention matrix: workload shapes of the ComfyUI simulator, and how one of them is run (issue 14).

A shape is a server (tests/sim/comfy_sim.py under tests/sim/supervisor.py, which restarts it whenever it exits,
as a container runtime does) in a fresh memory cgroup, and a list of prompts POSTed to it. Every prompt is
distinguishable by its content: its SaveImage filename_prefix, which the simulator appends to
OUTPUT_DIR/outputs.log when the prompt succeeds. That log survives server restarts, so "finished exactly once"
is counted by content, whatever prompt ids a restart or a requeue gave it.

run_shape() runs one shape in one mode:
  without  no watchdog: the shape must be OOM-killed by the kernel (memory.oom_control / memory.events oom_kill),
           else it proves nothing; the run stops at the first kill.
  with     `oomsentry run --restart signal` (or the shape's restart method), every other setting at its default.
at a pace: 1 (the shape's own timing) or 10 (every sleep of the simulator and the supervisor divided by ten:
generations, idle periods; memory per generation is the same, so memory grows ten times faster).

Nothing here is tuned to oomsentry's internals: the sizes come from the shape's story (what a ComfyUI user runs),
checked only against the cgroup limit. Standard library only; needs root and the memory cgroup controller.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from memcg import MemoryCgroup

MiB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIM = os.path.join(HERE, "comfy_sim.py")
SUPERVISOR = os.path.join(HERE, "supervisor.py")
BINARY = os.path.join(ROOT, "oomsentry")
PYTHON = "/usr/bin/python3"
LOST_AFTER_S = 5.0
RESTART_DELAY_S = 0.5           # the supervisor's, at pace 1 (seeds/003: containers come back in seconds)


def torch_available():
    return subprocess.run([PYTHON, "-c", "import torch"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


class Shape:
    """One workload. prompts: a list of dicts of SimControl inputs that differ from the server's flags, plus
    "ckpt" (the checkpoint's name, for CheckpointLoaderSimple) and "fits": False for a prompt that needs more
    than the limit even on a fresh server. batches: how many prompts are POSTed at once; between two batches the
    queue is left idle for idle_s seconds (after the previous batch finished)."""

    def __init__(self, name, story, limit_mib, server, prompts, steps=20, step_ms=100.0, restart="signal",
                 instances=1, batches=None, idle_s=0.0, idle_leak_mb_per_s=0.0, torch=False, timeout_s=90.0):
        self.name = name
        self.story = story
        self.limit_mib = limit_mib
        self.server = list(server)
        self.prompts = prompts
        self.steps = steps
        self.step_ms = step_ms
        self.restart = restart
        self.instances = instances
        self.batches = batches or [len(prompts)]
        assert sum(self.batches) == len(prompts)
        self.idle_s = idle_s
        self.idle_leak_mb_per_s = idle_leak_mb_per_s
        self.torch = torch
        self.timeout_s = timeout_s

    def fits(self, i):
        return self.prompts[i].get("fits", True)


def _n(n, **inputs):
    return [dict(inputs) for _ in range(n)]


# Sizes in MiB. An idle simulator is ~25 MiB (~250 with torch). The comments give the arithmetic that makes the
# kernel kill the shape without a watchdog; "fits" means the prompt's need on a fresh server is below the limit.
SHAPES = [
    Shape("releasable-250", "a leak that /free gives back (unload_models), 250 MiB per generation",
          1200, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "250"], _n(6),
          # generation 3 peaks at 25 + 300 + 3 * 250 + 200 = 1275
          ),
    Shape("releasable-100", "a leak that /free gives back, 100 MiB per generation, 12 prompts",
          1024, ["--model-mb", "300", "--peak-mb", "250", "--leak-mb", "100"], _n(12), step_ms=50,
          # generation 5: 25 + 300 + 500 + 250 = 1075
          ),
    Shape("peaks-vary", "working set varying +-50 % by prompt, releasable leak 150 MiB per generation",
          1126, ["--model-mb", "300", "--leak-mb", "150"],
          [{"peak_mb": 300 * f} for f in (1.0, 0.5, 1.5, 0.7, 1.3, 0.6, 1.5, 1.0)],
          # generation 3: 25 + 300 + 450 + 450 = 1225; the largest prompt alone: 25 + 300 + 150 + 450 = 925
          ),
    Shape("torch-releasable-250", "releasable 250 MiB per generation, all memory in PyTorch CPU tensors",
          1434, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "250"], _n(6), torch=True,
          # torch itself is ~230 MiB: generation 3 peaks at 230 + 300 + 750 + 200 = 1480
          ),
    Shape("unreleasable-250", "a custom node keeps 250 MiB per generation: only a restart frees it",
          1200, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "0", "--node-leak-mb", "250"], _n(6)),
    Shape("unreleasable-100", "a custom node keeps 100 MiB per generation, 12 prompts",
          1024, ["--model-mb", "300", "--peak-mb", "250", "--leak-mb", "0", "--node-leak-mb", "100"], _n(12),
          step_ms=50),
    Shape("mixed-150-80", "releasable 150 + unreleasable 80 MiB per generation, 10 prompts",
          1200, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "150", "--node-leak-mb", "80"], _n(10),
          # generation 4: 25 + 300 + 4 * 230 + 200 = 1445
          ),
    Shape("model-switch-3x300", "prompts alternate among 3 checkpoints of 300 MiB, each kept loaded until /free, "
          "loaded half-way through the generation",
          1024, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "0"],
          [{"ckpt": c, "model_load_step": 10} for c in ("a.safetensors", "b.safetensors", "c.safetensors") * 2],
          # generation 3: 25 + 3 * 300 + 200 = 1125; one checkpoint alone: 525
          ),
    Shape("short-gens-0.2s", "generations of 0.2 s (turbo/LCM), releasable leak 100 MiB per generation",
          1024, ["--model-mb", "300", "--peak-mb", "150", "--leak-mb", "100"], _n(10), step_ms=10,
          # generation 6: 25 + 300 + 600 + 150 = 1075
          ),
    Shape("one-big-prompt", "prompt 3 of 6 needs more than the limit even on a fresh server",
          1200, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "100"],
          _n(2) + [{"peak_mb": 1000, "fits": False}] + _n(3),
          # the big one alone: 25 + 300 + 100 + 1000 = 1425
          ),
    Shape("big-prompt-first", "that big prompt first, nothing learned yet, growing ~500 MiB/s",
          1200, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "100"],
          [{"peak_mb": 1000, "fits": False}] + _n(5),
          ),
    Shape("bigger-than-before", "generation 4 is bigger than any before (fits only once the leak is freed)",
          1200, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "100"],
          _n(3) + [{"peak_mb": 700}] + _n(2),
          # generation 4: 25 + 300 + 400 + 700 = 1425; alone on a fresh server: 25 + 300 + 100 + 700 = 1125
          ),
    Shape("two-instances", "two ComfyUI servers in one cgroup, releasable leak 120 MiB per generation each",
          1434, ["--model-mb", "250", "--peak-mb", "150", "--leak-mb", "120"], _n(5), instances=2,
          # both at generation 3: 2 * (25 + 250 + 360 + 150) = 1570
          ),
    Shape("worker-leak", "the leak is in a custom node's worker process (multiprocessing), 150 MiB per generation",
          1024, ["--model-mb", "300", "--peak-mb", "150", "--leak-mb", "0", "--worker-leak-mb", "150"], _n(6),
          # generation 4: 25 + 25 (worker) + 300 + 600 + 150 = 1100
          ),
    Shape("slow-leak-30", "unreleasable 25 MiB per generation over 30 short generations",
          1024, ["--model-mb", "300", "--peak-mb", "150", "--leak-mb", "0", "--node-leak-mb", "25"], _n(30),
          steps=10, step_ms=50, timeout_s=120,
          # generation 22: 25 + 300 + 550 + 150 = 1025
          ),
    Shape("idle-growth", "memory grows 100 MiB/s while the queue is idle (only a restart frees it)",
          1024, ["--model-mb", "300", "--peak-mb", "150", "--leak-mb", "0"], _n(6), batches=[3, 3],
          idle_s=10, idle_leak_mb_per_s=100,
          # idle from 325 MiB: the limit in ~7 s
          ),
    Shape("restart-none", "unreleasable 250 MiB per generation with restart = none (the default)",
          1200, ["--model-mb", "300", "--peak-mb", "200", "--leak-mb", "0", "--node-leak-mb", "250"], _n(6),
          restart="none"),
]
BY_NAME = {s.name: s for s in SHAPES}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url, method="GET", body=None, timeout=5):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


def prompt_body(inputs, content, seed):
    """A ComfyUI API-format workflow: checkpoint loader, sampler, the simulator's control node, SaveImage whose
    filename_prefix is the prompt's content id."""
    inputs = dict(inputs)
    ckpt = inputs.pop("ckpt", "sim.safetensors")
    inputs.pop("fits", None)
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "model": ["4", 0]}},
        "5": {"class_type": "SimControl", "inputs": inputs},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": content}},
    }


class Timeline:
    """Lines stamped with seconds since the run started: the daemon's records, the cgroup's usage, our own steps."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.lines = []

    def add(self, what):
        with self.lock:
            self.lines.append("%7.2f %s" % (time.monotonic() - self.t0, what))

    def text(self):
        with self.lock:
            return "\n".join(self.lines) + "\n"


class Instance:
    """One supervised simulator."""

    def __init__(self, shape, pace, tmp, cg, tag, timeline):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.tag = tag
        self.out_dir = os.path.join(tmp, "output-" + tag)
        os.mkdir(self.out_dir)
        self.sup_log = os.path.join(tmp, "supervisor-%s.log" % tag)
        self.sim_log = os.path.join(tmp, "sim-%s.log" % tag)
        self.state = os.path.join(tmp, "sim-%s.state.jsonl" % tag)
        self.timeline = timeline
        cmd = [PYTHON, SIM, "--port", str(self.port), "--state-file", self.state, "--output-directory", self.out_dir,
               "--steps", str(shape.steps), "--step-ms", "%g" % (shape.step_ms / pace)] + shape.server
        if shape.torch:
            cmd.append("--torch")
        if shape.idle_leak_mb_per_s:
            cmd += ["--idle-leak-mb-per-s", "%g" % (shape.idle_leak_mb_per_s * pace)]
        cmd = [PYTHON, SUPERVISOR, "--restart-delay", "%g" % (RESTART_DELAY_S / pace), "--log", self.sup_log,
               "--"] + cmd
        self.proc = subprocess.Popen(cmd, preexec_fn=enter_checked(cg), stdout=open(self.sim_log, "w"),
                                     stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("supervisor exited %s: %s" % (self.proc.returncode, tail(self.sim_log)))
            try:
                request(self.url + "/system_stats", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("simulator %s did not answer in %d s: %s" % (self.url, timeout, tail(self.sim_log)))

    def submit(self, body, timeout=30):
        """POST /prompt as a client would: a server that is restarting refuses connections for a moment (retry);
        one that dies while answering leaves it unknown whether the prompt was queued, so once a server answers
        again the prompt is sent again only when it is neither queued nor saved."""
        content = body["9"]["inputs"]["filename_prefix"]
        deadline = time.monotonic() + timeout
        while True:
            try:
                return request(self.url + "/prompt", "POST", {"prompt": body, "client_id": "matrix-" + self.tag})
            except urllib.error.URLError as e:
                if not isinstance(e.reason, ConnectionRefusedError) or time.monotonic() > deadline:
                    raise
            except (OSError, http.client.HTTPException) as e:
                self.timeline.add("POST /prompt %s: %s; checking whether it was queued" % (content, e))
                if time.monotonic() > deadline:
                    raise
                queued = None
                while queued is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                    queued = self.queued_contents()
                if queued is not None and (content in queued or content in self.saved()):
                    return None
            time.sleep(0.1)

    def queued_contents(self):
        """filename_prefixes of the prompts running or pending; None when the server does not answer."""
        try:
            q = request(self.url + "/queue", timeout=2)
        except Exception:
            return None
        out = []
        for item in q.get("queue_running", []) + q.get("queue_pending", []):
            try:
                out.append(item[2]["9"]["inputs"]["filename_prefix"])
            except (IndexError, KeyError, TypeError):
                pass
        return out

    def saved(self):
        try:
            with open(os.path.join(self.out_dir, "outputs.log")) as f:
                return [json.loads(l)["filename_prefix"] for l in f if l.strip()]
        except (OSError, ValueError):
            return []

    def restarts(self):
        try:
            with open(self.sup_log) as f:
                return sum(1 for l in f if "; restart " in l)
        except OSError:
            return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def enter_checked(cg):
    """preexec_fn: join the cgroup, and refuse to run when that did not work -- a shape that grows until the
    kernel kills it must never run without its limit."""
    procs = os.path.join(cg.path, "cgroup.procs")
    name = cg.name

    def enter():
        try:
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))
            with open("/proc/self/cgroup") as fh:
                inside = name in fh.read()
        except OSError:
            inside = False
        if not inside:
            os._exit(97)
    return enter


def tail(path, n=2000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


class Daemon:
    """`oomsentry run --json`; a reader thread stamps every record into the timeline."""

    KEEP = ("action", "decision", "comfy", "oom_victim", "generation", "leak_suspected", "forecast", "crash_loop",
            "daemon", "incident")

    def __init__(self, shape, instances, tmp, timeline, cgroup_path, binary=BINARY):
        self.records = []
        self.cgroup = cgroup_path
        self.lock = threading.Lock()
        self.timeline = timeline
        self.stderr_path = os.path.join(tmp, "oomsentry.stderr")
        cmd = [binary, "run", "--json", "--journal=no", "--socket", os.path.join(tmp, "oomsentry.sock"),
               "--incident-dir", os.path.join(tmp, "incidents"),
               # what the instance learns is persisted: every run starts from nothing learnt
               "--state-dir", os.path.join(tmp, "state")]
        if len(instances) == 1:
            cmd += ["--url", instances[0].url, "--restart", shape.restart]
        else:
            conf = os.path.join(tmp, "oomsentry.conf")
            with open(conf, "w") as f:
                for inst in instances:
                    f.write("[instance %s]\nurl = %s\nrestart = %s\n\n" % (inst.tag, inst.url, shape.restart))
            cmd += ["--config", conf]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(self.stderr_path, "w"), text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"event": "unparsed", "message": line}
            with self.lock:
                self.records.append(rec)
            # the daemon reports every OOM victim on the machine; other cgroups' (other tests') are noise here
            if rec.get("event") == "oom_victim" and self.cgroup not in str(rec.get("cgroup", "")):
                continue
            if rec.get("event") in self.KEEP:
                self.timeline.add("[%s] %s" % (rec.get("event"), rec.get("message", line)))

    def find(self, pred):
        with self.lock:
            return [r for r in self.records if pred(r)]

    def restarting(self):
        """Whether a restart of some instance is under way: stopped, and not yet back with every prompt it saved
        in the new server's queue or history (restart_complete), nor given up."""
        state = {}
        with self.lock:
            for r in self.records:
                if r.get("event") != "action":
                    continue
                if r.get("action") == "restart_stop":
                    state[r.get("instance")] = r.get("result") == "stopping" or state.get(r.get("instance"), False) \
                        and r.get("result") not in ("failed", "timeout")
                elif r.get("action") == "restart_complete":
                    state[r.get("instance")] = False
        return any(state.values())

    def wait_servers(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {r.get("instance") for r in self.find(
                lambda r: r.get("event") == "comfy" and "server is pid" in r.get("message", ""))}
            if len(found) >= n:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("oomsentry did not find %d server(s) in %d s (rc %s): %s" % (
            n, timeout, self.proc.poll(), tail(self.stderr_path)))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(timeout=5)


class Result:
    def __init__(self, shape, mode, pace):
        self.shape, self.mode, self.pace = shape, mode, pace
        self.counts = {}            # content -> times saved
        self.fit = []               # contents of the prompts that can fit
        self.oom_kills = 0
        self.actions = 0
        self.restarts = 0
        self.seconds = 0.0
        self.end = ""
        self.error = None
        self.timeline = ""
        self.artifacts = None

    @property
    def finished(self):
        """prompts that can fit and finished at least once"""
        return sum(1 for c in self.fit if self.counts.get(c, 0) >= 1)

    @property
    def exactly_once(self):
        return sum(1 for c in self.fit if self.counts.get(c, 0) == 1)

    @property
    def duplicates(self):
        return sum(max(0, n - 1) for n in self.counts.values())

    @property
    def total(self):
        return len(self.counts)

    @property
    def enforced(self):
        """Whether this run is held to the guarantee: a watchdog ran with a restart method."""
        return self.mode == "with" and self.shape.restart != "none"

    @property
    def ok(self):
        if self.error:
            return False
        if self.mode == "without":
            return self.oom_kills >= 1
        return self.oom_kills == 0 and self.exactly_once == len(self.fit)

    def problems(self):
        if self.error:
            return [self.error]
        if self.mode == "without":
            return [] if self.oom_kills else ["no OOM kill without a watchdog: the shape proves nothing"]
        out = []
        if self.oom_kills:
            out.append("%d kernel OOM kill(s)" % self.oom_kills)
        missing = [c for c in self.fit if self.counts.get(c, 0) == 0]
        dup = [c for c in self.fit if self.counts.get(c, 0) > 1]
        if missing:
            out.append("%d prompt(s) that fit never finished: %s" % (len(missing), " ".join(missing)))
        if dup:
            out.append("%d prompt(s) finished more than once: %s" % (
                len(dup), " ".join("%s x%d" % (c, self.counts[c]) for c in dup)))
        return out


def run_shape(shape, mode, pace, workdir, cgroup_prefix="oomsentry-bench-matrix-", binary=BINARY, keep=None,
              tag=""):
    """Run one shape once. keep: a directory under which a failed run's logs and timeline are copied."""
    import shutil
    import tempfile
    res = Result(shape, mode, pace)
    tmp = tempfile.mkdtemp(prefix="matrix-%s-" % shape.name, dir=workdir)
    timeline = Timeline()
    cg = None
    instances = []
    daemon = None
    try:
        cg = MemoryCgroup(shape.limit_mib * MiB, cgroup_prefix)
        timeline.add("cgroup %s limit %d MiB" % (cg.path, shape.limit_mib))
        for i in range(shape.instances):
            instances.append(Instance(shape, pace, tmp, cg, "abcdefgh"[i] if shape.instances > 1 else "default",
                                      timeline))
        if mode == "with":
            daemon = Daemon(shape, instances, tmp, timeline, cg.path, binary)
            daemon.wait_servers(len(instances))
        run_prompts(shape, mode, pace, instances, cg, res, timeline, tag, daemon)
        if daemon is not None:
            res.actions = len(daemon.find(lambda r: r.get("event") == "action" and r.get("result") == "done"))
    except Exception as e:      # a broken run is a failed run, reported, never a crash of the whole matrix
        res.error = "%s: %s" % (type(e).__name__, e)
        timeline.add("ERROR " + res.error)
    finally:
        if daemon is not None:
            daemon.stop()
        for inst in instances:
            inst.stop()
        if cg is not None:
            try:
                res.oom_kills = max(res.oom_kills, cg.oom_kills())
            except OSError:
                pass
            cg.destroy()
        for inst in instances:
            res.restarts += inst.restarts()
        res.timeline = timeline.text()
        if keep and not res.ok:
            dest = os.path.join(keep, "%s-%s-x%d%s" % (shape.name, mode, pace, tag))
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(tmp, dest, ignore=shutil.ignore_patterns("*.sock"))
            with open(os.path.join(dest, "timeline.txt"), "w") as f:
                f.write(res.timeline)
            if daemon is not None:
                with open(os.path.join(dest, "oomsentry.jsonl"), "w") as f:
                    for r in daemon.records:
                        f.write(json.dumps(r) + "\n")
            res.artifacts = dest
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def run_prompts(shape, mode, pace, instances, cg, res, timeline, tag, daemon=None):
    contents = {}           # content -> instance
    bodies = []
    for inst in instances:
        for i, inputs in enumerate(shape.prompts):
            c = "%s%s-%s-x%d-%s-%02d" % (shape.name, tag, mode, pace, inst.tag, i + 1)
            bodies.append((inst, i, c, prompt_body(inputs, c, i)))
            contents[c] = inst
            if shape.fits(i):
                res.fit.append(c)
    limit = shape.limit_mib * MiB
    t0 = time.monotonic()
    deadline = t0 + shape.timeout_s / (1 if pace == 1 else 2) + (shape.idle_s / pace)
    pos = 0
    batch = 0
    next_batch_at = t0
    quiet_s = 0.0           # time every server answered with nothing that can fit queued (see "settled" below)
    quiet_at = None
    empty_s = 0.0           # time every server answered with an empty queue while prompts are missing
    empty_at = None
    last_usage = -1
    while True:
        now = time.monotonic()
        saved = []
        for inst in instances:
            saved += inst.saved()
        counts = {}
        for c in saved:
            counts[c] = counts.get(c, 0) + 1
        if batch < len(shape.batches) and next_batch_at is not None and now >= next_batch_at:
            n = shape.batches[batch]
            for inst in instances:
                for (it, i, c, body) in bodies:
                    if it is inst and pos <= i < pos + n:
                        inst.submit(body)
            timeline.add("POST /prompt x%d%s" % (n * len(instances), " (after %.1f s idle)" % (shape.idle_s / pace)
                                                 if batch else ""))
            pos += n
            batch += 1
            next_batch_at = None
            continue
        usage = cg.usage()
        if abs(usage - last_usage) >= 32 * MiB:
            timeline.add("cgroup usage %d MiB (%.0f %%)" % (usage // MiB, 100.0 * usage / limit))
            last_usage = usage
        kills = cg.oom_kills()
        if kills > res.oom_kills:
            timeline.add("KERNEL OOM KILL (oom_kill = %d)" % kills)
            res.oom_kills = kills
        # a batch is done when every prompt of it that can fit has been saved
        submitted = [c for (_, i, c, _) in bodies if i < pos]
        batch_done = all(counts.get(c, 0) >= 1 for c in submitted if c in res.fit)
        if mode == "without" and res.oom_kills:
            time.sleep(0.3)
            res.end = "OOM-killed"
            break
        if batch_done and next_batch_at is None and batch < len(shape.batches):
            next_batch_at = now + shape.idle_s / pace
            timeline.add("batch %d done; idle for %.1f s" % (batch, shape.idle_s / pace))
        if batch_done and batch >= len(shape.batches):
            # settled: for 1 s, nothing that can fit is queued anywhere (a duplicate could otherwise still run).
            # A server that is being restarted (it does not answer, or the watchdog has not yet seen every prompt
            # it saved back in the new server's queue or history) pauses that second instead of starting it
            # again: a server leaking so fast while idle that it is restarted more often than once a second
            # would otherwise keep the run waiting, and growing, until its deadline.
            queued = [inst.queued_contents() for inst in instances]
            if any(q is not None and [c for c in q if c in res.fit] for q in queued):
                quiet_s, quiet_at = 0.0, None
            elif any(q is None for q in queued) or (daemon is not None and daemon.restarting()):
                quiet_at = None
            else:
                if quiet_at is not None:
                    quiet_s += now - quiet_at
                quiet_at = now
                if quiet_s >= 1.0:
                    res.end = "all done"
                    break
        # prompts lost: every server answers with an empty queue while prompts that fit are missing. Give the
        # watchdog time to resubmit what it saved (a restart, a requeue) before calling them lost; a restart
        # under way pauses that time, as it does the settling above.
        if not batch_done and next_batch_at is None:
            queued = [inst.queued_contents() for inst in instances]
            if any(q for q in queued):
                empty_s, empty_at = 0.0, None
            elif any(q is None for q in queued) or (daemon is not None and daemon.restarting()):
                empty_at = None
            else:
                if empty_at is not None:
                    empty_s += now - empty_at
                empty_at = now
                if empty_s >= LOST_AFTER_S:
                    res.end = "queue empty for %.0f s with prompts missing: lost" % LOST_AFTER_S
                    timeline.add(res.end)
                    break
        if now > deadline:
            res.end = "timeout after %.0f s" % (now - t0)
            timeline.add(res.end)
            break
        time.sleep(0.1)
    res.seconds = time.monotonic() - t0
    saved = []
    for inst in instances:
        saved += inst.saved()
    res.counts = {c: 0 for c in contents}
    for c in saved:
        res.counts[c] = res.counts.get(c, 0) + 1
    timeline.add("end: %s; saved %s" % (res.end, " ".join("%s=%d" % (c[-5:], n) for c, n in sorted(res.counts.items()))))
