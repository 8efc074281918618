/*
 * relay: the minimal stdio proxy, i.e. the floor any stdio gateway can reach.
 *
 *   relay [--frame-lines] [--corrupt-at N] -- CMD ARGS...
 *
 * Spawns CMD with pipes on its stdin/stdout (stderr inherited) and copies bytes
 * stdin -> child stdin and child stdout -> stdout through 64 KiB user-space
 * buffers (read/write, one copy in and one out, as a real proxy that has to look
 * at the bytes must do), driven by poll() on nonblocking fds. No parsing, no
 * framing. EOF on stdin closes the child's stdin; the relay exits, with the
 * child's exit status, once the child's stdout hit EOF and everything was written.
 *
 * --frame-lines: the newline-framing relay, the floor of any line-framed gateway (one
 * that handles messages, not bytes). Each direction reads into a growable buffer (at
 * least 64 KiB free per read), finds every '\n' of the new bytes with memchr, one line
 * at a time, and writes only whole lines: everything up to the last newline found, at
 * once; a partial line waits in the buffer for its end (a 1 MB line is held until its
 * newline arrives). A direction goes on reading while its lines wait to be written (up
 * to 16 MiB), as a gateway's event loop does, and, like mcpd, a pipe seen carrying a
 * line larger than it holds is grown (F_SETPIPE_SZ) to the next power of two above the
 * line, at most 1 MiB. No parsing. At EOF an unterminated tail is forwarded as it is.
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
static int frame_lines;

/* --frame-lines: buf[off..ready) is whole lines being written, buf[ready..len) the start
 * of the next line (already searched: it holds no '\n'). */
typedef struct {
    int from, to, eof;
    size_t off, ready, len, cap;
    char *buf;
    size_t longest;           /* the longest line seen so far, newline included */
    int from_cap, to_cap;     /* the pipes' capacities (F_GETPIPE_SZ), 0 if not a pipe */
} lpump_t;

/* Stop reading a direction while this much is buffered and not yet written. */
#define LINE_BACKLOG (16u << 20)
#define PIPE_MAX (1 << 20) /* fs.pipe-max-size, the unprivileged maximum */

static int pipe_cap(int fd) {
    int c = fcntl(fd, F_GETPIPE_SZ);
    return c > 0 ? c : 0;
}

/* As mcpd does (IOStream.growPipe): a pipe seen carrying a line larger than it holds is grown
 * to the next power of two above the line, at most 1 MiB, so that a frame crosses in one go. */
static void grow_pipe(int fd, int *cap, size_t bytes) {
    if (fd < 0 || *cap <= 0 || bytes <= (size_t)*cap || *cap >= PIPE_MAX) return;
    size_t want = 1;
    while (want < bytes && want < PIPE_MAX) want <<= 1;
    int got = fcntl(fd, F_SETPIPE_SZ, (int)want);
    *cap = got > 0 ? got : PIPE_MAX; /* on failure, stop trying */
}

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

static void corrupt(char *buf, ssize_t r, int is_down) {
    if (is_down && corrupt_at >= 0 && down_pos + r > corrupt_at) {
        for (ssize_t i = corrupt_at > down_pos ? (ssize_t)(corrupt_at - down_pos) : 0; i < r; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z') {
                buf[i] = (char)(buf[i] - 'a' + 'A');
                corrupt_at = -1;
                break;
            }
    }
    down_pos += is_down ? r : 0;
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
    corrupt(p->buf, r, is_down);
    p->off = 0;
    p->len = (size_t)r;
    return pump_write(p);
}

/* Writes buf[off..ready); moves what is left to the buffer's start once the whole lines are
 * written (or once half the buffer is written). */
static int lpump_write(lpump_t *p) {
    if (p->off < p->ready) grow_pipe(p->to, &p->to_cap, p->longest);
    while (p->off < p->ready) {
        ssize_t w = write(p->to, p->buf + p->off, p->ready - p->off);
        if (w > 0) {
            p->off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    if (p->off > 0 && (p->off == p->ready || p->off > p->cap / 2)) {
        memmove(p->buf, p->buf + p->off, p->len - p->off);
        p->len -= p->off;
        p->ready -= p->off;
        p->off = 0;
    }
    return 0;
}

/* Reads once after what is buffered, finds the newlines of the new bytes (memchr, one line
 * at a time), then writes the whole lines. */
static int lpump_read(lpump_t *p, int is_down) {
    if (p->cap - p->len < BUFSZ) {
        size_t ncap = p->cap ? p->cap * 2 : 4 * BUFSZ;
        while (ncap - p->len < BUFSZ) ncap *= 2;
        char *nb = realloc(p->buf, ncap);
        if (!nb) die("realloc");
        p->buf = nb;
        p->cap = ncap;
    }
    ssize_t r;
    do r = read(p->from, p->buf + p->len, p->cap - p->len);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        die("read");
    }
    if (r == 0) {
        p->eof = 1;
        p->ready = p->len; /* forward an unterminated tail */
        return lpump_write(p);
    }
    corrupt(p->buf + p->len, r, is_down);
    size_t scan = p->len;
    p->len += (size_t)r;
    const char *nl;
    while ((nl = memchr(p->buf + scan, '\n', p->len - scan)) != NULL) {
        size_t end = (size_t)(nl - p->buf) + 1;
        if (end - p->ready > p->longest) p->longest = end - p->ready;
        p->ready = scan = end;
    }
    if (p->len - p->ready > p->longest) p->longest = p->len - p->ready;
    grow_pipe(p->from, &p->from_cap, p->len - p->ready); /* a partial line larger than the pipe */
    return lpump_write(p);
}

/* The --frame-lines loop: as main's, but a direction keeps reading while its whole lines wait
 * to be written (up to LINE_BACKLOG bytes), as a gateway's event loop does. */
static void run_lines(int child_in, int child_out) {
    static lpump_t up, down;
    up.from = 0;
    up.to = child_in;
    down.from = child_out;
    down.to = 1;
    up.from_cap = pipe_cap(0);
    up.to_cap = pipe_cap(child_in);
    down.from_cap = pipe_cap(child_out);
    down.to_cap = pipe_cap(1);
    for (;;) {
        if (up.to >= 0 && up.eof && up.off == up.ready) {
            close(up.to);
            up.to = -1;
        }
        if (down.eof && down.off == down.ready) break;

        struct pollfd pf[4];
        int n = 0, iu = -1, iuw = -1, id = -1, idw = -1;
        if (!up.eof && up.len - up.off < LINE_BACKLOG) { iu = n; pf[n++] = (struct pollfd){.fd = up.from, .events = POLLIN}; }
        if (up.to >= 0 && up.off < up.ready) { iuw = n; pf[n++] = (struct pollfd){.fd = up.to, .events = POLLOUT}; }
        if (!down.eof && down.len - down.off < LINE_BACKLOG) { id = n; pf[n++] = (struct pollfd){.fd = down.from, .events = POLLIN}; }
        if (down.off < down.ready) { idw = n; pf[n++] = (struct pollfd){.fd = down.to, .events = POLLOUT}; }

        if (poll(pf, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        if (id >= 0 && pf[id].revents) {
            if (lpump_read(&down, 1) < 0) break;
        }
        if (idw >= 0 && pf[idw].revents) {
            if (lpump_write(&down) < 0) break;
        }
        if (iu >= 0 && pf[iu].revents) {
            if (up.to < 0) { /* child's stdin is gone: keep consuming stdin, drop it */
                char sink[BUFSZ];
                ssize_t r = read(up.from, sink, sizeof sink);
                if (r == 0) up.eof = 1;
            } else if (lpump_read(&up, 0) < 0) {
                up.off = up.ready = up.len = 0;
                close(up.to);
                up.to = -1;
            }
        }
        if (iuw >= 0 && pf[iuw].revents) {
            if (lpump_write(&up) < 0) {
                up.off = up.ready = up.len = 0;
                close(up.to);
                up.to = -1;
            }
        }
    }
    if (up.to >= 0) close(up.to);
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--corrupt-at") == 0 && i + 1 < argc) corrupt_at = atoll(argv[++i]);
        else if (strcmp(argv[i], "--frame-lines") == 0) frame_lines = 1;
        else break;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: relay [--frame-lines] [--corrupt-at N] -- CMD ARGS...\n");
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

    set_nonblock(0);
    set_nonblock(1);
    set_nonblock(pin[1]);
    set_nonblock(pout[0]);
    if (frame_lines) {
        run_lines(pin[1], pout[0]);
        goto done;
    }

    static pump_t up, down; /* up: stdin -> child; down: child -> stdout */
    up.from = 0;
    up.to = pin[1];
    down.from = pout[0];
    down.to = 1;

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
done:
    close(pout[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) die("waitpid");
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}
