#define _GNU_SOURCE
#include "cprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The kernel's struct sigaction for rt_sigaction, as x86-64 lays it out (handler, flags,
 * restorer, a 64-bit mask; aarch64 has no restorer). mcpd passes all zeros, SIG_DFL with an
 * empty mask, which reads the same in either layout. */
struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/* What the child needs, and where it reports a failure before exec. Shared: the child runs in
 * mcpd's memory (CLONE_VM) while mcpd waits (CLONE_VFORK). */
struct spawn_args {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    const int *fds;
    int parent;
    int error;
};

/* In the child. Only async-signal-safe calls: it shares mcpd's memory until exec. */
static int spawn_child(void *opaque) {
    struct spawn_args *args = opaque;
    /* Handlers back to their defaults (the table is the child's own: no CLONE_SIGHAND), then
     * every signal unblocked; they were all blocked around clone, so none of mcpd's handlers
     * ran here. Through the system call: glibc's sigaction refuses its own real-time signals
     * (32 and 33), which an ignoring parent of mcpd would otherwise pass on to every backend. */
    struct kernel_sigaction byDefault;
    memset(&byDefault, 0, sizeof byDefault);
    for (int signal = 1; signal < NSIG; signal++) {
        if (signal != SIGKILL && signal != SIGSTOP) syscall(SYS_rt_sigaction, signal, &byDefault, NULL, sizeof(uint64_t));
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) goto fail;
    if (getppid() != args->parent) _exit(127); /* mcpd is already gone */
    for (int target = 0; target < 3; target++) {
        if (dup2(args->fds[target], target) < 0) goto fail;
    }
    if (args->cwd != NULL && chdir(args->cwd) < 0) goto fail;
    execve(args->path, args->argv, args->envp);
fail:
    args->error = errno;
    _exit(127);
}

/* clone(CLONE_VM | CLONE_VFORK), as glibc's and musl's posix_spawn do, not fork: no copy of
 * mcpd's page tables, and mcpd resumes once the child has exec'd (0.3 ms per backend, against
 * 0.6 ms with fork in a 12 MB process). posix_spawn itself cannot be used: PR_SET_PDEATHSIG
 * must be set in the child, between clone and exec, and it has no hook for that. The child
 * runs on a stack in this frame, which is safe because this thread waits for it. */
int mcpd_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd, const int fds[3], int parent) {
    struct spawn_args args = {path, argv, envp, cwd, fds, parent, 0};
    enum { stackSize = 64 << 10 };
    char stack[stackSize] __attribute__((aligned(16)));
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = clone(spawn_child, stack + stackSize, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    int cloneError = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) return -cloneError;
    if (args.error != 0) {
        /* The child exited before exec; reap it here, unless the SIGCHLD reaper already did. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -args.error;
    }
    return pid;
}

int mcpd_become_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ? -errno : 0;
}

int mcpd_reaps_orphans(void) {
    int subreaper = 0;
    return getpid() == 1 || (prctl(PR_GET_CHILD_SUBREAPER, &subreaper) == 0 && subreaper != 0);
}

long mcpd_raise_open_file_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) return -errno;
    if (limit.rlim_cur < limit.rlim_max) {
        rlim_t wanted = limit.rlim_max;
        limit.rlim_cur = wanted;
        if (setrlimit(RLIMIT_NOFILE, &limit) < 0) return -errno;
    }
    return limit.rlim_cur == RLIM_INFINITY ? (long)0x7fffffff : (long)limit.rlim_cur;
}

long mcpd_open_file_limit(int hard) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0) return -errno;
    rlim_t value = hard ? limit.rlim_max : limit.rlim_cur;
    return value == RLIM_INFINITY ? (long)0x7fffffff : (long)value;
}

void mcpd_release_free_memory(void) {
    malloc_trim(0);
}

int mcpd_parent_of(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buffer[512];
    ssize_t n = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    if (n <= 0) return -1;
    buffer[n] = 0;
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it. */
    char *end = strrchr(buffer, ')');
    int parent = -1;
    char state;
    if (end == NULL || sscanf(end + 1, " %c %d", &state, &parent) != 2) return -1;
    return parent;
}

int mcpd_random_bytes(void *buf, unsigned long len) {
    unsigned char *out = buf;
    while (len > 0) {
        ssize_t got = getrandom(out, len, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        out += got;
        len -= (unsigned long)got;
    }
    return 0;
}
