"""Platform choice and mesh strings shared by the conftest, the benchmark and the CLI."""

import pytest

from .cli.devices import parse_mesh, resolve_platform, tt_plugin_installed

pytestmark = pytest.mark.cpu


@pytest.mark.parametrize("text, shape", [("1x1", (1, 1)), ("2x4", (2, 4)), (" 8x4 ", (8, 4)), ("1x32", (1, 32))])
def test_parse_mesh(text, shape):
    assert parse_mesh(text) == shape


@pytest.mark.parametrize("text", ["2x", "x4", "2*4", "0x8", "2x4x1", ""])
def test_parse_mesh_rejects(text):
    with pytest.raises(ValueError, match="BxM"):
        parse_mesh(text)


def test_resolve_platform():
    assert resolve_platform("cpu") == "cpu"
    assert resolve_platform("auto") == ("tt" if tt_plugin_installed() else "cpu")
    with pytest.raises(ValueError, match="platform must be one of"):
        resolve_platform("gpu")
    if not tt_plugin_installed():
        with pytest.raises(ValueError, match="pip install pjrt-plugin-tt"):
            resolve_platform("tt")
