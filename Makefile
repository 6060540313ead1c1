.PHONY: serve test lint fmt bench

serve:  ## start the service on http://127.0.0.1:8000 (SQLite; a private Redis if none answers; prints a demo login)
	scripts/serve.sh

test:  ## run every test (set DATABASE_URL for PostgreSQL)
	scripts/test.sh

lint:  ## ruff check, format check and mypy (strict on tokens/ and accounts/)
	scripts/setup.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

fmt:  ## apply ruff fixes and formatting
	scripts/setup.sh && .venv/bin/ruff check --fix . && .venv/bin/ruff format .

bench:  ## compare against stock Django + Simple JWT, side by side (bench/README.md; not part of the tests)
	scripts/setup.sh && scripts/bench-setup.sh && .venv/bin/python bench/run.py $(BENCH_ARGS)
