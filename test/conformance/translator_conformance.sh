#!/usr/bin/env bash
# Runs the translator over every scenario under DIR (each directory with an
# input.yaml and its golden expected.yaml, and each loose *.yaml file) and
# checks every emitted resource with xdsvalidate (go-control-plane's
# ValidateAll on Envoy's own rules). The translator must exit 0 and emit as
# many resources as the golden output lists ("# proxy" headers), at least
# one for a loose file: a translator that crashes halfway or writes nothing
# fails here.
#   translator_conformance.sh <sluice-translate> <xdsvalidate> <DIR>
set -uo pipefail
tool=$1 validate=$2 dir=$3
fail=0 n=0 out=$(mktemp)
trap 'rm -f "$out"' EXIT
for f in "$dir"/*.yaml "$dir"/*/input.yaml; do
  [ -e "$f" ] || continue
  n=$((n + 1))
  want=(-min 1)
  golden=$(dirname "$f")/expected.yaml
  if [ "$(basename "$f")" = input.yaml ] && [ -f "$golden" ]; then
    want=(-want "$(grep -c '^# proxy ' "$golden")")
  fi
  "$tool" --any "$f" >"$out" 2>/dev/null
  st=$?
  if [ "$st" -ne 0 ]; then
    echo "FAIL: $f: $tool exited $st" >&2
    fail=1
  elif ! "$validate" "${want[@]}" <"$out"; then
    echo "FAIL: $f: emitted resources violate Envoy's validation rules (or not ${want[*]})" >&2
    fail=1
  fi
done
echo "checked $n scenarios"
[ "$n" -gt 0 ] || { echo "no scenarios under $dir" >&2; exit 1; }
exit $fail
