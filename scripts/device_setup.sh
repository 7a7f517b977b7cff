# Sourced by the scripts that run on the GPU machine (benchmarks/device_check.sh, scripts/device_study.sh, parallel_runs.sh
# with PARALLEL_RUNS_DEVICE=1): defines `device_setup`, which installs the carried bundle's wheels into
# $SITE and unpacks its Java runtime into $JRE (that machine reaches no package registry; see
# device_bundle.sh), and exports the paths and offline switches everything after it needs.
# Needs BUNDLE, PY, SITE and JRE set by the caller.

device_setup() {  # wheels, Java, and a look at what the machine has
    ls "$BUNDLE"/*.whl "$BUNDLE/jre.tgz" || { echo "no $BUNDLE here: run scripts/device_bundle.sh and carry it"; return 1; }
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$BUNDLE"/*.whl || return 1
    rm -rf "$JRE" && mkdir -p "$JRE" && tar -xzf "$BUNDLE/jre.tgz" -C "$JRE" --strip-components=1 || return 1
    echo "java: $(command -v java)"; java -version 2>&1 | head -1
    nvidia-smi -L 2>/dev/null || echo "nvidia-smi: none"
    "$PY" -c "import torch, transformers, peft, accelerate, scienceworld, py4j, rank_bm25, gguf, empo2_lite.trainer; \
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, \
'peft', peft.__version__, 'accelerate', accelerate.__version__)"
}

export PYTHONPATH="$SITE:$PWD" JAVA_HOME="$JRE" PATH="$JRE/bin:$PATH"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
