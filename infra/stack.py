"""FastHook's deploy stack: the resources of infra/resources.py plus the Chalice app, as one CDK stack.

Why one stack built from data: the tables, queues and bucket are described once in
`infra/resources.py`; the local stack (`local/provision.py`) and this stack both read that
description, and `tests/functional/test_infra_drift.py` compares the two, so what runs on a laptop
is what runs in AWS. The Chalice app is embedded with `chalice.cdk.Chalice`, which runs
`chalice package` and includes its SAM template; this stack then adds what chalice cannot express:
physical resource names in the environment, least-privilege grants, the API Gateway responses of
`infra/api_extras.json`, alarms and outputs.

The chalice stage is the construct path of the stack, so the stack's id *is* the FastHook stage
(`dev`, `prod`): `.chalice/config.json`'s settings for that stage (memory size, log level) apply to
the deployed functions exactly as they would to `chalice deploy --stage <stage>`.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import cloudformation_include as cfn_include
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib.entrypoints import deliver_worker
from chalicelib.settings import ENV_NAMES
from infra import lambdas
from infra import resources as r

API_EXTRAS = Path(__file__).resolve().parent / "api_extras.json"
API_HANDLER = lambdas.logical_id("api_handler")
INGEST = lambdas.logical_id("ingest")
# A route message should be picked up within seconds; a deliver message may sit out an SQS delay of
# up to 15 minutes (longer waits are chained), so its alarm allows twice that before paging anyone.
OLDEST_MESSAGE_ALARM_S = {r.ROUTE.name: 300, r.DELIVER.name: 1800}
# Share of delivery attempts without a 2xx in 5 minutes that pages, once there are enough to judge.
DELIVERY_FAILURE_RATE_ALARM = 0.25
MIN_ATTEMPTS_FOR_RATE = 20


def camel(logical: str) -> str:
    """`route-dlq` -> `RouteDlq`: CloudFormation logical ids and output keys allow only letters and digits."""
    return "".join(part.capitalize() for part in logical.replace("_", "-").split("-"))


class FastHookStack(cdk.Stack):
    """One FastHook stage: data resources, the Chalice API, grants, alarms and outputs."""

    def __init__(
        self,
        scope: Construct,
        stage: str,
        *,
        source_dir: Path,
        alarm_email: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, stage, stack_name=r.stack_name(stage), **kwargs)
        self.stage = stage
        self.tables = {table.name: self._table(table) for table in r.TABLES}
        self.queues: dict[str, sqs.Queue] = {}
        for queue in r.QUEUES:  # dead-letter queues come before the queues that use them
            self.queues[queue.name] = self._queue(queue)
        self.buckets = {bucket.name: self._bucket(bucket) for bucket in r.BUCKETS}

        self.chalice = self._chalice_app(source_dir)
        self._merge_api_extras()
        self._partial_batch_responses()
        self._log_groups()
        self._grant_function_access()
        self._ingest_url()
        self.alarm_topic = self._alarm_topic(alarm_email)
        self._alarms()
        self._outputs()
        self.state_machines = self._state_machines()

    # -- data resources ---------------------------------------------------------------------------

    def _table(self, table: r.Table) -> dynamodb.Table:
        construct = dynamodb.Table(
            self,
            f"{camel(table.name)}Table",
            table_name=r.physical_name(self.stage, table.name),
            partition_key=_string_key(table.partition_key),
            sort_key=_string_key(table.sort_key) if table.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=table.ttl_attribute,
            # Teams, keys and webhook history must survive a mistaken `cdk destroy`.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        for index in table.indexes:
            construct.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string_key(index.partition_key),
                sort_key=_string_key(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType[index.projection],
            )
        return construct

    def _queue(self, queue: r.Queue) -> sqs.Queue:
        dead_letter = (
            sqs.DeadLetterQueue(queue=self.queues[queue.dead_letter], max_receive_count=queue.max_receive_count)
            if queue.dead_letter
            else None
        )
        return sqs.Queue(
            self,
            f"{camel(queue.name)}Queue",
            queue_name=r.physical_name(self.stage, queue.name),
            visibility_timeout=cdk.Duration.seconds(queue.visibility_timeout_s),
            retention_period=cdk.Duration.seconds(queue.retention_s),
            dead_letter_queue=dead_letter,
            # SQS-managed keys: encrypted at rest without a KMS key every producer must be granted.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )

    def _bucket(self, bucket: r.Bucket) -> s3.Bucket:
        return s3.Bucket(
            self,
            f"{camel(bucket.name)}Bucket",
            bucket_name=r.physical_name(self.stage, bucket.name),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # The local stack's rule, same id and expiry: a body lives as long as its record.
            lifecycle_rules=[
                s3.LifecycleRule(id="retention", enabled=True, expiration=cdk.Duration.days(bucket.expire_after_days))
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def locate(self, kind: lambdas.Kind, name: str) -> str:
        """What a function is told about a resource: a table or bucket name, or a queue URL."""
        if kind == "table":
            return self.tables[name].table_name
        if kind == "queue":
            return self.queues[name].queue_url
        return self.buckets[name].bucket_name

    def arn_of(self, kind: lambdas.Kind, name: str) -> str:
        if kind == "table":
            return self.tables[name].table_arn
        if kind == "queue":
            return self.queues[name].queue_arn
        return self.buckets[name].bucket_arn

    # -- the Chalice app --------------------------------------------------------------------------

    def _chalice_app(self, source_dir: Path) -> Chalice:
        # chalice writes its package under ./chalice.out and reads the policy from a file; both are
        # needed only while the construct is built (CDK copies the zips into the cloud assembly and
        # parses the template at once), so a scratch directory keeps the repo and cdk.out clean.
        with tempfile.TemporaryDirectory(prefix="fasthook-chalice-") as scratch, contextlib.chdir(scratch):
            policy_file = Path(scratch) / "log-policy.json"
            # Logs only: the stack attaches each function's data grants in _grant_function_access,
            # where the resources are CDK objects rather than ARNs spelled out by hand.
            policy_file.write_text(json.dumps(lambdas.policy_document([lambdas.log_statement(self.stage)])))
            stage_config = lambdas.stage_config(
                environment_variables=lambdas.environment(self.stage, self.locate),
                iam_policy_file=str(policy_file),
            )
            return Chalice(self, "App", source_dir=str(source_dir), stage_config=stage_config)

    def _merge_api_extras(self) -> None:
        """Add infra/api_extras.json to chalice's template, as `chalice package --merge-template` does."""
        extras = json.loads(API_EXTRAS.read_text())
        included = self.chalice.sam_template
        for logical_id, resource in extras["Resources"].items():
            if "Type" not in resource:
                # A fragment of a resource chalice generated (the API definition): CDK deep-merges
                # overrides into the rendered resource, exactly like chalice's merge.
                included.get_resource(logical_id).add_override("Properties", resource["Properties"])
                continue
            cdk.CfnResource(
                self,
                logical_id,
                type=resource["Type"],
                properties=_resolve_refs(resource.get("Properties", {}), included),
            ).override_logical_id(logical_id)  # the id `make package` gives it, so both templates agree

    def _partial_batch_responses(self) -> None:
        """The workers answer with batchItemFailures; chalice cannot declare that, so every SQS event
        source it generated gets ReportBatchItemFailures (else one failed message redelivers the batch)."""
        included = self.chalice.sam_template
        for function in lambdas.SQS_WORKERS:
            function_id = lambdas.logical_id(function)
            included.get_resource(function_id).add_override(
                f"Properties.Events.{function_id}SqsEventSource.Properties.FunctionResponseTypes",
                ["ReportBatchItemFailures"],
            )

    def function_ids(self) -> list[str]:
        """Logical ids of every Lambda chalice generated (the API handler, and later each handler)."""
        return [
            self.resolve(child.logical_id)
            for child in self.chalice.sam_template.node.children
            if isinstance(child, cdk.CfnResource) and child.cfn_resource_type == "AWS::Serverless::Function"
        ]

    def _log_groups(self) -> None:
        # Named after the function, so CloudFormation creates it right after the function and before
        # any traffic: Lambda then writes into a group with a retention instead of creating one that
        # keeps logs forever.
        for function_id in self.function_ids():
            group = logs.CfnLogGroup(
                self,
                f"{function_id}LogGroup",
                log_group_name=f"/aws/lambda/{self.chalice.get_resource(function_id).ref}",
                retention_in_days=lambdas.LOG_RETENTION_DAYS,
            )
            # Logs go with their function: a retained group would outlive every event it can hold.
            group.apply_removal_policy(cdk.RemovalPolicy.DESTROY)

    # -- least privilege --------------------------------------------------------------------------

    def _grant_function_access(self) -> None:
        present = set(self.function_ids())
        for function, grants in lambdas.FUNCTION_ACCESS.items():
            function_id = lambdas.logical_id(function)
            if function_id not in present:
                continue  # declared ahead of its handler; nothing to grant yet
            # With autogen_policy off chalice gives each function its own role; the function's Role
            # property (Fn::GetAtt [<role>, Arn]) names it, whatever chalice calls it.
            role_ref = self.resolve(self.chalice.get_resource(function_id).role)
            role_id = role_ref["Fn::GetAtt"][0]
            role = iam.Role.from_role_name(self, f"{function_id}RoleRef", self.chalice.get_resource(role_id).ref)
            iam.Policy(
                self,
                f"{function_id}Access",
                roles=[role],
                document=iam.PolicyDocument.from_json(
                    lambdas.policy_document(lambdas.grant_statements(grants, self.arn_of))
                ),
            )

    def _ingest_url(self) -> None:
        """Put a public function URL on ingest: providers must reach it without AWS credentials.

        Chalice cannot declare function URLs, so the URL is added here; its address becomes the API's
        FASTHOOK_INGEST_URL (source.url is built from it). Only the API handler gets the variable:
        given to every function it would make ingest depend on its own URL.
        """
        if INGEST not in self.function_ids():
            return
        # Chalice points every function at app.py, which imports every blueprint, pydantic and the
        # whole control API: ~300 ms before the first webhook of a cold container is read. The same
        # zip holds chalicelib/, so ingest starts from its own module instead (INGEST_HANDLER).
        self.chalice.get_resource(INGEST).add_property_override("Handler", lambdas.INGEST_HANDLER)
        function = lambda_.Function.from_function_attributes(
            self,
            "IngestFunction",
            function_arn=self.chalice.get_resource(INGEST).get_att("Arn").to_string(),
            same_environment=True,  # lets CDK add the invoke permissions an auth-NONE URL needs
        )
        url = lambda_.FunctionUrl(
            self,
            "IngestFunctionUrl",
            function=function,
            auth_type=lambda_.FunctionUrlAuthType.NONE,  # providers sign with their own schemes
            invoke_mode=lambda_.InvokeMode.BUFFERED,
        )
        # The URL ends in "/"; FastHook appends "/e/<source_id>", so keep only scheme and host.
        base = "https://" + cdk.Fn.select(2, cdk.Fn.split("/", url.url))
        self.chalice.add_environment_variable(ENV_NAMES["ingest_url"], base, API_HANDLER)
        cdk.CfnOutput(self, "IngestUrl", value=base, description=ENV_NAMES["ingest_url"])

    # -- bulk operations --------------------------------------------------------------------------

    def _state_machines(self) -> dict[str, sfn.CfnStateMachine]:
        """Each state machine of infra/ from its ASL file, as is, with the task Lambdas' ARNs substituted in.

        The definition string is the file the local stack also loads (DefinitionSubstitutions fill the
        same placeholders), so the two cannot run different machines. The machine's role may invoke its
        task functions and nothing else; the API handler may start executions of it and nothing else.
        """
        present = set(self.function_ids())
        machines: dict[str, sfn.CfnStateMachine] = {}
        for machine in r.STATE_MACHINES:
            task_ids = {placeholder: lambdas.logical_id(function) for placeholder, function in machine.tasks}
            if not set(task_ids.values()) <= present:
                continue  # declared ahead of its handlers
            arns = {
                placeholder: self.chalice.get_resource(function_id).get_att("Arn").to_string()
                for placeholder, function_id in task_ids.items()
            }
            role = iam.Role(
                self,
                f"{camel(machine.name)}StateMachineRole",
                assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                inline_policies={
                    "InvokeTasks": iam.PolicyDocument(
                        statements=[
                            iam.PolicyStatement(actions=list(lambdas.INVOKE_ACTIONS), resources=sorted(arns.values()))
                        ]
                    )
                },
            )
            machines[machine.name] = sfn.CfnStateMachine(
                self,
                f"{camel(machine.name)}StateMachine",
                state_machine_name=r.physical_name(self.stage, machine.name),
                role_arn=role.role_arn,
                definition_string=(Path(__file__).resolve().parent / machine.definition_file).read_text(),
                definition_substitutions=arns,
            )
        bulk = machines.get(r.BULK.name)
        if bulk is not None:
            self.chalice.add_environment_variable(ENV_NAMES["bulk_state_machine_arn"], bulk.attr_arn, API_HANDLER)
            role_ref = self.resolve(self.chalice.get_resource(API_HANDLER).role)
            role_name = self.chalice.get_resource(role_ref["Fn::GetAtt"][0]).ref
            iam.Policy(
                self,
                f"{API_HANDLER}StartBulk",
                roles=[iam.Role.from_role_name(self, f"{API_HANDLER}BulkRoleRef", role_name)],
                statements=[
                    iam.PolicyStatement(actions=list(lambdas.START_EXECUTION_ACTIONS), resources=[bulk.attr_arn])
                ],
            )
            cdk.CfnOutput(
                self, "BulkStateMachineArn", value=bulk.attr_arn, description=ENV_NAMES["bulk_state_machine_arn"]
            )
        return machines

    # -- alarms and outputs -----------------------------------------------------------------------

    def _alarm_topic(self, alarm_email: str | None) -> sns.Topic | None:
        if not alarm_email:
            return None
        topic = sns.Topic(self, "AlarmTopic", topic_name=r.physical_name(self.stage, "alarms"), enforce_ssl=True)
        topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            camel(name),
            alarm_name=r.physical_name(self.stage, name),
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # No datapoints means an idle queue or function, which is healthy.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.alarm_topic is not None:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alarm_topic))

    def _alarms(self) -> None:
        minute = cdk.Duration.minutes(1)
        for queue in r.QUEUES:
            construct = self.queues[queue.name]
            if queue.dead_letter is None:
                # Anything in a dead-letter queue is work FastHook gave up on: a person has to look.
                self._alarm(
                    f"{queue.name}-depth",
                    construct.metric_approximate_number_of_messages_visible(period=minute, statistic="Maximum"),
                    0,
                    f"{r.physical_name(self.stage, queue.name)} holds messages the workers gave up on.",
                )
            else:
                limit = OLDEST_MESSAGE_ALARM_S[queue.name]
                self._alarm(
                    f"{queue.name}-oldest-message",
                    construct.metric_approximate_age_of_oldest_message(period=minute, statistic="Maximum"),
                    limit,
                    f"{r.physical_name(self.stage, queue.name)} has a message older than {limit} s: "
                    "its worker is behind or down.",
                )
        for function_id in self.function_ids():
            # An error is a crash or timeout, never a user's mistake (those are 4xx answers), and a
            # throttle is lost capacity: either deserves a look.
            for metric_name in ("Errors", "Throttles"):
                self._alarm(
                    f"{function_id.lower()}-{metric_name.lower()}",
                    cloudwatch.Metric(
                        namespace="AWS/Lambda",
                        metric_name=metric_name,
                        dimensions_map={"FunctionName": self.chalice.get_resource(function_id).ref},
                        period=cdk.Duration.minutes(5),
                        statistic="Sum",
                    ),
                    0,
                    f"Lambda {function_id} of {r.stack_name(self.stage)} reported {metric_name.lower()}.",
                )

        self._delivery_failure_rate_alarm()

    def _delivery_failure_rate_alarm(self) -> None:
        """Receivers failing: the share of attempts without a 2xx, from the deliver worker's metrics.

        Below MIN_ATTEMPTS_FOR_RATE attempts in the window the rate is taken as 0, so one failed
        attempt of a quiet stage does not page anyone; a DLQ or an age alarm covers stuck work.
        """
        window = cdk.Duration.minutes(5)

        def attempts(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=deliver_worker.METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"stage": self.stage},
                period=window,
                statistic="Sum",
            )

        self._alarm(
            "delivery-failure-rate",
            cloudwatch.MathExpression(
                expression=f"IF(attempts >= {MIN_ATTEMPTS_FOR_RATE}, failed / attempts, 0)",
                using_metrics={
                    "attempts": attempts(deliver_worker.ATTEMPTS_METRIC),
                    "failed": attempts(deliver_worker.FAILED_ATTEMPTS_METRIC),
                },
                period=window,
                label="share of delivery attempts that failed",
            ),
            DELIVERY_FAILURE_RATE_ALARM,
            f"More than {DELIVERY_FAILURE_RATE_ALARM:.0%} of delivery attempts of {r.stack_name(self.stage)} "
            "failed in 5 minutes: receivers are down or refusing.",
        )

    def _outputs(self) -> None:
        # chalice's template already outputs EndpointURL (the API URL), RestAPIId and APIHandlerName;
        # _ingest_url adds IngestUrl.
        # A description names the variable of .chalice/config.json the value belongs in.
        settings = {(kind, name): ENV_NAMES[setting] for setting, kind, name in lambdas.RESOURCE_SETTINGS}
        dead_letter_of = {queue.dead_letter: queue.name for queue in r.QUEUES if queue.dead_letter}
        for table in r.TABLES:
            cdk.CfnOutput(
                self,
                f"{camel(table.name)}TableName",
                value=self.tables[table.name].table_name,
                description=settings.get(("table", table.name), "table"),
            )
        for queue in r.QUEUES:
            cdk.CfnOutput(
                self,
                f"{camel(queue.name)}QueueUrl",
                value=self.queues[queue.name].queue_url,
                description=settings.get(
                    ("queue", queue.name), f"dead-letter queue of {dead_letter_of.get(queue.name)}"
                ),
            )
        for bucket in r.BUCKETS:
            cdk.CfnOutput(
                self,
                f"{camel(bucket.name)}BucketName",
                value=self.buckets[bucket.name].bucket_name,
                description=settings.get(("bucket", bucket.name), "bucket"),
            )


def _string_key(name: str) -> dynamodb.Attribute:
    # Every key FastHook writes is a string (`TEAM#tm_x`), as in local/provision.py.
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def _resolve_refs(value: Any, included: cfn_include.CfnInclude) -> Any:
    """Turn `{"Ref": "<chalice resource>"}` into a CDK reference, so the dependency is explicit."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return included.get_resource(value["Ref"]).ref
        return {key: _resolve_refs(item, included) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(item, included) for item in value]
    return value
