"""`python -m promptlooper_tui` is the `promptlooper` command."""

from .cli import main

raise SystemExit(main())
