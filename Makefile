# `make run` and `make test` work on a fresh checkout: each creates .venv and installs what it needs.
PYTHON ?= python3
PORT ?= 8000
# 0.0.0.0 serves the other devices on your network too (phones joining a party from the stage's
# QR code); add the address they use to ALLOWED_HOSTS.
HOST ?= 127.0.0.1
# On this project's machines both wheels lie on local disk. Elsewhere pick the build for your
# platform (CPU, CUDA, ROCm, Apple) from PyTorch's install selector and pass it the same way.
TORCH ?= torch==2.14.1 torchvision==0.29.1

VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

# Tests run against the real services on this machine (see README "Tests").
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint format worker clean

# A .venv cut short while it was created (python without pip) is made again, not used broken.
$(INSTALLED): pyproject.toml Makefile
	$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# DEBUG=1 unless the caller says otherwise: a local run needs no SECRET_KEY and serves media.
run: $(INSTALLED)
	export DEBUG=$${DEBUG:-1}; \
	$(PY) manage.py migrate --noinput && \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

test: $(INSTALLED)
	SECRET_KEY=test-only-not-secret DATABASE_URL=$(TEST_DATABASE_URL) \
	PARTYHUB_TEST_REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# A Celery render worker for production mode (REDIS_URL and DATABASE_URL set); QUEUES=renders
# for one that serves parties only.
worker: $(INSTALLED)
	$(VENV)/bin/celery -A partyhub worker --queues $${QUEUES:-renders,streams} --concurrency 1 --loglevel INFO

clean:
	rm -rf $(VENV) var staticfiles
