"""Segment analytics: figures per segment and period in SQL, the Redis cache of figures,
the job that computes big dashboards, and the dashboard pages.

`service` (Flask-free), `jobs` (RQ and the cache), `views` (blueprint)."""
