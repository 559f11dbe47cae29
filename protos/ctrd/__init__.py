"""ctrd's API package: the public gRPC contract (ctrd.v1), the private shim contract (ctrd.shim.v1),
the error taxonomy (errdefs) and its one mapping to gRPC status codes (errgrpc)."""
