"""Replies: from a decision to a message in the contributor's inbox and a copy in Sent.

- `kinds`: the one table of reply kinds (template files, the blank template attached
  or not, numbers listed or not, the rate-limit key).
- `compose`: the MIME message, built in one place from the secretariat's templates.
- `queue`: `queue_reply`, the one function that writes an outbox row, called by the
  poller's recording (`intake.record`) and by the desk's actions (`intake.desk`).
- `outbox`: sending the queued rows over SMTP, and the copy of each sent reply in the
  mailbox's Sent folder.
"""
