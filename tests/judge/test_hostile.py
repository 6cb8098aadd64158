"""Hostile files (acceptance item 2): each refused with its own finding, within 2 s,
with the judging process's peak memory under 200 MB.

Memory is measured in a fresh process (its VmHWM), not in pytest's own, which has
already grown with everything else the test run did.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.judge import corpus as c
from tests.judge.conftest import MAILBOX_ENV

HOSTILE = {
    # file name: (bytes, the finding that refuses it)
    "bomb.docx": (c.zip_bomb, "safety.zip_bomb"),
    "laughs.docx": (c.billion_laughs, "safety.xml_entities"),
    "xxe.docx": (c.xxe, "safety.xml_external"),
    "remote-template.docx": (
        lambda: c.attach_template(c.filled_jca(), "https://attacker.example/t.dotm"),
        "safety.remote_template",
    ),
    "macros-renamed.docx": (c.macro_docx, "type.macro_enabled"),
    "locked.docx": (c.encrypted_docx, "type.encrypted"),
    "truncated.docx": (lambda: c.truncated(c.filled_jca()), "safety.damaged"),
    "pdf-named.docx": (lambda: c.PDF, "type.name_mismatch"),
}

SCRIPT = """
import json, sys, time
from pathlib import Path
from intake.config import load_settings
from intake.judge import judge_file

env = json.loads(sys.argv[1])
event = load_settings(sys.argv[2], env=env).event
report = {}
for name in sys.argv[3:]:
    path = Path(name)
    data = path.read_bytes()
    start = time.perf_counter()
    verdict = judge_file(path.name, data, event)
    report[path.name] = {
        "seconds": time.perf_counter() - start,
        "status": verdict.status.value,
        "codes": [f.code for f in verdict.findings],
    }
    del data, verdict
# VmHWM is this process's own peak: ru_maxrss would include the parent's (pytest's)
# peak, which Linux carries across fork and exec.
with open("/proc/self/status") as status:
    hwm = next(line for line in status if line.startswith("VmHWM:"))
report["peak_mb"] = int(hwm.split()[1]) / 1024
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    folder = tmp_path_factory.mktemp("hostile")
    for name, (build, _) in HOSTILE.items():
        (folder / name).write_bytes(build())
    config = c.ROOT / "config" / "jca-mv-2.toml"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            json.dumps(MAILBOX_ENV),
            str(config),
            *(str(folder / name) for name in HOSTILE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=c.ROOT,
        check=True,
    )
    result: dict[str, dict[str, object]] = json.loads(done.stdout)
    return result


def test_the_bomb_really_inflates_past_a_gigabyte() -> None:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(c.zip_bomb())) as package:
        info = package.getinfo("word/document.xml")
    assert info.file_size >= 10**9
    assert info.compress_size < 2 * 2**20


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_file_is_refused_with_its_own_finding(
    name: str, report: dict[str, dict[str, object]]
) -> None:
    outcome = report[name]
    assert outcome["status"] == "rejected"
    assert HOSTILE[name][1] in outcome["codes"]  # type: ignore[operator]
    assert float(outcome["seconds"]) < 2.0  # type: ignore[arg-type]


def test_each_refusal_says_something_different(report: dict[str, dict[str, object]]) -> None:
    reasons = [HOSTILE[name][1] for name in HOSTILE]
    assert len(set(reasons)) == len(reasons)


def test_peak_memory_stays_under_200_mb(report: dict[str, dict[str, object]]) -> None:
    assert float(report["peak_mb"]) < 200  # type: ignore[arg-type]


def test_the_measuring_process_judged_every_file(report: dict[str, dict[str, object]]) -> None:
    assert set(report) == {*HOSTILE, "peak_mb"}
