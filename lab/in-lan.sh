#!/usr/bin/env bash
# Run a command on the LAN host (nm-lan, 192.168.77.2).
set -euo pipefail
exec "$(dirname "$0")/in.sh" nm-lan "$@"
