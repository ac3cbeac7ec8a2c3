"""Exports pages and their background job (the service is webapp.export)."""
