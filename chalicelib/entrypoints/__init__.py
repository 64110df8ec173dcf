"""Entry points: the only modules that import chalice. One blueprint per spec resource, plus workers."""
