"""Segments: the whole domain in one package.

- `service`: segments as marketers manage them (create, edit, delete, recompute):
  one service for the builder pages and the API;
- `runs`: full runs (the diff and the entry/exit log in SQL), failures and retries;
- `changes`: the queue of changed customers that writers fill (`mark_changed`);
- `realtime`: the re-check of changed customers against dynamic segments;
- `schedule`: dynamic segments due for a run, abandoned runs reaped;
- `system`: the built-in segments every account has;
- `jobs`: the RQ jobs of all the above;
- `views` (blueprint), `builder` (form <-> definition), `options` (picker
  values) and `listing` (list queries, charts, history): the pages.

What a definition means and how it compiles to SQL is the engine's
(`webapp.engine`), not this package's.
"""
