#!/usr/bin/env python
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # In a checkout (a git work tree), the README's commands work as typed after `make run`: development
    # settings unless DJANGO_DEBUG says otherwise. A deployed image has no .git and keeps production settings.
    if (Path(__file__).resolve().parent / ".git").exists():
        os.environ.setdefault("DJANGO_DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
