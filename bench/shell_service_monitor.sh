#!/bin/sh
# The shell equivalent of `ocf:hakit:service monitor` at depth 0, for `make bench`:
# read the state file, check that the PID is alive. No ocf-shellfuncs, no logging.
state="${HAKIT_RUN_DIR:-/run/hakit}/service/${OCF_RESOURCE_INSTANCE}.state"
[ -r "$state" ] || exit 7
pid=$(sed -n 's/^pid=//p' "$state")
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || exit 7
exit 0
