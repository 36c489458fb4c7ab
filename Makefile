# pamiq: `make run` starts the whole graph on the built-in Doom world; `make test` runs the tests.
# Both create .venv (pinned requirements) and install the package on first use.

VENV := .venv
STAMP := $(VENV)/.installed
PACKAGE_FILES := $(shell find ros2_ws/src/pamiq -name __pycache__ -prune -o -type f -print) \
	$(wildcard launch/* config/*)

# Local runs stay on this machine: discovery on localhost. `make run` leaves the DDS profile to
# `pamiq up` (private acting, docs/operating.md); the tests' own processes (probes, nodes started
# alone) get the loopback profile: shared memory + UDP on 127.0.0.1.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp
export ROS_DOMAIN_ID ?= 42
test: export FASTRTPS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_loopback.xml
test: export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_loopback.xml

ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test lint format docs clean

run: $(STAMP)
	$(VENV)/bin/pamiq up $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The documentation site (MkDocs) into site/; the reference pages are regenerated from the code first.
docs: $(STAMP)
	$(VENV)/bin/python tools/docs_reference.py
	$(VENV)/bin/python -m mkdocs build --strict --site-dir site

$(STAMP): requirements.txt tools/bootstrap.sh $(PACKAGE_FILES)
	tools/bootstrap.sh
	touch $@

clean:
	rm -rf $(VENV) site ros2_ws/build ros2_ws/install ros2_ws/log
