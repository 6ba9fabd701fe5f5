# chatwatch — the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint fmt check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## run: the main job: a demo chatbot writes logs, chatwatch tails them (see README)
run: $(STAMP)
	$(BIN)/chatwatch --log-format text demo

## test: the whole test suite (unit, scenario, real Prometheus/Alertmanager/SMTP where installed)
## Two pytest-xdist workers: most scenario tests wait on real processes, so two run well
## side by side even on two cores. PYTEST_ARGS="-n 0" runs them one by one.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

## bench: reproducible benchmarks; prints figures
bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check agent tests bench
	$(BIN)/ruff format --check agent tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format agent tests bench
	$(BIN)/ruff check --fix agent tests bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
