"""`intake run` stops on SIGTERM even when a job asks the scheduler for its next run
at that moment.

Every job of the service does so: a failed poll sets its next try (`_retry`), a poll
that queued replies wakes the outbox (`trigger`). Each checks `stopping` first, but a
job past that check when SIGTERM comes still calls the scheduler. APScheduler's
`shutdown(wait=True)` holds its job-store lock while it waits for the running jobs, so
a handler that called it waited for a job that waited for that lock: the service never
exited (a clean-clone CI run saw `intake run` still alive 30 s after SIGTERM).

The job below is in that window on purpose: it sends the signal itself, waits until
the handler has begun the stop, then calls the scheduler as `_retry` does. The run is
a subprocess so that a hang fails the test instead of hanging it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from intake.demo import free_port
from tests.support.intake_env import write_config

SCRIPT = textwrap.dedent(
    """
    import contextlib, os, signal, sys
    from datetime import UTC, datetime, timedelta

    from intake.config import load_deployment
    from intake.service import EventRunner, Service

    def poll_job(self):
        os.kill(os.getpid(), signal.SIGTERM)
        if not self.stopping.wait(60):
            sys.exit("the handler never set stopping")
        # Where _retry and trigger call the scheduler, past their check of `stopping`
        # (and, as they do, not minding that the job is gone once the scheduler stopped).
        with contextlib.suppress(Exception):
            self.service.scheduler.modify_job(
                self.job_id("poll"), next_run_time=datetime.now(UTC) + timedelta(seconds=1)
            )
        print("job done", flush=True)

    EventRunner.poll_job = poll_job
    code = Service(load_deployment(sys.argv[1])).run()
    print("run returned", code, flush=True)
    """
)


def test_sigterm_while_a_job_calls_the_scheduler_stops_the_service(migrated_url: str, tmp_path: Path) -> None:
    env = write_config(tmp_path, "127.0.0.1", free_port(), "nobody", "pw", migrated_url, free_port())
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(env.config_path)],
            stdout=stdout,
            stderr=stderr,
            text=True,
            env=env.env(),
            cwd=Path(__file__).resolve().parents[1],
        )
        try:
            code = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(
                "intake run did not stop within 120 s of SIGTERM while a job called the scheduler; "
                f"it printed:\n{out.read_text()}\n{err.read_text()[-3000:]}"
            ) from None
    done = subprocess.CompletedProcess(process.args, code, out.read_text(), err.read_text())
    assert done.returncode == 0, done.stderr
    # The job in hand finished before the service said it stopped.
    assert done.stdout.splitlines() == ["job done", "run returned 0"], (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
