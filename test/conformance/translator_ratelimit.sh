#!/usr/bin/env bash
# Loads every RateLimitConfig the golden translations (test/data/translator)
# emit with envoyproxy/ratelimit's own configuration loader
# (test/tools/ratelimit/rlconfcheck): what the rate-limit server would
# refuse (and NACK) fails here. Each scenario must emit as many
# RateLimitConfigs as its golden output lists.
#   translator_ratelimit.sh <sluice-translate> <rlconfcheck> <DIR>
set -uo pipefail
tool=$1 check=$2 dir=$3
fail=0 n=0 out=$(mktemp)
trap 'rm -f "$out"' EXIT
for f in "$dir"/*/input.yaml; do
  golden=$(dirname "$f")/expected.yaml
  [ -f "$golden" ] || continue
  want=$(grep -c '^# proxy [^ ]* ratelimit ' "$golden")
  [ "$want" -gt 0 ] || continue
  n=$((n + 1))
  "$tool" --any "$f" >"$out" 2>/dev/null
  st=$?
  if [ "$st" -ne 0 ]; then
    echo "FAIL: $f: $tool exited $st" >&2
    fail=1
  elif ! "$check" -min "$want" <"$out"; then
    echo "FAIL: $f: envoyproxy/ratelimit refuses its RateLimitConfig (or fewer than $want)" >&2
    fail=1
  fi
done
echo "checked $n scenarios with RateLimitConfigs"
[ "$n" -gt 0 ] || { echo "no scenario under $dir emits a RateLimitConfig" >&2; exit 1; }
exit $fail
