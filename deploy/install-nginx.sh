#!/bin/sh
# Debian's nginx, for `make cluster` and its tests, without starting the
# distribution's own server on port 80 (policy-rc.d refuses service starts
# while the package installs).
set -eu
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    exit 0
fi
run() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | run tee "$policy" >/dev/null
    run chmod +x "$policy"
    made_policy=1
fi
cleanup() { if [ -n "$made_policy" ]; then run rm -f "$policy"; fi; }
trap cleanup EXIT
run apt-get update -qq
DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq --no-install-recommends nginx >/dev/null
echo "installed $(/usr/sbin/nginx -v 2>&1)"
