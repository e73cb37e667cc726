"""BISON monthly workflow: shared library for the Lambdas, the EC2 tasks and the local runtime."""

from pathlib import Path

#: The project root as laid out in the repository and in every Lambda zip and task image:
#: `bisonflow/`, `functions/`, `tasks/`, `definitions/` and `statemachines/` side by side.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

__all__ = ["PROJECT_ROOT"]
