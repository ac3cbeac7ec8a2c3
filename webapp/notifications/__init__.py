"""In-app notifications (bell, panel, toasts) and the admin's email outbox page."""
