#!/bin/sh
# Installs the Debian packages oomsentry needs to build, test and run its demo, when any is missing.
# Runs as root on Debian 12 (bookworm); a fresh minimal system has neither a compiler nor make.
#   prometheus  only for promtool (checks deploy/prometheus and the live /metrics text); its server never starts
#   linux-perf  perf probe/record on the USDT probes (scripts/incident-drill.py)
#   nodejs npm  the Kubernetes schema validator (tests/deploy/k8s, kubernetes-models from the npm registry)
#   qemu-system-x86 debootstrap e2fsprogs  `make vmtest`: Debian's own kernels booted under qemu (tests/vm)
# `scripts/deps.sh bench` adds what only `make bench` needs: python3-torch, so that the prevention matrix holds one
# shape's memory in real tensors (~170 packages; kept off the test path on purpose).
set -eu
PKGS="make gcc libc6-dev clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
 libsystemd-dev libcurl4-openssl-dev libjson-c-dev libinih-dev libmicrohttpd-dev libwebsockets-dev systemtap-sdt-dev
 libcmocka-dev libclang-rt-14-dev python3 python3-pytest python3-pytest-timeout systemd earlyoom util-linux procps iproute2 ca-certificates git
 prometheus linux-perf nodejs qemu-system-x86 debootstrap e2fsprogs dbus-daemon"
if [ "${1:-}" = bench ]; then
	PKGS="$PKGS python3-torch"
fi
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# A nodejs from elsewhere (NodeSource) ships its own npm and conflicts with Debian's npm package: ask only for the command.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "oomsentry: missing packages:$missing; run as root (or: sudo apt-get install$missing)" >&2
	exit 2
fi
echo "oomsentry: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Without systemd as PID 1, invoke-rc.d would start the init.d scripts of prometheus and earlyoom: a Prometheus
# server scraping and writing a TSDB, and an earlyoom killing beside the tests. A policy-rc.d saying 101
# ("action forbidden") keeps every service the packages bring stopped; one already there is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# oomsentry scripts/deps.sh: no service starts while packages install\nexit 101\n' > "$policy"
	chmod 0755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
# promtool is all we want from prometheus: keep its server from starting at the next boot too.
case " $missing " in *" prometheus "*)
	systemctl disable prometheus.service >/dev/null 2>&1 || update-rc.d prometheus disable >/dev/null 2>&1 || true ;;
esac
