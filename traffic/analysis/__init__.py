"""What is read from the logs and the snapshots: the ground truth (checker.py), and each
use case's analysis: deadlocks, garbage collection, messages in flight, invariants and
anomalous access."""
