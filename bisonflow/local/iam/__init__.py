"""IAM enforcement for the local runtime: requests made as a role are authorized as AWS would.

`seam.install()` replaces moto's authorization check; `seam.uninstall()` restores it and stops
the evaluator. `Emulator(..., iam_enforcement=True)` does both. See seam.py for how a request
is authorized and what a refusal looks like.
"""
