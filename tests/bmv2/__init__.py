"""Tests on the real BMv2 and p4c: packet tests, the controller and the engine."""
