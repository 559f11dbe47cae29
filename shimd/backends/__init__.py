"""The shim's OCI runtime backends behind one protocol: forked library calls, in-process, any OCI runtime binary."""
