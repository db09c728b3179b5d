"""Helpers and recordings the tests share."""
