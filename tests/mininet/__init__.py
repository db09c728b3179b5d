"""Tests on Mininet networks and namespaces (root, Mininet, BMv2, the kernel program)."""
