# The two entry points of the README: `make demo` and `make test`.
# Each creates (or refreshes, when pyproject.toml or constraints.txt changed) a local virtual environment
# with pip and the tested constraints, then runs.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.unitok-installed
# The local Hub-protocol server (olah) that the Hub tests publish to and download from, in its own environment
# (its dependencies conflict with the library's; it runs as a separate process anyway).
HUB_VENV  ?= .venv-hub
HUB_STAMP  = $(HUB_VENV)/.olah-installed
# The test command installs every optional extra so CI exercises all metrics and data sources.
EXTRAS  = dev,train,eval-image,data-image,eval-speech,data-speech,data-motion,data-cad,eval-cad

.PHONY: demo test bench venv clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt resemblyzer  # speaker similarity (see pyproject)
	touch $(STAMP)

$(HUB_STAMP): constraints-hub.txt
	test -x $(HUB_VENV)/bin/python || $(PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(HUB_VENV)/bin/python -m pip install --quiet -c constraints-hub.txt olah
	touch $(HUB_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m unitok.demo --out demo_output

test: $(STAMP) $(HUB_STAMP)
	UNITOK_REQUIRE_HUB_SERVER=1 $(PY) -m pytest -n 2 --timeout 900 tests

bench: $(STAMP)
	$(PY) benchmarks/bench_flextok.py

clean:
	rm -rf $(VENV) $(HUB_VENV) demo_output
