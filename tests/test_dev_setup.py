"""`manage.py dev_setup`, which `make serve` runs: the demo user, with DEBUG on only."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


def dev_setup(**options) -> str:
    out = StringIO()
    call_command("dev_setup", stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_dev_setup_with_debug_off_creates_no_user(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setenv("DUOTOKEN_DEMO_PASSWORD", "a-demo-password")

    out = dev_setup()

    assert out == "DJANGO_DEBUG is off: no demo user (create users with manage.py createsuperuser).\n"
    assert not get_user_model().objects.exists()


@pytest.mark.django_db
def test_dev_setup_with_debug_on_creates_the_demo_admin_once_and_prints_its_login(settings, monkeypatch):
    settings.DEBUG = True
    monkeypatch.setenv("DUOTOKEN_DEMO_PASSWORD", "a-demo-password")

    first = dev_setup(url="http://127.0.0.1:8001")
    user = get_user_model().objects.get()
    user.set_password("changed-since")
    user.save()
    second = dev_setup(url="http://127.0.0.1:8001")

    expected = (
        "Log in at http://127.0.0.1:8001/ as demo / a-demo-password (also an admin: http://127.0.0.1:8001/admin/)\n"
    )
    assert first == expected
    assert (user.username, user.is_superuser, user.is_staff) == ("demo", True, True)
    assert second == (
        "Log in at http://127.0.0.1:8001/ as demo (its password was changed since it was created), "
        "or create a user: .venv/bin/python manage.py createsuperuser\n"
    )
    assert get_user_model().objects.get().check_password("changed-since")
