#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# oomsentry's benchmarks (what `make bench` runs): the page-fault overhead of the eBPF probes (4 KiB pages and THP,
# in-kernel run time, the statistics' own cost), reaction latency and idle cost beside earlyoom, the no watchdog /
# earlyoom / oomsentry comparison, then the prevention matrix (bench/matrix.py). Each prints ratios or counts
# measured in this same run; nothing is compared against a stored figure. Needs root (BPF, memory cgroups).
# About 8 to 12 minutes on 2 CPUs, plus the matrix (up to ~15 minutes per run of it).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: needs root (BPF programs, memory cgroups); try: sudo make bench" >&2
	exit 2
fi
if [ ! -x ./oomsentry ]; then
	make || exit 2
fi

echo "oomsentry $(git describe --always --dirty 2>/dev/null || echo '?') benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')," \
	"$(uname -r), $(nproc) CPUs, $(awk '/MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo
rc=0
start=$(date +%s)
bench/overhead.sh || rc=1
echo
/usr/bin/python3 bench/reaction.py || rc=1
echo
/usr/bin/python3 bench/idle.py || rc=1
echo
/usr/bin/python3 bench/compare_earlyoom.py || rc=1
echo
# MATRIX_ARGS: e.g. "--runs 3" (the issue's bar), "--only releasable-250,short-gens-0.2s"
# shellcheck disable=SC2086
/usr/bin/python3 bench/matrix.py ${MATRIX_ARGS:-} || rc=1
echo
echo "bench/run.sh: done in $(($(date +%s) - start)) s"
exit $rc
