pytest_plugins = ["tests.support.fixtures", "tests.support.databases", "tests.support.smtp_fixtures"]
