"""FastHook's Chalice app: registers the control API blueprints and the Lambda handlers, nothing else."""

from chalice import Chalice, Rate

from chalicelib.entrypoints import (
    attempts,
    auth,
    bulk_operations,
    bulk_tasks,
    connections,
    dashboard,
    destinations,
    events,
    health,
    ingress,
    metrics,
    openapi,
    project_secrets,
    requests,
    sources,
    transformations,
)
from chalicelib.entrypoints.api import CONTROL_PREFIXES
from chalicelib.entrypoints.deliver_worker import handle_deliver_batch
from chalicelib.entrypoints.route_worker import handle_route_batch
from chalicelib.entrypoints.sweeper import handle_sweep
from chalicelib.settings import get_settings

app = Chalice(app_name="fasthook")

for module in (
    health,
    auth,
    sources,
    destinations,
    connections,
    transformations,
    project_secrets,
    events,
    requests,
    bulk_operations,
    attempts,
    metrics,
    openapi,
):
    for prefix in CONTROL_PREFIXES:
        app.register_blueprint(module.api.blueprint(), url_prefix=prefix)
# The dashboard calls /api/auth/...: the auth blueprint's /auth/... routes under /api.
app.register_blueprint(auth.api.blueprint(), url_prefix="/api")
# The dashboard: `/` and its assets under `/ui/` (static files, not API routes; only at the root).
app.register_blueprint(dashboard.bp)

# Providers call ingest through a Lambda function URL (infra/ adds the URL; Chalice has no support).
app.lambda_function(name="ingest")(ingress.handle_function_url)

# The bulk operation state machine's tasks (infra/bulk_operation.asl.json names them by these names).
app.lambda_function(name="bulk_plan")(bulk_tasks.handle_plan)
app.lambda_function(name="bulk_pages")(bulk_tasks.handle_pages)
app.lambda_function(name="bulk_fail")(bulk_tasks.handle_fail)

# Workers: the handlers take the raw Lambda event and answer with partial batch failures (infra/ turns
# on ReportBatchItemFailures for the event source mappings).
_queues = get_settings()


@app.on_sqs_message(queue=_queues.queue_name("route"), batch_size=10, name="route_worker")
def route_worker(event):  # type: ignore[no-untyped-def]
    return handle_route_batch(event.to_dict(), event.context)


@app.on_sqs_message(queue=_queues.queue_name("deliver"), batch_size=10, name="deliver_worker")
def deliver_worker(event):  # type: ignore[no-untyped-def]
    return handle_deliver_batch(event.to_dict(), event.context)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sweeper")
def sweeper(event):  # type: ignore[no-untyped-def]
    return handle_sweep(event.to_dict(), event.context)
