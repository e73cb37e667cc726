"""The local runtime: moto's server plus the seams that make it run the workflow for real.

Importing this package imports nothing from moto, so the CLI can name its errors without
the `local` extra installed.
"""


class PortInUse(RuntimeError):
    """The port asked for the emulator is taken."""


#: The emulator's one region and the keys its operator uses (any keys work on it); kept here,
#: free of moto, so the CLI can default them for a loopback endpoint (bisonflow.cli.endpoint).
EMULATOR_REGION = "us-east-1"
EMULATOR_KEYS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
