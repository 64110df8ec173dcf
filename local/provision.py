"""Creates every table, index, TTL, queue, dead-letter queue and bucket of infra/resources.py on an endpoint.

The local stack and the tests call this; the deploy stack reads the same definitions. Creation is
idempotent, so `make run` can start against an endpoint that already has the resources.
"""

from __future__ import annotations

import json
from typing import Any

from infra import resources as r


def _table_spec(table: r.Table, name: str) -> dict[str, Any]:
    attrs = {table.partition_key}
    key_schema = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
    if table.sort_key:
        attrs.add(table.sort_key)
        key_schema.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
    gsis = []
    for index in table.indexes:
        schema = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
        attrs.add(index.partition_key)
        if index.sort_key:
            schema.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
            attrs.add(index.sort_key)
        gsis.append({"IndexName": index.name, "KeySchema": schema, "Projection": {"ProjectionType": index.projection}})
    spec: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attrs)],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        spec["GlobalSecondaryIndexes"] = gsis
    return spec


# Step Functions needs a role ARN; moto checks only its shape (the embedded stack runs the tasks itself).
LOCAL_ACCOUNT = "123456789012"
LOCAL_ROLE = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/fasthook-local-states"


def _state_machines(stage: str, stepfunctions: Any, region: str) -> dict[str, str]:
    """Create or update each state machine of infra/ with its task Lambdas' local ARNs; name -> ARN."""
    existing = {
        machine["name"]: machine["stateMachineArn"]
        for page in stepfunctions.get_paginator("list_state_machines").paginate()
        for machine in page["stateMachines"]
    }
    arns: dict[str, str] = {}
    for machine in r.STATE_MACHINES:
        name = r.physical_name(stage, machine.name)
        functions = {
            function: f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{r.stack_name(stage)}-{function}"
            for _, function in machine.tasks
        }
        definition = r.state_machine_definition(machine, functions)
        if name in existing:
            stepfunctions.update_state_machine(stateMachineArn=existing[name], definition=definition)
            arns[machine.name] = existing[name]
        else:
            arns[machine.name] = stepfunctions.create_state_machine(
                name=name, definition=definition, roleArn=LOCAL_ROLE
            )["stateMachineArn"]
    return arns


def provision(
    *, stage: str, dynamodb: Any, sqs: Any, s3: Any, region: str, stepfunctions: Any = None
) -> dict[str, str]:
    """Create what is missing and return the FastHook environment variables that point at it."""
    existing = set(dynamodb.list_tables().get("TableNames", []))
    for table in r.TABLES:
        name = r.physical_name(stage, table.name)
        if name not in existing:
            dynamodb.create_table(**_table_spec(table, name))
            dynamodb.get_waiter("table_exists").wait(TableName=name)
            if table.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
                )
    urls: dict[str, str] = {}
    for queue in r.QUEUES:  # dead-letter queues are listed before the queues that use them
        attributes = {
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "MessageRetentionPeriod": str(queue.retention_s),
        }
        if queue.dead_letter:
            dlq_arn = sqs.get_queue_attributes(QueueUrl=urls[queue.dead_letter], AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
            )
        urls[queue.name] = sqs.create_queue(QueueName=r.physical_name(stage, queue.name), Attributes=attributes)[
            "QueueUrl"
        ]
    for bucket in r.BUCKETS:
        name = r.physical_name(stage, bucket.name)
        kwargs: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**kwargs)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "retention",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "Expiration": {"Days": bucket.expire_after_days},
                    }
                ]
            },
        )
    machines = _state_machines(stage, stepfunctions, region) if stepfunctions is not None else {}
    return {
        **({"FASTHOOK_BULK_STATE_MACHINE_ARN": machines[r.BULK.name]} if r.BULK.name in machines else {}),
        "FASTHOOK_STAGE": stage,
        "FASTHOOK_CONTROL_TABLE": r.physical_name(stage, r.CONTROL.name),
        "FASTHOOK_RECORDS_TABLE": r.physical_name(stage, r.RECORDS.name),
        "FASTHOOK_ROUTE_QUEUE_URL": urls[r.ROUTE.name],
        "FASTHOOK_DELIVER_QUEUE_URL": urls[r.DELIVER.name],
        "FASTHOOK_ROUTE_DLQ_URL": urls[r.ROUTE_DLQ.name],
        "FASTHOOK_DELIVER_DLQ_URL": urls[r.DELIVER_DLQ.name],
        "FASTHOOK_PAYLOAD_BUCKET": r.physical_name(stage, r.PAYLOADS.name),
    }
