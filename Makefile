# Guichet — `make help` lists the targets. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit lint typecheck fmt worker beat migrate messages screenshots benchmark-desk benchmark-indexes benchmark-supervisor benchmark-load benchmark-equal-work benchmark-api benchmark-api-vs-form benchmark-purge benchmark-scale clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP) ## create .venv and install Guichet with its test tools

BENCH_STAMP := $(VENV)/.installed-bench-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $@

run: $(STAMP) ## serve the demo on http://127.0.0.1:$(PORT) (SQLite, in-process tasks, mail to var/mail/)
	@mkdir -p var/mail
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py seed_demo
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: $(STAMP) ## run the whole suite (integration tests need DATABASE_URL and REDIS_URL)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## only the tests that need no external service
	$(BIN)/python -m pytest -m "not integration and not browser" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format), import-linter (the layers) and mypy (types)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

typecheck: $(STAMP) ## mypy alone (django-stubs, strict)
	$(BIN)/mypy

fmt: $(STAMP) ## format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

worker: $(STAMP) ## a Celery worker (needs REDIS_URL)
	$(BIN)/celery -A desk worker -l info

beat: $(STAMP) ## the Celery beat scheduler (needs REDIS_URL)
	$(BIN)/celery -A desk beat -l info

migrate: $(STAMP) ## apply database migrations
	$(BIN)/python manage.py migrate

messages: $(STAMP) ## refresh and compile the translation catalogues
	DEBUG=1 $(BIN)/python manage.py makemessages -l fr -l en --no-obsolete --ignore=.venv --ignore=var --ignore=node_modules --ignore=tests --ignore=docs --ignore=scripts --ignore=benchmarks --ignore=build --ignore=test-artifacts
	DEBUG=1 $(BIN)/python manage.py compilemessages --ignore=.venv

benchmark-desk: $(STAMP) ## desk benchmark on PostgreSQL (guichet_bench, DESK_BENCH_DATABASE_URL overrides; EMPTIES it, DROPS it after unless KEEP=1)
	$(BIN)/python benchmarks/desk.py --sizes $${SIZES:-10000,100000,1000000} $${KEEP:+--keep}

benchmark-indexes: $(STAMP) ## EXPLAIN every desk/supervisor query on a large table (guichet_bench, INDEXES_BENCH_DATABASE_URL overrides; EMPTIES it, DROPS it after unless KEEP=1)
	$(BIN)/python benchmarks/indexes.py --tickets $${TICKETS:-300000} --members $${MEMBERS:-300000} $${KEEP:+--keep}

benchmark-supervisor: $(STAMP) ## supervisor page + queue CSV export on PostgreSQL (guichet_bench5, SUPERVISOR_BENCH_DATABASE_URL overrides; EMPTIES its ticket tables, DROPS it after unless KEEP=1)
	$(BIN)/python benchmarks/supervisor.py --sizes $${SIZES:-10000 100000 1000000} $${KEEP:+--keep}

benchmark-load: $(STAMP) ## sustained load, gunicorn+worker+sink (recreates guichet_load, DROPS it after unless KEEP=1; empties Redis db 9)
	$(BIN)/python benchmarks/load.py --minutes $${MINUTES:-10} --rate $${RATE:-2} $${KEEP:+--keep}

benchmark-api: $(STAMP) ## API registry upsert rate (1M-member registry, in-process and over gunicorn with 1/2/4 clients) and events-feed pages (DROPS guichet_api_bench; empties Redis db 13)
	$(BIN)/python benchmarks/api.py --members $${MEMBERS:-100000} --base $${BASE:-1000000} \
		--tickets $${TICKETS:-1000000} --clients $${CLIENTS:-1,2,4} --events $${EVENTS:-1000000}

benchmark-api-vs-form: $(STAMP) ## API registration p95 vs the form's over gunicorn (recreates guichet_api_form_bench, DROPS it after unless KEEP=1; empties Redis db 12)
	$(BIN)/python benchmarks/api_vs_form.py --per-path $${PER_PATH:-150} $${KEEP:+--keep}

benchmark-purge: $(STAMP) ## retention purge + archive_history at 10M history rows, desk p95 and RSS (guichet_bench_purge, PURGE_BENCH_DATABASE_URL overrides; EMPTIES it, DROPS it after unless KEEP=1)
	$(BIN)/python benchmarks/purge.py --rows $${ROWS:-10000000} --archive-months $${MONTHS:-2} $${KEEP:+--keep}

benchmark-scale: $(BENCH_STAMP) ## 2 gunicorns + 2 workers + PgBouncer + Redis + SMTP sink under locust (DURATION=600 OVERLOAD=120; recreates guichet_scale, DROPS it after unless KEEP=1; ports 21300+)
	$(BIN)/python benchmarks/scale.py --duration $${DURATION:-600} --overload-duration $${OVERLOAD:-120} $${KEEP:+--keep}

benchmark-equal-work: $(STAMP) ## docs/security.md §2 timing per class (recreates guichet_equal_work, DROPS it after unless KEEP=1; Redis db 11)
	$(BIN)/python benchmarks/equal_work.py --per-class $${PER_CLASS:-120} $${KEEP:+--keep}

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var

screenshots: $(STAMP) ## refresh docs/screenshots/ from a seeded local server (needs /usr/bin/chromium)
	$(BIN)/python scripts/screenshots.py
