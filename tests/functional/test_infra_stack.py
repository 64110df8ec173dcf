"""The deploy stack, proven by synthesis: what `make deploy` would create, checked without an AWS account.

No account is reachable from tests, so the synthesized CloudFormation template is the evidence: every
table, index, TTL, queue, redrive, bucket and setting must equal infra/resources.py, the API handler
may touch only this stack's resources, every dead-letter and main queue is watched, an unknown route
is a JSON 404, and cfn-lint finds no error. The stack is synthesized once for the module, in a child
process, from a copy of the app without requirements (infra/synth.py says why).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.entrypoints import deliver_worker
from chalicelib.settings import ENV_NAMES
from infra import chalice_stage, lambdas
from infra import resources as r
from infra.synth import app_without_requirements, synthesize

ROOT = Path(__file__).resolve().parents[2]

STAGE = "dev"
ALARM_EMAIL = "ops@example.com"
API_EXTRAS = Path(__file__).resolve().parents[2] / "infra" / "api_extras.json"
# Lambda sets the region itself, and AWS is the endpoint in AWS.
NOT_IN_LAMBDA = {"AWS_DEFAULT_REGION", "FASTHOOK_AWS_ENDPOINT"}
DATA_SERVICES = ("dynamodb:", "sqs:", "s3:")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    work = tmp_path_factory.mktemp("infra-stack")
    outdir = work / "cdk.out"
    template = synthesize(
        outdir, stage=STAGE, source_dir=app_without_requirements(work / "app"), alarm_email=ALARM_EMAIL
    )
    return template, outdir / f"{STAGE}.template.json"


@pytest.fixture(scope="module")
def template(synthesized: tuple[dict[str, Any], Path]) -> dict[str, Any]:
    return synthesized[0]


@pytest.fixture(scope="module")
def assertions(template: dict[str, Any]) -> Any:
    from aws_cdk.assertions import Template

    return Template.from_json(template)


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: res for key, res in template["Resources"].items() if res["Type"] == kind}


def _by_name(template: dict[str, Any], kind: str, name_property: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Physical name -> (logical id, resource) for every resource of a type."""
    return {res["Properties"][name_property]: (key, res) for key, res in _of_type(template, kind).items()}


def _logical_by_name(template: dict[str, Any]) -> dict[str, str]:
    """Physical name of every table, queue and bucket -> its logical id."""
    found = {}
    for kind, name_property in (
        ("AWS::DynamoDB::Table", "TableName"),
        ("AWS::SQS::Queue", "QueueName"),
        ("AWS::S3::Bucket", "BucketName"),
    ):
        found.update({res["Properties"][name_property]: key for key, res in _of_type(template, kind).items()})
    return found


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


def _logical_ids_in(value: Any) -> set[str]:
    """Every logical id a Ref or Fn::GetAtt inside `value` points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        return set().union(*(_logical_ids_in(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_logical_ids_in(item) for item in value)) if value else set()
    return set()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- tables -----------------------------------------------------------------------------------------


def test_every_table_of_the_data_is_deployed_with_its_keys_indexes_and_ttl(
    template: dict[str, Any], assertions: Any
) -> None:
    # When
    tables = _by_name(template, "AWS::DynamoDB::Table", "TableName")

    # Then
    assertions.resource_count_is("AWS::DynamoDB::Table", len(r.TABLES))
    assert set(tables) == {r.physical_name(STAGE, table.name) for table in r.TABLES}
    for table in r.TABLES:
        props = tables[r.physical_name(STAGE, table.name)][1]["Properties"]
        assert props["KeySchema"] == _key_schema(table.partition_key, table.sort_key)
        assert props["TimeToLiveSpecification"] == {"AttributeName": table.ttl_attribute, "Enabled": True}
        assert [
            (index["IndexName"], index["KeySchema"], index["Projection"])
            for index in props.get("GlobalSecondaryIndexes", [])
        ] == [
            (index.name, _key_schema(index.partition_key, index.sort_key), {"ProjectionType": index.projection})
            for index in table.indexes
        ]


def test_tables_are_on_demand_recoverable_encrypted_and_survive_a_teardown(assertions: Any) -> None:
    from aws_cdk.assertions import Match

    # When
    recoverable = assertions.find_resources(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "SSESpecification": {"SSEEnabled": True, "SSEType": Match.absent()},
            },
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )

    # Then: every table; SSEEnabled without a type is DynamoDB's AWS-managed KMS key
    assert len(recoverable) == len(r.TABLES)


# -- queues -----------------------------------------------------------------------------------------


def test_each_main_queue_redrives_to_its_dead_letter_queue_after_the_data_receive_count(
    template: dict[str, Any],
) -> None:
    # Given
    queues = _by_name(template, "AWS::SQS::Queue", "QueueName")
    name_of = {logical_id: name for name, (logical_id, _) in queues.items()}

    for queue in r.QUEUES:
        # When
        props = queues[r.physical_name(STAGE, queue.name)][1]["Properties"]

        # Then
        if queue.dead_letter is None:
            assert "RedrivePolicy" not in props, queue.name
            continue
        redrive = props["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == queue.max_receive_count
        assert name_of[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]] == r.physical_name(STAGE, queue.dead_letter)


def test_queue_visibility_timeouts_and_retention_match_the_data_and_messages_are_encrypted(
    template: dict[str, Any],
) -> None:
    # When
    queues = _by_name(template, "AWS::SQS::Queue", "QueueName")

    # Then
    assert set(queues) == {r.physical_name(STAGE, queue.name) for queue in r.QUEUES}
    for queue in r.QUEUES:
        props = queues[r.physical_name(STAGE, queue.name)][1]["Properties"]
        assert props["VisibilityTimeout"] == queue.visibility_timeout_s
        assert props["MessageRetentionPeriod"] == queue.retention_s
        assert props["SqsManagedSseEnabled"] is True


def test_queues_and_bucket_refuse_requests_without_tls(template: dict[str, Any]) -> None:
    # Given
    policies = list(_of_type(template, "AWS::SQS::QueuePolicy").values()) + list(
        _of_type(template, "AWS::S3::BucketPolicy").values()
    )

    # When
    denied = set()
    for policy in policies:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                denied |= _logical_ids_in(statement["Resource"])

    # Then
    assert denied == set(_of_type(template, "AWS::SQS::Queue")) | set(_of_type(template, "AWS::S3::Bucket"))


# -- bucket -----------------------------------------------------------------------------------------


def test_payload_bucket_is_private_encrypted_and_expires_bodies_after_the_data_days(
    template: dict[str, Any],
) -> None:
    # When
    buckets = _by_name(template, "AWS::S3::Bucket", "BucketName")

    # Then
    assert set(buckets) == {r.physical_name(STAGE, bucket.name) for bucket in r.BUCKETS}
    for bucket in r.BUCKETS:
        _, resource = buckets[r.physical_name(STAGE, bucket.name)]
        props = resource["Properties"]
        assert props["BucketEncryption"] == {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        }
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["LifecycleConfiguration"]["Rules"] == [
            {"Id": "retention", "Status": "Enabled", "ExpirationInDays": bucket.expire_after_days}
        ]
        assert resource["DeletionPolicy"] == "Retain"


# -- API ----------------------------------------------------------------------------------------------


def test_unknown_route_in_the_deployed_api_is_a_json_404(template: dict[str, Any], assertions: Any) -> None:
    # When
    responses = {
        res["Properties"]["ResponseType"]: res["Properties"]
        for res in _of_type(template, "AWS::ApiGateway::GatewayResponse").values()
    }

    # Then
    not_found = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert not_found["StatusCode"] == "404"
    assert not_found["RestApiId"] == {"Ref": "RestAPI"}
    body = re.sub(r"\$context\.(\w+)", "x", not_found["ResponseTemplates"]["application/json"])
    assert set(json.loads(body)) == {"error", "message"}
    assertions.has_resource("AWS::Serverless::Api", {})


def test_every_gateway_response_of_api_extras_is_a_resource_and_in_the_api_definition(
    template: dict[str, Any],
) -> None:
    # Given
    extras = json.loads(API_EXTRAS.read_text())["Resources"]
    wanted = extras["RestAPI"]["Properties"]["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]

    # When
    definition = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    resources = {key: res for key, res in extras.items() if "Type" in res}

    # Then: the routes survive the merge and every response is declared both ways
    assert definition["x-amazon-apigateway-gateway-responses"] == wanted
    assert "/v1/sources" in definition["paths"]
    for logical_id, resource in resources.items():
        assert template["Resources"][logical_id] == resource


def test_api_handler_runs_on_arm64_sized_by_the_chalice_config_with_a_month_of_logs(
    template: dict[str, Any],
) -> None:
    # Given
    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    memory = config["stages"].get(STAGE, {}).get("lambda_memory_size", config["lambda_memory_size"])

    # When
    functions = _of_type(template, "AWS::Serverless::Function")
    groups = _of_type(template, "AWS::Logs::LogGroup")

    # Then
    assert functions, "chalice generated no function"
    for props in (res["Properties"] for res in functions.values()):
        assert props["Architectures"] == ["arm64"]
    for layer in _of_type(template, "AWS::Serverless::LayerVersion").values():
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    handler = functions["APIHandler"]["Properties"]
    assert (handler["MemorySize"], handler["Timeout"]) == (memory, 30) == (512, 30)
    assert {
        (json.dumps(group["Properties"]["LogGroupName"]), group["Properties"]["RetentionInDays"])
        for group in groups.values()
    } == {(json.dumps({"Fn::Join": ["", ["/aws/lambda/", {"Ref": function_id}]]}), 30) for function_id in functions}


def test_api_handler_environment_points_at_this_stacks_resources(template: dict[str, Any]) -> None:
    # Given
    physical = {
        **{res["Properties"]["TableName"]: key for key, res in _of_type(template, "AWS::DynamoDB::Table").items()},
        **{res["Properties"]["QueueName"]: key for key, res in _of_type(template, "AWS::SQS::Queue").items()},
        **{res["Properties"]["BucketName"]: key for key, res in _of_type(template, "AWS::S3::Bucket").items()},
    }

    # When
    env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]

    # Then: each resource variable is a Ref to the stack's own, and the limits fit AWS
    assert not set(env) & NOT_IN_LAMBDA
    assert env[ENV_NAMES["stage"]] == STAGE
    assert int(env[ENV_NAMES["max_body_bytes"]]) == lambdas.DEPLOYED_MAX_BODY_BYTES < 6_000_000 * 3 // 4
    assert env[ENV_NAMES["allow_private_destinations"]] == "false"
    assert int(env[ENV_NAMES["retention_days"]]) <= min(bucket.expire_after_days for bucket in r.BUCKETS)
    for setting, _kind, name in lambdas.RESOURCE_SETTINGS:
        assert env[ENV_NAMES[setting]] == {"Ref": physical[r.physical_name(STAGE, name)]}, setting


# -- least privilege ---------------------------------------------------------------------------------


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for policy in _of_type(template, "AWS::IAM::Policy").values():
        found += policy["Properties"]["PolicyDocument"]["Statement"]
    for role in _of_type(template, "AWS::IAM::Role").values():
        for inline in role["Properties"].get("Policies", []):
            found += inline["PolicyDocument"]["Statement"]
    return found


def test_data_permissions_name_only_this_stacks_tables_queues_and_bucket(template: dict[str, Any]) -> None:
    # Given
    own = (
        set(_of_type(template, "AWS::DynamoDB::Table"))
        | set(_of_type(template, "AWS::SQS::Queue"))
        | set(_of_type(template, "AWS::S3::Bucket"))
    )

    # When
    data_statements = [
        statement
        for statement in _statements(template)
        if any(action.startswith(DATA_SERVICES) for action in _as_list(statement["Action"]))
    ]

    # Then
    assert data_statements
    for statement in data_statements:
        resources = _as_list(statement["Resource"])
        assert all(isinstance(resource, dict) for resource in resources), statement  # no "*", no foreign ARN
        assert _logical_ids_in(resources) <= own, statement
        wildcard_actions = [action for action in _as_list(statement["Action"]) if "*" in action]
        assert wildcard_actions == [], statement


def _arn_parts(resource: dict[str, Any]) -> tuple[str, str]:
    """`{"Fn::GetAtt": [id, "Arn"]}` -> (id, ""); `{"Fn::Join": ["", [GetAtt, "/index/x"]]}` -> (id, "/index/x")."""
    if "Fn::GetAtt" in resource:
        return resource["Fn::GetAtt"][0], ""
    (arn, suffix) = resource["Fn::Join"][1]
    return arn["Fn::GetAtt"][0], suffix


@pytest.mark.parametrize("function", sorted(lambdas.FUNCTION_ACCESS))
def test_each_function_role_gets_exactly_its_grants_of_infra_lambdas(template: dict[str, Any], function: str) -> None:
    # Given
    logical = _logical_by_name(template)
    function_id = lambdas.logical_id(function)
    if function_id not in template["Resources"]:
        pytest.skip(f"app.py has no {function} handler yet")
    role_id = template["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]

    # When
    attached = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in _of_type(template, "AWS::IAM::Policy").values()
        if policy["Properties"]["Roles"] == [{"Ref": role_id}] and not _starts_executions(policy)
    ]

    # Then: one policy, one statement per grant, on the resource and (for records) its indexes
    assert len(attached) == 1
    got = {
        (tuple(_as_list(statement["Action"])), tuple(_arn_parts(res) for res in _as_list(statement["Resource"])))
        for statement in attached[0]
    }
    wanted = {
        (
            grant.actions,
            tuple(
                (logical[r.physical_name(STAGE, grant.name)], suffix)
                for suffix in lambdas.grant_resources(grant, lambda _kind, _name: "")
            ),
        )
        for grant in lambdas.FUNCTION_ACCESS[function]
    }
    assert got == wanted


def _starts_executions(policy: dict[str, Any]) -> bool:
    """The API handler's Step Functions policy (checked by the state machine's own test)."""
    actions = [a for st in policy["Properties"]["PolicyDocument"]["Statement"] for a in _as_list(st["Action"])]
    return actions == list(lambdas.START_EXECUTION_ACTIONS)


def test_the_bulk_state_machine_runs_the_asl_of_infra_on_its_task_functions_with_least_privilege(
    template: dict[str, Any],
) -> None:
    # Given
    [(machine_id, machine)] = _of_type(template, "AWS::StepFunctions::StateMachine").items()
    properties = machine["Properties"]
    tasks = {lambdas.logical_id(function) for function in lambdas.BULK_TASKS}

    # When
    role = template["Resources"][properties["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    [invoke] = [st for policy in role["Policies"] for st in policy["PolicyDocument"]["Statement"]]
    [start] = [
        policy["Properties"] for policy in _of_type(template, "AWS::IAM::Policy").values() if _starts_executions(policy)
    ]
    api = template["Resources"]["APIHandler"]["Properties"]

    # Then: the machine is the ASL file as is, each placeholder filled with its task function's ARN
    assert properties["StateMachineName"] == r.physical_name(STAGE, r.BULK.name)
    assert properties["DefinitionString"] == (ROOT / "infra" / r.BULK.definition_file).read_text()
    assert properties["DefinitionSubstitutions"] == {
        placeholder: {"Fn::GetAtt": [lambdas.logical_id(function), "Arn"]} for placeholder, function in r.BULK.tasks
    }
    assert tasks <= set(_of_type(template, "AWS::Serverless::Function"))
    # and it may invoke those functions only; the API may start it and is told its ARN, nothing more
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
    assert _as_list(invoke["Action"]) == ["lambda:InvokeFunction"]
    assert {res["Fn::GetAtt"][0] for res in _as_list(invoke["Resource"])} == tasks
    assert start["Roles"] == [{"Ref": api["Role"]["Fn::GetAtt"][0]}]
    assert start["PolicyDocument"]["Statement"] == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": {"Fn::GetAtt": [machine_id, "Arn"]}}
    ]
    assert api["Environment"]["Variables"][ENV_NAMES["bulk_state_machine_arn"]] == {"Fn::GetAtt": [machine_id, "Arn"]}


def test_every_function_of_the_app_has_its_own_role_and_declared_grants(template: dict[str, Any]) -> None:
    # When
    functions = _of_type(template, "AWS::Serverless::Function")
    roles = [res["Properties"]["Role"]["Fn::GetAtt"][0] for res in functions.values()]

    # Then: a handler without an entry in infra/lambdas.py would deploy with no data access at all
    declared = {lambdas.logical_id(name) for name in lambdas.FUNCTION_ACCESS}
    assert set(functions) <= declared, "declare each function's grants in infra/lambdas.py"
    assert len(set(roles)) == len(roles)


def test_lambda_roles_write_only_their_stages_logs(template: dict[str, Any]) -> None:
    # When
    log_statements = [
        statement
        for statement in _statements(template)
        if any(action.startswith("logs:") for action in _as_list(statement["Action"]))
    ]

    # Then
    assert log_statements
    for statement in log_statements:
        assert set(_as_list(statement["Action"])) == set(lambdas.LOG_ACTIONS)
        for resource in _as_list(statement["Resource"]):
            assert f":log-group:/aws/lambda/{r.stack_name(STAGE)}" in resource, resource


def test_app_only_chalice_deploy_gets_the_same_names_and_grants_as_the_stack(template: dict[str, Any]) -> None:
    # Given
    stack_env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    name_of = {logical_id: name for name, logical_id in _logical_by_name(template).items()}

    # When
    block, policies = chalice_stage.render(stage=STAGE, region="eu-west-1", account="123456789012")

    # Then: each variable names the same physical resource the stack's Ref does
    rendered_env = block["environment_variables"]
    for setting, _kind, _name in lambdas.RESOURCE_SETTINGS:
        variable = ENV_NAMES[setting]
        assert rendered_env[variable].rsplit("/", 1)[-1] == name_of[stack_env[variable]["Ref"]]
    assert (block["lambda_architecture"], block["autogen_policy"]) == ("arm64", False)
    assert block["log_retention_in_days"] == lambdas.LOG_RETENTION_DAYS
    # and the API may start the stack's bulk state machine, which it is told the ARN of
    bulk_arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:fasthook-dev-bulk"
    assert rendered_env[ENV_NAMES["bulk_state_machine_arn"]] == bulk_arn
    name_of_machine = template["Resources"]["BulkStateMachine"]["Properties"]["StateMachineName"]
    assert bulk_arn.endswith(":" + name_of_machine)
    # and each function gets its logs plus exactly its grants, on this account's ARNs
    for function, grants in lambdas.FUNCTION_ACCESS.items():
        policy = policies[block["lambda_functions"][function]["iam_policy_file"]]
        log_statement, *statements = policy["Statement"]
        assert log_statement == lambdas.log_statement(STAGE)
        if function == "api_handler":
            *statements, start_bulk = statements
            assert (start_bulk["Action"], start_bulk["Resource"]) == (["states:StartExecution"], [bulk_arn])
        assert [statement["Action"] for statement in statements] == [list(grant.actions) for grant in grants]
        for arn in (arn for statement in statements for arn in statement["Resource"]):
            assert ":eu-west-1:123456789012:fasthook-dev-" in arn.replace("table/", "") or arn.startswith(
                "arn:aws:s3:::fasthook-dev-"
            ), arn
    assert policies[block["iam_policy_file"]]["Statement"] == [lambdas.log_statement(STAGE)]


# -- alarms and outputs ------------------------------------------------------------------------------


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        res["Properties"]["AlarmName"]: res["Properties"]
        for res in _of_type(template, "AWS::CloudWatch::Alarm").values()
    }


def test_every_dead_letter_queue_alarms_on_its_first_message(template: dict[str, Any]) -> None:
    # Given
    queue_ids = {res["Properties"]["QueueName"]: key for key, res in _of_type(template, "AWS::SQS::Queue").items()}

    # When
    watched = {
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in _alarms(template).values()
        if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["Threshold"] == 0
        and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    }

    # Then
    assert watched == {queue_ids[r.physical_name(STAGE, q.dead_letter)] for q in r.QUEUES if q.dead_letter}


def test_every_main_queue_alarms_when_its_oldest_message_waits_too_long(template: dict[str, Any]) -> None:
    # Given
    queue_ids = {res["Properties"]["QueueName"]: key for key, res in _of_type(template, "AWS::SQS::Queue").items()}

    # When
    watched = {
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]: alarm["Threshold"]
        for alarm in _alarms(template).values()
        if alarm.get("MetricName") == "ApproximateAgeOfOldestMessage"
    }

    # Then: thresholds above the visibility timeout, so a message being worked on does not page anyone
    assert set(watched) == {queue_ids[r.physical_name(STAGE, q.name)] for q in r.QUEUES if q.dead_letter}
    for queue in (q for q in r.QUEUES if q.dead_letter):
        assert watched[queue_ids[r.physical_name(STAGE, queue.name)]] > queue.visibility_timeout_s


def test_every_function_alarms_on_errors_and_throttles(template: dict[str, Any]) -> None:
    # When
    watched = {
        (alarm["Dimensions"][0]["Value"]["Ref"], alarm["MetricName"])
        for alarm in _alarms(template).values()
        if alarm.get("Namespace") == "AWS/Lambda"
        and (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    }

    # Then
    functions = set(_of_type(template, "AWS::Serverless::Function"))
    assert watched == {(function_id, metric) for function_id in functions for metric in ("Errors", "Throttles")}


def test_a_delivery_failure_rate_alarm_divides_failed_by_all_attempts_of_the_deliver_worker(
    template: dict[str, Any],
) -> None:
    # Given
    [alarm] = [a for a in _alarms(template).values() if "delivery-failure-rate" in a["AlarmName"]]
    # When
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    stats = {name: queries[name]["MetricStat"] for name in ("attempts", "failed")}
    # Then: the worker's EMF metrics of this stage, summed over the same window, as one ratio
    [expression] = [q for q in queries.values() if "Expression" in q]
    assert "failed / attempts" in expression["Expression"] and expression.get("ReturnData", True)
    assert {name: stat["Metric"]["MetricName"] for name, stat in stats.items()} == {
        "attempts": deliver_worker.ATTEMPTS_METRIC,
        "failed": deliver_worker.FAILED_ATTEMPTS_METRIC,
    }
    assert all(stat["Metric"]["Namespace"] == deliver_worker.METRICS_NAMESPACE for stat in stats.values())
    assert all(stat["Metric"]["Dimensions"] == [{"Name": "stage", "Value": STAGE}] for stat in stats.values())
    assert all(stat["Stat"] == "Sum" for stat in stats.values())
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0.25, "GreaterThanThreshold")


def test_alarms_notify_the_topic_that_mails_the_operator(template: dict[str, Any], assertions: Any) -> None:
    # Given
    (topic_id,) = _of_type(template, "AWS::SNS::Topic")

    # When
    actions = [alarm.get("AlarmActions") for alarm in _alarms(template).values()]

    # Then
    assertions.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": ALARM_EMAIL, "TopicArn": {"Ref": topic_id}}
    )
    assert actions and all(action == [{"Ref": topic_id}] for action in actions)


def test_ingest_has_a_public_function_url_that_the_api_hands_out_as_source_urls(template: dict[str, Any]) -> None:
    # Given
    if "Ingest" not in template["Resources"]:
        pytest.skip("app.py has no ingest handler yet")
    (url_id, url), *more = _of_type(template, "AWS::Lambda::Url").items()

    # When
    permissions = {
        res["Properties"]["Action"]: res["Properties"]
        for res in _of_type(template, "AWS::Lambda::Permission").values()
        if res["Properties"]["FunctionName"] == {"Fn::GetAtt": ["Ingest", "Arn"]}
    }
    api_env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    ingest_env = template["Resources"]["Ingest"]["Properties"]["Environment"]["Variables"]

    # Then: anyone may call it (providers have no AWS credentials), and only through the URL
    assert more == []
    assert url["Properties"] == {
        "AuthType": "NONE",
        "InvokeMode": "BUFFERED",
        "TargetFunctionArn": {"Fn::GetAtt": ["Ingest", "Arn"]},
    }
    assert permissions["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True
    # and source.url = FASTHOOK_INGEST_URL + "/e/<id>": scheme and host of the URL, no trailing slash
    host = {"Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": [url_id, "FunctionUrl"]}]}]}
    assert api_env[ENV_NAMES["ingest_url"]] == {"Fn::Join": ["", ["https://", host]]}
    assert ENV_NAMES["ingest_url"] not in ingest_env or "Fn::Join" not in json.dumps(
        ingest_env[ENV_NAMES["ingest_url"]]
    )
    assert template["Outputs"]["IngestUrl"]["Value"] == api_env[ENV_NAMES["ingest_url"]]


def test_ingest_runs_its_own_module_and_never_imports_the_control_api(template: dict[str, Any]) -> None:
    # Given: the handler the deployed ingest function names
    handler = template["Resources"]["Ingest"]["Properties"]["Handler"]
    module, _, function = handler.rpartition(".")

    # When: a fresh interpreter imports just that, as a cold Lambda container does
    probe = (
        "import importlib, sys; "
        f"handler = getattr(importlib.import_module({module!r}), {function!r}); "
        "print(callable(handler), sorted(m for m in ('app', 'chalice', 'pydantic', 'boto3') if m in sys.modules))"
    )
    command = [sys.executable, "-c", probe]  # our interpreter running our probe
    out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)  # noqa: S603

    # Then: the handler exists, and neither the app, chalice, pydantic nor boto3 was loaded to reach it
    assert handler == lambdas.INGEST_HANDLER
    assert out.stdout.split() == ["True", "[]"]


def test_outputs_give_the_api_url_and_every_table_queue_and_bucket(template: dict[str, Any]) -> None:
    # When
    outputs = template["Outputs"]

    # Then
    assert "execute-api" in outputs["EndpointURL"]["Value"]["Fn::Sub"]
    values = {json.dumps(output["Value"]) for output in outputs.values()}
    for kind in ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket"):
        for logical_id in _of_type(template, kind):
            assert json.dumps({"Ref": logical_id}) in values, logical_id
    described = {output.get("Description") for output in outputs.values()}
    assert {ENV_NAMES[setting] for setting, _kind, _name in lambdas.RESOURCE_SETTINGS} <= described


# -- lint -----------------------------------------------------------------------------------------------


def test_synthesized_template_has_no_cfn_lint_errors(synthesized: tuple[dict[str, Any], Path]) -> None:
    from cfnlint.api import lint_file

    # When
    matches = lint_file(synthesized[1])

    # Then: warnings are allowed (reported by `make synth`), errors are not
    errors = [f"{m.rule.id} {m.message} ({m.path})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


def test_the_queue_workers_report_partial_batch_failures_and_fit_their_queues_visibility(template):
    # Given
    from infra import lambdas
    from infra import resources as r

    functions = _of_type(template, "AWS::Serverless::Function")
    visibility = {q.name: q.visibility_timeout_s for q in r.QUEUES}
    # Then
    for function, queue in zip(lambdas.SQS_WORKERS, ("route", "deliver"), strict=True):
        props = functions[lambdas.logical_id(function)]["Properties"]
        [event] = props["Events"].values()
        assert event["Type"] == "SQS"
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert f"fasthook-{STAGE}-{queue}" in json.dumps(event["Properties"]["Queue"])
        # SQS's own guidance: visibility at least six times the function timeout, so retries never overlap.
        assert visibility[queue] >= 6 * props["Timeout"]
    [sweeper] = functions[lambdas.logical_id("sweeper")]["Properties"]["Events"].values()
    assert sweeper == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}
