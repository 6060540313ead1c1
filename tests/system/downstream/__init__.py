"""A second, minimal Django project: a service that trusts Duotoken's access tokens
through the `duotoken-verify` package, installed from its wheel (see
tests/system/test_downstream_service.py). No database, no Redis of its own."""
