/*
 * relay: the minimal stdio proxy, i.e. the floor any stdio gateway can reach.
 *
 *   relay [--corrupt-at N] -- CMD ARGS...
 *
 * Spawns CMD with pipes on its stdin/stdout (stderr inherited) and copies bytes
 * stdin -> child stdin and child stdout -> stdout through 64 KiB user-space
 * buffers (read/write, one copy in and one out, as a real proxy that has to look
 * at the bytes must do), driven by poll() on nonblocking fds. No parsing, no
 * framing. EOF on stdin closes the child's stdin; the relay exits, with the
 * child's exit status, once the child's stdout hit EOF and everything was written.
 *
 * --corrupt-at N (test only): uppercases the first byte in a-z found at or after
 * offset N of the child->stdout stream, to check that the load generator's
 * validation catches a corrupted response.
 *
 * Build: gcc -O2 -Wall -Wextra -o relay relay.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUFSZ 65536

typedef struct {
    int from, to;          /* fds; -1 once closed */
    int eof;               /* read side hit EOF */
    size_t off, len;       /* pending bytes buf[off..len) */
    char buf[BUFSZ];
} pump_t;

static long long corrupt_at = -1, down_pos = 0;

static void die(const char *msg) {
    fprintf(stderr, "relay: %s: %s\n", msg, strerror(errno));
    exit(1);
}

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
}

/* Try to write pending bytes. Returns -1 on EPIPE-like failure of the writer side. */
static int pump_write(pump_t *p) {
    while (p->off < p->len) {
        ssize_t w = write(p->to, p->buf + p->off, p->len - p->off);
        if (w > 0) {
            p->off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    p->off = p->len = 0;
    return 0;
}

/* Read once into an empty buffer, then try to write it out right away. */
static int pump_read(pump_t *p, int is_down) {
    ssize_t r;
    do r = read(p->from, p->buf, BUFSZ);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        die("read");
    }
    if (r == 0) {
        p->eof = 1;
        return 0;
    }
    if (is_down && corrupt_at >= 0 && down_pos + r > corrupt_at) {
        for (ssize_t i = corrupt_at > down_pos ? (ssize_t)(corrupt_at - down_pos) : 0; i < r; i++)
            if (p->buf[i] >= 'a' && p->buf[i] <= 'z') {
                p->buf[i] = (char)(p->buf[i] - 'a' + 'A');
                corrupt_at = -1;
                break;
            }
    }
    down_pos += is_down ? r : 0;
    p->off = 0;
    p->len = (size_t)r;
    return pump_write(p);
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--corrupt-at") == 0 && i + 1 < argc) corrupt_at = atoll(argv[++i]);
        else break;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: relay [--corrupt-at N] -- CMD ARGS...\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    int pin[2], pout[2];
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC)) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0) _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[i], argv + i);
        fprintf(stderr, "relay: exec %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);

    static pump_t up, down; /* up: stdin -> child; down: child -> stdout */
    up.from = 0;
    up.to = pin[1];
    down.from = pout[0];
    down.to = 1;
    set_nonblock(0);
    set_nonblock(1);
    set_nonblock(pin[1]);
    set_nonblock(pout[0]);

    for (;;) {
        /* stdin EOF and nothing pending: close the child's stdin once */
        if (up.to >= 0 && up.eof && up.off == up.len) {
            close(up.to);
            up.to = -1;
        }
        if (down.eof && down.off == down.len) break;

        struct pollfd pf[4];
        int n = 0, iu = -1, iuw = -1, id = -1, idw = -1;
        if (!up.eof && up.off == up.len) { iu = n; pf[n++] = (struct pollfd){.fd = up.from, .events = POLLIN}; }
        if (up.to >= 0 && up.off < up.len) { iuw = n; pf[n++] = (struct pollfd){.fd = up.to, .events = POLLOUT}; }
        if (!down.eof && down.off == down.len) { id = n; pf[n++] = (struct pollfd){.fd = down.from, .events = POLLIN}; }
        if (down.off < down.len) { idw = n; pf[n++] = (struct pollfd){.fd = down.to, .events = POLLOUT}; }

        if (poll(pf, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        if (id >= 0 && pf[id].revents) {
            if (pump_read(&down, 1) < 0) break; /* our stdout is gone */
        }
        if (idw >= 0 && pf[idw].revents) {
            if (pump_write(&down) < 0) break;
        }
        if (iu >= 0 && pf[iu].revents) {
            if (pump_read(&up, 0) < 0) { /* child's stdin is gone: drop input */
                up.off = up.len = 0;
                close(up.to);
                up.to = -1;
            }
        }
        if (iuw >= 0 && pf[iuw].revents) {
            if (pump_write(&up) < 0) {
                up.off = up.len = 0;
                close(up.to);
                up.to = -1;
            }
        }
        if (up.to < 0 && !up.eof) { /* keep consuming stdin so the writer never blocks */
            up.off = up.len = 0;
        }
    }

    if (up.to >= 0) close(up.to);
    close(down.from);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}
