"""`python -m bisonflow.cli.main`: the same as the `bisonflow` command."""

from bisonflow.cli.main.main import main

raise SystemExit(main())
