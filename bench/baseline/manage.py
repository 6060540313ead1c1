#!/usr/bin/env python
"""The stock baseline's manage.py: a Django project built only from stock pieces."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "baseline.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
