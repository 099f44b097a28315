#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Page-fault overhead of oomsentry's eBPF probes (the rss_stat tracepoint fires on nearly every page fault).
#
# Three configurations, interleaved over several rounds in one run, medians compared:
#   baseline   no oomsentry running
#   tracked    oomsentry observe --comm-prefixes pfbench   (the benchmark process is tracked: map lookup,
#              counter reads, RSS step events, mmap events)
#   untracked  oomsentry observe --comm-prefixes nomatch   (the probes run but the process is not tracked)
# Then, once, the in-kernel run time of each BPF program as the kernel measures it (BPF_ENABLE_STATS), which does
# not suffer from the noise of the page-fault timing.
#
# usage: sudo bench/overhead.sh            (env: PF_MIB=128 PF_CYCLES=4 ROUNDS=9 PF_CPU=1 DAEMON_CPU=0)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/oomsentry"
PY=/usr/bin/python3
PF_MIB=${PF_MIB:-128}
PF_CYCLES=${PF_CYCLES:-4}
ROUNDS=${ROUNDS:-9}
PF_CPU=${PF_CPU:-1}
DAEMON_CPU=${DAEMON_CPU:-0}

if [ "$(id -u)" != 0 ]; then
	echo "overhead.sh: needs root (oomsentry loads BPF programs)" >&2
	exit 2
fi
[ -x "$BIN" ] || { echo "overhead.sh: $BIN missing; run make first" >&2; exit 2; }
NCPU=$(nproc)
if [ "$PF_CPU" -ge "$NCPU" ] || [ "$DAEMON_CPU" -ge "$NCPU" ]; then
	PF_CPU=$((NCPU - 1)); DAEMON_CPU=0
fi

OUTDIR="$ROOT/bench/out"
mkdir -p "$OUTDIR"
PFBENCH="$OUTDIR/pfbench"   # the name is the point: its comm must be "pfbench"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror "$ROOT/bench/pagefault.c" -o "$PFBENCH"

WORK=$(mktemp -d /tmp/oomsentry-bench.XXXXXX)
RESULTS="$WORK/results.tsv"
DPID=""
HOLD_PID=""

cleanup() {
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	if [ -n "$HOLD_PID" ] && kill -0 "$HOLD_PID" 2>/dev/null; then
		kill -TERM "$HOLD_PID" 2>/dev/null || true
		wait "$HOLD_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_daemon PREFIXES: oomsentry observe pinned to DAEMON_CPU, stdout to /dev/null; returns when its status
# socket answers (the probes are attached by then)
start_daemon() {
	local sock="$WORK/status.sock"
	rm -f "$sock"
	taskset -c "$DAEMON_CPU" "$BIN" observe --comm-prefixes "$1" --journal=no --socket "$sock" \
		--incident-dir "$WORK/incidents" >/dev/null 2>"$WORK/daemon.stderr" &
	DPID=$!
	for _ in $(seq 300); do
		if "$BIN" status --socket "$sock" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$DPID" 2>/dev/null; then
			echo "overhead.sh: oomsentry exited at start:" >&2
			cat "$WORK/daemon.stderr" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "overhead.sh: oomsentry did not answer on its socket in 30 s" >&2
	exit 1
}

stop_daemon() {
	kill -TERM "$DPID"
	wait "$DPID" || true
	DPID=""
}

# CPU time of a pid in ns, all its threads: /proc/PID/task/*/schedstat (ns) is finer than stat's utime+stime ticks
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'
}

vm_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# the daemon's BPF map named "stats", found through its own file descriptors (other oomsentry instances may run)
stats_map_id() {
	local f id
	for f in /proc/"$1"/fdinfo/*; do
		id=$(awk '/^map_id:/{print $2}' "$f" 2>/dev/null) || continue
		[ -n "$id" ] || continue
		if bpftool map show id "$id" 2>/dev/null | grep -q " name stats "; then
			echo "$id"
			return 0
		fi
	done
	return 1
}

# "drops events rss_calls" summed over CPUs, or nothing when bpftool cannot read it
bpf_stats() {
	local id
	command -v bpftool >/dev/null || return 0
	id=$(stats_map_id "$1") || return 0
	bpftool -j map dump id "$id" 2>/dev/null | $PY -c '
import json, sys
tot = {}
for e in json.load(sys.stdin):
    f = e.get("formatted", {})
    tot[f.get("key")] = sum(v["value"] for v in f.get("values", []))
print("%d,%d,%d" % (tot.get(0, 0), tot.get(1, 0), tot.get(2, 0)))' 2>/dev/null || true
}

# BPF programs on rss_stat loaded by anyone but this script's daemon (other oomsentry instances on the machine):
# they run on pfbench's faults in every configuration, the baseline included
others_rss_progs() {
	local n
	command -v bpftool >/dev/null || { echo na; return 0; }
	n=$(bpftool -j prog show 2>/dev/null | $PY -c '
import json, sys
print(sum(1 for p in json.load(sys.stdin) if p.get("name") == "handle_rss_stat"))' 2>/dev/null) || { echo na; return 0; }
	[ -n "$DPID" ] && n=$((n - 1))
	echo "$n"
}

run_pf() {
	taskset -c "$PF_CPU" "$PFBENCH" "$PF_MIB" "$PF_CYCLES" 200
}

# measure CONFIG ROUND: one pfbench run, one line into RESULTS
measure() {
	local cfg=$1 round=$2 line t0 t1 w0 w1 st rss hwm extra=""
	case $cfg in
	baseline)
		extra="others=$(others_rss_progs)"
		line=$(run_pf)
		;;
	tracked | untracked)
		if [ "$cfg" = tracked ]; then start_daemon pfbench; else start_daemon nomatch; fi
		extra="others=$(others_rss_progs)"
		t0=$(cpu_ns "$DPID")
		w0=$(date +%s%N)
		line=$(run_pf)
		sleep 0.3 # let the daemon drain the ring buffer before its CPU time is read
		t1=$(cpu_ns "$DPID")
		w1=$(date +%s%N)
		rss=$(vm_kib "$DPID" VmRSS)
		hwm=$(vm_kib "$DPID" VmHWM)
		st=$(bpf_stats "$DPID")
		extra+=" daemon_cpu_ns=$((t1 - t0)) daemon_wall_ns=$((w1 - w0)) daemon_total_cpu_ns=$t1 rss_kib=$rss hwm_kib=$hwm bpf=${st:-na}"
		stop_daemon
		;;
	esac
	printf '%s\t%s\t%s %s\n' "$cfg" "$round" "$line" "$extra" >>"$RESULTS"
	printf '  round %d %-9s %s\n' "$round" "$cfg" "$(echo "$line" | sed -e 's/ user_ns.*//' -e 's/ warmup_faults=[0-9]*//')"
}

echo "== oomsentry page-fault overhead (bench/overhead.sh) =="
echo "kernel $(uname -r), $NCPU CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "pfbench: ${PF_MIB} MiB anonymous, ${PF_CYCLES} mmap/touch/munmap cycles per run, pinned to CPU $PF_CPU;" \
	"oomsentry pinned to CPU $DAEMON_CPU; $ROUNDS rounds, order rotated each round"
cfgs=(baseline tracked untracked)
for r in $(seq 1 "$ROUNDS"); do
	for i in 0 1 2; do
		measure "${cfgs[$(((i + r - 1) % 3))]}" "$r"
	done
done

# One more tracked and untracked run with the kernel's BPF run-time statistics on. BPF_ENABLE_STATS hands out a
# file descriptor: the statistics stay on while it is open and go back to their previous state when it closes, so
# the machine's sysctl is never written. They cost two clock reads per program run: hence not in the runs above.
HOLD="$WORK/hold.py"
cat >"$HOLD" <<'EOF'
import ctypes, os, platform, sys, time
nr = {"x86_64": 321, "aarch64": 280}.get(platform.machine())
if nr is None:
    print("unsupported", flush=True); sys.exit(0)
libc = ctypes.CDLL(None, use_errno=True)
attr = ctypes.create_string_buffer(16)          # union bpf_attr.enable_stats.type = BPF_STATS_RUN_TIME (0)
fd = libc.syscall(nr, 32, attr, 16)             # 32: BPF_ENABLE_STATS
if fd < 0:
    print("failed errno %d" % ctypes.get_errno(), flush=True); sys.exit(0)
print("enabled", flush=True)
while True:
    time.sleep(3600)
EOF
# prog_snapshot PID FILE: run count and run time of the daemon's own BPF programs, from one bpftool call
prog_snapshot() {
	local ids
	ids=$(cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '/^prog_id:/{print $2}' | sort -un | tr '\n' ,)
	bpftool -j prog show 2>/dev/null | $PY -c '
import json, sys
ids = {int(x) for x in sys.argv[1].split(",") if x}
print(json.dumps({p["id"]: [p.get("name", "?"), p.get("run_cnt", 0), p.get("run_time_ns", 0)]
                  for p in json.load(sys.stdin) if p["id"] in ids}))' "$ids" >"$2"
}
# prog_delta BEFORE AFTER FAULTS LABEL: what the programs cost while pfbench ran
prog_delta() {
	$PY - "$@" <<'PYEOF'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
faults, label = int(sys.argv[3]), sys.argv[4]
rows, total = [], 0
for pid, (name, cnt, ns) in b.items():
    _, cnt0, ns0 = a.get(pid, [name, 0, 0])
    if cnt > cnt0:
        rows.append((name, cnt - cnt0, ns - ns0))
        total += ns - ns0
for name, cnt, ns in sorted(rows, key=lambda r: -r[2]):
    print("  %-9s %-20s %9d runs (%5.2f per pfbench fault) %7.1f ns/run -> %6.1f ns per pfbench fault"
          % (label, name, cnt, cnt / faults, ns / cnt, ns / faults))
print("  %-9s all programs: %.1f ns of BPF time per pfbench fault" % (label, total / faults))
PYEOF
}
FAULTS_PER_RUN=$(((PF_MIB << 20) * (PF_CYCLES + 1) / $(getconf PAGESIZE))) # timed cycles + warm-up
$PY "$HOLD" >"$WORK/hold.out" &
HOLD_PID=$!
for _ in $(seq 50); do [ -s "$WORK/hold.out" ] && break; sleep 0.1; done
BPFSTATS_NOTE=$(cat "$WORK/hold.out" 2>/dev/null || true)
PROG_LINES=""
if [ "$BPFSTATS_NOTE" = enabled ] && command -v bpftool >/dev/null; then
	for cfg in tracked untracked; do
		if [ "$cfg" = tracked ]; then start_daemon pfbench; else start_daemon nomatch; fi
		prog_snapshot "$DPID" "$WORK/before.json"
		run_pf >/dev/null
		prog_snapshot "$DPID" "$WORK/after.json"
		PROG_LINES+=$(prog_delta "$WORK/before.json" "$WORK/after.json" "$FAULTS_PER_RUN" "$cfg")$'\n'
		stop_daemon
	done
fi
kill -TERM "$HOLD_PID" 2>/dev/null || true
wait "$HOLD_PID" 2>/dev/null || true
HOLD_PID=""

# perf: report instructions per fault only where the machine has a PMU that counts them
PERF_NOTE="perf stat -e instructions: not available"
if command -v perf >/dev/null && perf stat -x, -e instructions true 2>&1 | grep -qE '^[0-9]+,'; then
	ins=$(perf stat -x, -e instructions taskset -c "$PF_CPU" "$PFBENCH" "$PF_MIB" 1 0 2>&1 >/dev/null |
		awk -F, '/instructions/{print $1}')
	PERF_NOTE="perf stat -e instructions (baseline, whole process): $ins instructions for $(((PF_MIB << 20) * 2 / $(getconf PAGESIZE))) faults (warm-up + 1 cycle)"
fi

echo
$PY - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    cfg, rnd, rest = line.rstrip("\n").split("\t", 2)
    kv = dict(x.split("=", 1) for x in rest.split() if "=" in x)
    rows.setdefault(cfg, []).append((int(rnd), kv))
med = lambda xs: statistics.median(xs)
def col(cfg, key):
    return [float(kv[key]) for _, kv in rows.get(cfg, [])]
base_f, base_p = med(col("baseline", "ns_per_fault")), med(col("baseline", "ns_per_page"))
print("%-10s %14s %14s %12s %10s %14s" % ("config", "ns/fault med", "ns/page med", "vs baseline", "delta ns", "min..max fault"))
for cfg in ("baseline", "tracked", "untracked"):
    f, p = col(cfg, "ns_per_fault"), col(cfg, "ns_per_page")
    print("%-10s %14.1f %14.1f %11.3fx %+10.1f %7.0f..%-7.0f" % (cfg, med(f), med(p), med(f) / base_f,
          med(f) - base_f, min(f), max(f)))
# paired: each round's runs sit next to each other in time, so their ratio cancels slow drifts of the machine
by_round = {}
for cfg, lst in rows.items():
    for rnd, kv in lst:
        by_round.setdefault(rnd, {})[cfg] = float(kv["ns_per_fault"])
for cfg in ("tracked", "untracked"):
    ratios = [r[cfg] / r["baseline"] for r in by_round.values() if cfg in r and "baseline" in r]
    print("%s: %.3fx baseline (median of %d per-round ratios, range %.3f..%.3f)" % (
        cfg, med(ratios), len(ratios), min(ratios), max(ratios)))
odd = [(cfg, rnd) for cfg, lst in rows.items() for rnd, kv in lst
       if abs(int(kv["minflt"]) - int(kv["faults"])) > int(kv["faults"]) // 100]
if odd:
    print("WARNING: in %d run(s) the kernel counted minor faults that differ by more than 1%% from the pages touched "
          "(huge pages?): %s" % (len(odd), odd))
others = [int(kv["others"]) for lst in rows.values() for _, kv in lst if kv.get("others", "na") != "na"]
if others and max(others):
    print("NOTE: %d..%d rss_stat BPF programs of other processes (other oomsentry instances) were loaded during the "
          "runs; they run on every fault in all three configurations, so the baseline is not BPF-free and the "
          "spread is wider" % (min(others), max(others)))
elif others:
    print("no other process had a BPF program on rss_stat during the runs")
print()
for cfg in ("tracked", "untracked"):
    lst = [kv for _, kv in rows.get(cfg, [])]
    if not lst:
        continue
    cpu_ns = med([float(kv["daemon_cpu_ns"]) for kv in lst])
    total_ms = med([float(kv["daemon_total_cpu_ns"]) for kv in lst]) / 1e6
    faults = med([float(kv["faults"]) for kv in lst])
    all_faults = faults + med([float(kv["warmup_faults"]) for kv in lst])
    wall_s = med([float(kv["daemon_wall_ns"]) for kv in lst]) / 1e9
    print("oomsentry (%s): CPU %.1f ms in %.2f s around a pfbench run (%.2f%% of one CPU; %.0f ms over its whole life),"
          " VmRSS %.1f MiB, VmHWM %.1f MiB (medians)" % (cfg, cpu_ns / 1e6, wall_s,
          100 * cpu_ns / 1e9 / wall_s if wall_s else 0, total_ms,
          med([float(kv["rss_kib"]) for kv in lst]) / 1024, med([float(kv["hwm_kib"]) for kv in lst]) / 1024))
    b = [kv["bpf"].split(",") for kv in lst if kv.get("bpf", "na") != "na"]
    if b:
        drops, events, calls = (med([float(x[i]) for x in b]) for i in range(3))
        print("  BPF stats map (whole daemon life, median): %d events submitted, %d dropped, %d rss_stat calls on "
              "tracked processes (%.2f per pfbench fault, warm-up included)" % (events, drops, calls, calls / all_faults))
    else:
        print("  BPF stats map: not readable (bpftool missing or map not found)")
EOF
echo
if [ -n "$PROG_LINES" ]; then
	echo "In-kernel BPF run time, one extra run per config with BPF_ENABLE_STATS held ($FAULTS_PER_RUN faults:" \
		"warm-up + timed cycles; the runs count every process that ran meanwhile, not pfbench alone):"
	printf '%s' "$PROG_LINES"
else
	echo "In-kernel BPF run time: not measured (BPF_ENABLE_STATS: ${BPFSTATS_NOTE:-no answer})"
fi
echo "$PERF_NOTE"
