# The two commands of the README:  make serve   and   make test
# Both set everything up first (a virtualenv in .venv with the package and its
# test tools), so they work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: serve test install clean spec mutation

install: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The telnet port for MUD clients (telnet 127.0.0.1 4202); TELNET_PORT=0 turns it off.
TELNET_PORT ?= 4202

serve: $(STAMP)
	$(BIN)/vibemuse serve --telnet-port $(TELNET_PORT) $(ARGS)

# The suite runs on one worker per core (pytest-xdist), a test file per worker at a time:
# most tests wait on sockets and processes, not on the CPU. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Rewrite the generated parts of spec/: the examples, errors.json, and the
# summary tables of protocol.md (the tests fail while any of them is stale).
spec: $(STAMP)
	$(BIN)/python -m tests.support.spec_examples
	$(BIN)/python -m tests.support.spec_tables --write

# Mutation testing of the pure protocol modules (slow: minutes; not in `make test`
# nor in CI). MODULES picks some of canonical_json markup commands events signing
# federation_auth federation_units;
# MUTATION_JOBS the parallel workers. Scores: tools/mutation_score.py; the
# accepted (equivalent) survivors: tests/protocol/MUTATION.md.
MODULES ?= canonical_json markup commands events signing federation_auth federation_units
MUTATION_JOBS ?= 2
MUTATION_STAMP := $(VENV)/.mutation-stamp

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]'
	touch $(MUTATION_STAMP)

mutation: $(MUTATION_STAMP)
	nice -n 10 $(BIN)/mutmut run --max-children $(MUTATION_JOBS) \
		$(foreach m,$(MODULES),"vibemuse.protocol.$(m).*")
	$(BIN)/python tools/mutation_score.py $(MODULES)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis mutants
