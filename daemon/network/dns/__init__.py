"""The embedded DNS resolver at 127.0.0.11 in the namespace of each container on a user network.

Where it lives, and why: one resolver process per daemon (`python -m daemon.network.dns.resolver`,
comm `ctrd-dns`), in its own session, so that it outlives the daemon exactly like the shims do —
names keep resolving while ctrd restarts or after a kill -9 (the daemon re-sends its table when it
comes back; every request is idempotent). Not in the shim: a resolver per container would need
every name change pushed to every shim on the network (N updates per start instead of one), it
would add a DNS parser to the ~2 MB per-container shim, and shimd is the one process that must
not grow. Not in the daemon (as dockerd does it): names would stop resolving whenever ctrd is down.
One process for all networks rather than one per network: one table, one update per change, and
no process at all while no container is on a user network.

How: the resolver enters a container's network namespace on its single thread, opens a UDP socket
there bound to 127.0.0.11:53 and comes back (a socket stays in the namespace it was made in).
Queries for names of the container's networks are answered from the table; the rest go to the
host's resolvers from the resolver's own (host) namespace, so even a host-only 127.0.0.53 works.
"""
