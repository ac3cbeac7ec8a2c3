"""The audit log (issue 21): who did what, when. `service.record` is called by
every service function that changes something; `views` is the admin's page."""
