"""A run's own log: what the worker training it logged, one file per attempt, for the run page.

While a worker trains a run it attaches :class:`RunLogHandler` to the root logger (and to the
``transformers`` logger, which does not propagate): every record of the training thread and
of the run's heartbeat thread goes to ``<run dir>/logs/attempt-<epoch>.log``, redacted by the
deployment's log filter (``LOGGING["filters"]["redact"]``: URL passwords and secret values).

Fenced like every other write of a job: an attempt writes only its own file, named by its
lease's epoch, and stops writing once its lease is known lost; the run page reads only the
file of the epoch that holds (or last held) the run — a worker that was taken over can never
write into the log the page shows.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

LOG_DIR = "logs"
TAIL_LINES = 100
# The tail is read from at most this many bytes at the end of the file.
TAIL_BYTES = 64 * 1024
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_log_path(run_dir: str | os.PathLike[str], epoch: int) -> Path:
    """The log file of attempt ``epoch`` of the run in ``run_dir``."""
    return Path(run_dir) / LOG_DIR / f"attempt-{epoch}.log"


def _redaction_filter() -> logging.Filter | None:
    """The redacting log filter the deployment configured for its handlers, if any."""
    spec = getattr(settings, "LOGGING", {}).get("filters", {}).get("redact", {})
    factory = spec.get("()") if isinstance(spec, dict) else None
    if not factory:
        return None
    built = import_string(factory)() if isinstance(factory, str) else factory()
    return built if isinstance(built, logging.Filter) else None


class RunLogHandler(logging.FileHandler):
    """Writes the records of one run's threads while its lease is held."""

    def __init__(self, path: Path, lease: Any, thread_ids: set[int], thread_name: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, encoding="utf-8", delay=True)
        self.lease = lease
        self.thread_ids = thread_ids
        self.thread_name = thread_name
        self.setFormatter(logging.Formatter(FORMAT))
        self.setLevel(logging.INFO)
        redact = _redaction_filter()
        if redact is not None:
            self.addFilter(redact)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.lease.lost.is_set():
            return False  # taken over, cancelled or finished: this attempt writes no more
        if record.thread not in self.thread_ids and record.threadName != self.thread_name:
            return False  # another task's thread in the same process
        return bool(super().filter(record))


@contextmanager
def run_log_capture(run_id: int, run_dir: str | os.PathLike[str], lease: Any) -> Iterator[Path]:
    """Capture this thread's (and the run's heartbeat's) log records into the attempt's file
    for the duration of the block."""
    path = run_log_path(run_dir, lease.token)
    thread_id = threading.get_ident()
    handler = RunLogHandler(path, lease, {thread_id}, f"heartbeat-run-{run_id}")
    loggers = [logging.getLogger()]
    library = logging.getLogger("transformers")
    if not library.propagate:
        loggers.append(library)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield path
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


def run_log_tail(run_dir: str, epoch: int, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of attempt ``epoch``'s log ([] when there is none)."""
    if not run_dir or epoch < 1:
        return []
    path = run_log_path(run_dir, epoch)
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - TAIL_BYTES, 0))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    if size > TAIL_BYTES and text:
        text = text[1:]  # the first line read was cut
    return text[-lines:]
