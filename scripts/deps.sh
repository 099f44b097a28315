#!/bin/sh
# Installs the Debian packages oomsentry needs to build, test and run its demo, when any is missing.
# Runs as root on Debian 12 (bookworm); a fresh minimal system has neither a compiler nor make.
set -eu
PKGS="make gcc libc6-dev clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
 libsystemd-dev libcurl4-openssl-dev libjson-c-dev libinih-dev libmicrohttpd-dev systemtap-sdt-dev
 libcmocka-dev libclang-rt-14-dev python3 python3-pytest systemd earlyoom util-linux procps iproute2 ca-certificates git"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "oomsentry: missing packages:$missing; run as root (or: sudo apt-get install$missing)" >&2
	exit 2
fi
echo "oomsentry: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# earlyoom's package starts a service where systemd runs; we only use its binary side by side in a benchmark
apt-get install -y -q --no-install-recommends $missing
