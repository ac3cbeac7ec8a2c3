"""CSV import: customers, orders, order items, deals and messages, and static
segments from a list. One engine (service.py) behind the web pages (views.py,
through the RQ job in jobs.py) and the `flask import` command (cli.py);
reader.py reads the file (encodings, delimiters, located errors), kinds.py
parses and writes each kind's rows (set-based, through webapp.sql)."""
