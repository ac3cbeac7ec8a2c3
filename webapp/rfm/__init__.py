"""RFM analysis: recency, frequency and monetary scores as of a date, the class segments
(source `rfm`), the nightly job and the heat-map pages.

`service` (Flask-free), `jobs` (RQ), `views` (blueprint)."""
