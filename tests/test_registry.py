"""The module registry is the one source of module names, stages, asset prefixes and kinds."""

from __future__ import annotations

import json

import pytest

from edgeaffect import registry
from edgeaffect.errors import ProfileError
from edgeaffect.models import ASSETS, find_model
from edgeaffect.profiles import parse_profile


def test_shipped_assets_match_registry_prefix_and_kind() -> None:
    for spec in registry.REGISTRY:
        manifest = find_model(ASSETS, spec.name)
        assert manifest.name.startswith(spec.asset_prefix + "_")
        assert json.loads(manifest.read_text())["kind"] == spec.kind


@pytest.mark.parametrize("alias,module", [("au", "au"), ("aus", "au"), ("AFFECT", "temporal"), ("temporal", "temporal")])
def test_lookup_accepts_every_name_of_a_module(alias: str, module: str) -> None:
    assert registry.lookup(alias).name == module
    assert find_model(ASSETS, alias) == find_model(ASSETS, module)


def test_lookup_rejects_unknown_names_with_the_choices() -> None:
    with pytest.raises(ValueError, match="choose from detector, landmarks, eyes, au, temporal"):
        registry.lookup("va")


def test_stages_are_derived_from_the_registry() -> None:
    assert registry.STAGE_NAMES == ("track", "au", "affect")
    assert registry.STAGE_MODULES == {"track": ("detector", "landmarks", "eyes"), "au": ("au",), "affect": ("temporal",)}
    assert not registry.optional_stage("track") and registry.optional_stage("au") and registry.optional_stage("affect")


def test_analyzer_stages_follow_the_registry(video_analyzer) -> None:  # noqa: ANN001
    an = video_analyzer()
    stages = an.stages()
    assert [(s.name, s.modules, s.optional) for s in stages] == [
        (n, registry.STAGE_MODULES[n], registry.optional_stage(n)) for n in registry.STAGE_NAMES
    ]
    assert tuple(an.model_manifests) == registry.MODULES


def test_profile_module_keys_come_from_the_registry() -> None:
    with pytest.raises(ProfileError, match=r"threads\.aus: unknown key \(did you mean 'au'\?\)"):
        parse_profile({"threads": {"aus": 2}}, "t.toml")
    p = parse_profile({"threads": {m: 1 for m in registry.MODULES}}, "t.toml")
    assert set(p.threads) == set(registry.MODULES)
