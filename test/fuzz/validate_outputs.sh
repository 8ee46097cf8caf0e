#!/usr/bin/env bash
# test/fuzz/validate_outputs.sh BUILD DIR...
#
# The fuzz target checks that what the translator emits unpacks; this checks
# it by Envoy's own rules. Every input file under DIR... (fuzz_translator's
# corpus and seeds: mutated, valid-shaped configuration) is translated by
# BUILD's sluice-translate, and every emitted resource goes through
# xdsvalidate (go-control-plane's ValidateAll, test/conformance/xdsvalidate).
# An input whose output violates a rule is copied to BUILD/invalid-output-*
# and named; exit status 1 when there is one. A crash of sluice-translate
# (an ASan build under `make fuzz`) counts too.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: validate_outputs.sh BUILD DIR...}
shift
tool=$build/test/tools/sluice-translate
validate=$build/xdsvalidate
[ -x "$tool" ] || { echo "validate_outputs: no $tool" >&2; exit 1; }
(cd "$root" && go build -o "$validate" ./test/conformance/xdsvalidate) || {
    echo "validate_outputs: cannot build xdsvalidate" >&2; exit 1; }

n=0 bad=0 out=$(mktemp)
trap 'rm -f "$out"' EXIT
for dir in "$@"; do
    [ -d "$dir" ] || continue
    for f in "$dir"/*; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        "$tool" --any "$f" >"$out" 2>/dev/null
        st=$?
        if [ "$st" -gt 1 ]; then
            echo "validate_outputs: sluice-translate exited $st on $f" >&2
        elif "$validate" <"$out" >/dev/null 2>&1; then
            continue
        else
            echo "validate_outputs: $f: emitted resources violate Envoy's rules:" >&2
            "$validate" <"$out" 2>&1 | head -5 >&2
        fi
        bad=$((bad + 1))
        cp "$f" "$build/invalid-output-$(basename "$f")"
    done
done
echo "validate_outputs: $n inputs translated, $bad with output Envoy would reject or a crash"
[ "$n" -gt 0 ] || { echo "validate_outputs: no inputs" >&2; exit 1; }
[ "$bad" -eq 0 ]
