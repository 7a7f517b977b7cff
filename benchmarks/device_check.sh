#!/usr/bin/env bash
# The offline GPU check, run on the GPU machine from the repo root (after scripts/device_bundle.sh
# here, carrying .device-bundle): installs the bundled wheels into /tmp/site, unpacks the bundled
# Java runtime, then times one shortened iteration (+ a short evaluation) of each GPU preset with a
# same-shape random-weight model under the memory cap of the card size it is meant for. Each preset
# runs in its own process under its own time limit (SIGINT first: the script still prints its JSON),
# so an OOM or a hang in one does not lose the other. JSON and logs land in $OUT
# (default ./preset-check-out).
#
# Variables (defaults = the real GPU check; the CPU rehearsal overrides them, see docs/hardware.md):
#   PRESET_CHECK_PRESETS     "preset:cap_gb:limit_s ..." (cap 0 = no cap)   gpu-24gb:22:170 gpu-48gb:44:230
#   PRESET_CHECK_MODEL_ARGS  how the model is chosen                         --random-weights
#   PRESET_CHECK_MAX_STEPS   episode step cap                                8
#   PRESET_CHECK_ITERATIONS  trainer iterations timed per preset             1
#   PRESET_CHECK_EXTRA_ARGS  more preset_check.py arguments (e.g. --set ...)  (none)
#   PRESET_CHECK_SETUP       "skip": the bundle is installed already (the environment is still set)
#   PRESET_CHECK_PYTHON      interpreter                                     python3
#   PRESET_CHECK_SITE        where the wheels are installed                  /tmp/site
#   PRESET_CHECK_JRE         where the Java runtime is unpacked              /tmp/jre
set -u
cd "$(dirname "$0")/.."

OUT_DIR="${OUT:-./preset-check-out}"
BUNDLE=.device-bundle
PRESETS="${PRESET_CHECK_PRESETS:-gpu-24gb:22:170 gpu-48gb:44:230}"
MODEL_ARGS="${PRESET_CHECK_MODEL_ARGS:---random-weights}"
MAX_STEPS="${PRESET_CHECK_MAX_STEPS:-8}"
ITERATIONS="${PRESET_CHECK_ITERATIONS:-1}"
EXTRA_ARGS="${PRESET_CHECK_EXTRA_ARGS:-}"
PY="${PRESET_CHECK_PYTHON:-python3}"
SITE="${PRESET_CHECK_SITE:-/tmp/site}"
JRE="${PRESET_CHECK_JRE:-/tmp/jre}"
mkdir -p "$OUT_DIR"
SETUP_LOG="$OUT_DIR/setup.log"

# shellcheck source=scripts/device_setup.sh
source scripts/device_setup.sh

began=$SECONDS
if [ "${PRESET_CHECK_SETUP:-run}" != skip ]; then
    device_setup 2>&1 | tee "$SETUP_LOG"
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
        echo "device_check: setup failed (see $SETUP_LOG)"
        exit 1
    fi
fi

status=0
for entry in $PRESETS; do
    IFS=: read -r name cap limit <<<"$entry"
    cap_args=()
    [ "$cap" != 0 ] && cap_args=(--memory-cap-gb "$cap")
    echo "=== $name (cap ${cap} GB, limit ${limit} s, $((SECONDS - began)) s so far)"
    # shellcheck disable=SC2086  # MODEL_ARGS is a list of words on purpose
    timeout -s INT -k 30 "$limit" "$PY" benchmarks/preset_check.py --preset "$name" $MODEL_ARGS ${cap_args[@]+"${cap_args[@]}"} \
        --max-steps "$MAX_STEPS" --iterations "$ITERATIONS" $EXTRA_ARGS --out "$OUT_DIR/preset-$name.json" 2>&1 \
        | tee "$OUT_DIR/preset-$name.log"
    code=${PIPESTATUS[0]}
    echo "=== $name: exit $code"
    [ "$code" -ne 0 ] && status=1
done

echo "=== summary ($((SECONDS - began)) s)"
for file in "$OUT_DIR"/preset-*.json; do
    [ -e "$file" ] || continue
    "$PY" -c "import json, sys; r = json.load(open(sys.argv[1])); print(r['preset'], r['device'].get('name'), \
'fits', r['fits'], r['oom_phase'] or '', 'per-iteration', r['seconds_per_iteration'], 'peak GB', r['gpu_memory'], \
'projection h', (r['projection'] or {}).get('hours'), 'error', r['error'])" "$file"
done
exit $status
