#!/usr/bin/env bash
# Installs the Debian packages the tests use, when missing.
set -euo pipefail
pkgs=(redis-server redis-tools python3-redis ruby-redis node-redis tmux)
# The compose test (deploy/) runs where a Docker engine is installed; it
# drives it with docker-compose v1.
if command -v docker >/dev/null 2>&1; then
	pkgs+=(docker-compose)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
