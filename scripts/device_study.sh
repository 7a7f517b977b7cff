#!/usr/bin/env bash
# A study (docs/gpu-study.md) on the GPU machine, in the call after the two that carried the device
# bundle (.device-bundle, scripts/device_bundle.sh) and the first part of the embedded model's GGUF
# (`python -m empo2_lite.study.parts split`); this call carries the second part. Installs the bundle
# (device_setup.sh), joins the GGUF into the kit's cache (each part and the whole checked), then
# runs `python -m empo2_lite study` with the arguments given (default plan: gpu). The study's clock
# starts here, so the setup counts against --budget. Back in $OUT: <plan name>.tgz (every run
# folder without checkpoints, the logs, study.json, the figures). `--setup-only` (the first call):
# the setup and its check alone, so that a broken bundle shows before the model is carried.
#
# Why here and not in benchmarks/: this sets a machine up and runs the study on it; benchmarks/
# holds measurements only (device_check.sh, which measures the presets, sources device_setup.sh too).
set -u
cd "$(dirname "$0")/.."
began=$(date +%s)
BUNDLE=.device-bundle PY="${PY:-python3}" SITE=/tmp/site JRE=/tmp/jre  # PY: another interpreter for a CPU dry run
# shellcheck source=scripts/device_setup.sh
source scripts/device_setup.sh
export EMPO2_CACHE=/tmp/empo2-cache
WORK=$(mktemp -d /tmp/gpu-study.XXXXXX)
device_setup > "$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log"; echo "device_study: setup failed"; exit 1; }
tail -3 "$WORK/setup.log"
[ "${1:-}" = --setup-only ] && exit 0
shopt -s nullglob
"$PY" -m empo2_lite.study.parts join .gguf-part-* || exit 2
exec "$PY" -m empo2_lite study --started-at "$began" --work "$WORK" --out "${OUT:-gpu-study-out}" "$@"
