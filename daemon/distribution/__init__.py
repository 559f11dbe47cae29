"""The OCI distribution protocol: pull, push and login against a registry (see client.py for why aiohttp)."""
