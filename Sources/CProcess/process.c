#define _GNU_SOURCE
#include "cprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* fork, not posix_spawn: PR_SET_PDEATHSIG must be set in the child, between fork and exec,
 * and posix_spawn has no hook for it. mcpd is small, so fork's page-table copy is cheap. Only
 * async-signal-safe calls run in the child. Signals are blocked around fork so that no handler
 * of mcpd's (libuv writes to its signal pipe, shared with the child) runs in the child before
 * they are reset. */
int mcpd_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd, const int fds[3], int parent) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) return -errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction byDefault;
        memset(&byDefault, 0, sizeof byDefault);
        byDefault.sa_handler = SIG_DFL;
        for (int signal = 1; signal < NSIG; signal++) sigaction(signal, &byDefault, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int error = 0;
        if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
            error = errno;
        } else if (getppid() != parent) {
            _exit(127);
        } else {
            for (int target = 0; target < 3 && error == 0; target++) {
                if (dup2(fds[target], target) < 0) error = errno;
            }
            if (error == 0 && cwd != NULL && chdir(cwd) < 0) error = errno;
            if (error == 0) {
                execve(path, argv, envp);
                error = errno;
            }
        }
        ssize_t ignored = write(report[1], &error, sizeof error);
        (void)ignored;
        _exit(127);
    }
    int forkError = pid < 0 ? errno : 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        return -forkError;
    }
    int error = 0;
    ssize_t n;
    do {
        n = read(report[0], &error, sizeof error);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof error) {
        /* The child exits at once; reap it here, unless the SIGCHLD reaper already did. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -(error ? error : ECHILD);
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
