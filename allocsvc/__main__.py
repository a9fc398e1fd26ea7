"""`python -m allocsvc` runs the command line."""

from allocsvc.cli import main

raise SystemExit(main())
