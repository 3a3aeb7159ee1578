"""A virtualenv with verl 0.9.1 installed, built once under ``var/verl-venv`` (~30 s).

verl pins ``transformers<5.11`` while the project runs 5.x newer, so verl cannot share the
project's environment — exactly as on a cluster, where a verl job runs in its own image. verl
itself declares no torch requirement outside its extras, but the packages it imports
(tensordict, accelerate) need one, and a plain ``torch`` requirement would pull a multi-GB
CUDA build. So the venv reuses the project's CPU torch: a ``.pth`` file appends the project
venv's site-packages to ``sys.path`` (the new venv's own packages come first, so its older
transformers wins), and every install runs with the constraint ``torch==<the installed
version>``, which the appended torch already satisfies — pip never downloads one.

Only what verl's reward path and config composition import is installed (``--no-deps`` for
verl itself, whose full requirement list brings wandb, tensorboard and friends).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("WRITING_RL_VERL_VENV", ROOT / "var" / "verl-venv"))
VERL = "verl==0.9.1"
DEPENDENCIES = [
    "ray==2.60.0",
    "tensordict>=0.8,!=0.9.0,<=0.10.0",
    "transformers>=5.5.3,<5.11,!=5.6.0",
    "omegaconf>=2.3",
    "hydra-core>=1.3",
    "codetiming",
    "aiohttp",
    "pillow",
]
STAMP = " ".join([VERL, *DEPENDENCIES])


def python() -> Path:
    return VENV / "bin" / "python"


def _run(args: list[str]) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"building the verl venv failed at {' '.join(args[:6])} ...:\n"
            f"{(result.stderr or result.stdout)[-3000:]}"
        )


def ensure_venv() -> Path:
    """The venv's python, building the venv first if it is missing or out of date."""
    stamp = VENV / "writing-rl-stamp.txt"
    if python().exists() and stamp.exists() and stamp.read_text() == STAMP:
        return python()
    import torch

    _run([sys.executable, "-m", "venv", "--clear", str(VENV)])
    purelib = subprocess.run(
        [str(python()), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(purelib, "_writing_rl_project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    constraints = VENV / "constraints.txt"
    constraints.write_text(f"torch=={torch.__version__.split('+')[0]}\n")
    pip = [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "--no-deps", VERL])
    _run([*pip, "-c", str(constraints), *DEPENDENCIES])
    _run([str(python()), "-c", "import verl, ray, tensordict, hydra"])
    stamp.write_text(STAMP)
    return python()


if __name__ == "__main__":
    print(ensure_venv())
