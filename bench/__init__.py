"""Benchmarks of FastHook on the embedded stack; `make bench` runs bench.run. Results go to bench/results/."""
