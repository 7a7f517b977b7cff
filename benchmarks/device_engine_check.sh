#!/usr/bin/env bash
# The decoding engine's GPU measurement (issue "decode step as a CUDA graph"), one command on the GPU
# machine from the repo root, carrying .device-bundle (scripts/device_bundle.sh): the setup of
# benchmarks/device_check.sh, then
#   1. benchmarks/decode_speed.py on the 3B shape with random weights (bf16, LoRA r=32): every engine's
#      ms per decode step for 32 episodes at a 2,000-token context, the copy bandwidth and the bound,
#      all in the same run (the first, warm-up round of "slots graphs" pays compilation and capture);
#   2. benchmarks/preset_check.py for gpu-24gb (22 GB cap) and gpu-48gb (44 GB cap) with the static,
#      graph-captured steps on, 30-step episodes, 2 iterations: the second iteration's time is the
#      target (compilation happens in the first; inductor caches it on disk for the second process).
# The presets run through benchmarks/device_check.sh. Each part runs under its own time limit (SIGINT
# first, so its JSON is still printed); everything lands in $OUT (default ./engine-check-out). Budget: 60 + 100 + 110 s of limits plus ~40 s of setup,
# under 5 minutes, so a rerun still fits the session's 15 minutes of device time.
#
# CPU rehearsal: ENGINE_CHECK_DECODE_ARGS="--model tiny --batch 4 --context 256 --repeats 1"
# ENGINE_CHECK_PRESETS="cpu-smoke:0:150" ENGINE_CHECK_MODEL_ARGS="--model random:tests/data/tiny_qwen2_config.json"
# PRESET_CHECK_PYTHON=.venv/bin/python PRESET_CHECK_SETUP=skip bash benchmarks/device_engine_check.sh
set -u
cd "$(dirname "$0")/.."

OUT_DIR="${OUT:-./engine-check-out}"
DECODE_ARGS="${ENGINE_CHECK_DECODE_ARGS:---model random:qwen2.5-3b-instruct --dtype bfloat16 --batch 32 --context 2000 --lora-rank 32 --steps 32}"
PRESETS="${ENGINE_CHECK_PRESETS:-gpu-24gb:22:100 gpu-48gb:44:110}"
MODEL_ARGS="${ENGINE_CHECK_MODEL_ARGS---random-weights}"
PY="${PRESET_CHECK_PYTHON:-python3}"
BUNDLE=.device-bundle
SITE="${PRESET_CHECK_SITE:-/tmp/site}"
JRE="${PRESET_CHECK_JRE:-/tmp/jre}"
mkdir -p "$OUT_DIR"

began=$SECONDS
if [ "${PRESET_CHECK_SETUP:-run}" != skip ]; then
    # shellcheck source=scripts/device_setup.sh
    source scripts/device_setup.sh
    device_setup >"$OUT_DIR/setup.log" 2>&1 || { echo "engine check: setup failed (see $OUT_DIR/setup.log)"; exit 1; }
fi

echo "=== decode_speed ($((SECONDS - began)) s so far)"
# shellcheck disable=SC2086  # DECODE_ARGS is a list of words on purpose
timeout -s INT -k 20 60 "$PY" benchmarks/decode_speed.py $DECODE_ARGS >"$OUT_DIR/decode_speed.json" 2>"$OUT_DIR/decode_speed.log"
echo "=== decode_speed: exit $?"
cat "$OUT_DIR/decode_speed.json"

# The presets through device_check.sh (its loop, limits and summary), the bundle already installed.
OUT="$OUT_DIR" PRESET_CHECK_SETUP=skip PRESET_CHECK_PRESETS="$PRESETS" PRESET_CHECK_MODEL_ARGS="$MODEL_ARGS" \
    PRESET_CHECK_MAX_STEPS=30 PRESET_CHECK_ITERATIONS=2 PRESET_CHECK_EXTRA_ARGS="--set rollout.cuda_graphs=true" \
    bash benchmarks/device_check.sh
status=$?
echo "=== done in $((SECONDS - began)) s"
exit $status
