# Two commands: `make run` (the broker on embedded defaults) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test install clean

run: install
	$(BIN)/skybroker run

# pytest exits 5 when it selects no test (e.g. a PYTEST_ARGS filter that matches nothing):
# said loudly, and not an error.
test: install
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "WARNING: pytest selected no tests"; rc=0; fi; exit $$rc

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
