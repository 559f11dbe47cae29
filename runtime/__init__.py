"""The runc-like runtime: turns an OCI bundle into an isolated, hardened process (library and CLI)."""
