"""Analytics dashboard and the shared chart module."""
