"""llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) serving SmolLM2-135M-
Instruct's GGUF, as a real endpoint nobody here wrote.

The server runs from its own virtualenv: ``WRITING_RL_LLAMA_PYTHON`` names its interpreter,
else ``var/llama-venv/bin/python`` (what ``make llama-venv`` builds), through
``llama_serve.py`` (no AMX weight buffers: they crash the server on these machines).

Without that interpreter the tests skip, and under ``REQUIRE_SERVICES=1`` (``.ci/run``, which
builds it with ``make llama-venv``) they fail; so does a found interpreter that cannot serve.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.services import missing

ROOT = Path(__file__).resolve().parents[2]
LLAMA_PYTHON_ENV = "WRITING_RL_LLAMA_PYTHON"
DEFAULT_PYTHON = ROOT / "var" / "llama-venv" / "bin" / "python"
# The verdict tag alone, as llama.cpp's GBNF grammar (what structured_output="grammar" sends).
VERDICT_GRAMMAR = 'root ::= "[[" [ABC] "]]"\n'
MODEL = "smollm2"
# llama_cpp.server without AMX/repacked weight buffers (which crash on these machines).
SERVE = Path(__file__).with_name("llama_serve.py")
START_TIMEOUT_S = 180.0


def llama_python() -> Path:
    """The interpreter that runs ``llama_cpp.server``; skips when there is none or it cannot
    import the server, and fails instead under ``REQUIRE_SERVICES=1`` (CI builds it with
    ``make llama-venv``)."""
    path = Path(os.environ.get(LLAMA_PYTHON_ENV) or DEFAULT_PYTHON)
    if not path.exists():
        missing(
            "llama.cpp server",
            f"{path} not found (run `make llama-venv` or set {LLAMA_PYTHON_ENV})",
        )
    probe = subprocess.run(
        [str(path), "-c", "import llama_cpp.server"], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        missing("llama.cpp server", f"{path} cannot import llama_cpp.server: {probe.stderr[-500:]}")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """One server process on a fixed port, which can be stopped and started again there."""

    def __init__(self, python: Path, model_path: Path, log_path: Path) -> None:
        self.python, self.model_path, self.log_path = python, model_path, log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        command = [
            str(self.python), str(SERVE), "--model", str(self.model_path),
            "--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "2048", "--n_threads", "2",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        missing("llama.cpp server", f"did not answer on {self.base_url}: {self.log()[-1500:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
