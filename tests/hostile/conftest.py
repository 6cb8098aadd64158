"""Hypothesis profiles of the hostile-input suite: short by default, full with INTAKE_FULL=1.

The profiles are applied to this suite's tests as decorators (`@PROFILE`), not
loaded globally, so the other suites' own hypothesis settings are untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.hostile.path import Recorder

FULL = os.environ.get("INTAKE_FULL", "") not in ("", "0")

for name, examples in (("hostile-short", "40"), ("hostile-full", "1000")):
    settings.register_profile(
        name,
        max_examples=int(os.environ.get("INTAKE_HOSTILE_EXAMPLES", examples)),
        deadline=None,  # refusing a 1 GiB zip bomb takes a second; time is bounded in batch.py
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
        print_blob=True,  # a failure prints its @reproduce_failure line
    )
PROFILE = settings.get_profile("hostile-full" if FULL else "hostile-short")
# The subprocess batch (batch.py): the bulk of the cases, with memory and time measured.
BATCH_CASES = int(os.environ.get("INTAKE_HOSTILE_CASES", "10000" if FULL else "250"))


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    """A SQLite database and blob store for the module, on a RAM disk where there is one."""
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="intake-hostile-", dir=base) as directory:
        book = Recorder(Path(directory))
        try:
            yield book
        finally:
            book.close()
