"""Bulk retry and replay: plan an operation from a list query's filters, run it page by page, cancel it."""
