#!/usr/bin/env bash
# Build .device-bundle/ for the offline GPU check (benchmarks/device_check.sh) and a study on the GPU
# (scripts/device_study.sh): the wheels the GPU machine's image lacks, for Python 3.12 on x86-64
# Linux (gguf: the embedded model is rebuilt there from its GGUF), and a minimal Java runtime made
# with jlink (ScienceWorld runs in a JVM; the image has no Java). Why a bundle: that machine reaches
# no package registry. Everything else the trainer imports (torch, transformers, peft, accelerate,
# numpy, pandas, tqdm, matplotlib, safetensors, tensorboard, psutil, pyyaml, jinja2) is in the
# image's package list (.library/device/KINDS.md of the workplace; checked by importing
# empo2_lite.trainer in a venv holding only those). Run from anywhere; needs pip and jlink (a JDK).
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=.device-bundle
PYTHON="${PYTHON:-.venv/bin/python}"
PACKAGES=(scienceworld py4j rank-bm25 gguf)
LIMIT_MIB=64  # what travels to the device machine: the working tree plus carried paths

pinned() {  # the tested version of a package, from constraints.txt
    local line
    line=$(grep -i "^$1==" constraints.txt) || { echo "device_bundle: $1 is not pinned in constraints.txt" >&2; exit 1; }
    echo "$line"
}

command -v jlink >/dev/null || { echo "device_bundle: jlink not found; install a JDK (apt-get install openjdk-17-jdk-headless)" >&2; exit 1; }
rm -rf "$BUNDLE"
mkdir -p "$BUNDLE" .git/info
grep -qxF "/$BUNDLE/" .git/info/exclude 2>/dev/null || echo "/$BUNDLE/" >> .git/info/exclude

requirements=()
for package in "${PACKAGES[@]}"; do requirements+=("$(pinned "$package")"); done
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$BUNDLE" "${requirements[@]}"

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
jlink --add-modules java.base,java.logging,java.management --strip-debug --no-man-pages --no-header-files \
    --compress=2 --output "$staging/jre"
tar -C "$staging" -czf "$BUNDLE/jre.tgz" jre

bundle_bytes=$(du -cb "$BUNDLE"/* | tail -1 | cut -f1)
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | awk '$2 == "total" {s += $1} END {print s + 0}')
total_mib=$(( (bundle_bytes + tree_bytes) / 1048576 ))
ls -l "$BUNDLE"
echo "device_bundle: bundle $(( bundle_bytes / 1048576 )) MiB + working tree $(( tree_bytes / 1048576 )) MiB = ${total_mib} MiB (limit ${LIMIT_MIB} MiB)"
if (( total_mib >= LIMIT_MIB )); then
    echo "device_bundle: too large to travel to the device machine" >&2
    exit 1
fi
