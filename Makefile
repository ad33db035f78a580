# hakit — every target does its own set-up; see README.md.
SHELL := /bin/bash
# Debian's interpreter, not the pyenv shim: agents run under it, so tests do too.
SYSTEM_PYTHON := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
DEV_TREE := build/dev
APT_PACKAGES := pacemaker corosync pacemaker-cli-utils pcs crmsh resource-agents fence-agents time \
	python3-venv libxml2-utils iproute2 procps python3-pymysql mariadb-server rabbitmq-server \
	openssh-server python3-apt keepalived
STAMP_APT := build/.apt-$(shell echo $(APT_PACKAGES) | md5sum | cut -c1-8)
# Two distributions: hakit (node runtime and operator tools: the wheel) and hakit-lab
# (lab/pyproject.toml: the lab and the drills), both installed editable.
PYPROJECTS := pyproject.toml lab/pyproject.toml
STAMP_VENV := $(VENV)/.installed-$(shell cat $(PYPROJECTS) | md5sum | cut -c1-8)
DIST := build/dist

.PHONY: test lint typecheck pytest install-agents uninstall-agents bench drill-soak demo clean deps venv wheel

test: lint typecheck pytest

deps: $(STAMP_APT)
$(STAMP_APT):
	@mkdir -p build
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt: installing $$missing"; \
		[ "$$(id -u)" = 0 ] || { echo "error: installing $$missing needs root (run make as root)" >&2; exit 1; }; \
		policy=/usr/sbin/policy-rc.d; made=; \
		if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod 755 $$policy; made=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		rc=$$?; [ -n "$$made" ] && rm -f $$policy; [ $$rc = 0 ] || exit $$rc; \
	fi
	@touch $@

venv: $(STAMP_VENV) $(DEV_TREE)/hakit
$(STAMP_VENV): $(PYPROJECTS) | $(STAMP_APT)
	@test -x $(VENV)/bin/pip || $(SYSTEM_PYTHON) -m venv $(VENV)  # pip: a venv cut short
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' -e ./lab 2>&1 | grep -v -e '^$$' -e 'WARNING: Location' || true
	@$(PY) -c 'import hakit.ocf, hakit.tools, hakit.lab' && touch $@

# The wheel to install on an existing cluster's nodes (docs/install.md): node runtime
# and operator tools, no lab. build/lib goes first: setuptools would add stale files to it.
wheel: venv
	@rm -rf build/lib build/bdist.* $(DIST)/hakit-*.whl
	$(PY) -m build --wheel --outdir $(DIST) .

# The `hakit.*` import names map onto the top-level folders. This tree of symlinks
# lets mypy and the venv see the source under those names (see README, "Import names").
$(DEV_TREE)/hakit:
	@mkdir -p $@
	@for d in ocf resource_agents tools lab; do ln -sfn ../../../$$d $@/$$d; done

lint: venv
	$(VENV)/bin/ruff check ocf resource_agents tools lab tests bench playbooks
	$(VENV)/bin/ruff format --check ocf resource_agents tools lab tests bench playbooks
	cd playbooks && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ANSIBLE_HOME=$(CURDIR)/build/ansible \
		PYTHONWARNINGS='ignore:DSA' $(CURDIR)/$(VENV)/bin/ansible-lint -q

typecheck: venv
	MYPYPATH=$(DEV_TREE) $(VENV)/bin/mypy -p hakit
	MYPYPATH=$(DEV_TREE) $(VENV)/bin/mypy tests bench

pytest: venv install-agents
	$(PY) -m pytest $(PYTEST_ARGS)

install-agents: venv
	$(VENV)/bin/hakit agents install --python $(SYSTEM_PYTHON)

uninstall-agents: venv
	$(VENV)/bin/hakit agents uninstall

# Not in CI: 50 consecutive power cuts, zero invariant violations expected (about 30 min).
drill-soak: venv install-agents
	$(PY) -m bench.drill --runs 50 --write docs/benchmarks.md

demo: venv install-agents
	$(VENV)/bin/hakit lab demo

bench: venv install-agents
	$(PY) -m bench.monitor --write docs/benchmarks.md
	$(PY) -m bench.topology --write docs/benchmarks.md
	$(PY) -m bench.openstack --write docs/benchmarks.md
	$(PY) -m bench.lab --write docs/benchmarks.md
	$(PY) -m bench.health --write docs/benchmarks.md
	$(PY) -m bench.reports --write docs/benchmarks.md
	$(PY) -m bench.api --write docs/benchmarks.md
	$(PY) -m bench.placement --write docs/benchmarks.md
	$(PY) -m bench.minicloud --write docs/benchmarks.md
	$(PY) -m bench.ansible --write docs/benchmarks.md
	$(PY) -m bench.remotes --write docs/benchmarks.md
	$(PY) -m bench.routers --write docs/benchmarks.md

clean:
	rm -rf build $(VENV) .mypy_cache .ruff_cache .pytest_cache
