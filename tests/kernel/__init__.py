"""Tests on the kernel of this machine, without BMv2: the decapsulation program under tc, processes in namespaces (root; tc, the built program, mnexec)."""
