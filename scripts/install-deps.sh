#!/usr/bin/env bash
# Installs what tripcap needs on a fresh Debian machine, then builds it. Run as root.
#   bash scripts/install-deps.sh          # to run tripcap: tcpdump, openssl, npm packages, build
#   bash scripts/install-deps.sh --test   # to run the tests too: + tshark/capinfos, ping, iproute2, chromium
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(tcpdump openssl ca-certificates)
if [ "${1:-}" = "--test" ]; then
  packages+=(tshark iputils-ping iproute2 procps chromium)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "install-deps: run as root to install ${missing[*]}" >&2; exit 1; }
  echo "install-deps: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<19)) { console.error("install-deps: tripcap needs Node.js >= 20.19, this is "+process.version); process.exit(1) }'
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
echo "install-deps: ready"
