"""CSV import: customers, orders, order items, deals and messages, and static
segments from a list. One engine (importer.py) behind the web pages (views.py,
through the RQ job in jobs.py) and the `flask import` command (cli.py)."""
