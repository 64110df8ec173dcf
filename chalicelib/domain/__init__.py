"""Pure domain code: no IO, no AWS, no HTTP framework."""
