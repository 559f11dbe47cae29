"""ctrd's benchmark harness: side-by-side figures against runc, containerd and docker (issue 10)."""
