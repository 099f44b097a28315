"""Issue 4: the ComfyUI client survives a server that is down, restarted, slow, truncated, wrong or huge."""
import http.server
import json
import threading
import time

from conftest import free_port

MiB = 1 << 20


class Evil(http.server.BaseHTTPRequestHandler):
    mode = "ok"

    def log_message(self, *a):
        pass

    def do_GET(self):
        m = Evil.mode
        if m == "slow":
            time.sleep(4)
        if m == "truncated":
            body = b'{"queue_running": [[1, "abc", {"1": {}}'
        elif m == "types":
            body = json.dumps({"queue_running": "lots", "queue_pending": {"a": 1}}).encode()
        elif m == "huge":
            body = b'{"queue_running": [], "queue_pending": [], "pad": "' + b"x" * (20 * MiB) + b'"}'
        elif m == "status500":
            self.send_response(500)
            self.end_headers()
            return
        else:
            body = json.dumps({"queue_running": [], "queue_pending": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) + (100 if m == "truncated" else 0)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def test_client_survives_bad_servers_and_restarts(daemon_factory, sim_factory):
    port = free_port()
    d = daemon_factory("observe", ["--url", "http://127.0.0.1:%d" % port, "--poll-interval", "200ms",
                                   "--http-timeout", "1s"])
    # 1: nobody listens
    d.wait_for(lambda r: r["event"] == "comfy" and "connection refused" in r["message"], what="refused")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Evil)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        d.wait_for(lambda r: r["event"] == "comfy" and "answers" in r["message"], what="recovery")
        for mode, text in (("slow", "timeout"), ("truncated", ""), ("types", ""), ("huge", ""), ("status500", "")):
            Evil.mode = mode
            n = len(d.records)
            d.wait_for(lambda r: r["event"] == "comfy" and "does not answer usefully" in r["message"]
                       and text in r["message"], timeout=15, what="error for " + mode, since=n)
            Evil.mode = "ok"
            d.wait_for(lambda r: r["event"] == "comfy" and r["message"].endswith("answers"),
                       timeout=15, what="recovery after " + mode, since=n)
            assert d.proc.poll() is None, "daemon died on " + mode
    finally:
        srv.shutdown()
        srv.server_close()
    # a real server restarted mid-run: generations are followed again
    sim = sim_factory(["--model-mb", "20", "--peak-mb", "10", "--leak-mb", "0", "--steps", "10", "--step-ms", "80"],
                      port=port)
    ids = sim.submit(1)
    sim.wait_all_done(ids)
    d.wait_for(lambda r: r["event"] == "generation" and r.get("prompt_id") == ids[0], what="generation 1")
    sim.proc.kill()
    sim.proc.wait()
    sim2 = sim_factory(["--model-mb", "20", "--peak-mb", "10", "--leak-mb", "0", "--steps", "10", "--step-ms", "80"],
                       port=port)
    ids2 = sim2.submit(1)
    sim2.wait_all_done(ids2)
    g = d.wait_for(lambda r: r["event"] == "generation" and r.get("prompt_id") == ids2[0], what="after restart")
    assert g["generation"] == 1, "a new server starts a new sequence"
    assert d.proc.poll() is None
