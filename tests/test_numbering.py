"""Document numbers: sequential per event, never shared, even by concurrent processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from intake import db
from intake.numbering import take_number
from tests.support.intake_env import REPO, write_config

WORKER = """
import sys
from intake import db
from intake.config import load_settings
from intake.numbering import take_number
settings = load_settings(sys.argv[1], env={})
engine = db.make_engine(settings.database_url)
sessions = db.make_sessionmaker(engine)
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[2])):
    with sessions.begin() as session:
        print(take_number(session, settings.event), flush=True)
"""


def test_numbers_follow_the_series(migrated_url: str, tmp_path: Path) -> None:
    settings = write_config(tmp_path, "127.0.0.1", 1, "u", "p", migrated_url).settings()
    engine = db.make_engine(migrated_url)
    sessions = db.make_sessionmaker(engine)
    with sessions.begin() as session:
        assert take_number(session, settings.event) == "JCA-MV-I-001"
        assert take_number(session, settings.event) == "JCA-MV-I-002"
    # A rolled-back number was never seen by anyone and is taken again.
    session = sessions()
    session.begin()
    assert take_number(session, settings.event) == "JCA-MV-I-003"
    session.rollback()
    session.close()
    with sessions.begin() as session:
        assert take_number(session, settings.event) == "JCA-MV-I-003"
    engine.dispose()


def test_two_processes_never_take_the_same_number(migrated_url: str, tmp_path: Path) -> None:
    env = write_config(tmp_path, "127.0.0.1", 1, "u", "p", migrated_url)
    count = 150
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(env.config_path), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    for worker in workers:  # start both at once
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    taken: list[str] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        taken += out.split()
    assert len(taken) == 2 * count
    assert len(set(taken)) == 2 * count
    assert sorted(taken) == [f"JCA-MV-I-{n:03d}" for n in range(1, 2 * count + 1)]
