"""Benchmarks: train-step speed against a plain Keras step, CRR and UMM overheads, the input
pipeline, MFU and peak memory (``run_benchmark``; the app is ``apps/benchmark.py``)."""
