# audiencelake: the two commands are `make demo` and `make test`; each sets itself up first.
# Set-up is idempotent: every step is guarded by a stamp or a check, so a second run is quick and offline.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
JARS := jars
DEMO_USERS ?= 1000
DEMO_DAYS ?= 90

export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))
export SPARK_LOCAL_IP := 127.0.0.1

.PHONY: setup test-setup browser wheel demo test test-fast test-cluster lint bench bench-tags bench-models bench-identity clean-lake

setup: $(VENV)/.installed $(JARS)/.fetched $(JARS)/.splink blas

# The tests also render the HTML report in a real browser: Debian's chromium, installed only when missing.
test-setup: setup browser

# Python: a virtual environment with the project (editable) and its pinned dependencies.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[spark,dev]'
	touch $@

# JVM: the Delta Lake jars named by delta-spark's configure_spark_with_delta_pip, from Maven Central.
# Only io.delta and io.unitycatalog artifacts are kept: everything else they depend on ships inside PySpark.
$(JARS)/.fetched: build/jars-pom/pom.xml
	rm -rf $(JARS) && mkdir -p $(JARS)
	mvn -q -B -f build/jars-pom/pom.xml dependency:copy-dependencies \
	  -DincludeScope=runtime -DincludeGroupIds=io.delta,io.unitycatalog -DoutputDirectory=$(abspath $(JARS))
	touch $@

# Splink's Spark similarity functions (jaro_winkler, ...) ship as a jar inside the splink wheel: copied beside the
# Delta jars so that local sessions and spark-submit --jars jars/*.jar load it too.
$(JARS)/.splink: $(VENV)/.installed $(JARS)/.fetched
	rm -f $(JARS)/scala-udf-similarity-*.jar
	cp "$$($(PY) -c 'from splink.backends.spark import similarity_jar_location as j; print(j())')" $(JARS)/
	touch $@

# Native BLAS for MLlib (ALS); Debian's libopenblas0, installed only when missing.
blas:
	@ldconfig -p | grep -q 'libopenblas.so.0' || { \
	  echo "installing libopenblas0 (native BLAS for Spark MLlib)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0 >/dev/null; }

browser:
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (headless browser for the report test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(VENV)/bin/audiencelake demo --users $(DEMO_USERS) --days $(DEMO_DAYS)

# The whole suite but the cluster test, with the 15 slowest items printed (CI keeps them visible). Two pytest-xdist
# workers, each with its own local[2] session: a stage on a small lake spends most of its time in one driver thread
# (planning, Delta commits), so two at once use both cores (tests/conftest.py keeps each world's modules on one).
TEST_WORKERS ?= 2
test: test-setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) --durations=15

# The inner loop: unit tests on inline frames, no generated world, no browser, no cluster.
test-fast: setup
	$(PY) -m pytest -q --durations=10 -m 'not e2e and not browser and not cluster'

# A real Spark standalone cluster (master + two workers on loopback) running ingest, identity and profile.
test-cluster: test-setup
	$(PY) -m pytest -q --durations=15 -m cluster

# The wheel for spark-submit --py-files and the Databricks bundle (built offline: hatchling is a dev dependency).
wheel: setup
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w dist .

lint: setup
	$(VENV)/bin/ruff check lib tests jobs benchmarks
	$(VENV)/bin/ruff format --check lib tests jobs benchmarks

bench: setup
	$(PY) benchmarks/ingest.py

bench-tags: setup
	$(PY) benchmarks/tags.py

bench-models: setup
	$(PY) benchmarks/models.py

bench-identity: setup
	$(PY) benchmarks/identity.py

clean-lake:
	rm -rf lake
