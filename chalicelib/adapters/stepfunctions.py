"""Starting bulk operations on Step Functions: one execution per operation, named after it.

The execution name is the operation id, so starting the same operation twice (a retried API call) is
refused by Step Functions (ExecutionAlreadyExists) instead of running it twice. The input carries ids
only; the state machine's tasks read everything else from the store.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import ServiceUnavailableError


class StepFunctionsBulkRunner:
    """BulkRunner on a Step Functions state machine (its ARN comes from settings)."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def start(self, *, team_id: str, operation_id: str) -> str:
        if not self._arn:
            raise ServiceUnavailableError("bulk operations are not configured (FASTHOOK_BULK_STATE_MACHINE_ARN)")
        try:
            answer = self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=operation_id,
                input=json.dumps({"team_id": team_id, "operation_id": operation_id, "version": 1}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return f"{self._arn.replace(':stateMachine:', ':execution:')}:{operation_id}"
            raise
        return str(answer["executionArn"])
