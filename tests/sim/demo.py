#!/usr/bin/python3
"""`make demo`: the third-generation OOM (seeds/003) on the built-in ComfyUI simulator, twice.

Act 1 runs it without a watchdog: generations 1 and 2 finish, the kernel kills the server during generation 3.
Act 2 runs it under `oomsentry run`: the forecast sees the leak, the ladder frees memory before the kernel has to,
and every prompt finishes. Everything is real: a real memory cgroup with a 1.5 GiB limit, a real python3 server
with real pages, the real OOM killer, oomsentry's real eBPF probes.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memcg import MemoryCgroup  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "oomsentry")
SIM = os.path.join(ROOT, "tests", "sim", "comfy_sim.py")
PYTHON = "/usr/bin/python3"
MiB = 1 << 20
LIMIT = 1536 * MiB
PROMPTS = 6
INCIDENTS = "/var/tmp/oomsentry-demo/incidents"
SIM_ARGS = ["--model-mb", "450", "--peak-mb", "350", "--leak-mb", "300", "--steps", "20", "--step-ms", "100"]
# the simulator runs ten times faster than a real GPU server: the cooldown between two uses of a rung follows
DAEMON_ARGS = ["--sample-interval", "200ms", "--poll-interval", "200ms", "--rss-step", "32M", "--cooldown", "3s"]

BOLD, DIM, RED, GREEN, YELLOW, RESET = ("\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[33m", "\033[0m") \
    if sys.stdout.isatty() else ("",) * 6


def say(text=""):
    print(text, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def api(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


def start_sim(cg, tmp):
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    proc = subprocess.Popen([PYTHON, SIM, "--port", str(port)] + SIM_ARGS, preexec_fn=cg.enter(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            api(url + "/system_stats")
            return proc, url
        except Exception:
            time.sleep(0.1)
    raise SystemExit("oomsentry demo: the simulator did not start")


def submit(url):
    return [api(url + "/prompt", "POST", {"prompt": {"1": {"class_type": "KSampler", "inputs": {"seed": i}}},
                                          "client_id": "demo"})["prompt_id"] for i in range(PROMPTS)]


def wait_done(url, ids, proc, on_tick=None, timeout=240):
    deadline = time.time() + timeout
    done = {}
    while time.time() < deadline and proc.poll() is None:
        for i in ids:
            if i not in done:
                try:
                    h = api(url + "/history/" + i).get(i)
                except Exception:
                    h = None
                if h and h["status"]["completed"]:
                    done[i] = h["status"]["status_str"]
        if on_tick:
            on_tick()
        if len(done) == len(ids):
            break
        time.sleep(0.3)
    return done


def act1(tmp):
    say(BOLD + "Act 1 — no watchdog" + RESET)
    say(DIM + "  ComfyUI simulator in a 1.5 GiB memory cgroup: model 450 MiB, +350 MiB while a generation runs,"
        " 300 MiB leaked by each generation; %d prompts queued." % PROMPTS + RESET)
    cg = MemoryCgroup(LIMIT, "oomsentry-demo-")
    try:
        proc, url = start_sim(cg, tmp)
        t0 = time.time()
        ids = submit(url)
        shown = set()

        def tick():
            try:
                q = api(url + "/queue")
                running = q["queue_running"][0][1] if q["queue_running"] else None
            except Exception:
                return
            if running and running not in shown:
                shown.add(running)
                say("  %5.1fs  generation %d starts" % (time.time() - t0, ids.index(running) + 1))
        done = wait_done(url, ids, proc, tick)
        rc = proc.wait(timeout=30)
        kills = cg.oom_kills()
        ok = sum(1 for v in done.values() if v == "success")
        say("  %5.1fs  %sthe server died (%s): the kernel's OOM killer, %d kill(s) in the cgroup; %d of %d prompts "
            "finished%s" % (time.time() - t0, RED, "SIGKILL" if rc == -9 else "rc %s" % rc, kills, ok, PROMPTS, RESET))
        say(DIM + "  This is seeds/003: \"the 3rd generation stops at ~43 %, the process keeps restarting\"." + RESET)
        return kills, ok
    finally:
        cg.destroy()


def act2(tmp):
    say()
    say(BOLD + "Act 2 — the same, under `oomsentry run`" + RESET)
    cg = MemoryCgroup(LIMIT, "oomsentry-demo-")
    daemon = None
    try:
        proc, url = start_sim(cg, tmp)
        daemon = subprocess.Popen([BINARY, "run", "--url", url, "--json", "--socket", os.path.join(tmp, "s.sock"),
                                   "--incident-dir", INCIDENTS] + DAEMON_ARGS,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        os.set_blocking(daemon.stdout.fileno(), False)
        buf = [""]
        t0 = [None]
        actions = []
        freed = [0]

        def pump():
            try:
                chunk = daemon.stdout.read()
            except (BlockingIOError, TypeError):
                chunk = None
            if chunk:
                buf[0] += chunk
            while "\n" in buf[0]:
                line, buf[0] = buf[0].split("\n", 1)
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                show(r)

        def show(r):
            ev = r["event"]
            at = "%5.1fs" % (time.time() - t0[0]) if t0[0] else "  -  "
            if ev == "daemon" and r.get("state") == "started":
                say("  %s  %s" % (at, r["message"]))
            elif ev == "comfy" and "server is pid" in r["message"]:
                say("  %s  %s" % (at, r["message"].split(": ", 1)[1]))
            elif ev == "generation":
                say("  %s  generation %d %s: peak %d MiB, left behind %d MiB (%+d MiB)" % (
                    at, r["generation"], r["status"], r["peak_bytes"] >> 20, r["residual_bytes"] >> 20,
                    r["growth_bytes"] >> 20))
            elif ev == "leak_suspected":
                say("  %s  %sforecast: %s%s" % (at, YELLOW, r["reason"], RESET))
            elif ev == "action" and r.get("result") == "done":
                actions.append(r["action"])
                say("  %s  %saction: %s%s" % (at, GREEN, r["message"].split(": ", 1)[1].split(" -> ")[0][:160], RESET))
                if " -> " in r["message"]:
                    say("  %s       -> %s" % (" " * len(at), r["message"].split(" -> ", 1)[1]))
            elif ev == "action" and r.get("verified"):
                freed[0] += r.get("freed_bytes", 0)
                say("  %s  %sverified: %s%s" % (at, GREEN, r["message"].split(": ", 1)[1], RESET))
            elif ev == "oom_victim":
                say("  %s  %s%s%s" % (at, RED, r["message"], RESET))

        # ready once its status socket exists; then give it a poll to find the server
        for _ in range(200):
            pump()
            if daemon.poll() is not None:
                raise SystemExit("oomsentry demo: oomsentry exited with %s" % daemon.returncode)
            if os.path.exists(os.path.join(tmp, "s.sock")):
                break
            time.sleep(0.05)
        time.sleep(1.0)
        pump()
        t0[0] = time.time()
        ids = submit(url)
        done = wait_done(url, ids, proc, pump)
        time.sleep(0.5)
        pump()
        kills = cg.oom_kills()
        ok = sum(1 for v in done.values() if v == "success")
        colour = GREEN if kills == 0 and ok == PROMPTS else RED
        say("  %5.1fs  %s%d of %d prompts finished, %d OOM kill(s); %d action(s) gave back %d MiB%s" % (
            time.time() - t0[0], colour, ok, PROMPTS, kills, len(actions), freed[0] >> 20, RESET))
        return kills, ok
    finally:
        if daemon and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=15)
        cg.destroy()


def main():
    if os.geteuid() != 0:
        raise SystemExit("oomsentry demo: run as root (it loads eBPF probes and makes a memory cgroup): "
                         "sudo make demo")
    if not os.access(BINARY, os.X_OK):
        raise SystemExit("oomsentry demo: build first: make")
    say(BOLD + "oomsentry demo: the third-generation OOM, without and with oomsentry" + RESET)
    say()
    with tempfile.TemporaryDirectory(prefix="oomsentry-demo-") as tmp:
        k1, ok1 = act1(tmp)
        k2, ok2 = act2(tmp)
    say(DIM + "Incident reports (JSON, timeline, SVG plot) are in %s: oomsentry report DIR" % INCIDENTS + RESET)
    say()
    say(BOLD + "              OOM kills   prompts finished" + RESET)
    say("  no watchdog %8d %12d/%d" % (k1, ok1, PROMPTS))
    say("  oomsentry   %8d %12d/%d" % (k2, ok2, PROMPTS))
    say()
    say("Run it for real: sudo oomsentry run --url http://127.0.0.1:8188 (see README.md); review with "
        "journalctl -t oomsentry OOMSENTRY_EVENT=action")
    return 0 if k2 == 0 and ok2 == PROMPTS else 1


if __name__ == "__main__":
    sys.exit(main())
