"""Tests of the Docker image and of a new machine (root, dockerd, debootstrap)."""
