"""The README's configuration table stays complete."""

from __future__ import annotations

from api.settings import Settings
from tests.conftest import ROOT


def test_every_setting_is_documented():
    readme = (ROOT / "README.md").read_text()
    missing = [f"TACTFUL_{name.upper()}" for name in Settings.model_fields if f"`TACTFUL_{name.upper()}`" not in readme]
    assert not missing, f"add these to the README's configuration table: {missing}"
