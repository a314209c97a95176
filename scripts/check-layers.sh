#!/usr/bin/env bash
# Fails when a package imports against the data flow of docs/architecture.md:
# the domain depends on nothing of Switchboard's but itself, storage and the
# wire format on the domain only, the actors never on the gateway.
set -euo pipefail
M=github.com/switchboard-dev/switchboard
status=0
forbid() { # forbid <packages> <regexp of imports they may not reach>
  local bad
  bad=$(go list -deps "$1" | grep -E "^$M/($2)(/|$)" || true)
  if [ -n "$bad" ]; then
    echo "layering: $1 must not import:"; echo "$bad" | sed 's/^/  /'
    status=1
  fi
}
forbid ./domain/... 'actors|gateway|persistence|server|consumers|cluster|wire|search'
forbid ./wire/... 'actors|gateway|persistence|server|consumers|cluster|search'
forbid ./persistence/... 'actors|gateway|server|consumers|cluster|wire|search'
forbid ./actors/... 'gateway|server'
forbid ./consumers/... 'actors|gateway|server'
exit $status
