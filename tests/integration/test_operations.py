"""Issue 10: what operators see of a prevention, through the tools they use: Prometheus (/metrics, promtool), the real
journald with the catalog compiled by journalctl, and perf on the USDT probes (scripts/incident-drill.py).

One prevention scenario (test_prevention.py's: 300 MiB leaked per generation in a 1.5 GiB cgroup) runs once for the
module, with /metrics scraped all along; the tests read what it left.
"""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import (BINARY, ROOT, Cgroup, Daemon, Procs, Sim, free_port, skip_or_fail)
from test_prevention import FAST, LIMIT, RELEASABLE

MiB = 1 << 20
RECORDS_MD = os.path.join(ROOT, "docs", "records.md")
CATALOG = os.path.join(ROOT, "deploy", "oomsentry.catalog")
DRILL = os.path.join(ROOT, "scripts", "incident-drill.py")
# Every series oomsentry exports for one ComfyUI server (label comfyui), and those of the daemon itself.
PER_INSTANCE = ["oomsentry_memory_usage_bytes", "oomsentry_memory_limit_bytes", "oomsentry_generations_total",
                "oomsentry_generation_peak_bytes", "oomsentry_generation_residual_bytes",
                "oomsentry_leak_bytes_per_generation", "oomsentry_forecast_generations_left",
                "oomsentry_actions_total", "oomsentry_freed_bytes_total", "oomsentry_orphans",
                "oomsentry_crash_loops_total", "oomsentry_ladder_exhausted_total"]
# the series the records of actions, decisions and generations move
COUNTED = ["oomsentry_actions_total", "oomsentry_freed_bytes_total", "oomsentry_generations_total",
           "oomsentry_generation_peak_bytes", "oomsentry_generation_residual_bytes", "oomsentry_ladder_exhausted_total"]
PER_DAEMON = ["oomsentry_events_total", "oomsentry_bpf_drops_total", "oomsentry_tracked_processes",
              "oomsentry_probes_attached", "oomsentry_probes_expected"]


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} from the Prometheus text format (no escapes in our label values)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample line: %r" % line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def series(samples, name, **labels):
    return {dict(k[1]).get("action") or dict(k[1]).get("status") or dict(k[1]).get("type") or "": v
            for k, v in samples.items() if k[0] == name and labels.items() <= dict(k[1]).items()}


class Scenario:
    pass


@pytest.fixture(scope="module")
def scenario(privileged, journald, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("operations")
    cg = Cgroup(LIMIT)
    procs = Procs()
    d = None
    s = Scenario()
    try:
        sim = Sim(procs, tmp, free_port(), RELEASABLE, cg)
        port = free_port()
        d = Daemon(tmp, "run", ["--url", sim.url, "--metrics-listen", "127.0.0.1:%d" % port] + FAST)
        d.wait_for(lambda r: r["event"] == "comfy" and r.get("pid") == sim.proc.pid, what="server found")
        url = "http://127.0.0.1:%d/metrics" % port

        def scrape():
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode(), r.headers.get("Content-Type")
        ids = sim.submit(6)
        s.scrapes = []
        deadline = time.time() + 240
        while time.time() < deadline and sim.proc.poll() is None:
            s.scrapes.append(parse_metrics(scrape()[0]))
            hist = [sim.history(i) for i in ids]
            if all(h and h["status"]["completed"] for h in hist):
                break
            time.sleep(0.5)
        # the last generation's record follows its end within a poll
        for i in ids:
            d.wait_for(lambda r, i=i: r["event"] == "generation" and r.get("prompt_id") == i, timeout=60,
                       what="the generation record of prompt " + i)
        # The final scrape and the records the tests compare it with must describe the same moment: a /free's
        # verdict can come after the last generation record (it is judged once memory settled), so wait until the
        # daemon has said nothing about actions or decisions for a while and the scrape no longer changes.
        acting = lambda r: r["event"] in ("action", "decision", "generation")
        counted = lambda text: {k: v for k, v in parse_metrics(text).items() if k[0] in COUNTED}
        s.text, s.content_type = scrape()
        deadline = time.time() + 30
        while time.time() < deadline:
            before = len(d.find(acting))
            time.sleep(2.0)
            text, ctype = scrape()
            settled = counted(text) == counted(s.text) and len(d.find(acting)) == before
            s.text, s.content_type = text, ctype
            if settled:
                break
        s.final = parse_metrics(s.text)
        s.hist = [sim.history(i) for i in ids]
        s.ids, s.daemon, s.cgroup, s.oom_kills = ids, d, cg, cg.oom_kills()
        s.pid = d.proc.pid
        yield s
    finally:
        if d:
            d.stop()
        procs.cleanup()
        cg.destroy()


def test_the_scenario_was_a_prevention(scenario):
    assert [h["status"]["status_str"] for h in scenario.hist] == ["success"] * 6
    assert scenario.oom_kills == 0


def test_every_per_instance_series_during_a_prevention(scenario):
    final, d = scenario.final, scenario.daemon
    names = {k[0] for k in final}
    assert set(PER_INSTANCE + PER_DAEMON) <= names, set(PER_INSTANCE + PER_DAEMON) - names
    for k in final:
        if k[0] in PER_INSTANCE:
            assert dict(k[1]).get("comfyui") == "default", k
            assert "instance" not in dict(k[1]), "instance and job are the scrape target's labels"

    # memory: the cgroup's limit, and a usage that rose near it during the run and never past it
    assert series(final, "oomsentry_memory_limit_bytes", comfyui="default") == {"": LIMIT}
    usage = [v for s in scenario.scrapes for v in series(s, "oomsentry_memory_usage_bytes", comfyui="default").values()]
    assert max(usage) > LIMIT * 0.75 and max(usage) < LIMIT, [u // MiB for u in usage]

    # generations: the counter, the last peak and residual agree with the records
    gens = d.find(lambda r: r["event"] == "generation")
    # a prompt interrupted and requeued is two generations, the first one "interrupted" (the policy may choose that
    # rung when the machine is loaded)
    by_status = {}
    for g in gens:
        by_status[g["status"]] = by_status.get(g["status"], 0) + 1
    assert series(final, "oomsentry_generations_total", comfyui="default") == by_status and by_status["success"] == 6
    assert set(by_status) <= {"success", "interrupted"}, by_status
    assert series(final, "oomsentry_generation_peak_bytes", comfyui="default") == {"": gens[-1]["peak_bytes"]}
    assert series(final, "oomsentry_generation_residual_bytes", comfyui="default") == {"": gens[-1]["residual_bytes"]}

    # the forecast: a leak was measured and generations_left came down to 0 at some scrape
    leak = [v for s in scenario.scrapes for v in series(s, "oomsentry_leak_bytes_per_generation").values()]
    assert max(leak) > 100 * MiB, leak
    left = [v for s in scenario.scrapes for v in series(s, "oomsentry_forecast_generations_left").values()]
    assert 0 in left, left

    # actions: one count per rung carried out, freed bytes the sum of the verified outcomes
    done = d.find(lambda r: r["event"] == "action" and r.get("result") == "done" and r.get("dry_run") == 0)
    assert done
    want = {}
    for a in done:
        want[a["action"]] = want.get(a["action"], 0) + 1
    assert series(final, "oomsentry_actions_total", comfyui="default", result="done") == want
    assert not series(final, "oomsentry_actions_total", result="failed")
    freed = {}
    for v in d.find(lambda r: r["event"] == "action" and "verified" in r and r.get("dry_run") == 0):
        freed[v["action"]] = freed.get(v["action"], 0) + v["freed_bytes"]
    assert series(final, "oomsentry_freed_bytes_total", comfyui="default") == freed
    assert sum(freed.values()) > 300 * MiB

    # counters that exist at 0 from the start, so that rate() and increase() see their first step
    assert series(final, "oomsentry_orphans", comfyui="default") == {"": 0}
    assert series(final, "oomsentry_crash_loops_total", comfyui="default") == {"": 0}
    # the scenario ends with the ladder exhausted (no restart method): one count per such decision record
    exhausted = d.find(lambda r: r["event"] == "decision" and r.get("result") == "exhausted")
    assert series(final, "oomsentry_ladder_exhausted_total", comfyui="default") == {"": len(exhausted)}
    assert not [k for k in final if k[0] == "oomsentry_oom_kills_total" and
                dict(k[1]).get("cgroup") == scenario.cgroup.path]

    # the daemon: every probe attached, events counted, nothing dropped
    total = series(final, "oomsentry_probes_expected")[""]
    assert total > 0 and series(final, "oomsentry_probes_attached") == {"": total}
    started = d.find(lambda r: r["event"] == "daemon" and r.get("state") == "started")[0]
    assert "%d of %d probes attached" % (total, total) in started["message"]
    ev = series(final, "oomsentry_events_total")
    # what the scenario itself makes the kernel report: the server's RSS steps and its model-sized mappings (it
    # started before the daemon and neither forks nor execs, so exec and fork count only what else ran meanwhile)
    assert ev["rss"] > 0 and ev["mmap"] > 0, ev
    assert series(final, "oomsentry_bpf_drops_total") == {"": 0}
    assert series(final, "oomsentry_tracked_processes")[""] >= 1


def test_live_metrics_pass_promtool_check(scenario):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.fail("promtool is missing: make deps installs it (Debian package prometheus)")
    assert scenario.content_type.startswith("text/plain; version=0.0.4")
    r = subprocess.run([promtool, "check", "metrics"], input=scenario.text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr + scenario.text


def documented_fields(section):
    """Field names of a table in docs/records.md under the heading `section`, without the optional ones."""
    text = open(RECORDS_MD).read()
    start = text.index("\n" + section + "\n")
    body = text[start + len(section) + 2:]
    body = body[:re.search(r"\n#+ ", body).start()]
    fields = []
    for row in re.findall(r"^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \|[^|]*\|([^|]*)\|$", body, re.M):
        if "optional" in row[1]:
            continue
        fields += re.findall(r"`([A-Z_]+)`", row[0])
    assert fields, section
    return fields


def journal(*match, pid=None, timeout=15, want=1):
    deadline = time.time() + timeout
    while True:
        r = subprocess.run(["journalctl", "--no-pager", "-o", "json", "-t", "oomsentry"] + list(match) +
                           (["_PID=%d" % pid] if pid else []), capture_output=True, text=True)
        got = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        if len(got) >= want or time.time() > deadline:
            return got
        time.sleep(0.3)


def test_action_records_in_journald_carry_the_documented_fields(scenario):
    d = scenario.daemon
    stdout_actions = d.find(lambda r: r["event"] == "action")
    got = journal("OOMSENTRY_EVENT=action", pid=scenario.pid, want=len(stdout_actions))
    assert len(got) == len(stdout_actions), (len(got), len(stdout_actions))
    taken = documented_fields("### A rung carried out (`run`, not dry run)")
    outcome = documented_fields("### The outcome of a rung")
    kinds = set()
    for j, s in zip(got, stdout_actions):
        assert j["MESSAGE_ID"] == "e3fb58bda0e54ef2af15d781bc175a57"
        assert j["SYSLOG_IDENTIFIER"] == "oomsentry" and j["OOMSENTRY_EVENT"] == "action"
        assert j["MESSAGE"] == s["message"]
        fields = outcome if "OOMSENTRY_VERIFIED" in j else taken
        kinds.add("outcome" if fields is outcome else "taken")
        for f in fields:
            assert "OOMSENTRY_" + f in j, (f, j)
            # the journal and the JSON line are the same record
            assert j["OOMSENTRY_" + f] == str(s[f.lower()]), (f, j, s)
        assert int(j["PRIORITY"]) == s["priority"]
    assert kinds == {"taken", "outcome"}


@pytest.fixture(scope="module")
def catalog_root(tmp_path_factory):
    """journalctl --update-catalog into a scratch root holding the system's catalogs and ours: the machine's
    /var/lib/systemd/catalog/database is never written."""
    root = tmp_path_factory.mktemp("catalog-root")
    src = os.path.join(str(root), "usr", "lib", "systemd", "catalog")
    os.makedirs(src)
    for f in os.listdir("/usr/lib/systemd/catalog"):
        if f.endswith(".catalog") and f != "oomsentry.catalog":
            shutil.copy(os.path.join("/usr/lib/systemd/catalog", f), src)
    shutil.copy(CATALOG, src)
    r = subprocess.run(["journalctl", "--root", str(root), "--update-catalog"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    db = os.path.join(str(root), "var", "lib", "systemd", "catalog", "database")
    assert os.path.getsize(db) > 0
    listed = subprocess.run(["journalctl", "--root", str(root), "--list-catalog"], capture_output=True,
                            text=True).stdout
    ids = re.findall(r"^-- ([0-9a-f]{32})$", open(CATALOG).read(), re.M)
    for i in ids:
        assert re.search(r"^%s oomsentry: " % i, listed, re.M), "catalog entry %s not compiled" % i
    return os.path.dirname(db)


def test_journalctl_x_explains_an_action_with_the_catalog(scenario, catalog_root):
    """journalctl reads the catalog from the fixed path /var/lib/systemd/catalog even with --root (which also
    moves the journal): the scratch database is bind-mounted there in a private mount namespace of its own."""
    unshare = shutil.which("unshare")
    assert unshare, "util-linux"
    taken = journal("OOMSENTRY_EVENT=action", "OOMSENTRY_RESULT=done", pid=scenario.pid)
    assert taken
    cursor = taken[0]["__CURSOR"]
    r = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c",
                        'mount --bind "$0" /var/lib/systemd/catalog && '
                        'exec journalctl --no-pager -x -n 1 --cursor "$1" -o short', catalog_root, cursor],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].endswith(taken[0]["MESSAGE"][:60]) or taken[0]["MESSAGE"][:60] in lines[0], r.stdout
    explained = "\n".join(lines[1:])
    # the catalog's text with the record's own fields filled in
    assert "Subject: Action %s on ComfyUI instance default" % taken[0]["OOMSENTRY_ACTION"] in explained, r.stdout
    assert "The rungs of the prevention ladder" in explained and "Documentation: man:oomsentry(8)" in explained
    # and nothing of it leaked into the machine's own catalog
    assert subprocess.run(["findmnt", "/var/lib/systemd/catalog"], capture_output=True).returncode != 0


def test_incident_drill_perf_on_the_usdt_probes(privileged, journald, tmp_path):
    """scripts/incident-drill.py: the operator's path of docs/incident-analysis.md on the demo's scenario, with
    perf recording the generation, action and leak probes and each checked against its record."""
    r = subprocess.run([DRILL, "--keep", str(tmp_path)], capture_output=True, text=True, timeout=300)
    if r.returncode == 2:
        skip_or_fail(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0, r.stdout + r.stderr
    for probe in ("generation(seq, peak_bytes, residual_bytes)", "action(rung, usage_bytes, limit_bytes)",
                  "leak(leak_bytes_per_generation, generations_left)"):
        assert re.search(r"^  ok   %s fired once per" % re.escape(probe), r.stdout, re.M), r.stdout
    assert os.path.getsize(os.path.join(str(tmp_path), "perf.data")) > 0
    # uprobe events are the machine's: the drill removes the ones it added
    with open("/sys/kernel/tracing/uprobe_events") as f:
        assert " %s:" % BINARY not in f.read(), "probes left behind"
