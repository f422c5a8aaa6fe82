#!/usr/bin/env bash
# Tear the natmapper lab down: stop miniupnpd (both gateways) and every
# process still inside the lab namespaces (nm-gw2 included), delete the
# namespaces (their veths/bridge go with them) and the runtime dir.
# Idempotent: no error if nothing exists.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
lab_require_root
lab_lock
lab_teardown
