# empo2-lite: `make demo` runs the main job, `make test` runs the test suite, `make test-notebooks`
# executes every notebook in smoke mode. All set up .venv first (Python >= 3.11, the pinned CPU
# stack, Java >= 11).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PIP_FLAGS ?= --disable-pip-version-check --progress-bar off

.PHONY: setup java test test-notebooks strip-notebooks demo demo-learn study lab clean

setup: java $(STAMP)

# Reinstall only when a requirements or project file changed.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "empo2-lite needs Python >= 3.11, found " + sys.version.split()[0] + " (set PYTHON=python3.11)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -q --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -q -c constraints.txt -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install $(PIP_FLAGS) -q --no-deps -e .
	@# The embedded SmolLM2 as safetensors (~20 s, once per cache dir): the first use would build it anyway.
	$(PY) -c 'from empo2_lite.policy.default_model import ensure_default_model; ensure_default_model()'
	@touch $(STAMP)
	@echo "setup: .venv ready"

# ScienceWorld runs on the JVM. Install Java when it is missing and we are root on Debian/Ubuntu;
# otherwise say how to install it.
java:
	@major=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1); \
	if [ -n "$$major" ] && [ "$$major" -ge 11 ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "setup: installing Java (default-jre-headless)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; \
	else \
		echo "ScienceWorld needs Java >= 11 (found: $${major:-none})."; \
		echo "Install it, e.g. 'sudo apt-get install default-jre-headless' or 'brew install openjdk@17', then re-run make."; \
		exit 1; \
	fi

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Every notebook top to bottom with EMPO2_SMOKE=1 (the cpu-smoke preset), in a scratch runs folder
# so that nothing is skipped as already trained.
test-notebooks: setup
	@runs=$$(mktemp -d); \
	EMPO2_SMOKE=1 EMPO2_RUNS=$$runs $(PY) -m pytest -p no:cacheprovider --nbmake --timeout 900 notebooks; \
	status=$$?; rm -rf $$runs; exit $$status

# Notebooks are committed without outputs.
# Outputs cleared and the kernel's own metadata set, so JupyterLab does not mark them modified on open.
strip-notebooks: setup
	$(PY) -m empo2_lite.lab.notebook_files notebooks/*.ipynb

demo: setup
	$(PY) -m empo2_lite demo

demo-learn: setup
	$(PY) -m empo2_lite demo --learn

# A study from a plan (`python -m empo2_lite study`): `make study PLAN=cpu WORK=runs/cpu-study`,
# `make study PLAN=gpu STUDY_ARGS=--estimate`; run again with the same WORK, it continues.
PLAN ?= gpu
study: setup
	$(PY) -m empo2_lite study --plan $(PLAN) $(if $(WORK),--work $(WORK)) $(STUDY_ARGS)

lab: setup
	$(VENV)/bin/jupyter lab notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

clean:
	rm -rf $(VENV) .pytest_cache
