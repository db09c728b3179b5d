"""The data plane: the P4 program, its compiled artifacts and its wire formats.

The compiled BMv2 JSON and P4Info are committed (build/), so the controller
and its tests work where p4c is not installed; tests/bmv2/test_p4_build.py checks
that they are fresh whenever p4c is present.
"""
from pathlib import Path

P4_DIR = Path(__file__).resolve().parent
P4_MAIN = P4_DIR / "beaver.p4"
BUILD_DIR = P4_DIR / "build"
BMV2_JSON = BUILD_DIR / "beaver.json"
P4INFO = BUILD_DIR / "beaver.p4info.txtpb"
