"""Builds boto3 clients for FastHook's adapters, lazily: never at import time."""

from __future__ import annotations

from typing import Any

from botocore.config import Config


def make_client(service: str, *, region: str, endpoint: str | None, faults: str = "") -> Any:
    import boto3

    # The deliver worker shares one client across its delivery threads (up to 10) and its own calls.
    # Retries: "standard" (backoff with jitter, a retry quota for a failing service), not "adaptive":
    # adaptive's client-side rate limiter slows every later call of the whole client after a single
    # throttle, so one throttled write would hold up all of a worker's deliveries. Measured in the fault
    # run (bench/chaos.py, 0.5% throttles): 0.9 first deliveries/s with adaptive, 2.75/s with standard.
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=2,
        read_timeout=10,
        tcp_keepalive=True,
        max_pool_connections=32,
    )
    client = boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint, config=config)
    if faults:
        # The fault run only (settings.faults); with it empty the client carries no extra handler.
        from chalicelib.adapters.faults import install

        install(client, service, faults)
    return client
