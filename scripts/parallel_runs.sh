#!/usr/bin/env bash
# Run several kit jobs at once, each pinned to its own cores, as if each had a small machine of its
# own (the GPU machine's 16 cores = eight 2-core laptops; used to screen cpu-learn settings, see
# docs/results-cpu.md). CPU only: CUDA is hidden and torch gets as many threads as the job has cores.
#
# Usage: bash scripts/parallel_runs.sh JOBS_FILE
#   JOBS_FILE: one job per line, "name: shell command" (blank lines and # comments skipped); each
#   command runs in the repo root with EMPO2_RUNS set, e.g.
#     grpo-lr3e-4: timeout -s INT 420 python3 -m empo2_lite train --preset cpu-learn --name grpo-lr3e-4 ...
# Variables:
#   PARALLEL_RUNS_CORES   cores per job                                         2
#   PARALLEL_RUNS_LIMIT   seconds before a job is interrupted (SIGINT)          540
#   PARALLEL_RUNS_DEVICE  1: install the carried bundle first (device_setup.sh)  0
#   PY                    interpreter                                           python3
#   OUT                   where results.tgz goes (runs without checkpoints, logs) ./parallel-runs-out
set -u
cd "$(dirname "$0")/.."

JOBS_FILE="${1:?usage: parallel_runs.sh JOBS_FILE}"
CORES="${PARALLEL_RUNS_CORES:-2}"
LIMIT="${PARALLEL_RUNS_LIMIT:-540}"
PY="${PY:-python3}"
OUT_DIR="${OUT:-./parallel-runs-out}"
WORK="$(mktemp -d)"
export EMPO2_RUNS="$WORK/runs"
mkdir -p "$OUT_DIR" "$WORK/logs" "$EMPO2_RUNS"

if [ "${PARALLEL_RUNS_DEVICE:-0}" = 1 ]; then
    BUNDLE=.device-bundle SITE=/tmp/site JRE=/tmp/jre
    # shellcheck source=scripts/device_setup.sh
    source scripts/device_setup.sh
    device_setup > "$WORK/logs/setup.log" 2>&1 || { cat "$WORK/logs/setup.log"; exit 1; }
fi
# Build the embedded model once (from the GGUF in EMPO2_CACHE) before the jobs race to build it.
"$PY" -c "from empo2_lite.policy.default_model import ensure_default_model; ensure_default_model()" \
    > "$WORK/logs/model.log" 2>&1 || { cat "$WORK/logs/model.log"; exit 1; }
total=$(getconf _NPROCESSORS_ONLN)  # before OMP_NUM_THREADS is set: nproc would report that instead
export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS="$CORES" MKL_NUM_THREADS="$CORES" PYTHONUNBUFFERED=1
export PY

slot=0
pids=()
names=()
began=$SECONDS
while IFS= read -r line; do
    [[ -z "${line// }" || "$line" == \#* ]] && continue
    name="${line%%:*}"
    command="${line#*:}"
    first=$(( (slot * CORES) % total ))
    cores=$(seq -s, "$first" $((first + CORES - 1)))
    echo "[$name] cores $cores:$command"
    taskset -c "$cores" timeout -s INT -k 60 "$LIMIT" bash -c "$command" > "$WORK/logs/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
    slot=$((slot + 1))
done < "$JOBS_FILE"

status=0
for index in "${!pids[@]}"; do
    wait "${pids[$index]}"
    code=$?
    echo "[${names[$index]}] exit $code after $((SECONDS - began)) s"
    [ "$code" -ne 0 ] && status=1
done

tar -czf "$OUT_DIR/results.tgz" -C "$WORK" --exclude=checkpoints --exclude=tensorboard runs logs
echo "results: $OUT_DIR/results.tgz ($(du -h "$OUT_DIR/results.tgz" | cut -f1))"
rm -rf "$WORK"
exit $status
