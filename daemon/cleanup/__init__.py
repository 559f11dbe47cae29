"""Cleanup and accounting: docker's container/image prune and `system df`."""
