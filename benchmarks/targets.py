"""Target validation accuracy per model of params.yaml: what "reaching the target" means in
benchmarks/time_to_accuracy.py and in the learning-rate study (tests/test_benchmarks.py
checks that every model has one). Kept apart so that reading it does not start TensorFlow."""

TARGETS = {"conv1": 0.918, "conv2": 0.929, "conv3": 0.933}
