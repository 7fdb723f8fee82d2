"""`python -m promptlooper_tui` is the `promptlooper` command."""

from .cli import main

# Guarded: worker processes (engine/guard.py) import the main module again under another name.
if __name__ == "__main__":
    raise SystemExit(main())
