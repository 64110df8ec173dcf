"""The embedded stack behind `make run` and the tests: moto in-process plus FastHook's workers. Not shipped."""
