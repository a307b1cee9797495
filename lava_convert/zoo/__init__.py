"""Ready-made parts for examples, benchmarks and the demo: datasets, model factories,
training."""
