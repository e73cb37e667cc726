"""The local runtime's child processes stay out of the terminal's process group.

A Lambda worker, a task's process and the IAM evaluator stand for compute that on AWS runs
far from the laptop: a Ctrl-C in the terminal that started `bisonflow run` or `local up` must
reach `bisonflow` alone, which then stops them in order (the EC2 agent, the Lambda workers,
the emulator) and removes its work directory (issue 12). The terminal sends SIGINT to its
whole foreground process group (POSIX, General Terminal Interface, 11.1.9 "Special
Characters": INTR "shall generate a SIGINT signal which shall be sent to all processes in the
foreground process group"); a child left in that group died with it, and the runtime, still
running the execution, saw a failed Lambda or evaluator and printed why, or started a new
worker in the directory it was removing.

Each such Popen passes `process_group=OWN_GROUP` (Python 3.11, subprocess.Popen: the child
calls setpgid(0, 0) before exec, so no signal can reach it before it is in its own group).

A Lambda worker and a task's process start from `passed_through()`, not from bisonflow's whole
environment: on AWS neither sees the operator's shell, so a setting that reaches them must be
given to them (the function's Environment, the task's compose file), as it must be on AWS.
"""

from __future__ import annotations

import os

#: Popen's process_group: 0 puts the child in a new group whose id is its pid.
OWN_GROUP = 0

#: What a child keeps of bisonflow's environment: where programs are, the home directory, the
#: locale and the temporary directory (SYSTEMROOT: what Python needs to start on Windows).
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def passed_through() -> dict[str, str]:
    """The variables of PASSED_THROUGH that are set here."""
    return {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
