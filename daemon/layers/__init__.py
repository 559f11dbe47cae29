"""Layer storage: docker's overlay2 layout (diff/link/lower/work, l/ short links) and safe tar extraction."""
