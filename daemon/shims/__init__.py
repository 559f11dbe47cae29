"""The daemon's side of the shims: client, launcher handle, shim connections."""
