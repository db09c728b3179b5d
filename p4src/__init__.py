"""The data plane: the P4 program, its compiled artifacts and its wire formats.

The compiled BMv2 JSON and P4Info are committed (build/), so the controller
and its tests work where p4c is not installed; tests/bmv2/test_p4_build.py checks
that they are fresh whenever p4c is present.  build/plain/ holds the same
program compiled as the SLB without Beaver (PLAIN_SLB: no epoch state, no
mark), the baseline Fig. 14 measures Beaver's cost against.
"""
from pathlib import Path

P4_DIR = Path(__file__).resolve().parent
P4_MAIN = P4_DIR / "beaver.p4"
BUILD_DIR = P4_DIR / "build"
BMV2_JSON = BUILD_DIR / "beaver.json"
P4INFO = BUILD_DIR / "beaver.p4info.txtpb"
PLAIN_BUILD_DIR = BUILD_DIR / "plain"
PLAIN_BMV2_JSON = PLAIN_BUILD_DIR / "beaver.json"
PLAIN_P4INFO = PLAIN_BUILD_DIR / "beaver.p4info.txtpb"
