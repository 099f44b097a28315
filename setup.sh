#!/bin/sh
# First step on a fresh Debian 12: make itself may be missing. Installs it, then hands over to make:
#   ./setup.sh demo    the prevention demo on the built-in ComfyUI simulator
#   ./setup.sh test    every test (unit under ASan/UBSan, fuzz, integration on the real kernel)
set -eu
cd "$(dirname "$0")"
if ! command -v make >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then
		echo "oomsentry: 'make' is missing; run this as root so that it can be installed" >&2
		exit 2
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends make
fi
exec make "${@:-demo}"
