"""Issue 14: exact generation boundaries at any pace. Ten 0.2 s generations back to back are ten generations, each
with its own start, peak and residual, whether ComfyUI's /ws wakes the daemon or it polls /queue every 500 ms."""

import socket
import threading
import time

MiB = 1 << 20

MODEL_MB, PEAK_MB = 100, 150
# four 50 ms sampler steps: a generation of about 0.2 s (plus the simulator touching its pages)
SHORT = ["--model-mb", str(MODEL_MB), "--peak-mb", str(PEAK_MB), "--leak-mb", "0", "--steps", "4", "--step-ms", "50"]


def ten_short(daemon_factory, cgroup_factory, sim_factory, extra):
    cg = cgroup_factory(1536 * MiB)
    sim = sim_factory(SHORT, cgroup=cg)
    # everything at its defaults: poll_interval 500 ms, sample_interval, rss_step 64M
    d = daemon_factory("observe", ["--url", sim.url, "-v"] + extra)
    d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
    ids = sim.submit(10)
    hist = sim.wait_all_done(ids, timeout=120, alive=lambda: sim.proc.poll() is None)
    assert all(h and h["status"]["status_str"] == "success" for h in hist), hist
    gens = [d.wait_for(lambda r, p=p: r["event"] == "generation" and r.get("prompt_id") == p, timeout=20,
                       what="generation record of prompt %d" % (i + 1)) for i, p in enumerate(ids)]
    assert cg.oom_kills() == 0
    truth = {l["prompt_id"]: l for l in sim.prompt_lines()}
    return sim, d, ids, gens, hist, truth


def check_each_is_its_own(ids, gens, hist, truth, d, level_tolerance):
    assert [g["generation"] for g in gens] == list(range(1, 11)), [g["generation"] for g in gens]
    # one record per prompt, none for anything else
    assert len(d.find(lambda r: r["event"] == "generation")) == 10
    assert all(g["status"] == "success" for g in gens)
    base = gens[1]["usage_start_bytes"]  # python + the model, between generations
    for i, g in enumerate(gens):
        t = truth[ids[i]]
        climb = g["peak_bytes"] - g["usage_start_bytes"]
        expect = (PEAK_MB + (MODEL_MB if i == 0 else 0)) * MiB
        # its own peak: the transient of this generation, not the neighbour's and not a poll's blur
        assert 0.6 * expect - level_tolerance <= climb <= 1.25 * expect, (i, climb / MiB, g, t)
        # its own residual: back to the level between generations (no leak in this shape)
        assert abs(g["residual_bytes"] - base) <= level_tolerance, (i, g["residual_bytes"] / MiB, base / MiB)
        if i > 0:
            assert abs(g["usage_start_bytes"] - base) <= level_tolerance, (i, g["usage_start_bytes"] / MiB, base / MiB)
            assert abs(g["growth_bytes"]) <= level_tolerance, (i, g["growth_bytes"] / MiB)
        # its own duration: between the stamps ComfyUI put in /history (a poll's timing would be off by up to the
        # 500 ms interval)
        stamps = {m[0]: m[1]["timestamp"] for m in hist[i]["status"]["messages"]}
        stamped = stamps["execution_success"] - stamps["execution_start"]
        assert abs(g["duration_ms"] - stamped) <= 3, (i, g["duration_ms"], stamped, t["seconds"])


def test_ten_short_generations_over_the_websocket(daemon_factory, cgroup_factory, sim_factory):
    sim, d, ids, gens, hist, truth = ten_short(daemon_factory, cgroup_factory, sim_factory, [])
    up = d.find(lambda r: r["event"] == "comfy" and r.get("websocket") == "connected")
    assert up and up[0]["url"] == sim.url, up
    assert not d.find(lambda r: r.get("websocket") == "unavailable")
    # woken at each boundary, the daemon measures before the next prompt climbs, unless it was busy (an HTTP call
    # under way): then the RSS step events of the release bound the residual to within one rss_step (64 MiB)
    check_each_is_its_own(ids, gens, hist, truth, d, 64 * MiB)


def test_ten_short_generations_by_polling(daemon_factory, cgroup_factory, sim_factory):
    """Without the websocket the prompts run between two polls: /history's stamps still cut them apart."""
    sim, d, ids, gens, hist, truth = ten_short(daemon_factory, cgroup_factory, sim_factory, ["--websocket=no"])
    assert not d.find(lambda r: r.get("websocket") == "connected")
    assert "websocket off by configuration" in d.stderr()
    # between two generations back to back only RSS step events measure: the release (and so the residual and
    # the next start level) is seen to within about one rss_step (64 MiB; the kernel's per-CPU RSS counters add
    # their own drift)
    check_each_is_its_own(ids, gens, hist, truth, d, 96 * MiB)


def test_websocket_unavailable_falls_back_to_polling(daemon_factory, procs, tmp_path):
    """A server without /ws (a proxy that does not upgrade): said once, generations still followed by polling."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    seen = []

    def answer(c):
        with c:
            req = c.recv(4096).decode(errors="replace")
            seen.append(req.split("\r\n", 1)[0])
            body = b"{}" if "/ws" not in req else b"404: Not Found"
            code = b"200 OK" if "/ws" not in req else b"404 Not Found"
            if "GET /queue" in req:
                body = b'{"queue_running": [], "queue_pending": []}'
            c.sendall(b"HTTP/1.1 " + code + b"\r\nContent-Type: application/json\r\nContent-Length: " +
                      str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

    def serve():
        # one thread per connection, as any real server: the daemon's two clients connect at once
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(c,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    try:
        d = daemon_factory("observe", ["--url", "http://127.0.0.1:%d" % port, "--poll-interval", "200ms"])
        down = d.wait_for(lambda r: r["event"] == "comfy" and r.get("websocket") == "unavailable", timeout=15,
                          what="websocket unavailable record")
        assert "polling /queue" in down["message"], down
        # the client retries (after 1 s, 2 s, ...) but says it once; polling goes on meanwhile
        deadline = time.time() + 30
        while time.time() < deadline and (sum(1 for s in seen if s.startswith("GET /ws")) < 3 or
                                          sum(1 for s in seen if s.startswith("GET /queue")) < 10):
            time.sleep(0.2)
        assert sum(1 for s in seen if s.startswith("GET /ws?clientId=oomsentry-")) >= 3, seen
        assert sum(1 for s in seen if s.startswith("GET /queue")) >= 10, seen
        assert len(d.find(lambda r: r.get("websocket") == "unavailable")) == 1
        assert not d.find(lambda r: r.get("websocket") == "connected")
    finally:
        lsock.close()
