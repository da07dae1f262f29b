"""The training-throughput study: conv1dx against Keras 3 and PyTorch (see README.md)."""
