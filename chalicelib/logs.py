"""FastHook's loggers: powertools JSON loggers at the level the stage sets.

`FASTHOOK_LOG_LEVEL` (settings.log_level) is the level of every FastHook logger: INFO by default,
WARNING in the prod stage of `.chalice/config.json`. At INFO each webhook writes a line per stage
(ingested, routed, delivered); at WARNING only what needs an operator is logged, since every
Request, Event and Attempt is stored and searchable anyway, and CloudWatch Logs bills each line.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from chalicelib.settings import load_settings


def service_logger(service: str, *, child: bool = False) -> Logger:
    """The logger of one FastHook service (`fasthook-ingest`, `fasthook-route`, ...).

    `child`: a module's logger under its entry point's (its lines go out through the parent's handler);
    it gets the level too, since Python checks only the level of the logger a line starts from.

    Loggers are made at import, so this reads the environment afresh (load_settings) instead of
    filling get_settings' cache: a process that imports an entry point before it sets its stage's
    variables (the CDK synthesis imports the deliver worker, then Chalice imports app.py with the
    stage's environment) must not have the settings frozen at that moment.
    """
    return Logger(service=service, child=child, level=load_settings().log_level)
