"""Container hardening decided by the daemon: the seccomp profile written into the bundle
(`seccomp`, `seccomp_default`) and the security options (`options`: --security-opt,
--privileged, --device)."""
