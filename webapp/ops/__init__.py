"""Running Segmento for a team: health and metrics for monitoring, the cron
scheduler elected among many workers, file storage shared by every machine,
backups, and request/job logs. `webapp.serve` is the production supervisor."""
