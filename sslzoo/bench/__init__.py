"""Benchmarks: train-step speed against a plain Keras step, CRR and UMM overheads, the input
pipeline, MFU and peak memory (``run_benchmark``), and how the ΔR cost and the step time grow
with the batch size and the feature width (``scaling.run_scaling``); the app is
``apps/benchmark.py`` (``--scaling`` for the second)."""
