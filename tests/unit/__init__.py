"""Tests that need nothing beyond Python and the loopback interface."""
