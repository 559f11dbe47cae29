"""The Docker Engine API: a second listener of the daemon (its own unix socket), translating
docker's HTTP/JSON calls to the same domain services the gRPC servicers call."""
