"""DynamoDB adapters. Key formats live in keys.py, one function per access pattern (docs/dynamodb.md)."""
