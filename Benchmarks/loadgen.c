/*
 * loadgen: closed-loop MCP load generator over a child's stdio.
 *
 *   loadgen --depth D --payload BYTES --count N [--tool NAME | --tools A,B,...]
 *           [--warmup W] [--duration SECS] -- CMD ARGS...
 *
 * Spawns CMD with pipes on its stdin/stdout (stderr inherited), performs the MCP
 * handshake (initialize, wait for the response, notifications/initialized),
 * runs W warm-up calls, then N measured tools/call requests, keeping D in flight
 * (a new request is queued as each response arrives; everything queued during
 * one loop turn goes out in one write). Both pipe ends are nonblocking, driven by poll().
 * With --duration, no new request is issued once SECS have elapsed in the measured
 * phase (N is then only an upper bound); in-flight calls are drained and counted.
 *
 * --tools A,B,...: round-robin over n tool names: request id k calls tool k mod n
 * (validation is the same for every tool: each must echo the text back).
 *
 * Payload: the JSON string literal of arguments.text is exactly BYTES bytes long
 * as raw JSON, quotes included. It contains the request id (so every request is
 * distinct), the escapes \" \\ \n \u00e9 \ud83d\ude00, raw 2-byte UTF-8 (é) and
 * raw 4-byte UTF-8 (😀); the rest is ASCII filler.
 *
 * Validation of every response: the id must be an outstanding request id, there
 * must be no top-level "error", and the "result" must contain `"text":` followed
 * by exactly (memcmp) the literal that was sent with that id. Any mismatch prints
 * a diagnosis and exits 2.
 *
 * Output (one line on stdout):
 *   calls=N secs=S calls_per_s=X mb_per_s=Y p50_us=A p99_us=B child_hwm_kb=K
 *   lg_cpu=C lg_cpu_pct=P child_cpu=C2 child_cpu_pct=P2 child_cpu_total=C3
 * where
 *   mb_per_s      = 2 * BYTES * N / secs / 1e6  (request + response payload literal bytes,
 *                   10^6 bytes per MB; JSON-RPC envelopes are not counted)
 *   p50/p99       = per-call latency, write of the request batch -> read of the response
 *   child_hwm_kb  = VmHWM of the direct child (peak RSS), read before its stdin is closed
 *   lg_cpu        = this process's user+sys CPU seconds during the measured phase
 *   child_cpu     = user+sys CPU seconds of the child's whole process tree during the
 *                   measured phase (from /proc/<pid>/stat of every descendant)
 *   child_cpu_total = user+sys of the child over its whole life incl. reaped descendants
 *                   (wait4 rusage)
 *   *_pct         = CPU seconds / wall seconds of the measured phase * 100
 *
 * Build: gcc -O2 -Wall -Wextra -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ID_DIGITS 10

typedef struct {
    char *p;
    size_t off, len, cap; /* data is p[off..len) */
} buf_t;

static pid_t child_pid = -1;

static void fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (child_pid > 0) kill(child_pid, SIGKILL);
    exit(code);
}

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->off > 0 && b->off == b->len) b->off = b->len = 0;
    if (b->len + extra <= b->cap) return;
    if (b->off > 0) { /* compact first */
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap) return;
    }
    size_t ncap = b->cap ? b->cap : 65536;
    while (ncap < b->len + extra) ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) fail(1, "out of memory");
    b->p = np;
    b->cap = ncap;
}

static void buf_put(buf_t *b, const void *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_puts(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- minimal JSON scanner (raw spans, escape-aware string skipping) ---- */

typedef struct {
    const char *s;
    size_t n;
} span_t;

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

static const char *skip_string(const char *p, const char *end) {
    p++;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q) return NULL;
        const char *b = q;
        while (b > p && b[-1] == '\\') b--;
        if (((q - b) & 1) == 0) return q + 1;
        p = q + 1;
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *end) {
    p = skip_ws(p, end);
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                p = skip_string(p, end);
                if (!p) return NULL;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\r' && *p != '\n')
        p++;
    return p;
}

/* Looks up top-level members id, method, result, error in one pass. Returns 0 if not an object. */
typedef struct {
    span_t id, method, result, error;
} msg_t;

static int scan_message(const char *p, const char *end, msg_t *m) {
    memset(m, 0, sizeof *m);
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return 1;
    while (p < end) {
        if (*p != '"') return 0;
        const char *ks = p + 1;
        const char *ke = skip_string(p, end);
        if (!ke) return 0;
        size_t kn = (size_t)(ke - 1 - ks);
        p = skip_ws(ke, end);
        if (p >= end || *p != ':') return 0;
        p = skip_ws(p + 1, end);
        const char *vs = p;
        const char *ve = skip_value(p, end);
        if (!ve) return 0;
        span_t v = {vs, (size_t)(ve - vs)};
        if (kn == 2 && memcmp(ks, "id", 2) == 0) m->id = v;
        else if (kn == 6 && memcmp(ks, "method", 6) == 0) m->method = v;
        else if (kn == 6 && memcmp(ks, "result", 6) == 0) m->result = v;
        else if (kn == 5 && memcmp(ks, "error", 5) == 0) m->error = v;
        p = skip_ws(ve, end);
        if (p < end && *p == '}') return 1;
        if (p >= end || *p != ',') return 0;
        p = skip_ws(p + 1, end);
    }
    return 0;
}

/* ---- payload ---- */

static char *payload;      /* the string literal, quotes included, `payload_len` bytes */
static size_t payload_len;
static size_t digits_at;   /* offset of the ID_DIGITS-wide request id inside payload */

static void build_payload(size_t bytes) {
    /* fixed part: "id=XXXXXXXXXX;esc:\"\\\n\u00e9\ud83d\ude00;raw:é😀;fill:......" */
    static const char head[] = "\"id=";
    static const char mid[] = ";esc:\\\"\\\\\\n\\u00e9\\ud83d\\ude00;raw:\xc3\xa9\xf0\x9f\x98\x80;fill:";
    size_t fixed = strlen(head) + ID_DIGITS + strlen(mid) + 1 /* closing quote */;
    if (bytes < fixed)
        fail(1, "--payload must be at least %zu bytes (the fixed part of the literal)", fixed);
    payload_len = bytes;
    payload = malloc(bytes);
    if (!payload) fail(1, "out of memory");
    size_t o = 0;
    memcpy(payload + o, head, strlen(head));
    o += strlen(head);
    digits_at = o;
    memset(payload + o, '0', ID_DIGITS);
    o += ID_DIGITS;
    memcpy(payload + o, mid, strlen(mid));
    o += strlen(mid);
    static const char filler[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    for (size_t i = 0; o < bytes - 1; i++, o++) payload[o] = filler[i % (sizeof filler - 1)];
    payload[o++] = '"';
}

/* Writes the id digits into the shared payload template. */
static void payload_set_id(uint64_t id) {
    char *d = payload + digits_at;
    for (int i = ID_DIGITS - 1; i >= 0; i--) {
        d[i] = (char)('0' + id % 10);
        id /= 10;
    }
}

/* ---- state ---- */

static int to_child = -1, from_child = -1;
static buf_t outq, inq;
static const char *tool = "echo";
static char **tools;        /* --tools: n_tools names, request id k uses tools[k % n_tools] */
static size_t n_tools;

static void parse_tools(const char *list) {
    char *copy = strdup(list);
    if (!copy) fail(1, "out of memory");
    n_tools = 0;
    for (char *p = copy; *p; p++) if (*p == ',') n_tools++;
    n_tools++;
    tools = calloc(n_tools, sizeof *tools);
    if (!tools) fail(1, "out of memory");
    size_t k = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) tools[k++] = t;
    n_tools = k;
    if (n_tools == 0) fail(1, "--tools needs at least one name");
}

static uint64_t *send_ns;   /* indexed by id; 0 = not outstanding */
static uint32_t *lat_ns;    /* measured latencies, capped at ~4.29 s */
static uint64_t n_lat, lat_cap;
static uint64_t max_id;     /* send_ns has max_id + 1 entries */

static void ensure_id(uint64_t id) {
    if (id <= max_id) return;
    uint64_t ncap = max_id ? max_id : 4096;
    while (ncap < id) ncap *= 2;
    uint64_t *np = realloc(send_ns, (ncap + 1) * sizeof *np);
    if (!np) fail(1, "out of memory");
    memset(np + max_id + 1, 0, (ncap - max_id) * sizeof *np);
    send_ns = np;
    max_id = ncap;
}
static uint64_t measure_from_id; /* ids >= this are measured */

static void queue_call(uint64_t id) {
    char head[256];
    ensure_id(id);
    int n = snprintf(head, sizeof head,
                     "{\"jsonrpc\":\"2.0\",\"id\":%" PRIu64
                     ",\"method\":\"tools/call\",\"params\":{\"name\":\"",
                     id);
    const char *name = n_tools ? tools[id % n_tools] : tool;
    buf_reserve(&outq, (size_t)n + strlen(name) + payload_len + 64);
    buf_put(&outq, head, (size_t)n);
    buf_puts(&outq, name);
    buf_puts(&outq, "\",\"arguments\":{\"text\":");
    payload_set_id(id);
    buf_put(&outq, payload, payload_len);
    buf_puts(&outq, "}}}\n");
}

/* Write as much queued output as the pipe takes. */
static void flush_out(void) {
    while (outq.len > outq.off) {
        ssize_t w = write(to_child, outq.p + outq.off, outq.len - outq.off);
        if (w > 0) {
            outq.off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            fail(2, "write to child failed: %s", w < 0 ? strerror(errno) : "0 bytes");
        }
    }
    outq.off = outq.len = 0;
}

static void show(const char *what, const char *s, size_t n) {
    size_t lim = n > 300 ? 300 : n;
    fprintf(stderr, "loadgen: %s (%zu bytes): %.*s%s\n", what, n, (int)lim, s, n > lim ? "..." : "");
}

/* Handles one incoming line. Returns the id of the completed call, or 0 if the
 * line was not a call response (notification / server request). */
static uint64_t handle_line(const char *s, const char *e, uint64_t expect_init_id, int *init_done) {
    msg_t m;
    if (e > s && e[-1] == '\r') e--;
    if (skip_ws(s, e) == e) return 0;
    if (!scan_message(s, e, &m)) {
        show("unparseable message from child", s, (size_t)(e - s));
        fail(2, "invalid JSON from child");
    }
    if (m.method.s) {
        if (m.id.s) { /* server -> client request: answer ping, refuse the rest */
            char tmp[128];
            int is_ping = m.method.n == 6 && memcmp(m.method.s, "\"ping\"", 6) == 0;
            buf_puts(&outq, "{\"jsonrpc\":\"2.0\",\"id\":");
            buf_put(&outq, m.id.s, m.id.n);
            snprintf(tmp, sizeof tmp, "%s\n",
                     is_ping ? ",\"result\":{}}"
                             : ",\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}");
            buf_puts(&outq, tmp);
        }
        return 0; /* notifications are ignored */
    }
    if (!m.id.s) {
        show("response without id", s, (size_t)(e - s));
        fail(2, "response without id");
    }
    /* ids we send are plain decimal integers */
    uint64_t id = 0;
    int ok = m.id.n > 0 && m.id.n <= 19;
    for (size_t i = 0; ok && i < m.id.n; i++) {
        if (!isdigit((unsigned char)m.id.s[i])) ok = 0;
        else id = id * 10 + (uint64_t)(m.id.s[i] - '0');
    }
    if (!ok) {
        show("response", s, (size_t)(e - s));
        fail(2, "response id %.*s is not one we sent (we send decimal integers)", (int)m.id.n, m.id.s);
    }
    if (m.error.s) {
        show("error response", s, (size_t)(e - s));
        fail(2, "error response for id %" PRIu64, id);
    }
    if (!m.result.s) {
        show("response", s, (size_t)(e - s));
        fail(2, "response for id %" PRIu64 " has neither result nor error", id);
    }
    if (init_done && !*init_done) {
        if (id != expect_init_id) fail(2, "unexpected response id %" PRIu64 " before initialize completed", id);
        *init_done = 1;
        return 0;
    }
    if (id == 0 || id > max_id || send_ns[id] == 0) {
        show("response", s, (size_t)(e - s));
        fail(2, "response id %" PRIu64 " is not outstanding", id);
    }
    /* find "text": inside result, then compare the literal */
    static const char key[] = "\"text\":";
    const char *r = m.result.s, *re = m.result.s + m.result.n;
    const char *t = memmem(r, (size_t)(re - r), key, sizeof key - 1);
    if (!t) {
        show("response", s, (size_t)(e - s));
        fail(2, "response for id %" PRIu64 " has no \"text\": in result", id);
    }
    t = skip_ws(t + sizeof key - 1, re);
    payload_set_id(id);
    if ((size_t)(re - t) < payload_len || memcmp(t, payload, payload_len) != 0) {
        size_t avail = (size_t)(re - t), i = 0;
        while (i < avail && i < payload_len && t[i] == payload[i]) i++;
        fprintf(stderr, "loadgen: payload mismatch for id %" PRIu64 " at byte %zu of %zu\n", id, i, payload_len);
        size_t from = i > 40 ? i - 40 : 0;
        show("expected (from mismatch-40)", payload + from, payload_len - from);
        show("received (from mismatch-40)", t + from, avail - from);
        fail(2, "payload mismatch");
    }
    const char *after = skip_ws(t + payload_len, re);
    if (after < re && *after != '}' && *after != ',') {
        show("response", s, (size_t)(e - s));
        fail(2, "payload for id %" PRIu64 " is followed by unexpected bytes", id);
    }
    return id;
}

/* Reads what is available and processes complete lines. Returns number of calls completed. */
static uint64_t read_in(uint64_t expect_init_id, int *init_done, int *eof) {
    uint64_t completed = 0;
    for (;;) {
        buf_reserve(&inq, 256 * 1024);
        ssize_t r = read(from_child, inq.p + inq.len, inq.cap - inq.len);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            fail(2, "read from child failed: %s", strerror(errno));
        }
        if (r == 0) {
            *eof = 1;
            break;
        }
        size_t scan = inq.len;
        inq.len += (size_t)r;
        uint64_t t_recv = now_ns();
        const char *nl;
        while ((nl = memchr(inq.p + scan, '\n', inq.len - scan)) != NULL) {
            const char *ls = inq.p + inq.off;
            uint64_t id = handle_line(ls, nl, expect_init_id, init_done);
            inq.off = (size_t)(nl - inq.p) + 1;
            scan = inq.off;
            if (id) {
                if (id >= measure_from_id) {
                    if (n_lat == lat_cap) {
                        lat_cap = lat_cap ? lat_cap * 2 : 65536;
                        lat_ns = realloc(lat_ns, lat_cap * sizeof *lat_ns);
                        if (!lat_ns) fail(1, "out of memory");
                    }
                    uint64_t d = t_recv - send_ns[id];
                    lat_ns[n_lat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
                }
                send_ns[id] = 0;
                completed++;
            }
        }
        if (inq.off == inq.len) inq.off = inq.len = 0;
        if ((size_t)r < 65536) break; /* probably drained; poll again */
    }
    return completed;
}

/* ---- CPU accounting of the child's process tree via /proc ---- */

static double tick_s;

/* Sum of utime+stime (seconds) of pid `root` and all its live descendants. */
static double tree_cpu(pid_t root) {
    enum { MAXP = 65536 };
    pid_t *pids = malloc(sizeof(pid_t) * MAXP), *ppids = malloc(sizeof(pid_t) * MAXP);
    double *cpu = malloc(sizeof(double) * MAXP);
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d || !pids || !ppids || !cpu) return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAXP) {
        if (!isdigit((unsigned char)de->d_name[0])) continue;
        char path[300], line[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t r = read(fd, line, sizeof line - 1);
        close(fd);
        if (r <= 0) continue;
        line[r] = 0;
        char *cp = strrchr(line, ')'); /* comm may contain spaces */
        if (!cp) continue;
        /* fields after comm: state(3) ppid(4) ... utime(14) stime(15) */
        char state;
        int ppid;
        unsigned long ut, st;
        if (sscanf(cp + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &state, &ppid, &ut, &st) != 4)
            continue;
        pids[n] = atoi(de->d_name);
        ppids[n] = ppid;
        cpu[n] = (double)(ut + st) * tick_s;
        n++;
    }
    closedir(d);
    /* mark descendants: iterate to a fixed point (trees are shallow) */
    char *in = calloc((size_t)n + 1, 1);
    double sum = 0;
    int changed = 1;
    for (int i = 0; i < n; i++)
        if (pids[i] == root) in[i] = 1;
    while (changed) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            if (in[i]) continue;
            for (int j = 0; j < n; j++)
                if (in[j] && pids[j] == ppids[i]) {
                    in[i] = 1;
                    changed = 1;
                    break;
                }
        }
    }
    for (int i = 0; i < n; i++)
        if (in[i]) sum += cpu[i];
    free(in);
    free(pids);
    free(ppids);
    free(cpu);
    return sum;
}

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static long read_hwm_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile */
static double pct_us(double q) {
    if (n_lat == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)n_lat + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > n_lat) rank = n_lat;
    return lat_ns[rank - 1] / 1000.0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --depth D --payload BYTES --count N [--tool NAME | --tools A,B,...]\n"
            "               [--warmup W] [--duration SECS] -- CMD ARGS...\n");
    exit(1);
}

static uint64_t parse_u64(const char *s, const char *opt) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s) fail(1, "bad value for %s: %s", opt, s);
    return v;
}

/* Runs calls with ids [first, first+count) keeping `depth` in flight; with
 * dur_ns > 0 stops issuing after that much time. Returns the number of calls done. */
static uint64_t run_calls(uint64_t first, uint64_t count, uint64_t depth, uint64_t dur_ns) {
    uint64_t next = first, end = first + count, inflight = 0, done = 0;
    uint64_t t_start = now_ns();
    int eof = 0;
    for (;;) {
        if (dur_ns && next < end && now_ns() - t_start >= dur_ns) end = next; /* time is up */
        if (inflight == 0 && next >= end) break;
        if (inflight < depth && next < end) {
            uint64_t batch = next;
            while (inflight < depth && next < end) {
                queue_call(next);
                next++;
                inflight++;
            }
            /* stamp the batch just queued with the time of its write */
            uint64_t t = now_ns();
            for (uint64_t id = batch; id < next; id++) send_ns[id] = t;
        }
        flush_out();
        struct pollfd pf[2] = {{.fd = from_child, .events = POLLIN},
                               {.fd = to_child, .events = POLLOUT}};
        int nf = outq.len > outq.off ? 2 : 1;
        int pr = poll(pf, (nfds_t)nf, 60000);
        if (pr < 0) {
            if (errno == EINTR) continue;
            fail(2, "poll: %s", strerror(errno));
        }
        if (pr == 0)
            fail(2, "timeout: no response for 60 s (%" PRIu64 " calls done, %" PRIu64 " in flight)", done,
                 inflight);
        if (nf == 2 && (pf[1].revents & (POLLERR)) && !(pf[0].revents & POLLIN))
            fail(2, "child's stdin was closed (child died?)");
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            uint64_t c = read_in(0, NULL, &eof);
            done += c;
            inflight -= c;
            if (eof && (inflight > 0 || next < end))
                fail(2, "child closed its stdout after %" PRIu64 " calls", done);
        }
    }
    return done;
}

int main(int argc, char **argv) {
    uint64_t depth = 1, bytes = 100, count = 0, warmup = 0;
    double duration = 0;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (i + 1 >= argc) usage();
        if (strcmp(a, "--depth") == 0) depth = parse_u64(argv[++i], a);
        else if (strcmp(a, "--payload") == 0) bytes = parse_u64(argv[++i], a);
        else if (strcmp(a, "--count") == 0) count = parse_u64(argv[++i], a);
        else if (strcmp(a, "--warmup") == 0) warmup = parse_u64(argv[++i], a);
        else if (strcmp(a, "--tool") == 0) tool = argv[++i];
        else if (strcmp(a, "--tools") == 0) parse_tools(argv[++i]);
        else if (strcmp(a, "--duration") == 0) {
            char *e;
            duration = strtod(argv[++i], &e);
            if (*e || duration <= 0) fail(1, "bad value for --duration: %s", argv[i]);
        }
        else usage();
    }
    if (count == 0) count = duration > 0 ? UINT64_MAX / 4 : 1000;
    if (i >= argc || depth == 0) usage();
    char **cmd = argv + i;
    tick_s = 1.0 / (double)sysconf(_SC_CLK_TCK);
    signal(SIGPIPE, SIG_IGN);

    build_payload(bytes);
    ensure_id(duration > 0 ? 65536 : warmup + count);

    int pin[2], pout[2];
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC)) fail(1, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) fail(1, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (dup2(pin[0], 0) < 0 || dup2(pout[1], 1) < 0) _exit(127);
        signal(SIGPIPE, SIG_DFL);
        execvp(cmd[0], cmd);
        fprintf(stderr, "loadgen: exec %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    child_pid = pid;
    close(pin[0]);
    close(pout[1]);
    to_child = pin[1];
    from_child = pout[0];
    fcntl(to_child, F_SETFL, fcntl(to_child, F_GETFL) | O_NONBLOCK);
    fcntl(from_child, F_SETFL, fcntl(from_child, F_GETFL) | O_NONBLOCK);

    /* handshake: id 0 is initialize */
    buf_puts(&outq, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
                    "\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":\"loadgen\",\"version\":\"1.0\"}}}\n");
    int init_done = 0, eof = 0;
    uint64_t t_init = now_ns();
    while (!init_done) {
        flush_out();
        struct pollfd pf[2] = {{.fd = from_child, .events = POLLIN}, {.fd = to_child, .events = POLLOUT}};
        int nf = outq.len > outq.off ? 2 : 1;
        int pr = poll(pf, (nfds_t)nf, 1000);
        if (pr < 0 && errno != EINTR) fail(2, "poll: %s", strerror(errno));
        if (now_ns() - t_init > 30000000000ull) fail(2, "timeout waiting for the initialize response");
        if (pr > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            read_in(0, &init_done, &eof);
            if (eof && !init_done) fail(2, "child exited before answering initialize");
        }
    }
    buf_puts(&outq, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");

    if (warmup) {
        measure_from_id = UINT64_MAX;
        run_calls(1, warmup, depth, 0);
    }
    measure_from_id = warmup + 1;
    double cpu0 = self_cpu(), ccpu0 = tree_cpu(pid);
    uint64_t t0 = now_ns();
    uint64_t calls = run_calls(warmup + 1, count, depth, (uint64_t)(duration * 1e9));
    uint64_t t1 = now_ns();
    double cpu1 = self_cpu(), ccpu1 = tree_cpu(pid);
    long hwm = read_hwm_kb(pid);

    /* shut down: close stdin, drain stdout until EOF, reap */
    close(to_child);
    char sink[65536];
    for (;;) {
        ssize_t r = read(from_child, sink, sizeof sink);
        if (r > 0) continue;
        if (r == 0) break;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd pf = {.fd = from_child, .events = POLLIN};
            if (poll(&pf, 1, 10000) == 0) {
                fprintf(stderr, "loadgen: child did not close stdout within 10 s after EOF; killing it\n");
                kill(pid, SIGKILL);
                break;
            }
            continue;
        }
        break;
    }
    close(from_child);
    int status = 0;
    struct rusage cru;
    memset(&cru, 0, sizeof cru);
    while (wait4(pid, &status, 0, &cru) < 0 && errno == EINTR) {
    }
    child_pid = -1;
    double ctotal = (double)cru.ru_utime.tv_sec + cru.ru_utime.tv_usec / 1e6 + (double)cru.ru_stime.tv_sec +
                    cru.ru_stime.tv_usec / 1e6;

    qsort(lat_ns, n_lat, sizeof *lat_ns, cmp_u32);
    double secs = (double)(t1 - t0) / 1e9;
    double lg = cpu1 - cpu0, cc = ccpu1 - ccpu0;
    printf("calls=%" PRIu64 " secs=%.4f calls_per_s=%.1f mb_per_s=%.2f p50_us=%.1f p99_us=%.1f child_hwm_kb=%ld "
           "lg_cpu=%.3f lg_cpu_pct=%.1f child_cpu=%.2f child_cpu_pct=%.1f child_cpu_total=%.3f\n",
           calls, secs, (double)calls / secs, 2.0 * (double)bytes * (double)calls / secs / 1e6, pct_us(0.50),
           pct_us(0.99), hwm, lg, 100.0 * lg / secs, cc, 100.0 * cc / secs, ctotal);
    fflush(stdout);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        fprintf(stderr, "loadgen: child exited with status %d\n", WEXITSTATUS(status));
        return 3;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "loadgen: child killed by signal %d\n", WTERMSIG(status));
        return 3;
    }
    return 0;
}
