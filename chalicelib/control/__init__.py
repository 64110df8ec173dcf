"""Control-API use cases: plain functions named verb_noun, dependencies as keyword arguments."""
