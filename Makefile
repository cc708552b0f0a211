# The two commands: `make run` and `make test`. Both build a local virtualenv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint format bench bench-smoke screenshots mutation mutation-core mutation-core-resume mutation-core-recheck mutation-all lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-dev

run: $(VENV)/.installed-dev
	$(BIN)/cubehook dev

# pytest starts (and stops) its own private Redis server on a free port; see tests/conftest.py.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The console's screenshots in docs/images, taken by its browser test (make test takes them into a
# temporary folder: a test run changes no tracked file).
screenshots: $(VENV)/.installed-test
	CUBEHOOK_SCREENSHOTS=docs/images $(BIN)/python -m pytest tests/console/test_browser.py -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks print ratios against a baseline measured in the same run (see bench/).
BENCHMARKS := bench/ingest.py bench/worker_throughput.py bench/recovery.py bench/redis_sizing.py bench/simulator_get.py bench/end_to_end.py bench/console.py
bench: $(VENV)/.installed-test
	for script in $(BENCHMARKS); do echo "== $$script"; $(BIN)/python $$script || exit 1; done
	echo "== bench/worker_throughput.py --mode rate"; $(BIN)/python bench/worker_throughput.py --mode rate

# Every script in bench/ with --smoke (tiny sizes, a few seconds each): does each still run and print
# its figures? Through tests/bench/test_smoke.py, which `make test` runs too; about 50 s on 2 cores.
bench-smoke: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests/bench -q

# Mutation testing (docs/mutation.md has the method, the scores and the mutants left alive). Not
# part of `make test` nor CI. MUTATION_JOBS: mutmut's processes at once (1 on a busy machine).
MUTATION_JOBS ?= 2
# The core's mutants one at a time unless told otherwise: each pytest starts servers of its own (a
# private Redis on a free port), and side by side they compete for the cores the timings assume.
MUTATION_CORE_JOBS ?= 1
$(VENV)/.installed-mutation: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[mutation]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed-dev

# The pure modules against tests/unit: mutmut, configured in pyproject.toml ([tool.mutmut]), then
# the mutants it cannot make, by hand (tests/unit/hand_mutants.py). About 12 minutes on 2 shared cores.
mutation: $(VENV)/.installed-mutation
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTATION_JOBS)
	$(BIN)/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json && echo
	$(BIN)/mutmut results
	$(BIN)/python -m tests.unit.hand_mutants

# The exactly-once core (sessions, dispatch, the ledger, leases, recovery, manual decisions, requeue,
# the intake's accept path) against tests/{jobs,web,audit,unit} on a real Redis. mutmut reads only
# [tool.mutmut] from the pyproject.toml where it runs, so it runs in a copy of the tree
# (mutants-core/, ignored by git) whose pyproject.toml has [tool.cubehook.mutmut-core] under that
# name. MUTATION_CORE_ONLY: mutant names (fnmatch) to run a part, e.g. 'workers.sessions.*'; the
# results stay in mutants-core/ (`cd mutants-core && ../.venv/bin/mutmut show NAME`).
MUTATION_CORE := mutants-core
MUTATION_CORE_ONLY ?=
MUTMUT_CORE := cd $(MUTATION_CORE) && $(abspath $(BIN))/mutmut
mutation-core: $(VENV)/.installed-mutation
	rm -rf $(MUTATION_CORE) && mkdir $(MUTATION_CORE)
	cp -R service workers tests README.md deploy $(MUTATION_CORE)/
	sed -e 's/^\[tool\.mutmut\]$$/[tool.cubehook.mutmut-pure]/' \
	    -e 's/^\[tool\.cubehook\.mutmut-core\]$$/[tool.mutmut]/' pyproject.toml > $(MUTATION_CORE)/pyproject.toml
	$(MUTMUT_CORE) run --max-children $(MUTATION_CORE_JOBS) $(MUTATION_CORE_ONLY)
	$(MUTMUT_CORE) export-cicd-stats && cat mutants/mutmut-cicd-stats.json && echo
	$(MUTMUT_CORE) results

# Carries a stopped core run (Ctrl-C) on where it stopped, in the same copy: results kept.
mutation-core-resume: $(VENV)/.installed-mutation
	$(MUTMUT_CORE) run --max-children $(MUTATION_CORE_JOBS) $(MUTATION_CORE_ONLY)
	$(MUTMUT_CORE) export-cicd-stats && cat mutants/mutmut-cicd-stats.json && echo
	$(MUTMUT_CORE) results

# Both: the pure modules, then the exactly-once core (more than an hour on 2 shared cores).
mutation-all: mutation mutation-core

# Each survivor of the core's run tested again alone, in a fresh pytest with its mutant switched on:
# the check docs/mutation.md applies to survivors, and to tests added for them since the run.
mutation-core-recheck: $(VENV)/.installed-mutation
	$(BIN)/python -m tests.mutation_recheck $(MUTATION_CORE_ONLY)

# The image's dependencies, every one pinned with its hashes (deploy/Dockerfile installs them with
# --require-hashes): the runtime tree from pyproject.toml, and the build backend it names. Run
# after changing a dependency; a test fails while requirements.lock disagrees with pyproject.toml.
LOCK := $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock"
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==0.13.9
	$(LOCK) --quiet pyproject.toml -o requirements.lock
	printf 'setuptools>=75\n' | $(LOCK) --quiet - -o requirements-build.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache mutants $(MUTATION_CORE)
