"""The secretariat's dashboard: server-rendered pages over the intake log (`intake web`).

Flask renders Jinja2 templates (autoescaped) and waitress serves them; no
JavaScript at all, so the Content-Security-Policy can forbid every script.
`app` owns the pages, sign-in, CSRF and the security headers; `serve` the
server and its options. The actions call `intake.desk`, as the CLI does.
"""
