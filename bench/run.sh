#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# oomsentry's benchmarks (what `make bench` runs): the page-fault overhead of the eBPF probes, then the
# no watchdog / earlyoom / oomsentry comparison. Both print ratios or counts measured in this same run; nothing is
# compared against a stored figure. Needs root (BPF, memory cgroups). About 2 to 4 minutes on 2 CPUs.
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
/usr/bin/python3 bench/compare_earlyoom.py || rc=1
echo
echo "bench/run.sh: done in $(($(date +%s) - start)) s"
exit $rc
