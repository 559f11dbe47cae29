/* Calls each named syscall once with harmless arguments and prints "name=errno" (0: it ran).
   Built static by tests/probes.py and copied into test rootfses; used by the seccomp tests. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sched.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif

static long probe(const char *name) {
    if (!strcmp(name, "getpid")) return syscall(SYS_getpid);
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -4 /* @u */, 0);
    if (!strcmp(name, "add_key")) return syscall(SYS_add_key, "user", "ctrd-probe", "x", 1, -4);
    if (!strcmp(name, "bpf")) return syscall(SYS_bpf, 0 /* MAP_CREATE */, NULL, 0);
    if (!strcmp(name, "userfaultfd")) {
        long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
        if (fd >= 0) close((int)fd);
        return fd;
    }
    if (!strcmp(name, "perf_event_open")) return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(name, "io_uring_setup")) return syscall(SYS_io_uring_setup, 1, NULL);
    if (!strcmp(name, "kexec_load")) return syscall(SYS_kexec_load, 0, 0, NULL, 0);
    if (!strcmp(name, "mount")) return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL);
    if (!strcmp(name, "unshare_user")) return syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(name, "setns")) return syscall(SYS_setns, -1, 0);
    if (!strcmp(name, "clone_newuser") || !strcmp(name, "clone")) {
        long flags = SIGCHLD | (name[5] ? CLONE_NEWUSER : 0);
        long pid = syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
        if (pid == 0) _exit(0);
        if (pid > 0) waitpid((pid_t)pid, NULL, 0);
        return pid < 0 ? -1 : 0;
    }
    if (!strcmp(name, "clone3")) return syscall(SYS_clone3, NULL, 0);
    if (!strcmp(name, "socket_alg")) {
        long fd = syscall(SYS_socket, 38 /* AF_ALG */, SOCK_SEQPACKET, 0);
        if (fd >= 0) close((int)fd);
        return fd < 0 ? -1 : 0;
    }
    if (!strcmp(name, "socket_unix")) {
        long fd = syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0) close((int)fd);
        return fd < 0 ? -1 : 0;
    }
    if (!strcmp(name, "personality_bad")) return syscall(SYS_personality, 0x0400000 /* READ_IMPLIES_EXEC */);
    if (!strcmp(name, "mseal")) return syscall(SYS_mseal, 0, 0, 0);
    errno = EINVAL;
    fprintf(stderr, "unknown probe %s\n", name);
    return -1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long rc = probe(argv[i]);
        printf("%s=%d\n", argv[i], rc < 0 ? errno : 0);
    }
    return 0;
}
