"""Activation (issue 8): acting on segments.

- `templating`: sandboxed Jinja message templates over a customer's data.
- `links`: signed open/click/unsubscribe links.
- `delivery`: SMTP in lockstep groups, the SMS gateway, webhooks, outboxes.
- `mailings`: campaigns to a segment's members, exactly one message each
  (the module docstring tells how); trigger messages go the same way.
- `recipients`: the consent and address check of a recipient row (SQL),
  shared by campaigns and trigger steps.
- `tracking`: opens, clicks, unsubscribes as message events.
- `triggers`: entries/exits of a segment -> executions -> steps with delays.
- `tasks`: tasks for managers.
- `jobs`: the RQ jobs and the periodic tick; `queueing`: queueing a mailing's
  jobs, once each; `views`: the pages.
"""
