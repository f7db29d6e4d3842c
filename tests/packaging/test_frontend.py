"""The modeler's front end is vendored: package.json names exact versions, the lockfile
pins exactly those, and the bundle committed under web/static/vendor/modeler was built
from them (its banner and VERSIONS.json name them) with every bundled package's
licence beside it. No network: this reads the repository only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "web" / "static" / "vendor" / "modeler"
EXACT = re.compile(r"^\d+\.\d+\.\d+$")
# What the modeler is made of; each must be named, pinned, bundled and licensed.
REQUIRED = (
    "bpmn-js",
    "diagram-js",
    "bpmn-js-properties-panel",
    "@bpmn-io/properties-panel",
    "bpmn-js-bpmnlint",
    "bpmnlint",
    "bpmn-js-differ",
)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _declared() -> dict[str, str]:
    manifest = _json(REPO / "package.json")
    return {**manifest["dependencies"], **manifest["devDependencies"]}


def _locked(name: str) -> dict[str, Any]:
    entry: dict[str, Any] = _json(REPO / "package-lock.json")["packages"][f"node_modules/{name}"]
    return entry


def test_package_json_names_exact_versions_only() -> None:
    manifest = _json(REPO / "package.json")
    assert manifest["private"] is True
    declared = _declared()
    for name in REQUIRED:
        assert name in manifest["dependencies"], name
    assert "esbuild" in manifest["devDependencies"]
    for name, wanted in declared.items():
        if wanted.startswith("file:"):
            target = (REPO / wanted.removeprefix("file:")).resolve()
            assert REPO in target.parents, name
            assert (target / "package.json").is_file(), name
        else:
            assert EXACT.match(wanted), f"{name}: {wanted!r} is no exact version"


def test_the_lockfile_pins_what_package_json_names() -> None:
    lock = _json(REPO / "package-lock.json")
    assert lock["lockfileVersion"] >= 2
    root = lock["packages"][""]
    manifest = _json(REPO / "package.json")
    assert root.get("dependencies", {}) == manifest["dependencies"]
    assert root.get("devDependencies", {}) == manifest["devDependencies"]
    for name, wanted in _declared().items():
        entry = _locked(name)
        if wanted.startswith("file:"):
            assert entry.get("link") is True, name
        else:
            assert entry["version"] == wanted, name
    # every package comes from the registry with a checksum npm ci verifies
    for path, entry in lock["packages"].items():
        if not path or entry.get("link") or not path.startswith("node_modules/"):
            continue
        assert entry.get("integrity", "").startswith("sha512-"), path
        assert entry.get("resolved", "https://registry.npmjs.org/").startswith(
            "https://registry.npmjs.org/"
        ), path


def test_the_committed_bundle_names_the_versions_it_was_built_from() -> None:
    script = VENDOR / "modeler.js"
    style = VENDOR / "modeler.css"
    assert script.is_file()
    assert style.is_file()
    banner = script.read_text(encoding="utf-8").split("\n", 1)[0]
    versions = _json(VENDOR / "VERSIONS.json")
    for name in REQUIRED:
        version = _locked(name)["version"]
        assert f"{name}@{version}" in banner, name
        assert versions["built_from"][name] == version, name
    # minified: long lines (only template literals keep their line breaks)
    text = script.read_text(encoding="utf-8")
    assert len(text) / len(text.splitlines()) > 300


def test_every_bundled_package_has_its_licence() -> None:
    bundled = _json(VENDOR / "VERSIONS.json")["bundled"]
    for name in REQUIRED:
        assert name in bundled, name
    for name, about in bundled.items():
        licence = VENDOR / "LICENSES" / f"{name.replace('/', '__')}.txt"
        assert licence.is_file(), name
        assert about["license"], name
        if name in REQUIRED:
            assert about["version"] == _locked(name)["version"], name


def test_the_stylesheet_loads_its_fonts_from_files() -> None:
    """The CSP allows fonts from the app only (font-src 'self'), no data: URLs."""
    css = (VENDOR / "modeler.css").read_text(encoding="utf-8")
    urls = re.findall(r"url\(([^)]+)\)", css)
    fonts = [u.strip("\"'").split("?")[0].split("#")[0] for u in urls if "font" in u]
    assert fonts, "no font in modeler.css"
    for url in fonts:
        assert not url.startswith("data:"), url
        assert (VENDOR / url).is_file(), url


def test_make_frontend_rebuilds_it_from_the_lockfile() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    target = makefile.split("\nfrontend:", 1)[1].split("\n\n", 1)[0]
    assert "npm ci" in target
    assert "node frontend/build.mjs" in target
    assert "node_modules/" in (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()


CHARTJS = REPO / "web" / "static" / "vendor" / "chartjs"


def test_chartjs_is_pinned_and_vendored_with_its_licences() -> None:
    """Chart.js (for the metric and dashboard charts) comes from the lockfile's version,
    copied as published, with the licences of what its UMD build contains."""
    version = _locked("chart.js")["version"]
    assert _declared()["chart.js"] == version
    script = (CHARTJS / "chart.umd.min.js").read_text(encoding="utf-8")
    assert f"Chart.js v{version}" in script[:200]
    # no source map comment: the map is not vendored, so the browser would ask for it
    assert "sourceMappingURL" not in script
    versions = _json(CHARTJS / "VERSIONS.json")
    assert versions["built_from"] == {"chart.js": version}
    for name in ("chart.js", "@kurkle/color"):
        assert versions["bundled"][name]["license"] == "MIT", name
        assert (CHARTJS / "LICENSES" / f"{name.replace('/', '__')}.txt").is_file(), name
    assert versions["bundled"]["@kurkle/color"]["version"] == _locked("@kurkle/color")["version"]


def test_the_build_script_writes_the_chartjs_folder() -> None:
    """`make frontend` (npm ci, then the build script) reproduces web/static/vendor/chartjs."""
    build = (REPO / "frontend" / "build.mjs").read_text(encoding="utf-8")
    assert "'vendor', 'chartjs'" in build
    assert "chart.umd.min.js" in build
