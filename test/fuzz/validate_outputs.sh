#!/usr/bin/env bash
# test/fuzz/validate_outputs.sh BUILD DIR... [--seeds DIR...]
#
# The fuzz target checks that what the translator emits unpacks; this checks
# it by Envoy's own rules. Every input file under DIR... (fuzz_translator's
# corpus and seeds: mutated, valid-shaped configuration) is translated by
# BUILD's sluice-translate, and every emitted resource goes through
# xdsvalidate (go-control-plane's ValidateAll, test/conformance/xdsvalidate).
# An input whose output violates a rule is copied to BUILD/invalid-output-*
# and named; exit status 1 when there is one. A crash of sluice-translate
# (an ASan build under `make fuzz`) counts too. A mutated input may
# translate to nothing, but every input of a DIR after --seeds (valid
# configuration) must yield at least one resource, and all inputs together
# must yield some: a translator that writes nothing fails.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: validate_outputs.sh BUILD DIR...}
shift
tool=$build/test/tools/sluice-translate
validate=$build/xdsvalidate
[ -x "$tool" ] || { echo "validate_outputs: no $tool" >&2; exit 1; }
(cd "$root" && go build -o "$validate" ./test/conformance/xdsvalidate) || {
    echo "validate_outputs: cannot build xdsvalidate" >&2; exit 1; }

# A sanitizer finding in sluice-translate (an ASan+UBSan build) must not
# look like a decode error (exit 1): every report aborts (SIGABRT, status
# 134), leaks included, and its text on stderr counts as a crash too.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=1:exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1:abort_on_error=1"

n=0 bad=0 total=0 min=0 out=$(mktemp) err=$(mktemp) log=$(mktemp)
trap 'rm -f "$out" "$err" "$log"' EXIT
for dir in "$@"; do
    [ "$dir" = --seeds ] && { min=1; continue; }
    [ -d "$dir" ] || continue
    for f in "$dir"/*; do
        [ -f "$f" ] || continue
        n=$((n + 1))
        "$tool" --any "$f" >"$out" 2>"$log"
        st=$?
        if [ "$st" -gt 1 ] || grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$log"; then
            echo "validate_outputs: sluice-translate exited $st on $f:" >&2
            grep -E -A12 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$log" | head -20 >&2
        elif "$validate" -min "$min" <"$out" >"$err" 2>&1; then
            total=$((total + $(sed -n 's/^xdsvalidate: \([0-9]*\) resources.*/\1/p' "$err")))
            continue
        else
            echo "validate_outputs: $f: emitted resources violate Envoy's rules (or none from a seed):" >&2
            head -5 "$err" >&2
        fi
        bad=$((bad + 1))
        cp "$f" "$build/invalid-output-$(basename "$f")"
    done
done
echo "validate_outputs: $n inputs translated to $total resources, $bad with output Envoy would reject or a crash"
[ "$n" -gt 0 ] || { echo "validate_outputs: no inputs" >&2; exit 1; }
[ "$total" -gt 0 ] || { echo "validate_outputs: no input yielded a resource" >&2; exit 1; }
[ "$bad" -eq 0 ]
