# The two set-up commands: `make run` and `make test`. Everything else is a helper of these.
PORT ?= 8080
HOST ?= 127.0.0.1
VENV ?= .venv
PY := $(VENV)/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/idp_multicloud

.PHONY: run test install bench lab clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# The embedded default: SQLite, a filesystem Celery broker, sandbox providers. No server needed.
run: install
	@set -e; export DJANGO_DEBUG=$${DJANGO_DEBUG:-1}; \
	$(PY) manage.py migrate --noinput -v0; \
	$(PY) manage.py demo_data; \
	mkdir -p var; \
	$(VENV)/bin/celery -A portal worker --loglevel INFO --concurrency 2 >var/worker.log 2>&1 & worker=$$!; \
	$(VENV)/bin/celery -A portal beat --loglevel INFO >var/beat.log 2>&1 & beat=$$!; \
	trap 'kill $$worker $$beat 2>/dev/null' EXIT INT TERM; \
	echo "Celery worker pid $$worker (log: var/worker.log), beat pid $$beat (log: var/beat.log)"; \
	echo "Portal: http://localhost:$(PORT)/   API docs: http://localhost:$(PORT)/api/docs/"; \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

# The whole suite, on PostgreSQL (as CI runs it). Override with TEST_DATABASE_URL=...
# Production settings (DJANGO_DEBUG=0) but plain HTTP: Django's test client and live server speak no TLS.
test: install
	DATABASE_URL=$(TEST_DATABASE_URL) DJANGO_SECRET_KEY=test-suite-only-not-a-secret-but-long-enough-for-checks \
	  DJANGO_DEBUG=0 DJANGO_SECURE_SSL_REDIRECT=0 $(PY) -m pytest $(PYTEST_ARGS)

# The DR lab: two MariaDB servers with replication and PowerDNS on this machine, left running (Ctrl-C stops it).
lab: install
	DJANGO_DEBUG=1 $(PY) manage.py lab up --writer

bench: install
	DJANGO_DEBUG=1 $(PY) bench/scheduler.py
	$(PY) bench/pipeline.py
	$(PY) bench/failover.py
	$(PY) bench/evacuation.py --cells 1000 --workers 2
	$(PY) bench/api.py

clean:
	rm -rf var .pytest_cache
