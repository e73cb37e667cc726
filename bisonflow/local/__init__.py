"""The local runtime: moto's server plus the seams that make it run the workflow for real.

Importing this package imports nothing from moto, so the CLI can name its errors without
the `local` extra installed.
"""


class PortInUse(RuntimeError):
    """The port asked for the emulator is taken."""
