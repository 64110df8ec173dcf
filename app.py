"""FastHook's Chalice app: registers the control API blueprints and the Lambda handlers, nothing else."""

from chalice import Chalice

from chalicelib.entrypoints import (
    auth,
    connections,
    destinations,
    health,
    openapi,
    project_secrets,
    sources,
    transformations,
)
from chalicelib.entrypoints.api import CONTROL_PREFIXES

app = Chalice(app_name="fasthook")

for module in (health, auth, sources, destinations, connections, transformations, project_secrets, openapi):
    for prefix in CONTROL_PREFIXES:
        app.register_blueprint(module.api.blueprint(), url_prefix=prefix)
# The dashboard calls /api/auth/...: the auth blueprint's /auth/... routes under /api.
app.register_blueprint(auth.api.blueprint(), url_prefix="/api")
