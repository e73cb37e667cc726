"""The task spec: everything an EC2 task needs, stored in S3 beside the month's outputs.

The Step Functions task token is NOT in the spec (nor in userdata, tags or logs): it is
stored as an SSM SecureString and the spec names only the parameter.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bisonflow.schemas import validate


@dataclass(frozen=True)
class TaskSpec:
    task: str  # module name under tasks/, e.g. "annotate_riis"
    month: str  # "YYYY-MM"
    bucket: str  # the BISON bucket
    execution: str  # Step Functions execution name (also tagged on the instance)
    token_parameter: str  # SSM parameter holding the task token
    inputs: dict[str, str] = field(default_factory=dict)  # name -> S3 key in `bucket`
    outputs: dict[str, str] = field(default_factory=dict)  # name -> S3 key or prefix
    params: dict[str, Any] = field(default_factory=dict)  # small task-specific settings

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> TaskSpec:
        """A spec read back from S3, checked against definitions/task_spec.schema.json."""
        data = json.loads(text)
        validate(data, "task_spec")
        return cls(**data)
