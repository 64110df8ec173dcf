"""Local and deployed resources cannot drift: the moto stack of `make run` against the CDK template.

`local/provision.py` creates FastHook's resources with boto3 calls; `infra/stack.py` declares them as
CloudFormation. Both read infra/resources.py, but each translates it by hand, so a change to one
translation (an index key, a TTL attribute, a visibility timeout, a redrive target) could make the
app work on a laptop and fail in AWS. Here the same stage is provisioned on moto and synthesized, and
what moto reports is compared with what the template declares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra import resources as r
from infra.synth import app_without_requirements, synthesize

STAGE = "drift"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("infra-drift")
    return synthesize(work / "cdk.out", stage=STAGE, source_dir=app_without_requirements(work / "app"))


@pytest.fixture(scope="module")
def local() -> Iterator[dict[str, Any]]:
    """moto clients after local/provision.py created the stage, plus the environment it returned."""
    import boto3
    from moto import mock_aws

    from local.provision import provision

    with mock_aws():
        clients = {name: boto3.client(name, region_name=REGION) for name in ("dynamodb", "sqs", "s3")}
        env = provision(stage=STAGE, region=REGION, **clients)
        yield {"env": env, **clients}


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: res["Properties"] for key, res in template["Resources"].items() if res["Type"] == kind}


def _index_shapes(indexes: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    return {index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"]) for index in indexes}


def test_local_and_deployed_tables_have_the_same_names_keys_and_attribute_types(
    template: dict[str, Any], local: dict[str, Any]
) -> None:
    # Given
    deployed = {props["TableName"]: props for props in _of_type(template, "AWS::DynamoDB::Table").values()}

    # When
    described = {name: local["dynamodb"].describe_table(TableName=name)["Table"] for name in deployed}

    # Then
    assert set(local["dynamodb"].list_tables()["TableNames"]) == set(deployed)
    for name, props in deployed.items():
        table = described[name]
        assert table["KeySchema"] == props["KeySchema"], name
        assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
            props["AttributeDefinitions"], key=lambda a: a["AttributeName"]
        ), name
        assert table["BillingModeSummary"]["BillingMode"] == props["BillingMode"], name


def test_local_and_deployed_indexes_have_the_same_names_and_keys(
    template: dict[str, Any], local: dict[str, Any]
) -> None:
    # Given
    deployed = {props["TableName"]: props for props in _of_type(template, "AWS::DynamoDB::Table").values()}

    for name, props in deployed.items():
        # When
        table = local["dynamodb"].describe_table(TableName=name)["Table"]

        # Then
        assert _index_shapes(table.get("GlobalSecondaryIndexes", [])) == _index_shapes(
            props.get("GlobalSecondaryIndexes", [])
        ), name


def test_local_and_deployed_tables_expire_items_by_the_same_ttl_attribute(
    template: dict[str, Any], local: dict[str, Any]
) -> None:
    # Given
    deployed = {props["TableName"]: props for props in _of_type(template, "AWS::DynamoDB::Table").values()}

    for name, props in deployed.items():
        # When
        ttl = local["dynamodb"].describe_time_to_live(TableName=name)["TimeToLiveDescription"]

        # Then
        assert ttl["TimeToLiveStatus"] == "ENABLED", name
        assert ttl["AttributeName"] == props["TimeToLiveSpecification"]["AttributeName"], name


def test_local_and_deployed_queues_have_the_same_names_timeouts_retention_and_redrive(
    template: dict[str, Any], local: dict[str, Any]
) -> None:
    # Given
    queues = _of_type(template, "AWS::SQS::Queue")
    name_of = {logical_id: props["QueueName"] for logical_id, props in queues.items()}
    sqs = local["sqs"]

    for props in queues.values():
        # When
        url = sqs.get_queue_url(QueueName=props["QueueName"])["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

        # Then
        assert int(attributes["VisibilityTimeout"]) == props["VisibilityTimeout"], props["QueueName"]
        assert int(attributes["MessageRetentionPeriod"]) == props["MessageRetentionPeriod"], props["QueueName"]
        if "RedrivePolicy" not in props:
            assert "RedrivePolicy" not in attributes, props["QueueName"]
            continue
        redrive = json.loads(attributes["RedrivePolicy"])
        assert (
            redrive["deadLetterTargetArn"].rsplit(":", 1)[-1]
            == name_of[props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]
        )
        assert int(redrive["maxReceiveCount"]) == props["RedrivePolicy"]["maxReceiveCount"]
    assert {url.rsplit("/", 1)[-1] for url in sqs.list_queues()["QueueUrls"]} == set(name_of.values())


def test_local_and_deployed_buckets_have_the_same_names_and_expiry(
    template: dict[str, Any], local: dict[str, Any]
) -> None:
    # Given
    deployed = {props["BucketName"]: props for props in _of_type(template, "AWS::S3::Bucket").values()}

    # When
    names = {bucket["Name"] for bucket in local["s3"].list_buckets()["Buckets"]}

    # Then
    assert names == set(deployed)
    for name, props in deployed.items():
        rules = local["s3"].get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        assert [(rule["ID"], rule["Status"], rule["Expiration"]["Days"]) for rule in rules] == [
            (rule["Id"], rule["Status"], rule["ExpirationInDays"]) for rule in props["LifecycleConfiguration"]["Rules"]
        ]


def test_local_and_deployed_functions_are_told_the_same_resource_names(
    template: dict[str, Any], local: dict[str, Any]
) -> None:
    # Given
    physical = {
        key: props.get("TableName") or props.get("QueueName") or props.get("BucketName")
        for kind in ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket")
        for key, props in _of_type(template, kind).items()
    }
    deployed_env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]

    # When
    resource_vars = {name: value for name, value in local["env"].items() if name != "FASTHOOK_STAGE"}

    # Then: queue URLs differ by endpoint, never by queue name
    for name, value in resource_vars.items():
        assert value.rsplit("/", 1)[-1] == physical[deployed_env[name]["Ref"]], name
    assert local["env"]["FASTHOOK_STAGE"] == deployed_env["FASTHOOK_STAGE"] == STAGE


def test_every_resource_of_the_data_exists_in_both_stacks(template: dict[str, Any], local: dict[str, Any]) -> None:
    # When
    deployed = {
        props.get("TableName") or props.get("QueueName") or props.get("BucketName")
        for kind in ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket")
        for props in _of_type(template, kind).values()
    }
    local_names = (
        set(local["dynamodb"].list_tables()["TableNames"])
        | {url.rsplit("/", 1)[-1] for url in local["sqs"].list_queues()["QueueUrls"]}
        | {bucket["Name"] for bucket in local["s3"].list_buckets()["Buckets"]}
    )

    # Then
    wanted = {r.physical_name(STAGE, item.name) for item in (*r.TABLES, *r.QUEUES, *r.BUCKETS)}
    assert deployed == local_names == wanted


def test_local_and_deployed_bulk_state_machines_run_the_same_definition_on_the_same_tasks(
    template: dict[str, Any], local: dict[str, Any]
) -> None:
    # Given: the local stack's state machine, created as `make run` creates it
    import boto3

    from infra.lambdas import logical_id
    from local.provision import LOCAL_ACCOUNT, provision

    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    data = {name: local[name] for name in ("dynamodb", "sqs", "s3")}
    env = provision(stage=STAGE, region=REGION, stepfunctions=stepfunctions, **data)
    described = stepfunctions.describe_state_machine(stateMachineArn=env["FASTHOOK_BULK_STATE_MACHINE_ARN"])
    [deployed] = _of_type(template, "AWS::StepFunctions::StateMachine").values()

    # When: each local task ARN is put back as the placeholder it filled
    definition = described["definition"]
    for placeholder, function in r.BULK.tasks:
        arn = f"arn:aws:lambda:{REGION}:{LOCAL_ACCOUNT}:function:{r.stack_name(STAGE)}-{function}"
        definition = definition.replace(arn, "${" + placeholder + "}")

    # Then: one name, one definition, and each placeholder names the same task function in both
    assert described["name"] == deployed["StateMachineName"] == r.physical_name(STAGE, r.BULK.name)
    assert definition == deployed["DefinitionString"]
    assert deployed["DefinitionSubstitutions"] == {
        placeholder: {"Fn::GetAtt": [logical_id(function), "Arn"]} for placeholder, function in r.BULK.tasks
    }
