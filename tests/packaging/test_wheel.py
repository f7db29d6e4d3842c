"""The wheel is the product: built from this checkout and installed with its declared
dependencies into a fresh venv (no system site-packages, no PYTHONPATH), it sets up a
database, seeds it, runs an instance, verifies the audit chain and serves its pages,
all from site-packages and from a folder outside the repository.

Installing the dependencies needs a package index (PyPI, or pip's configured mirror);
pip's cache keeps repeated runs fast. Without an index the install test is skipped,
unless CSI_REQUIRE_PACKAGE_INDEX is set (CI sets it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "web", "procedure", "bpmn")

# Data the installed product reads as files: (folder in the checkout, glob). Every file
# each glob matches in the checkout must be in the wheel, and each must match something.
DATA = (
    ("bpmn", "*.bpmn"),
    ("bpmn", "*.json"),
    ("bpmn", "forms/*.json"),
    ("engine/persistence/migrations", "env.py"),
    ("engine/persistence/migrations", "script.py.mako"),
    ("engine/persistence/migrations", "versions/*.py"),
    ("web/templates", "**/*.html"),
    ("web/static", "**/*"),
    ("web/translations", "*/LC_MESSAGES/*.mo"),
    ("web", "openapi.json"),
)

# Left in a checkout by builds, editable installs and runs; never part of the source.
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "instance", ".*_cache")


PROBE = """
import json, sysconfig
from importlib.resources import files

import bpmn, engine, procedure, web
from engine.access import Actor
from engine.persistence import schema
from engine.runtime import Runtime
from engine.settings import Settings
from web import create_app

settings = Settings.from_env()
runtime = Runtime.from_settings(settings)
runtime.start_instance(Actor("owner", frozenset({"ImprovementOwner"})))
app = create_app()
client = app.test_client()
login_zh = client.get("/login")
login_en = client.get("/login?lang=en")
css = client.get("/static/css/app.css")
openapi = client.get("/api/v1/openapi.json")
print(json.dumps({
    "purelib": sysconfig.get_paths()["purelib"],
    "instance_path": str(settings.instance_path),
    "login": [login_zh.status_code, login_en.status_code, css.status_code],
    "openapi": openapi.json["openapi"],
    "translated": "登录" in login_zh.get_data(as_text=True),
    "english": "Log in" in login_en.get_data(as_text=True),
    "located": {
        "bpmn resources": str(files("bpmn")),
        "pack files": str(runtime.pack.files),
        "engine": engine.__file__,
        "web": web.__file__,
        "procedure": procedure.__file__,
        "migrations": str(schema.MIGRATIONS_DIR),
        "templates": str(app.jinja_loader.searchpath[0]),
        "static": str(app.static_folder),
        "translations": app.config["BABEL_TRANSLATION_DIRECTORIES"],
    },
}))
"""


def copy_source(dest: Path) -> Path:
    """The checkout's source files (tracked, or new and not ignored), so that the build
    neither picks up nor leaves a build/ or egg-info in the checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(*NOT_SOURCE))
        return dest
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the work tree is not source
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def builds_without_isolation() -> bool:
    """Whether this environment can build the wheel itself, without fetching setuptools:
    setuptools>=70.1 has bdist_wheel built in; older ones need the `wheel` package."""
    try:
        setuptools = Version(version("setuptools"))
    except Exception:
        return False
    if setuptools < Version("68"):
        return False
    try:
        version("wheel")
    except Exception:
        return setuptools >= Version("70.1")
    return True


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without what points Python at the checkout or a venv
    (PYTHONPATH would show the checkout, and any egg-info in it, to pip and to the
    product) and without the product's own settings; then `settings`."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "CSI_", "VIRTUAL_ENV"))
        and key not in {"DATABASE_URL", "SECRET_KEY", "PORT"}
    }
    return kept | {"PYTHONNOUSERSITE": "1"} | settings


def run(
    command: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def no_index_answers() -> bool:
    """Whether pip finds no release of pip itself on its indexes: then a failed install
    is the machine's being offline, not a wrong requirement of the product."""
    return run([sys.executable, "-m", "pip", "index", "versions", "pip"]).returncode != 0


def offline(why: str, result: subprocess.CompletedProcess[str]) -> None:
    if os.environ.get("CSI_REQUIRE_PACKAGE_INDEX"):
        pytest.fail(f"{why}, and none answers:\n{result.stdout}{result.stderr}")
    pytest.skip(f"{why}, and none answers")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = copy_source(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    command: list[str | Path] = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out]
    if builds_without_isolation():
        command.append("--no-build-isolation")
    built = run([*command, source])
    if built.returncode != 0 and no_index_answers():
        offline("building the wheel needs setuptools from a package index", built)
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = out.glob("csi_workflow-*.whl")
    return found


def test_the_wheel_holds_the_code_and_every_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == set(PACKAGES), "the wheel holds exactly the product's packages"
    modules = {
        path.relative_to(REPO).as_posix()
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules - names == set(), "modules missing from the wheel"
    for folder, pattern in DATA:
        files = {
            path.relative_to(REPO).as_posix()
            for path in (REPO / folder).glob(pattern)
            if path.is_file() and "__pycache__" not in path.parts
        }
        assert files, f"{folder}/{pattern} matches nothing in the checkout"
        assert files - names == set(), f"{folder}/{pattern}: missing from the wheel"
    (entry_points,) = (name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "csi = web.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    # The wheel and its declared dependencies only: no system site-packages, no PYTHONPATH
    # pointing at the checkout. The pip running this test installs into the venv (faster
    # than bootstrapping one there) when it can (`--python`, pip 22.3 on).
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python]
    if Version(version("pip")) < Version("22.3"):
        pip = [python, "-m", "pip"]
    without_pip = ["--without-pip"] if pip[0] == sys.executable else []
    created = run([sys.executable, "-m", "venv", *without_pip, venv])
    assert created.returncode == 0, created.stderr
    installed = run([*pip, "install", "--no-compile", "--disable-pip-version-check", wheel])
    if installed.returncode != 0 and no_index_answers():
        offline("the wheel's dependencies come from a package index", installed)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    consistent = run([*pip, "check"])
    assert consistent.returncode == 0, consistent.stdout + consistent.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_environment(
        DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}",
        CSI_INSTANCE_PATH=str(tmp_path / "instance"),
    )
    csi = python.parent / "csi"

    def in_venv(*command: str | Path) -> str:
        result = run(list(command), cwd=elsewhere, env=env)
        assert result.returncode == 0, f"{command}:\n{result.stdout}{result.stderr}"
        return result.stdout

    initialised = in_venv(csi, "init-db")
    assert re.search(r"^service_improvement v1 ", initialised, re.M), initialised
    assert re.search(r"^change_management v1 ", initialised, re.M), initialised
    assert "owner" in in_venv(csi, "seed-demo")

    probe = json.loads(in_venv(python, "-c", PROBE))
    site = Path(probe["purelib"]).resolve()
    assert site.is_relative_to(venv.resolve())
    for what, where in probe["located"].items():
        path = Path(where).resolve()
        assert path.is_relative_to(site), f"{what} is read from {path}, not site-packages"
        assert not path.is_relative_to(REPO), f"{what} is read from the checkout"
    assert Path(probe["instance_path"]) == (tmp_path / "instance").resolve()
    assert probe["login"] == [200, 200, 200]
    assert probe["openapi"] == "3.1.0", "the API's description is missing from the wheel"
    assert probe["translated"], "the pages lack their Chinese translation"
    assert probe["english"], "the pages lack their English texts"

    verified = in_venv(csi, "verify-audit")
    assert "1 of 1 instances verified" in verified, verified
