"""Implementations of the ports: the only modules that import boto3 or an HTTP client."""
