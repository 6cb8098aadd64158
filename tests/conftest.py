import pytest

pytest_plugins = ["tests.support.fixtures", "tests.support.databases", "tests.support.smtp_fixtures"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A test that failed while a test Dovecot was running gets a section telling what each
    of its processes was doing at that moment (tests/support/dovecot.py Dovecot.diagnose):
    a command that waited out its timeout shows where the server was stuck."""
    report = yield
    if report.failed and call.when == "call":
        from tests.support.dovecot import _live

        for server in list(_live):
            try:
                report.sections.append((f"Dovecot {server.port} when the test failed", server.diagnose()))
            except Exception as exc:  # a diagnosis must not hide the failure it explains
                report.sections.append((f"Dovecot {server.port}", f"could not diagnose: {exc!r}"))
    return report
