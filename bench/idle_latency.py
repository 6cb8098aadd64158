"""Instant pickup, measured: from a message reaching the mailbox to its reply reaching SMTP.

Runs the real service (`intake run` with `[imap] idle = true`, the scheduled poll an hour
apart so only IDLE can explain a quick answer) against a private Dovecot and an aiosmtpd
sink, appends N valid submissions one at a time, and times each from the APPEND to the
acknowledgement arriving at the SMTP server. Prints a table and writes JSON.

    .venv/bin/python bench/idle_latency.py --messages 20
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from intake import db  # noqa: E402
from intake.samples import CONTRIBUTORS, DOCX, Contributor, make_docx, make_message  # noqa: E402
from tests.support.dovecot import Dovecot  # noqa: E402
from tests.support.intake_env import write_config  # noqa: E402
from tests.support.smtp import SmtpSink  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--json", default=str(REPO / "bench" / "results" / "idle.json"))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="intake-idle-"))
    dovecot = Dovecot(Dovecot.make_workdir())
    sink = SmtpSink()
    dovecot.start()
    sink.start()
    url = f"sqlite:///{workdir / 'intake.db'}"
    db.upgrade(url)
    env = write_config(
        workdir, dovecot.host, dovecot.port, dovecot.user, dovecot.password, url, smtp_port=sink.port
    )
    text = env.config_path.read_text()
    text = text.replace("[service]", "[service]\npoll_interval = 3600\noutbox_interval = 3600", 1)
    env.config_path.write_text(text.replace("[imap]", "[imap]\nidle = true", 1))
    event = env.settings().event
    docx = make_docx(event, "Instant pickup", "Org", CONTRIBUTORS[0], "An abstract.")
    log = workdir / "service.log"
    service = env.popen("run", log=log)
    latencies: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while "intake running" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # the first scheduled poll has run; the next is an hour away
        for i in range(args.messages):
            base = CONTRIBUTORS[i % len(CONTRIBUTORS)]
            who = Contributor(base.name, f"idle{i}@example{i}.org", base.organization, base.country)
            raw = make_message(who, event.address, f"Instant {i}", "Attached.", [("in.docx", DOCX, docx)])
            started = time.monotonic()
            dovecot.append_many("INBOX", [(raw, event.deadline - timedelta(days=1))])
            while len(sink.messages) <= i:
                if time.monotonic() - started > 60:
                    raise SystemExit(f"message {i}: no reply within 60 s; see {log}")
                time.sleep(0.01)
            latencies.append(time.monotonic() - started)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
        sink.stop()
        dovecot.kill()
    ordered = sorted(latencies)
    result = {
        "messages": len(latencies),
        "min_s": ordered[0],
        "median_s": statistics.median(ordered),
        "p90_s": ordered[max(0, int(len(ordered) * 0.9) - 1)],
        "max_s": ordered[-1],
        "within_5_s": sum(1 for x in ordered if x <= 5.0),
        "latencies_s": latencies,
    }
    print("append -> acknowledgement at the SMTP server, intake run with IMAP IDLE")
    print(
        f"  messages {result['messages']}   min {result['min_s']:.2f} s   median {result['median_s']:.2f} s"
        f"   p90 {result['p90_s']:.2f} s   max {result['max_s']:.2f} s"
    )
    print(f"  within 5 s: {result['within_5_s']} of {result['messages']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
