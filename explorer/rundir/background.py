"""Analysis beside training: ``explorer analyze RUN_DIR`` in a child process after each checkpoint.

Used by the trainer with ``analyze=background`` (the default on a GPU). It lives beside
:mod:`explorer.rundir.launch`, the other module that starts ``python -m explorer`` processes.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Callable

from explorer.rundir.launch import explorer_command
from explorer.rundir.run import Run


class BackgroundAnalysis:
    """Runs ``explorer analyze RUN_DIR`` in a child process after each checkpoint, one at a time.

    A child process rather than a thread: the analysis draws augmentations from torch's global
    RNG, which a thread would share with the training loop (breaking exact resume), and it keeps
    umap-learn's import and JIT out of the trainer. Requests made while a child runs are merged
    into one more run, which analyses every checkpoint still missing. Output goes to
    ``analysis/analyze.log``.
    """

    def __init__(self, run: Run, device: str, log: Callable[[str], None]) -> None:
        self.run, self.device, self.log = run, device, log
        self._queue: queue.Queue[bool] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="analysis", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Analyse whatever checkpoints are missing, as soon as the previous child is done."""
        self._queue.put(True)

    def close(self, wait: bool) -> None:
        """Stop after the pending work (``wait``: block until it is done)."""
        self._queue.put(False)
        if wait:
            self._thread.join()

    def _work(self) -> None:
        while True:
            items = [self._queue.get()]
            while not self._queue.empty():  # merge requests made while the last child ran
                items.append(self._queue.get())
            if any(items):
                self._analyze()
            if not all(items):
                return

    def _analyze(self) -> None:
        command, env = explorer_command(
            "analyze", str(self.run.path), "--no-progress", "--device", self.device
        )
        log_path = self.run.path / "analysis" / "analyze.log"
        log_path.parent.mkdir(exist_ok=True)
        with open(log_path, "a") as output:
            code = subprocess.run(
                command, stdout=output, stderr=subprocess.STDOUT, env=env
            ).returncode
        if code != 0:
            self.log(f"background analysis failed (exit {code}); see {log_path}")
