"""The pre-warmed launcher process and how it forks shims (fork, warm-up, memory ballast)."""
