/*
 * coldstart: time from spawning an MCP stdio server to a given answer.
 *
 *   coldstart [--method initialize|tools/list] [--parallel N] [--expect STR]... -- CMD ARGS...
 *
 * Spawns N copies of CMD (default 1) with pipes on stdin/stdout (stderr inherited), one
 * after the other, as fast as possible. Right after each fork, before waiting for
 * anything, it writes to that child's stdin
 *   initialize (id 1)                                   with --method initialize (default)
 *   initialize (id 1), notifications/initialized,
 *   tools/list (id 2)                                   with --method tools/list
 * and then waits (poll) for the answer with the last id from every child. Each child's
 * time runs from just before its fork() to the read() that completed the answer's line.
 * An answer must be a "result" (no "error"); with --expect, the answer's line must contain
 * every given string (e.g. the tool names the gateway has to list). Any failure: exit 2.
 * Then every child's stdin is closed and the children are reaped.
 *
 * Output (one line on stdout), times in milliseconds:
 *   n=N max_ms=.. min_ms=.. init_max_ms=..
 * max_ms / min_ms: slowest / fastest child's time to the awaited answer; init_max_ms: slowest
 * child's time to its initialize answer (same as max_ms with --method initialize).
 *
 * Build: gcc -O2 -Wall -Wextra -std=gnu11 -o coldstart coldstart.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXN 1024
#define MAXEXPECT 256

typedef struct {
    pid_t pid;
    int in, out;           /* our ends: child's stdin (write), child's stdout (read) */
    uint64_t t0, t_init, t_done;
    char *buf;
    size_t len, cap, scanned;
    int done;
} child_t;

static child_t kids[MAXN];
static int nkids;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("coldstart: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    for (int i = 0; i < nkids; i++)
        if (kids[i].pid > 0) kill(kids[i].pid, SIGKILL);
    exit(code);
}

static void write_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            fail(2, "write to child: %s", w < 0 ? strerror(errno) : "0 bytes");
        }
    }
}

/* The id of a response line: the digits after "id": (we send 1 and 2 only). 0 if none. */
static int line_id(const char *s, size_t n) {
    static const char key[] = "\"id\":";
    const char *p = memmem(s, n, key, sizeof key - 1);
    if (!p) return 0;
    p += sizeof key - 1;
    while (p < s + n && *p == ' ') p++;
    if (p < s + n && *p >= '0' && *p <= '9') return *p - '0';
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: coldstart [--method initialize|tools/list] [--parallel N] [--expect STR]... -- CMD ARGS...\n");
    exit(1);
}

int main(int argc, char **argv) {
    int parallel = 1, list = 0, nexpect = 0, i;
    const char *expect[MAXEXPECT];
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc) usage();
        if (strcmp(a, "--parallel") == 0) {
            parallel = atoi(argv[++i]);
            if (parallel < 1 || parallel > MAXN) fail(1, "--parallel must be 1..%d", MAXN);
        } else if (strcmp(a, "--method") == 0) {
            const char *m = argv[++i];
            if (strcmp(m, "tools/list") == 0) list = 1;
            else if (strcmp(m, "initialize") == 0) list = 0;
            else usage();
        } else if (strcmp(a, "--expect") == 0) {
            if (nexpect == MAXEXPECT) fail(1, "too many --expect");
            expect[nexpect++] = argv[++i];
        } else {
            usage();
        }
    }
    if (i >= argc) usage();
    char **cmd = argv + i;
    signal(SIGPIPE, SIG_IGN);

    static const char init[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\","
        "\"capabilities\":{},\"clientInfo\":{\"name\":\"coldstart\",\"version\":\"1.0\"}}}\n";
    static const char rest[] =
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{}}\n";
    char first[sizeof init + sizeof rest];
    size_t first_len = sizeof init - 1;
    memcpy(first, init, first_len);
    if (list) {
        memcpy(first + first_len, rest, sizeof rest - 1);
        first_len += sizeof rest - 1;
    }
    int want_id = list ? 2 : 1;

    for (int k = 0; k < parallel; k++) {
        int pin[2], pout[2];
        if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC)) fail(1, "pipe: %s", strerror(errno));
        child_t *c = &kids[k];
        c->t0 = now_ns();
        pid_t pid = fork();
        if (pid < 0) fail(1, "fork: %s", strerror(errno));
        if (pid == 0) {
            if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0) _exit(127);
            signal(SIGPIPE, SIG_DFL);
            execvp(cmd[0], cmd);
            fprintf(stderr, "coldstart: exec %s: %s\n", cmd[0], strerror(errno));
            _exit(127);
        }
        c->pid = pid;
        nkids = k + 1;
        close(pin[0]);
        close(pout[1]);
        c->in = pin[1];
        c->out = pout[0];
        /* a pipe holds 64 KiB: these few hundred bytes never block */
        write_all(c->in, first, first_len);
    }

    int remaining = parallel;
    struct pollfd pf[MAXN];
    while (remaining > 0) {
        int np = 0, map[MAXN];
        for (int k = 0; k < parallel; k++)
            if (!kids[k].done) {
                pf[np].fd = kids[k].out;
                pf[np].events = POLLIN;
                map[np++] = k;
            }
        int pr = poll(pf, (nfds_t)np, 30000);
        if (pr < 0) {
            if (errno == EINTR) continue;
            fail(2, "poll: %s", strerror(errno));
        }
        if (pr == 0) fail(2, "timeout: %d of %d children did not answer within 30 s", remaining, parallel);
        for (int j = 0; j < np; j++) {
            if (!(pf[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            child_t *c = &kids[map[j]];
            if (c->len + 65536 > c->cap) {
                c->cap = c->cap ? c->cap * 2 : 131072;
                c->buf = realloc(c->buf, c->cap);
                if (!c->buf) fail(1, "out of memory");
            }
            ssize_t r = read(c->out, c->buf + c->len, c->cap - c->len);
            uint64_t t = now_ns();
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) fail(2, "child %d (pid %d) closed its stdout before answering", map[j], (int)c->pid);
            c->len += (size_t)r;
            char *nl;
            while (!c->done && (nl = memchr(c->buf + c->scanned, '\n', c->len - c->scanned)) != NULL) {
                char *ls = c->buf + c->scanned;
                size_t ln = (size_t)(nl - ls);
                c->scanned = (size_t)(nl - c->buf) + 1;
                int id = line_id(ls, ln);
                if (id == 0) continue; /* a notification or a request from the server */
                if (memmem(ls, ln, "\"error\"", 7) || !memmem(ls, ln, "\"result\"", 8))
                    fail(2, "error answer from child %d: %.*s", map[j], (int)(ln > 400 ? 400 : ln), ls);
                if (id == 1) c->t_init = t;
                if (id == want_id) {
                    for (int e = 0; e < nexpect; e++)
                        if (!memmem(ls, ln, expect[e], strlen(expect[e])))
                            fail(2, "answer of child %d lacks %s: %.*s", map[j], expect[e],
                                 (int)(ln > 400 ? 400 : ln), ls);
                    c->t_done = t;
                    c->done = 1;
                    remaining--;
                }
            }
        }
    }

    double mx = 0, mn = 1e300, imx = 0;
    for (int k = 0; k < parallel; k++) {
        double ms = (double)(kids[k].t_done - kids[k].t0) / 1e6;
        double ims = (double)(kids[k].t_init - kids[k].t0) / 1e6;
        if (ms > mx) mx = ms;
        if (ms < mn) mn = ms;
        if (ims > imx) imx = ims;
    }

    /* shut down: close stdin, drain stdout to EOF, reap */
    for (int k = 0; k < parallel; k++) close(kids[k].in);
    int status_bad = 0;
    for (int k = 0; k < parallel; k++) {
        char sink[65536];
        ssize_t r;
        while ((r = read(kids[k].out, sink, sizeof sink)) > 0 || (r < 0 && errno == EINTR)) {
        }
        close(kids[k].out);
        int st;
        while (waitpid(kids[k].pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) status_bad = 1;
        kids[k].pid = 0;
    }
    printf("n=%d max_ms=%.3f min_ms=%.3f init_max_ms=%.3f\n", parallel, mx, mn, imx);
    if (status_bad) {
        fprintf(stderr, "coldstart: a child exited with a non-zero status or a signal\n");
        return 3;
    }
    return 0;
}
