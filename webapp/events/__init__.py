"""Events: definitions on orders (an Orders block), occurrences from the API and imports, backfill,
real-time re-evaluation before the segment re-check, and their pages.

`service` (Flask-free), `jobs` (RQ), `views` (blueprint)."""
