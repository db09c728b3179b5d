"""The Docker tests' shared fixture: the local stand-in for p4lang's image
(tests/support/docker_support.py), or a skip that says what is missing."""
from __future__ import annotations

import pytest

from tests.support import docker_support
from tests.support.docker_support import Unavailable


@pytest.fixture(scope="module")
def standin(request):
    if (reason := docker_support.toolchain_missing()) is not None:
        pytest.skip(f"docker: {reason}")   # before any engine is started for nothing
    request.getfixturevalue("docker_engine")
    try:
        standin = docker_support.standin_image()
    except Unavailable as e:
        pytest.skip(f"docker: {e}")
    if (problem := docker_support.privileged_problem(standin.image)) is not None:
        pytest.skip(f"docker: {problem}")
    return standin
