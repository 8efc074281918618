/*
 * echo_backend: minimal MCP stdio server used as the backend in mcpd benchmarks.
 *
 * Protocol: JSON-RPC 2.0, one message per line on stdin/stdout.
 *   initialize  -> fixed result (protocolVersion 2025-11-25, tools capability)
 *   tools/list  -> one tool "echo" taking {"text": string}
 *   tools/call  -> {"content":[{"type":"text","text":<raw text literal>}]}
 *                  The string literal of params.arguments.text is copied verbatim
 *                  (quotes and escapes included, never unescaped/re-escaped).
 *   ping        -> {}
 *   notifications (no "id") and responses (no "method") are ignored;
 *   any other method with an id -> -32601.
 *
 * Input is read in large chunks (growable buffer, so lines of any size work);
 * all responses produced for one read() are sent with one write (looping only
 * on partial writes). Exits 0 on EOF.
 *
 * Build: gcc -O2 -Wall -Wextra -o echo_backend echo_backend.c
 */
#define _GNU_SOURCE
#include <errno.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void die(const char *msg) {
    fprintf(stderr, "echo_backend: %s: %s\n", msg, strerror(errno));
    exit(1);
}

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t ncap = b->cap ? b->cap : 65536;
    while (ncap < b->len + extra) ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) die("realloc");
    b->p = np;
    b->cap = ncap;
}

static void buf_put(buf_t *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_puts(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

/* ---- minimal JSON scanner: works on raw byte spans, never unescapes ---- */

typedef struct {
    const char *s; /* NULL if absent */
    size_t n;
} span_t;

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

#ifdef __SSE2__
/* Bit k set: p[k] is '"' (k < 64). */
static inline uint64_t quote_mask64(const char *p) {
    const __m128i quote = _mm_set1_epi8('"');
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        m |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) << (16 * k);
    }
    return m;
}
#endif

/* The quote at q is escaped: an odd number of backslashes precede it (back to s). */
static inline int escaped_quote(const char *s, const char *q) {
    const char *b = q;
    while (b > s && b[-1] == '\\') b--;
    return (q - b) & 1;
}

/* p points at the opening quote; returns the pointer just past the closing quote, or NULL.
 * memchr finds the next quote; one preceded by an odd run of backslashes is escaped. After
 * an escaped quote, the quotes of the next 64 bytes come from one SSE2 mask while there are
 * any, so that a string dense with \" (JSON carried as a string) costs a few ns per quote
 * rather than a memchr call each. */
static const char *skip_string(const char *p, const char *end) {
    const char *s = ++p;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q) return NULL;
        if (!escaped_quote(s, q)) return q + 1;
        p = q + 1;
#ifdef __SSE2__
        while (end - p >= 64) {
            uint64_t m = quote_mask64(p);
            if (!m) break;
            do {
                q = p + __builtin_ctzll(m);
                if (!escaped_quote(s, q)) return q + 1;
                m &= m - 1;
            } while (m);
            p += 64;
        }
#endif
    }
}

/* Skips one JSON value starting at p (after whitespace). Returns end pointer or NULL. */
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
    /* scalar: number, true, false, null */
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' &&
           *p != '\r' && *p != '\n')
        p++;
    return p;
}

/* Finds member `key` (raw, unescaped-free key) of the object starting at p (the object's
 * end, or anything after it, bounds the search at `end`). Returns 1 and fills *out with the
 * raw value span if found; with want_end == 0, only out->s (the value is not skipped, so a
 * large value is not scanned to find a member inside it). */
static int obj_find(const char *p, const char *end, const char *key, span_t *out, int want_end) {
    size_t klen = strlen(key);
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return 0;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return 0;
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
        if (!want_end && kn == klen && memcmp(ks, key, klen) == 0) {
            out->s = vs;
            out->n = 0;
            return 1;
        }
        const char *ve = skip_value(p, end);
        if (!ve) return 0;
        if (kn == klen && memcmp(ks, key, klen) == 0) {
            out->s = vs;
            out->n = (size_t)(ve - vs);
            return 1;
        }
        p = skip_ws(ve, end);
        if (p >= end || *p != ',') return 0;
        p = skip_ws(p + 1, end);
    }
    return 0;
}

static int obj_get(const char *p, const char *end, const char *key, span_t *out) {
    return obj_find(p, end, key, out, 1);
}

static int span_is_str(span_t v, const char *lit) {
    size_t n = strlen(lit);
    return v.s && v.n == n + 2 && v.s[0] == '"' && memcmp(v.s + 1, lit, n) == 0 &&
           v.s[n + 1] == '"';
}

/* ---- responses ---- */

static void resp_head(buf_t *o, span_t id) {
    buf_puts(o, "{\"jsonrpc\":\"2.0\",\"id\":");
    buf_put(o, id.s, id.n);
}

static void resp_error(buf_t *o, span_t id, int code, const char *msg) {
    char tmp[64];
    resp_head(o, id);
    snprintf(tmp, sizeof tmp, ",\"error\":{\"code\":%d,\"message\":\"", code);
    buf_puts(o, tmp);
    buf_puts(o, msg);
    buf_puts(o, "\"}}\n");
}

static void handle_line(buf_t *o, const char *s, const char *e) {
    span_t id = {0}, method = {0}, params = {0};
    s = skip_ws(s, e);
    if (s >= e) return; /* blank line */
    obj_get(s, e, "id", &id);
    obj_get(s, e, "method", &method);
    if (!method.s) {
        if (!id.s && (s >= e || *s != '{')) {
            span_t null_id = {"null", 4};
            resp_error(o, null_id, -32700, "Parse error");
        }
        return; /* a response from the client, or garbage without id */
    }
    if (!id.s) return; /* notification */

    if (span_is_str(method, "tools/call")) {
        span_t name = {0}, args = {0}, text = {0};
        /* params and arguments are entered, not skipped: the text is scanned once */
        obj_find(s, e, "params", &params, 0);
        if (params.s) {
            obj_get(params.s, e, "name", &name);
            obj_find(params.s, e, "arguments", &args, 0);
        }
        if (!span_is_str(name, "echo")) {
            resp_error(o, id, -32602, "Unknown tool");
            return;
        }
        if (args.s) obj_get(args.s, e, "text", &text);
        if (!text.s || text.s[0] != '"') {
            resp_error(o, id, -32602, "Invalid params: arguments.text must be a string");
            return;
        }
        resp_head(o, id);
        buf_puts(o, ",\"result\":{\"content\":[{\"type\":\"text\",\"text\":");
        buf_put(o, text.s, text.n);
        buf_puts(o, "}]}}\n");
    } else if (span_is_str(method, "initialize")) {
        resp_head(o, id);
        buf_puts(o, ",\"result\":{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{\"tools\":{}},"
                    "\"serverInfo\":{\"name\":\"echo\",\"version\":\"1.0\"}}}\n");
    } else if (span_is_str(method, "tools/list")) {
        resp_head(o, id);
        buf_puts(o, ",\"result\":{\"tools\":[{\"name\":\"echo\",\"description\":\"Echoes text back\","
                    "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},"
                    "\"required\":[\"text\"]}}]}}\n");
    } else if (span_is_str(method, "ping")) {
        resp_head(o, id);
        buf_puts(o, ",\"result\":{}}\n");
    } else {
        resp_error(o, id, -32601, "Method not found");
    }
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, -1);
        } else {
            die("write");
        }
    }
}

int main(void) {
    buf_t in = {0}, out = {0};
    size_t scan_from = 0; /* bytes of `in` already known to contain no '\n' */
    signal(SIGPIPE, SIG_IGN);

    for (;;) {
        buf_reserve(&in, READ_CHUNK);
        ssize_t r = read(0, in.p + in.len, in.cap - in.len);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {.fd = 0, .events = POLLIN};
                poll(&pfd, 1, -1);
                continue;
            }
            die("read");
        }
        if (r == 0) {
            /* EOF: answer a final unterminated line, if any */
            if (in.len > 0) handle_line(&out, in.p, in.p + in.len);
            if (out.len) write_all(1, out.p, out.len);
            free(in.p);
            free(out.p);
            return 0;
        }
        in.len += (size_t)r;

        size_t start = 0;
        const char *nl;
        while ((nl = memchr(in.p + scan_from, '\n', in.len - scan_from)) != NULL) {
            size_t idx = (size_t)(nl - in.p);
            handle_line(&out, in.p + start, nl);
            start = idx + 1;
            scan_from = start;
        }
        if (start > 0) {
            memmove(in.p, in.p + start, in.len - start);
            in.len -= start;
        }
        scan_from = in.len;
        if (out.len) {
            write_all(1, out.p, out.len);
            out.len = 0;
        }
    }
}
