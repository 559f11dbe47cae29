"""ctrctl: the docker-shaped command line, a thin client over ctrd's gRPC API."""
