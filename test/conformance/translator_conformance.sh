#!/bin/sh
# Runs the translator over every scenario under DIR (each *.yaml file, and
# each directory of YAML files) and checks every emitted resource with
# xdsvalidate (go-control-plane's ValidateAll on Envoy's own rules).
#   translator_conformance.sh <sluice-translate> <xdsvalidate> <DIR>
set -u
tool=$1 validate=$2 dir=$3
fail=0 n=0
for f in "$dir"/*.yaml "$dir"/*/input.yaml; do
  [ -e "$f" ] || continue
  n=$((n + 1))
  if ! "$tool" --any "$f" 2>/dev/null | "$validate"; then
    echo "FAIL: $f: emitted resources violate Envoy's validation rules" >&2
    fail=1
  fi
done
echo "checked $n scenarios"
[ "$n" -gt 0 ] || { echo "no scenarios under $dir" >&2; exit 1; }
exit $fail
