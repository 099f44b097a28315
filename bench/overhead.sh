#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Page-fault overhead of oomsentry's eBPF probes (the rss_stat tracepoint fires on nearly every page fault).
#
# Six configurations, interleaved over several rounds in one run, each compared with the baseline of its own page
# size measured in the same rounds:
#   baseline    no oomsentry running
#   tracked     oomsentry run --dry-run --comm-prefixes pfbench   (the benchmark process is tracked: map lookup,
#               counter reads, RSS step events, mmap events)
#   untracked   oomsentry run --dry-run --comm-prefixes nomatch   (the probes run but the process is not tracked)
# each with 4 KiB pages (MADV_NOHUGEPAGE) and with transparent huge pages (MADV_HUGEPAGE, "-thp").
# Then the in-kernel run time of each BPF program as the kernel measures it (BPF_ENABLE_STATS, the fd form of
# kernel.bpf_stats_enabled), which does not suffer from the noise of the page-fault timing, and what the
# statistics themselves cost: tracked runs with and without them, interleaved, and an empty program on the same
# tracepoint (bench/nullprog.bpf.c), whose ns/run is what the statistics measure for no work at all.
# Last, issue 11's reproduction: a program named python_pf (tracked by the default comm_prefixes) faults 4 GiB in
# 1 GiB mappings that it keeps, PYPF_RUNS times without and with `oomsentry run --dry-run` (defaults) in the
# background, interleaved, nothing pinned, THP off and on; ratios by the minimum and by the paired median.
#
# usage: sudo bench/overhead.sh   (env: PF_MIB=128 PF_CYCLES=4 ROUNDS=9 STATS_ROUNDS=5 PF_CPU=1 DAEMON_CPU=0
#                                   MODE=run|observe PYPF_RUNS=5 PYPF_MIB=1024 PYPF_MAPS=4 PYPF_BEFORE=build
#                                   PHASES="pf stats pypf": which parts to run)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_BINARY:-$ROOT/oomsentry}  # BENCH_BINARY: another build (OOMSENTRY_* would be read as a setting)
PY=/usr/bin/python3
PF_MIB=${PF_MIB:-128}
PF_CYCLES=${PF_CYCLES:-4}
ROUNDS=${ROUNDS:-9}
STATS_ROUNDS=${STATS_ROUNDS:-5}
MODE=${MODE:-run}
PYPF_RUNS=${PYPF_RUNS:-5}
PYPF_MIB=${PYPF_MIB:-1024}
PYPF_MAPS=${PYPF_MAPS:-4}
PHASES=" ${PHASES:-pf stats pypf} "
phase() { case $PHASES in *" $1 "*) return 0 ;; esac; return 1; }
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
PYPF="$OUTDIR/python_pf"   # the issue's name: the default comm_prefixes (python, comfy) track it
cp "$PFBENCH" "$PYPF"
# the empty program on rss_stat and its loader (needs clang's BPF target and the build's vmlinux.h, as make does)
NULLPROG=""
if [ -r "$ROOT/.output/vmlinux.h" ] && command -v clang >/dev/null &&
	clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -I"$ROOT/.output" -c "$ROOT/bench/nullprog.bpf.c" \
		-o "$OUTDIR/nullprog.bpf.o" 2>/dev/null &&
	gcc -std=gnu11 -O2 -Wall -Wextra -Werror "$ROOT/bench/nullprog.c" -lbpf -o "$OUTDIR/nullprog" 2>/dev/null; then
	NULLPROG="$OUTDIR/nullprog"
fi

WORK=$(mktemp -d /tmp/oomsentry-bench.XXXXXX)
RESULTS="$WORK/results.tsv"
DPID=""
HOLD_PID=""
NULL_PID=""

cleanup() {
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
	fi
	if [ -n "$NULL_PID" ] && kill -0 "$NULL_PID" 2>/dev/null; then
		kill -TERM "$NULL_PID" 2>/dev/null || true
		wait "$NULL_PID" 2>/dev/null || true
	fi
	if [ -n "$HOLD_PID" ] && kill -0 "$HOLD_PID" 2>/dev/null; then
		kill -TERM "$HOLD_PID" 2>/dev/null || true
		wait "$HOLD_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_daemon PREFIXES [nopin]: oomsentry observe pinned to DAEMON_CPU, stdout to /dev/null; returns when its
# status socket answers (the probes are attached by then). PREFIXES "default": the default comm_prefixes.
# DAEMON_ARGS: more options. The phases that measure the rss_stat probe itself keep it attached
# (--no-rss-probe-on-demand: in run mode it is otherwise attached only while a server is busy or near its limit,
# and this bench has no server).
DAEMON_ARGS=()
ATTACHED=(--no-rss-probe-on-demand)
start_daemon() {
	local sock="$WORK/status.sock"
	rm -f "$sock"
	local mode=(observe) pin=(taskset -c "$DAEMON_CPU") prefixes=(--comm-prefixes "$1")
	# run mode as users run it, but never acting (this is a shared machine) and with no ComfyUI to talk to: the
	# port is the discard port, so every poll is refused at once
	[ "$MODE" = run ] && mode=(run --dry-run --url http://127.0.0.1:9)
	[ "${2:-}" = nopin ] && pin=()
	[ "$1" = default ] && prefixes=()
	"${pin[@]}" "${DAEMON_BIN:-$BIN}" "${mode[@]}" "${prefixes[@]}" "${DAEMON_ARGS[@]}" --journal=no --socket "$sock" \
		--incident-dir "$WORK/incidents" --runtime-dir "$WORK/run" >/dev/null 2>"$WORK/daemon.stderr" &
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

# voluntary context switches of all its threads: how often it went to sleep, i.e. was woken
wakeups() {
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/{s += $2} END {printf "%d\n", s}'
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

# run_pf [thp]
run_pf() {
	taskset -c "$PF_CPU" "$PFBENCH" "$PF_MIB" "$PF_CYCLES" 200 "$@"
}

# measure CONFIG ROUND: one pfbench run, one line into RESULTS
measure() {
	local cfg=$1 round=$2 line t0 t1 w0 w1 st rss hwm extra="" thp=()
	case $cfg in *-thp) thp=(thp) ;; esac
	case $cfg in
	baseline*)
		extra="others=$(others_rss_progs)"
		line=$(run_pf "${thp[@]}")
		;;
	tracked* | untracked*)
		DAEMON_ARGS=("${ATTACHED[@]}")
		case $cfg in tracked*) start_daemon pfbench ;; *) start_daemon nomatch ;; esac
		DAEMON_ARGS=()
		extra="others=$(others_rss_progs)"
		t0=$(cpu_ns "$DPID")
		w0=$(date +%s%N)
		line=$(run_pf "${thp[@]}")
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
	printf '  round %d %-13s %s\n' "$round" "$cfg" "$(echo "$line" | sed -e 's/ user_ns.*//' -e 's/ warmup_faults=[0-9]*//')"
}

echo "== oomsentry page-fault overhead (bench/overhead.sh) =="
echo "kernel $(uname -r), $NCPU CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "pfbench: ${PF_MIB} MiB anonymous, ${PF_CYCLES} mmap/touch/munmap cycles per run, pinned to CPU $PF_CPU;" \
	"oomsentry ($MODE mode) pinned to CPU $DAEMON_CPU; $ROUNDS rounds, order rotated each round;" \
	"THP $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown)"
cfgs=(baseline tracked untracked baseline-thp tracked-thp untracked-thp)
: >"$RESULTS"
if phase pf; then
	for r in $(seq 1 "$ROUNDS"); do
		for i in $(seq 0 5); do
			measure "${cfgs[$(((i + r - 1) % 6))]}" "$r"
		done
	done
fi

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
# prog_snapshot PID FILE: run count and run time of the BPF programs PID holds
prog_snapshot() {
	local ids id
	ids=$(cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '/^prog_id:/{print $2}' | sort -un)
	# one program at a time: a listing of all of them fails when another process's program goes away meanwhile
	for id in $ids; do
		bpftool -j prog show id "$id" 2>/dev/null || true
		echo
	done | $PY -c '
import json, sys
out = {}
for line in sys.stdin:
    if line.strip():
        p = json.loads(line)
        out[p["id"]] = [p.get("name", "?"), p.get("run_cnt", 0), p.get("run_time_ns", 0)]
print(json.dumps(out))' >"$2"
}
# prog_delta BEFORE AFTER LABEL: what the programs ran while pfbench ran, one JSON line into PROGS
prog_delta() {
	$PY - "$@" <<'PYEOF' >>"$PROGS"
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
out = {}
for pid, (name, cnt, ns) in b.items():
    _, cnt0, ns0 = a.get(pid, [name, 0, 0])
    if cnt > cnt0:
        out[name] = [cnt - cnt0, ns - ns0]
print(sys.argv[3] + "\t" + json.dumps(out))
PYEOF
}
hold_start() {
	$PY "$HOLD" >"$WORK/hold.out" &
	HOLD_PID=$!
	for _ in $(seq 50); do [ -s "$WORK/hold.out" ] && break; sleep 0.1; done
	BPFSTATS_NOTE=$(cat "$WORK/hold.out" 2>/dev/null || true)
}
hold_stop() {
	kill -TERM "$HOLD_PID" 2>/dev/null || true
	wait "$HOLD_PID" 2>/dev/null || true
	HOLD_PID=""
}
# stats_run LABEL ROUND: one pfbench run with the statistics on, the programs' run counts and times around it
stats_run() {
	local line
	hold_start
	prog_snapshot "$DPID" "$WORK/before.json"
	line=$(run_pf)
	prog_snapshot "$DPID" "$WORK/after.json"
	hold_stop
	prog_delta "$WORK/before.json" "$WORK/after.json" "$1"
	printf '%s\t%s\t%s\n' "$1" "$2" "$line" >>"$STATS_RESULTS"
}
FAULTS_PER_RUN=$(((PF_MIB << 20) * (PF_CYCLES + 1) / $(getconf PAGESIZE))) # timed cycles + warm-up
PROGS="$WORK/progs.tsv"
STATS_RESULTS="$WORK/stats.tsv"
: >"$PROGS"
: >"$STATS_RESULTS"
BPFSTATS_NOTE=""
# the empty program attached to rss_stat with no daemon; nullprog keeps it attached until its stdin (a fifo held open
# here on fd 8) closes
null_start() {
	rm -f "$WORK/null.fifo" "$WORK/null.out"
	mkfifo "$WORK/null.fifo"
	"$NULLPROG" "$OUTDIR/nullprog.bpf.o" <"$WORK/null.fifo" >"$WORK/null.out" &
	NULL_PID=$!
	exec 8>"$WORK/null.fifo"
	for _ in $(seq 100); do [ -s "$WORK/null.out" ] && break; sleep 0.05; done
}
null_stop() {
	exec 8>&-
	wait "$NULL_PID" 2>/dev/null || true
	NULL_PID=""
}
if command -v bpftool >/dev/null && phase stats; then
	hold_start
	hold_stop
fi
if [ "$BPFSTATS_NOTE" = enabled ]; then
	echo
	echo "BPF run-time statistics: $STATS_ROUNDS rounds of [tracked without, tracked with] (order alternating) and" \
		"one untracked run with them"
	DAEMON_ARGS=("${ATTACHED[@]}")
	for r in $(seq 1 "$STATS_ROUNDS"); do
		start_daemon pfbench
		if [ $((r % 2)) = 1 ]; then
			printf 'tracked-nostats\t%s\t%s\n' "$r" "$(run_pf)" >>"$STATS_RESULTS"
			stats_run tracked-stats "$r"
		else
			stats_run tracked-stats "$r"
			printf 'tracked-nostats\t%s\t%s\n' "$r" "$(run_pf)" >>"$STATS_RESULTS"
		fi
		stop_daemon
		start_daemon nomatch
		stats_run untracked-stats "$r"
		stop_daemon
		# no daemon, only the empty program: what the statistics measure for a program that does nothing
		if [ -n "$NULLPROG" ]; then
			null_start
			DPID_SAVE=$DPID
			DPID=$NULL_PID
			stats_run null-stats "$r"
			DPID=$DPID_SAVE
			null_stop
		fi
		printf '  round %d done\n' "$r"
	done
	DAEMON_ARGS=()
fi

# perf: report instructions per fault only where the machine has a PMU that counts them
PERF_NOTE="perf stat -e instructions: not available"
if command -v perf >/dev/null && perf stat -x, -e instructions true 2>&1 | grep -qE '^[0-9]+,'; then
	ins=$(perf stat -x, -e instructions taskset -c "$PF_CPU" "$PFBENCH" "$PF_MIB" 1 0 2>&1 >/dev/null |
		awk -F, '/instructions/{print $1}')
	PERF_NOTE="perf stat -e instructions (baseline, whole process): $ins instructions for $(((PF_MIB << 20) * 2 / $(getconf PAGESIZE))) faults (warm-up + 1 cycle)"
fi

echo
[ -s "$RESULTS" ] && $PY - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    cfg, rnd, rest = line.rstrip("\n").split("\t", 2)
    kv = dict(x.split("=", 1) for x in rest.split() if "=" in x)
    rows.setdefault(cfg, []).append((int(rnd), kv))
med = lambda xs: statistics.median(xs)
def col(cfg, key):
    return [float(kv[key]) for _, kv in rows.get(cfg, [])]
# 4 KiB runs compare ns per fault, THP runs ns per MiB (one fault there maps 2 MiB); each against its own baseline
print("%-14s %14s %12s %12s %10s %18s" % ("config", "ns/fault med", "ns/MiB med", "vs baseline", "delta ns", "min..max ns/MiB"))
for suffix in ("", "-thp"):
    base = med(col("baseline" + suffix, "ns_per_mib"))
    for cfg in ("baseline", "tracked", "untracked"):
        m, f = col(cfg + suffix, "ns_per_mib"), col(cfg + suffix, "ns_per_fault")
        if not m:
            continue
        print("%-14s %14s %12.0f %11.3fx %+10.0f %9.0f..%-9.0f" % (
            cfg + suffix, "%.1f" % med(f) if not suffix else "-", med(m), med(m) / base, med(m) - base, min(m), max(m)))
# paired: each round's runs sit next to each other in time, so their ratio cancels slow drifts of the machine
by_round = {}
for cfg, lst in rows.items():
    for rnd, kv in lst:
        by_round.setdefault(rnd, {})[cfg] = float(kv["ns_per_mib"])
for suffix in ("", "-thp"):
    for cfg in ("tracked", "untracked"):
        ratios = [r[cfg + suffix] / r["baseline" + suffix] for r in by_round.values()
                  if cfg + suffix in r and "baseline" + suffix in r]
        if ratios:
            print("%s: %.3fx baseline%s (median of %d per-round ratios, range %.3f..%.3f)" % (
                cfg + suffix, med(ratios), suffix, len(ratios), min(ratios), max(ratios)))
odd = [(cfg, rnd) for cfg, lst in rows.items() for rnd, kv in lst if not cfg.endswith("-thp")
       and abs(int(kv["minflt"]) - int(kv["faults"])) > int(kv["faults"]) // 100]
if odd:
    print("WARNING: in %d 4 KiB run(s) the kernel counted minor faults that differ by more than 1%% from the pages "
          "touched (huge pages?): %s" % (len(odd), odd))
thp = [int(kv["minflt"]) / int(kv["faults"]) for cfg, lst in rows.items() if cfg.endswith("-thp") for _, kv in lst]
if thp:
    print("THP runs: %.4f faults per 4 KiB page (median; 1/512 = 0.0020 when every fault maps a huge page)" % med(thp))
others = [int(kv["others"]) for lst in rows.values() for _, kv in lst if kv.get("others", "na") != "na"]
if others and max(others):
    print("NOTE: %d..%d rss_stat BPF programs of other processes (other oomsentry instances) were loaded during the "
          "runs; they run on every fault in all three configurations, so the baseline is not BPF-free and the "
          "spread is wider" % (min(others), max(others)))
elif others:
    print("no other process had a BPF program on rss_stat during the runs")
print()
for cfg in ("tracked", "untracked", "tracked-thp", "untracked-thp"):
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
        drops, events = (med([float(x[i]) for x in b]) for i in range(2))
        print("  BPF stats map (whole daemon life, median): %d events submitted, %d dropped (%.4f events per pfbench "
              "fault, warm-up included)" % (events, drops, events / all_faults))
    else:
        print("  BPF stats map: not readable (bpftool missing or map not found)")
EOF
echo
if [ -s "$PROGS" ]; then
	echo "In-kernel BPF run time (BPF_ENABLE_STATS held only around these runs; $FAULTS_PER_RUN faults per run:" \
		"warm-up + timed cycles; the counts include every process that faulted meanwhile, not pfbench alone):"
	$PY - "$PROGS" "$STATS_RESULTS" "$FAULTS_PER_RUN" <<'PYEOF'
import json, statistics, sys
med = statistics.median
faults = int(sys.argv[3])
per = {}
for line in open(sys.argv[1]):
    label, js = line.rstrip("\n").split("\t", 1)
    for name, (cnt, ns) in json.loads(js).items():
        per.setdefault((label, name), []).append((cnt, ns))
total = {}
for (label, name), lst in sorted(per.items()):
    cnt, ns = med([c for c, _ in lst]), med([n / c for c, n in lst])
    total[label] = total.get(label, 0) + med([n for _, n in lst]) / faults
    print("  %-16s %-22s %9d runs (%5.2f per pfbench fault) %7.1f ns/run -> %6.1f ns per pfbench fault  (median of %d)"
          % (label, name, cnt, cnt / faults, ns, cnt * ns / faults, len(lst)))
for label, t in sorted(total.items()):
    print("  %-16s all programs: %.1f ns of BPF time per pfbench fault" % (label, t))
# the floor: what the statistics measure for an empty program on the same tracepoint
null = per.get(("null-stats", "bench_null_rss_stat"))
if null:
    floor = med([n / c for c, n in null])
    print("  floor: an empty program on rss_stat measures %.1f ns/run with the statistics on (their clock reads and "
          "bookkeeping; median of %d)" % (floor, len(null)))
    for label in ("tracked-stats", "untracked-stats"):
        lst = per.get((label, "handle_rss_stat"))
        if lst:
            ns = med([n / c for c, n in lst])
            print("  handle_rss_stat %-9s %.1f ns/run measured, %.1f ns/run above the empty program's"
                  % (label.split("-")[0], ns, ns - floor))
# what the statistics cost: the same tracked daemon, pfbench with and without them, paired by round
rows = {}
for line in open(sys.argv[2]):
    label, rnd, rest = line.rstrip("\n").split("\t", 2)
    kv = dict(x.split("=", 1) for x in rest.split() if "=" in x)
    rows.setdefault(int(rnd), {})[label] = float(kv["ns_per_fault"])
pairs = [(r["tracked-stats"], r["tracked-nostats"]) for r in rows.values()
         if "tracked-stats" in r and "tracked-nostats" in r]
runs = [c for (label, name), lst in per.items() if label == "tracked-stats" for c, _ in lst]
if pairs:
    d = [a - b for a, b in pairs]
    rpf = sum(runs) / len(pairs) / faults if runs else 0
    print("  statistics' own cost: tracked pfbench %.1f ns/fault with them, %.1f without (medians); paired difference "
          "%+.1f ns/fault (range %+.1f..%+.1f) over %.2f program runs per fault = %+.1f ns per program run"
          % (med([a for a, _ in pairs]), med([b for _, b in pairs]), med(d), min(d), max(d), rpf,
             med(d) / rpf if rpf else float("nan")))
PYEOF
else
	echo "In-kernel BPF run time: not measured (BPF_ENABLE_STATS: ${BPFSTATS_NOTE:-bpftool missing})"
fi
echo "$PERF_NOTE"

# Issue 11's reproduction: python_pf (tracked by the default comm_prefixes) faults PYPF_MAPS x PYPF_MIB MiB in
# mappings it keeps, without and with `oomsentry run --dry-run` (defaults, nothing pinned) in the background,
# interleaved with an untracked daemon (the order rotated by run), THP off and on. Time = the timed touch + munmap
# of python_pf (after an untimed warm-up of the same size: see pagefault.c).
if phase pypf; then
	PYPF_RESULTS="$WORK/pypf.tsv"
	: >"$PYPF_RESULTS"
	echo
	echo "issue 11 reproduction: python_pf faults $((PYPF_MIB * PYPF_MAPS)) MiB in $PYPF_MAPS mappings of $PYPF_MIB MiB" \
		"(kept), $PYPF_RUNS runs without and with oomsentry $MODE (defaults) interleaved, THP off and on, nothing pinned"
	# configurations, rotated each run: without (the baseline), with (tracked: the defaults track python*; in run
	# mode the rss_stat probe is attached only while a server is busy or near its limit, and there is none here),
	# attached (the same with the probe attached all along: --no-rss-probe-on-demand, as observe mode runs),
	# untracked (--comm-prefixes nomatch, the probe attached: it runs, python_pf is not tracked), and with-before when
	# PYPF_BEFORE names another build (the same as "with", that build's daemon), and null: no daemon, only the empty
	# program on rss_stat (bench/nullprog.bpf.c), the floor that any program on the tracepoint costs every fault
	cfgs=(without with attached untracked)
	[ -n "$NULLPROG" ] && cfgs+=(null)
	[ -n "${PYPF_BEFORE:-}" ] && cfgs+=(with-before)
	for thp in "" thp; do
		for r in $(seq 1 "$PYPF_RUNS"); do
			for i in $(seq 0 $((${#cfgs[@]} - 1))); do
				cfg=${cfgs[$(((r + i) % ${#cfgs[@]}))]}
				if [ "$cfg" = without ] || [ "$cfg" = null ]; then
					[ "$cfg" = null ] && null_start
					line=$("$PYPF" "$PYPF_MIB" "$PYPF_MAPS" 0 keep $thp)
					[ "$cfg" = null ] && null_stop
					printf '%s%s\t%s\t%s\n' "$cfg" "${thp:+-thp}" "$r" "$line" >>"$PYPF_RESULTS"
					continue
				fi
				DAEMON_BIN=$BIN
				[ "$cfg" = with-before ] && DAEMON_BIN=$PYPF_BEFORE
				DAEMON_ARGS=()
				[ "$cfg" = attached ] || [ "$cfg" = untracked ] && DAEMON_ARGS=("${ATTACHED[@]}")
				if [ "$cfg" = untracked ]; then start_daemon nomatch nopin; else start_daemon default nopin; fi
				DAEMON_ARGS=()
				t0=$(cpu_ns "$DPID")
				w0=$(wakeups "$DPID")
				line=$("$PYPF" "$PYPF_MIB" "$PYPF_MAPS" 0 keep $thp)
				t1=$(cpu_ns "$DPID")
				w1=$(wakeups "$DPID")
				st=$(bpf_stats "$DPID")
				stop_daemon
				DAEMON_BIN=""
				printf '%s%s\t%s\t%s bpf=%s daemon_cpu_ns=%s daemon_wakeups=%s\n' "$cfg" "${thp:+-thp}" "$r" "$line" \
					"${st:-na}" "$((t1 - t0))" "$((w1 - w0))" >>"$PYPF_RESULTS"
			done
			printf '  %s run %d done\n' "${thp:-4k}" "$r"
		done
	done
	$PY - "$PYPF_RESULTS" <<'PYEOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    cfg, rnd, rest = line.rstrip("\n").split("\t", 2)
    kv = dict(x.split("=", 1) for x in rest.split() if "=" in x)
    t = float(kv["ns_per_page"]) * float(kv["faults"]) / 1e9   # touch + munmap of the timed mappings, s
    rows.setdefault(cfg, {})[int(rnd)] = (t, kv)
for suffix, what in (("", "4 KiB pages"), ("-thp", "THP")):
    a = rows.get("without" + suffix, {})
    if not a:
        continue
    print("  %-11s without: min %.3f s, median %.3f s" % (what, min(t for t, _ in a.values()),
                                                        statistics.median(t for t, _ in a.values())))
    for cfg in ("with", "attached", "untracked", "null", "with-before"):
        b = rows.get(cfg + suffix, {})
        if not b:
            continue
        paired = [b[r][0] / a[r][0] for r in a if r in b]
        ev = [int(kv["bpf"].split(",")[1]) for _, kv in b.values() if kv.get("bpf", "na") != "na"]
        cpu = [float(kv["daemon_cpu_ns"]) for _, kv in b.values() if "daemon_cpu_ns" in kv]
        wk = [float(kv["daemon_wakeups"]) for _, kv in b.values() if "daemon_wakeups" in kv]
        print("  %-11s %s/without: %.3fx by the minimum, %.3fx by the paired median (pairs %s); min %.3f s%s" % (
            what, cfg, min(t for t, _ in b.values()) / min(t for t, _ in a.values()), statistics.median(paired),
            " ".join("%.3f" % x for x in paired), min(t for t, _ in b.values()),
            "; %d BPF events per run (median)" % statistics.median(ev) if ev else ""))
        if cpu:
            print("  %-11s %s: the daemon meanwhile %.1f ms of CPU, %d wake-ups per run (medians; run %.2f s)"
                  % (what, cfg, statistics.median(cpu) / 1e6, statistics.median(wk),
                     statistics.median(t for t, _ in b.values())))
PYEOF
fi
