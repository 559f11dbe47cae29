"""ctrd's API package: the public gRPC contract (ctrd.v1), the private shim contract (ctrd.shim.v1),
the error taxonomy (errdefs) and its one mapping to gRPC status codes (errgrpc), and the vocabulary
every part shares — reasons, signals, timefmt (RFC 3339), ids, libc, humanize. The vocabulary
modules are leaves (standard library only), so the runtime may import them too."""
