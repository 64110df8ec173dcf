"""FastHook's AWS resources, described once as data for the deploy stack, the local stack and the tests."""
