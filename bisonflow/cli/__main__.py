"""`python -m bisonflow.cli`: the same as the `bisonflow` command."""

from bisonflow.cli.main import main

raise SystemExit(main())
