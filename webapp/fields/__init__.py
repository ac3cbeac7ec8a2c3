"""Custom fields: the admin pages (`views`) and the service that defines fields and parses
their values (`service`)."""
