"""gRPC servicers: thin adapters from the public API to the domain modules."""
