# The front door: `make demo` runs the main job, `make test` runs every test.
# Both set up what they need on a fresh machine: Debian packages, a virtual
# environment with nbdeploy and its test tools, the built JupyterLab extension.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nbdeploy-installed
LAB_SOURCES := $(wildcard labextension/src/*.ts labextension/style/*) labextension/package.json
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup system-deps demo test test-ray lint typecheck unit notebooks notebooks-ray notebooks-refresh lab bench clean

setup: $(STAMP)

# Debian packages the tests drive for real: Chromium (browser tests), Node.js
# (building the JupyterLab extension) and iproute2 (`ip`, which brings up the loopback
# of the Ray tests' private network namespace). Installed only when missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v unshare >/dev/null || missing="$$missing util-linux"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml $(LAB_SOURCES) | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	rm -rf nbdeploy/labextension
	$(PY) -m pip install --quiet -e ".[dev]"
	$(VENV)/bin/jupyter labextension list 2>&1 | grep -q "nbdeploy.*enabled.*OK"
	$(VENV)/bin/jupyter server extension list 2>&1 | grep -q "nbdeploy.lab.*enabled"
	touch $(STAMP)

demo: setup
	$(PY) examples/demo.py

lint: setup
	$(VENV)/bin/ruff check nbdeploy tests bench examples scripts
	$(VENV)/bin/ruff format --check nbdeploy tests bench examples scripts
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy

# The tutorials run under nbval: each notebook is executed and its outputs compared
# with the stored ones, after tests/nbval_sanitize.cfg (tests/tutorials/ checks that
# no stored output depends on the machine). The tutorials on Ray (metadata
# nbdeploy.requires = ["ray"]) run in the Ray tests' private network namespace
# (in-netns below), the others as they are.
RAY_NOTEBOOKS := notebooks/08-scale-out-with-ray.ipynb
NOTEBOOKS := $(filter-out $(RAY_NOTEBOOKS),$(sort $(wildcard notebooks/*.ipynb)))
NBVAL_ARGS := --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider
NBVAL := $(VENV)/bin/pytest --nbval $(NOTEBOOKS) $(NBVAL_ARGS)
NBVAL_RAY := $(VENV)/bin/pytest --nbval $(RAY_NOTEBOOKS) $(NBVAL_ARGS)

# $(call with-docker,COMMANDS): run COMMANDS with a private Docker engine up (no
# bridge, no iptables, its own socket; see scripts/docker-env.sh), for the Docker tests
# and the Docker tutorial; DOCKER_HOST is exported to them. The engine is stopped after
# by its pidfile if this call started it (the pidfile names another dockerd than
# before); one that was already running is left alone. The exit status is COMMANDS'.
DOCKER_PIDFILE = $${NBDEPLOY_DOCKER_PIDFILE:-/var/run/$${NBDEPLOY_DOCKER_NAME:-nbdeploy-docker}.pid}
with-docker = before=$$(cat $(DOCKER_PIDFILE) 2>/dev/null); \
	eval "$$(bash scripts/docker-env.sh up)" && { $(1); }; rc=$$?; \
	if [ "$$(cat $(DOCKER_PIDFILE) 2>/dev/null)" != "$$before" ]; then bash scripts/docker-env.sh down; fi; \
	exit $$rc

# $(call in-netns,COMMAND): run COMMAND in a private network, PID and mount namespace
# with only a loopback interface, and HOME a fresh folder whose
# ray_bootstrap_config.yaml is {}. Ray probes cloud-metadata addresses and DNS even
# with usage stats off (../shared/recipes/targets.md §3); there they cannot leave the
# machine, and every process Ray starts ends with the namespace's first process.
in-netns = home=$$(mktemp -d /tmp/nbdeploy-rayhome.XXXXXX) && echo '{}' > $$home/ray_bootstrap_config.yaml && \
	HOME=$$home RAY_USAGE_STATS_ENABLED=0 unshare --net --pid --fork --mount-proc \
	sh -c 'ip link set lo up && exec "$$@"' sh $(1); rc=$$?; rm -rf $$home; exit $$rc

# The Ray target's tests on real Ray clusters (marker `ray`), in their namespace.
test-ray: setup
	$(call in-netns,$(VENV)/bin/pytest tests -m ray -p no:cacheprovider)

# Browser tests (Playwright's own event loop) run in their own pytest process, apart
# from the Jupyter server fixtures' loop.
unit: setup
	$(call with-docker,$(VENV)/bin/pytest tests -m "not ui and not ray")
	$(VENV)/bin/pytest tests -m ui
	$(MAKE) test-ray

notebooks: setup
	$(call with-docker,$(NBVAL))
	$(MAKE) notebooks-ray

# The Ray tutorials under nbval, in their namespace (they start Ray clusters).
notebooks-ray: setup
	$(call in-netns,$(NBVAL_RAY))

# One engine for the non-browser tests and the tutorials.
test: lint typecheck setup
	$(call with-docker,$(VENV)/bin/pytest tests -m "not ui and not ray" && $(NBVAL))
	$(VENV)/bin/pytest tests -m ui
	$(MAKE) test-ray
	$(MAKE) notebooks-ray

# After changing what a tutorial shows: execute them all again in place (the Ray
# tutorials in their namespace), then check that what they store is the same on any
# machine.
notebooks-refresh: setup
	$(call with-docker,$(PY) scripts/execute_notebooks.py --skip-requiring ray)
	$(call in-netns,$(PY) scripts/execute_notebooks.py $(RAY_NOTEBOOKS))
	$(VENV)/bin/pytest tests/tutorials/test_stored_outputs.py -q -p no:cacheprovider

lab: setup
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --allow-root

# In the Ray tests' private network namespace (bench_ray starts a Ray cluster; the
# others talk to 127.0.0.1 only).
bench: setup
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(call in-netns,$(PY) bench/run.py)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache nbdeploy/labextension
