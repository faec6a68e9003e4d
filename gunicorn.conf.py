"""gunicorn's configuration file, read from the working directory (`gunicorn desk.wsgi`).

Only the Prometheus multiprocess hooks (docs/operations.md, "Metrics"); everything else stays on
the command line. With PROMETHEUS_MULTIPROC_DIR set, each process writes its counters there and
/metrics adds them up. At start, files of processes no longer alive are removed (a restart resets
the counters, which Prometheus expects); a Celery worker sharing the directory keeps its own.
"""

import os
import re
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            match = re.search(r"_(\d+)\.db$", stale.name)
            if match is None or not _alive(int(match.group(1))):
                stale.unlink()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
