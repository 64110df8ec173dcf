"""The data path in reading order: ingest -> route -> deliver -> record, plus the sweeper."""
