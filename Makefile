# Two commands do everything: `make lab` opens the lessons, `make test` runs every test.
# Both create .venv and install the package on first use; later runs skip straight to work.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Jupyter refuses to run as root without this flag; learners are not root, so only add it then.
ROOT_FLAG := $(shell [ "$$(id -u)" = "0" ] && echo --allow-root)
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: lab test test-fast outputs bench docs demo lint clean help vendor screenshots bench-page lock

help:
	@echo "make lab     - open the lessons in JupyterLab (creates .venv on first use)"
	@echo "make test    - run every test: unit, integration, browser, and the notebooks (nbval)"
	@echo "make outputs - re-execute the notebooks offline and save their outputs"
	@echo "make demo    - the relay and its chat page on http://127.0.0.1:4020/ (for class)"
	@echo "make docs    - render the executed lessons to HTML in site/"
	@echo "make bench   - the relay benchmark (writes docs/performance.md)"
	@echo "make lint    - ruff"
	@echo "make lock    - refresh requirements.lock (the versions make installs) after a dependency change"
	@echo "make vendor  - refresh the page's libraries (helpers/static/vendor) from node_modules"
	@echo "make screenshots - pictures of the chat page for docs/page.md"
	@echo "make bench-page  - the page's rendering cost per token (writes docs/page.md)"

# requirements.lock: the exact versions the suite last passed with (pip constraints). `make lab`
# and `make test` install from it, so a fresh clone gets what CI verified; pyproject.toml keeps
# the ranges a library user may install. `make lock` refreshes it (then run `make test`).
LOCK := requirements.lock

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	@touch $(STAMP)

# A new lock: the newest versions pyproject.toml allows, in a scratch virtualenv, frozen.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[test]'
	{ echo "# The versions \`make test\` passed with. Refresh: \`make lock\`, then \`make test\`."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | LC_ALL=C sort -f; } > $(LOCK)
	rm -rf .lock-venv
	@echo "$(LOCK) refreshed; now run make test"

# The page's JavaScript side: one package.json + lock (front-end libraries, test tools).
# node_modules is only needed by the tests (axe-core) and `make vendor`; the page itself uses
# the vendored copies in helpers/static/vendor. Without npm the targets skip, and so do the
# tests that need it (they fail under CI=true).
NPM := $(shell command -v npm 2>/dev/null)
NODE_DEPS := $(if $(NPM),node_modules/.package-lock.json)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci
	@touch $@

vendor: node_modules/.package-lock.json
	$(BIN)/python tools/vendor_static.py

screenshots: $(STAMP)
	LLM_PROVIDER=offline $(BIN)/python tools/page_screenshots.py

bench-page: $(STAMP)
	LLM_PROVIDER=offline $(BIN)/python benchmarks/bench_page_render.py

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(ROOT_FLAG)

# LLM_PROVIDER=offline: the tests and the committed outputs never depend on a developer's .env.
test: $(STAMP) $(NODE_DEPS)
	LLM_PROVIDER=offline $(BIN)/python -m pytest tests notebooks $(NBVAL) --durations=15 $(PYTEST_ARGS)

test-fast: $(STAMP)
	LLM_PROVIDER=offline $(BIN)/python -m pytest tests -m "not browser and not slow" $(PYTEST_ARGS)

NB ?= notebooks/*.ipynb
outputs: $(STAMP)
	LLM_PROVIDER=offline $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=120 $(NB)
	@# merge consecutive stream outputs (a word-by-word print is one output, not hundreds)
	$(BIN)/jupyter nbconvert --to notebook --inplace --CoalesceStreamsPreprocessor.enabled=True \
	  --log-level=WARN $(NB)

# The notebooks, with the outputs CI verified, as static HTML in site/ (open site/index.html).
# Lesson run times: `LLM_PROVIDER=offline $(BIN)/python tools/time_lessons.py` -> docs/lessons.md.
docs: $(STAMP)
	$(BIN)/python tools/build_docs.py --out site

# For projecting in class: the relay and its chat page on http://127.0.0.1:4020/ (offline
# when .env holds no key). Ctrl-C stops it.
demo: $(STAMP)
	@echo "Open http://127.0.0.1:4020/ in a browser. Ctrl-C stops the demo."
	$(BIN)/python -m helpers.relay --port 4020

# The relay benchmark: loopback only, bounded (a few minutes); writes docs/performance.md.
bench: $(STAMP) $(NODE_DEPS)
	$(BIN)/python benchmarks/bench_relay.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info node_modules
