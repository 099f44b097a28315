"""At least once: a prompt POSTed to ComfyUI is in the queue snapshot (what any stop resubmits) one round trip after
ComfyUI's `status` broadcast, not at the next poll_interval, even when it comes while the previous /queue is being
answered. The poll interval is a minute here: only the websocket can make the snapshot current."""
import json
import os
import threading
import time

N = 40


def snapshot_ids(path):
    try:
        with open(path) as f:
            return {it["prompt_id"] for it in json.load(f)["items"]}
    except (OSError, ValueError):
        return set()


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
