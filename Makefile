# lossctl: `make run` and `make test` work on a fresh machine with only Python.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Running needs only lossctl's own dependencies; the tests add the `test` extra.
STAMP      := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

BENCH_VENV := .venv-bench
BENCH_DATA ?= benchmarks/data

.PHONY: run test bench bench-small bench-plugins bench-scale samples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

# Byte-compile the package up front: this machine sets PYTHONDONTWRITEBYTECODE,
# so without it every run would compile lossctl's modules again (~0.1 s).
run: $(STAMP)
	$(BIN)/python -m compileall -q lossctl
	$(BIN)/lossctl eval sample_data/regression.csv --loss mse,mae,huber --metric rmse,r2 --format table

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

samples: $(STAMP)
	$(BIN)/python sample_data/generate.py

.PHONY: docs
docs: $(STAMP)
	$(BIN)/python -m lossctl.docs --write

$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $@

# Times lossctl (from .venv) against pyarrow, DuckDB, polars, pandas + scikit-learn
# and NumPy (from .venv-bench) on ~2 GB of generated data; writes benchmarks/RESULTS.md.
bench: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m compileall -q lossctl
	$(BENCH_VENV)/bin/python benchmarks/generate.py --out $(BENCH_DATA)
	$(BENCH_VENV)/bin/python benchmarks/run.py --data $(BENCH_DATA) --lossctl $(BIN)/lossctl

bench-small: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m compileall -q lossctl
	$(BENCH_VENV)/bin/python benchmarks/generate.py --small --out $(BENCH_DATA)-small
	$(BENCH_VENV)/bin/python benchmarks/run.py --data $(BENCH_DATA)-small --lossctl $(BIN)/lossctl --results /tmp/lossctl-bench-small.md

# --by (20 and 100,000 groups) against DuckDB GROUP BY and polars group_by, memory against rows,
# and --ci against the plain pass and a NumPy bootstrap loop; writes benchmarks/RESULTS-slices-intervals.md.
.PHONY: bench-slices
bench-slices: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m compileall -q lossctl
	$(BENCH_VENV)/bin/python benchmarks/generate.py --out $(BENCH_DATA) --only regression,binary
	$(BENCH_VENV)/bin/python benchmarks/slices_intervals.py --data $(BENCH_DATA) --lossctl $(BIN)/lossctl

# A plugin MSE against the built-in mse on the 20M-row regression Parquet; writes benchmarks/PLUGINS.md.
bench-plugins: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m compileall -q lossctl
	$(BENCH_VENV)/bin/python benchmarks/generate.py --out $(BENCH_DATA)
	$(BENCH_VENV)/bin/python benchmarks/plugin_overhead.py --data $(BENCH_DATA) --lossctl $(BIN)/lossctl --results benchmarks/PLUGINS.md

# --engine dask and s3:// against the local engine on the 20M regression rows in 32 files:
# a local Dask cluster and an S3-compatible server started on loopback; writes a section of
# benchmarks/RESULTS.md. Needs the dask extra and the test extra's moto server in .venv.
bench-scale: $(TEST_STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dask,test]'
	$(BIN)/python -m compileall -q lossctl
	$(BENCH_VENV)/bin/python benchmarks/generate.py --only regression --out $(BENCH_DATA)
	$(BIN)/python benchmarks/scale.py --data $(BENCH_DATA) --lossctl $(BIN)/lossctl

# lossctl compare against DuckDB and polars joining two 20M-row files (by position, and by id with
# the rows shuffled), and compare --ci against eval --ci (2M rows); writes benchmarks/RESULTS-compare.md.
.PHONY: bench-compare
bench-compare: $(STAMP) $(BENCH_VENV)/.installed
	$(BIN)/python -m compileall -q lossctl
	$(BENCH_VENV)/bin/python benchmarks/compare.py --data $(BENCH_DATA) --lossctl $(BIN)/lossctl

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .hypothesis
