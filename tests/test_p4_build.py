"""The committed build (p4src/build) is what p4c makes of p4src/ today."""
import pytest

from beaver.p4src import BMV2_JSON, BUILD_DIR, P4INFO
from beaver.p4src.compiler import compile_p4, compiler_available, compiler_version

pytestmark = pytest.mark.skipif(not compiler_available(),
                                reason="p4c-bm2-ss is not installed (it comes with the Docker image)")


def test_committed_build_is_fresh(tmp_path):
    json_path, p4info_path = compile_p4(tmp_path)
    assert p4info_path.read_text() == P4INFO.read_text(), \
        "P4Info is stale: run python -m beaver.p4src.compiler"
    committed_version = (BUILD_DIR / "p4c-version.txt").read_text().strip()
    if committed_version != compiler_version():
        pytest.skip(f"BMv2 JSON built by {committed_version!r}, this is "
                    f"{compiler_version()!r}: only the P4Info was compared")
    assert json_path.read_text() == BMV2_JSON.read_text(), \
        "BMv2 JSON is stale: run python -m beaver.p4src.compiler"
