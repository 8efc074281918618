/*
 * loadgen: closed-loop MCP load generator over a child's stdio.
 *
 *   loadgen --depth D --payload BYTES --count N [--tool NAME | --tools A,B,...]
 *           [--kind ascii|code|cjk|json|base64] [--warmup W] [--duration SECS] [--timeout SECS]
 *           -- CMD ARGS...
 *
 * Spawns CMD with pipes on its stdin/stdout (stderr inherited), performs the MCP
 * handshake (initialize, wait for the response, notifications/initialized),
 * runs W warm-up calls, then N measured tools/call requests, keeping D in flight
 * (a new request is queued as each response arrives; everything queued during
 * one loop turn goes out in one write). Both pipe ends are nonblocking, driven by poll().
 * With --duration, no new request is issued once SECS have elapsed in the measured
 * phase (N is then only an upper bound); in-flight calls are drained and counted.
 * --timeout SECS: fail (exit 2) when no byte comes from the child for SECS while calls
 * are in flight (default 60).
 * --print-payload: writes the literal of request id 1 to stdout and exits (no CMD).
 *
 * --tools A,B,...: round-robin over n tool names: request id k calls tool k mod n
 * (validation is the same for every tool: each must echo the text back).
 *
 * Payload: the JSON string literal of arguments.text is exactly BYTES bytes long
 * as raw JSON, quotes included, for every kind. It contains the request id's ten
 * digits (so every request is distinct), then, by --kind:
 *   ascii   (default) the escapes \" \\ \n \u00e9 \ud83d\ude00, raw 2-byte UTF-8 (é)
 *           and raw 4-byte UTF-8 (😀); the rest is ASCII filler a-z0-9A-Z-_.
 *   code    "id=DDDDDDDDDD;" then C source text (this file's JSON scanner and response
 *           check as first written, tab-indented), cycled, JSON-escaped: one of
 *           \" \\ \n \t about every tenth byte.
 *   cjk     "id=DDDDDDDDDD;" then multi-byte text, raw UTF-8: CJK and Hangul (3 bytes),
 *           accented Latin, Greek, Cyrillic (2 bytes), emoji and other astral
 *           characters (4 bytes), some ASCII, \n between paragraphs.
 *   json    "id=DDDDDDDDDD;" then a JSON document (an array of issue records as an API
 *           returns them, compact) embedded as a string: \" everywhere, \\n, \\\".
 *   base64  the ten digits, then base64 only ([A-Za-z0-9+/=]): 0-3 'A' then the padded
 *           encoding of a PNG-like byte stream (signature, IHDR, pseudo-random data),
 *           ending in "==".
 * code, cjk and json end on a whole character or escape, padded with 0-5 spaces to
 * reach BYTES exactly.
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
#ifdef __SSE2__
#include <emmintrin.h>
#endif
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

enum kind { K_ASCII, K_CODE, K_CJK, K_JSON, K_BASE64 };
static const char *const kind_names[] = {"ascii", "code", "cjk", "json", "base64"};
static enum kind kind = K_ASCII;

/* --kind code: real C source (this file's skip_ws ... scan_message and handle_line as first
 * written, indented with tabs as kernel-style C is), cycled. Its JSON escape has a \" \\ \n
 * or \t about every tenth byte. */
static const char code_text[] =
    "static const char *skip_ws(const char *p, const char *end) {\n"
    "\twhile (p < end && (*p == ' ' || *p == '\\t' || *p == '\\r' || *p == '\\n')) p++;\n"
    "\treturn p;\n"
    "}\n"
    "\n"
    "static const char *skip_string(const char *p, const char *end) {\n"
    "\tp++;\n"
    "\twhile (p < end) {\n"
    "\t\tconst char *q = memchr(p, '\"', (size_t)(end - p));\n"
    "\t\tif (!q) return NULL;\n"
    "\t\tconst char *b = q;\n"
    "\t\twhile (b > p && b[-1] == '\\\\') b--;\n"
    "\t\tif (((q - b) & 1) == 0) return q + 1;\n"
    "\t\tp = q + 1;\n"
    "\t}\n"
    "\treturn NULL;\n"
    "}\n"
    "\n"
    "static const char *skip_value(const char *p, const char *end) {\n"
    "\tp = skip_ws(p, end);\n"
    "\tif (p >= end) return NULL;\n"
    "\tif (*p == '\"') return skip_string(p, end);\n"
    "\tif (*p == '{' || *p == '[') {\n"
    "\t\tint depth = 0;\n"
    "\t\twhile (p < end) {\n"
    "\t\t\tchar c = *p;\n"
    "\t\t\tif (c == '\"') {\n"
    "\t\t\t\tp = skip_string(p, end);\n"
    "\t\t\t\tif (!p) return NULL;\n"
    "\t\t\t\tcontinue;\n"
    "\t\t\t}\n"
    "\t\t\tif (c == '{' || c == '[') depth++;\n"
    "\t\t\telse if (c == '}' || c == ']') {\n"
    "\t\t\t\tif (--depth == 0) return p + 1;\n"
    "\t\t\t}\n"
    "\t\t\tp++;\n"
    "\t\t}\n"
    "\t\treturn NULL;\n"
    "\t}\n"
    "\twhile (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\\t' &&\n"
    "\t\t   *p != '\\r' && *p != '\\n')\n"
    "\t\tp++;\n"
    "\treturn p;\n"
    "}\n"
    "\n"
    "/* Looks up top-level members id, method, result, error in one pass. Returns 0 if not an object. */\n"
    "typedef struct {\n"
    "\tspan_t id, method, result, error;\n"
    "} msg_t;\n"
    "\n"
    "static int scan_message(const char *p, const char *end, msg_t *m) {\n"
    "\tmemset(m, 0, sizeof *m);\n"
    "\tp = skip_ws(p, end);\n"
    "\tif (p >= end || *p != '{') return 0;\n"
    "\tp = skip_ws(p + 1, end);\n"
    "\tif (p < end && *p == '}') return 1;\n"
    "\twhile (p < end) {\n"
    "\t\tif (*p != '\"') return 0;\n"
    "\t\tconst char *ks = p + 1;\n"
    "\t\tconst char *ke = skip_string(p, end);\n"
    "\t\tif (!ke) return 0;\n"
    "\t\tsize_t kn = (size_t)(ke - 1 - ks);\n"
    "\t\tp = skip_ws(ke, end);\n"
    "\t\tif (p >= end || *p != ':') return 0;\n"
    "\t\tp = skip_ws(p + 1, end);\n"
    "\t\tconst char *vs = p;\n"
    "\t\tconst char *ve = skip_value(p, end);\n"
    "\t\tif (!ve) return 0;\n"
    "\t\tspan_t v = {vs, (size_t)(ve - vs)};\n"
    "\t\tif (kn == 2 && memcmp(ks, \"id\", 2) == 0) m->id = v;\n"
    "\t\telse if (kn == 6 && memcmp(ks, \"method\", 6) == 0) m->method = v;\n"
    "\t\telse if (kn == 6 && memcmp(ks, \"result\", 6) == 0) m->result = v;\n"
    "\t\telse if (kn == 5 && memcmp(ks, \"error\", 5) == 0) m->error = v;\n"
    "\t\tp = skip_ws(ve, end);\n"
    "\t\tif (p < end && *p == '}') return 1;\n"
    "\t\tif (p >= end || *p != ',') return 0;\n"
    "\t\tp = skip_ws(p + 1, end);\n"
    "\t}\n"
    "\treturn 0;\n"
    "}\n"
    "}\n"
    "\n"
    "/* Handles one incoming line. Returns the id of the completed call, or 0 if the\n"
    " * line was not a call response (notification / server request). */\n"
    "static uint64_t handle_line(const char *s, const char *e, uint64_t expect_init_id, int *init_done) {\n"
    "\tmsg_t m;\n"
    "\tif (e > s && e[-1] == '\\r') e--;\n"
    "\tif (skip_ws(s, e) == e) return 0;\n"
    "\tif (!scan_message(s, e, &m)) {\n"
    "\t\tshow(\"unparseable message from child\", s, (size_t)(e - s));\n"
    "\t\tfail(2, \"invalid JSON from child\");\n"
    "\t}\n"
    "\tif (m.method.s) {\n"
    "\t\tif (m.id.s) { /* server -> client request: answer ping, refuse the rest */\n"
    "\t\t\tchar tmp[128];\n"
    "\t\t\tint is_ping = m.method.n == 6 && memcmp(m.method.s, \"\\\"ping\\\"\", 6) == 0;\n"
    "\t\t\tbuf_puts(&outq, \"{\\\"jsonrpc\\\":\\\"2.0\\\",\\\"id\\\":\");\n"
    "\t\t\tbuf_put(&outq, m.id.s, m.id.n);\n"
    "\t\t\tsnprintf(tmp, sizeof tmp, \"%s\\n\",\n"
    "\t\t\t\t\t is_ping ? \",\\\"result\\\":{}}\"\n"
    "\t\t\t\t\t\t\t : \",\\\"error\\\":{\\\"code\\\":-32601,\\\"message\\\":\\\"Method not found\\\"}}\");\n"
    "\t\t\tbuf_puts(&outq, tmp);\n"
    "\t\t}\n"
    "\t\treturn 0; /* notifications are ignored */\n"
    "\t}\n"
    "\tif (!m.id.s) {\n"
    "\t\tshow(\"response without id\", s, (size_t)(e - s));\n"
    "\t\tfail(2, \"response without id\");\n"
    "\t}\n"
    "\t/* ids we send are plain decimal integers */\n"
    "\tuint64_t id = 0;\n"
    "\tint ok = m.id.n > 0 && m.id.n <= 19;\n"
    "\tfor (size_t i = 0; ok && i < m.id.n; i++) {\n"
    "\t\tif (!isdigit((unsigned char)m.id.s[i])) ok = 0;\n"
    "\t\telse id = id * 10 + (uint64_t)(m.id.s[i] - '0');\n"
    "\t}\n"
    "\tif (!ok) {\n"
    "\t\tshow(\"response\", s, (size_t)(e - s));\n"
    "\t\tfail(2, \"response id %.*s is not one we sent (we send decimal integers)\", (int)m.id.n, m.id.s);\n"
    "\t}\n"
    "\tif (m.error.s) {\n"
    "\t\tshow(\"error response\", s, (size_t)(e - s));\n"
    "\t\tfail(2, \"error response for id %\" PRIu64, id);\n"
    "\t}\n"
    "\tif (!m.result.s) {\n"
    "\t\tshow(\"response\", s, (size_t)(e - s));\n"
    "\t\tfail(2, \"response for id %\" PRIu64 \" has neither result nor error\", id);\n"
    "\t}\n"
    "\tif (init_done && !*init_done) {\n"
    "\t\tif (id != expect_init_id) fail(2, \"unexpected response id %\" PRIu64 \" before initialize completed\", id);\n"
    "\t\t*init_done = 1;\n"
    "\t\treturn 0;\n"
    "\t}\n"
    "\tif (id == 0 || id > max_id || send_ns[id] == 0) {\n"
    "\t\tshow(\"response\", s, (size_t)(e - s));\n"
    "\t\tfail(2, \"response id %\" PRIu64 \" is not outstanding\", id);\n"
    "\t}\n"
    "\t/* find \"text\": inside result, then compare the literal */\n"
    "\tstatic const char key[] = \"\\\"text\\\":\";\n"
    "\tconst char *r = m.result.s, *re = m.result.s + m.result.n;\n"
    "\tconst char *t = memmem(r, (size_t)(re - r), key, sizeof key - 1);\n"
    "\tif (!t) {\n"
    "\t\tshow(\"response\", s, (size_t)(e - s));\n"
    "\t\tfail(2, \"response for id %\" PRIu64 \" has no \\\"text\\\": in result\", id);\n"
    "\t}\n"
    "\tt = skip_ws(t + sizeof key - 1, re);\n"
    "\tpayload_set_id(id);\n"
    "\tif ((size_t)(re - t) < payload_len || memcmp(t, payload, payload_len) != 0) {\n"
    "\t\tsize_t avail = (size_t)(re - t), i = 0;\n"
    "\t\twhile (i < avail && i < payload_len && t[i] == payload[i]) i++;\n"
    "\t\tfprintf(stderr, \"loadgen: payload mismatch for id %\" PRIu64 \" at byte %zu of %zu\\n\", id, i, payload_len);\n"
    "\t\tsize_t from = i > 40 ? i - 40 : 0;\n"
    "\t\tshow(\"expected (from mismatch-40)\", payload + from, payload_len - from);\n"
    "\t\tshow(\"received (from mismatch-40)\", t + from, avail - from);\n"
    "\t\tfail(2, \"payload mismatch\");\n"
    "\t}\n"
    "\tconst char *after = skip_ws(t + payload_len, re);\n"
    "\tif (after < re && *after != '}' && *after != ',') {\n"
    "\t\tshow(\"response\", s, (size_t)(e - s));\n"
    "\t\tfail(2, \"payload for id %\" PRIu64 \" is followed by unexpected bytes\", id);\n"
    "\t}\n"
    "\treturn id;\n"
    "}\n"
    "\n"
;

/* --kind cjk: multi-byte text, raw UTF-8: CJK and Hangul (3 bytes), accented Latin, Greek and
 * Cyrillic (2 bytes), emoji, mathematical letters and CJK Extension B (4 bytes, astral), some
 * ASCII; paragraphs end in a newline (escaped as \n), the only escape of this kind. */
static const char cjk_text[] =
    "東京の天気は晴れ、最高気温は二十三度の予報です。明日は午後から雨が降るでしょう。\n"
    "我们的服务器已经更新到最新版本，请检查配置文件并重新启动网关。错误代码：E1024。\n"
    "안녕하세요. 요청하신 파일을 찾을 수 없습니다. 다시 시도해 주십시오.\n"
    "Café crème, déjà vu, garçon, naïve : où êtes-vous ? Señor Müller aß Käse in Zürich; "
    "Łódź, Ångström, façade, São Paulo, Dvořák.\n"
    "Αθήνα και Θεσσαλονίκη · Москва и Санкт-Петербург · Київ, Львів.\n"
    "状态 ✅ 完成 😀🚀🎉👍🏽🔥💡📦 — 进度 100% (id 42)\n"
    "数学記号 𝔸𝔹ℂ𝕯𝖊𝗑𝘆 𝟘𝟙𝟚𝟛 と 拡張漢字 𠀀𠮷𡈽𪚥𩸽 を含む行。\n"
    "「検索結果」: 東京都千代田区丸の内一丁目、営業時間 9:00–18:00、定休日 日曜・祝日。\n"
    "报告摘要：本季度收入增长百分之十二，用户数量达到三百万，客户满意度保持稳定。🙂🌏\n";

/* Appends the JSON-escaped form of the character at s[i] (UTF-8 sequences raw, ", \ and
 * control characters escaped) to out; returns its length and sets *adv to the bytes consumed. */
static size_t esc_char(const unsigned char *s, size_t n, size_t i, char *out, size_t *adv) {
    unsigned char c = s[i];
    *adv = 1;
    switch (c) {
    case '"': memcpy(out, "\\\"", 2); return 2;
    case '\\': memcpy(out, "\\\\", 2); return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    default: break;
    }
    if (c < 0x20) {
        snprintf(out, 7, "\\u%04x", c);
        return 6;
    }
    size_t k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (i + k > n) fail(1, "internal: truncated UTF-8 in a payload source text");
    memcpy(out, s + i, k);
    *adv = k;
    return k;
}

/* Fills payload[o..lim) with the JSON escape of src (cycled), one whole character or escape
 * at a time, then pads with spaces the few bytes (< 6) that no further character fits in.
 * Returns lim. */
static size_t fill_escaped(size_t o, size_t lim, const char *src, size_t n) {
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0;
    char tmp[8];
    for (;;) {
        size_t adv, k = esc_char(s, n, i, tmp, &adv);
        if (o + k > lim) break;
        memcpy(payload + o, tmp, k);
        o += k;
        i += adv;
        if (i >= n) i = 0;
    }
    memset(payload + o, ' ', lim - o);
    return lim;
}

/* --kind json: a JSON document (an array of issue records, as a REST API returns them,
 * serialized compactly) at least `min` bytes long, closed. Embedded as a string, every " of it
 * becomes \" and its own escapes \\n, \\\" ... */
static char *json_doc(size_t min, size_t *len) {
    static const char *const users[] = {"alice", "bob-the-builder", "carol", "dmitri", "eve42"};
    static const char *const titles[] = {
        "Gateway drops \\\"large\\\" frames under load",
        "tools/list is slow with 1,000 servers",
        "Crash when a backend writes a partial line",
        "Support naïve UTF-8 in tool names? (Zürich office)",
        "Docs: explain `max_message_size`",
    };
    size_t cap = min + 4096, n = 0;
    char *d = malloc(cap);
    if (!d) fail(1, "out of memory");
    d[n++] = '[';
    for (unsigned i = 0; n < min; i++) {
        if (cap - n < 2048) {
            cap *= 2;
            d = realloc(d, cap);
            if (!d) fail(1, "out of memory");
        }
        if (i) d[n++] = ',';
        n += (size_t)snprintf(d + n, cap - n,
            "{\"url\":\"https://api.github.com/repos/example/mcpd/issues/%u\",\"id\":%u,\"number\":%u,"
            "\"title\":\"%s\",\"user\":{\"login\":\"%s\",\"id\":%u,\"type\":\"User\",\"site_admin\":false},"
            "\"labels\":[{\"id\":%u,\"name\":\"bug\",\"color\":\"d73a4a\",\"default\":true},"
            "{\"id\":%u,\"name\":\"performance\",\"color\":\"0e8a16\",\"default\":false}],"
            "\"state\":\"%s\",\"locked\":false,\"comments\":%u,\"created_at\":\"2026-11-%02uT%02u:%02u:00Z\","
            "\"updated_at\":\"2026-12-%02uT08:30:00Z\",\"closed_at\":null,\"author_association\":\"MEMBER\","
            "\"body\":\"Steps to reproduce:\\n1. run `make bench`\\n2. see \\\"x relay\\\" < 1.0\\n\\n"
            "Log: C:\\\\tmp\\\\mcpd\\\\log.txt\\tline %u\\nExpected: the same as the relay.\","
            "\"reactions\":{\"total_count\":%u,\"+1\":%u,\"-1\":0,\"heart\":%u}}",
            1000 + i, 2100000000u + i * 7919u, 1000 + i, titles[i % 5], users[i % 5], 5000 + i % 97,
            100 + i % 13, 200 + i % 17, i % 3 ? "open" : "closed", i % 23, 1 + i % 28, i % 24, i % 60,
            1 + i % 7, 40 + i % 400, i % 11, i % 7, i % 3);
    }
    d[n++] = ']';
    *len = n;
    return d;
}

static void base64_encode(const unsigned char *in, size_t n, char *out) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
}

static void build_payload(size_t bytes) {
    static const char filler[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    size_t o = 0;
    if (kind == K_ASCII) {
        /* fixed part: "id=XXXXXXXXXX;esc:\"\\\n\u00e9\ud83d\ude00;raw:é😀;fill:......" */
        static const char head[] = "\"id=";
        static const char mid[] = ";esc:\\\"\\\\\\n\\u00e9\\ud83d\\ude00;raw:\xc3\xa9\xf0\x9f\x98\x80;fill:";
        size_t fixed = strlen(head) + ID_DIGITS + strlen(mid) + 1 /* closing quote */;
        if (bytes < fixed)
            fail(1, "--payload must be at least %zu bytes (the fixed part of the literal)", fixed);
        payload_len = bytes;
        payload = malloc(bytes);
        if (!payload) fail(1, "out of memory");
        memcpy(payload + o, head, strlen(head));
        o += strlen(head);
        digits_at = o;
        memset(payload + o, '0', ID_DIGITS);
        o += ID_DIGITS;
        memcpy(payload + o, mid, strlen(mid));
        o += strlen(mid);
        for (size_t i = 0; o < bytes - 1; i++, o++) payload[o] = filler[i % (sizeof filler - 1)];
        payload[o++] = '"';
        return;
    }
    if (kind == K_BASE64) {
        /* "DDDDDDDDDD" + 0-3 'A' + the padded base64 of a PNG-like byte stream (signature,
         * IHDR, then pseudo-random bytes as compressed image data), ending in "==". */
        size_t fixed = 2 + ID_DIGITS;
        if (bytes < fixed) fail(1, "--payload must be at least %zu bytes for --kind base64", fixed);
        payload_len = bytes;
        payload = malloc(bytes);
        if (!payload) fail(1, "out of memory");
        payload[o++] = '"';
        digits_at = o;
        memset(payload + o, '0', ID_DIGITS);
        o += ID_DIGITS;
        size_t data = bytes - 1 - o; /* base64 characters after the id */
        size_t enc = data >= 4 ? data - data % 4 : 0;
        memset(payload + o, 'A', data - enc);
        o += data - enc;
        if (enc) {
            size_t n = enc / 4 * 3 - 2; /* encodes to exactly `enc` characters, the last two '=' */
            unsigned char *raw = malloc(n + 33);
            if (!raw) fail(1, "out of memory");
            static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                                'I', 'H', 'D', 'R', 0, 0, 4, 0, 0, 0, 3, 0, 8, 6, 0, 0, 0,
                                                0x5c, 0x72, 0xa8, 0x66};
            memcpy(raw, png, sizeof png);
            uint64_t x = 0x9e3779b97f4a7c15ull;
            for (size_t i = sizeof png; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                raw[i] = (unsigned char)(x >> 24);
            }
            base64_encode(raw, n, payload + o);
            free(raw);
            o += enc;
        }
        payload[o++] = '"';
        return;
    }
    /* code, cjk, json: "id=DDDDDDDDDD;" + the escaped text + 0-5 spaces */
    static const char head[] = "\"id=";
    size_t fixed = strlen(head) + ID_DIGITS + 2;
    if (bytes < fixed) fail(1, "--payload must be at least %zu bytes for --kind %s", fixed, kind_names[kind]);
    payload_len = bytes;
    payload = malloc(bytes);
    if (!payload) fail(1, "out of memory");
    memcpy(payload, head, strlen(head));
    o = strlen(head);
    digits_at = o;
    memset(payload + o, '0', ID_DIGITS);
    o += ID_DIGITS;
    payload[o++] = ';';
    if (kind == K_CODE) {
        o = fill_escaped(o, bytes - 1, code_text, sizeof code_text - 1);
    } else if (kind == K_CJK) {
        o = fill_escaped(o, bytes - 1, cjk_text, sizeof cjk_text - 1);
    } else {
        size_t n;
        char *doc = json_doc(bytes, &n);
        o = fill_escaped(o, bytes - 1, doc, n);
        free(doc);
    }
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
static int io_timeout_ms = 60000; /* --timeout: no byte from the child for this long while calls are in flight */

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
            "               [--kind ascii|code|cjk|json|base64] [--warmup W] [--duration SECS] [--timeout SECS]\n"
            "               -- CMD ARGS...\n"
            "       loadgen --payload BYTES [--kind K] --print-payload   (the literal of request id 1)\n");
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
        int pr = poll(pf, (nfds_t)nf, io_timeout_ms);
        if (pr < 0) {
            if (errno == EINTR) continue;
            fail(2, "poll: %s", strerror(errno));
        }
        if (pr == 0)
            fail(2, "timeout: no response for %g s (%" PRIu64 " calls done, %" PRIu64 " in flight)", io_timeout_ms / 1e3, done,
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
    int i, print_payload = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--print-payload") == 0) {
            print_payload = 1;
            continue;
        }
        if (i + 1 >= argc) usage();
        if (strcmp(a, "--depth") == 0) depth = parse_u64(argv[++i], a);
        else if (strcmp(a, "--payload") == 0) bytes = parse_u64(argv[++i], a);
        else if (strcmp(a, "--count") == 0) count = parse_u64(argv[++i], a);
        else if (strcmp(a, "--warmup") == 0) warmup = parse_u64(argv[++i], a);
        else if (strcmp(a, "--tool") == 0) tool = argv[++i];
        else if (strcmp(a, "--tools") == 0) parse_tools(argv[++i]);
        else if (strcmp(a, "--kind") == 0) {
            const char *k = argv[++i];
            size_t n = sizeof kind_names / sizeof *kind_names, j = 0;
            while (j < n && strcmp(k, kind_names[j]) != 0) j++;
            if (j == n) fail(1, "bad value for --kind: %s (ascii, code, cjk, json or base64)", k);
            kind = (enum kind)j;
        }
        else if (strcmp(a, "--timeout") == 0) {
            char *e;
            double t = strtod(argv[++i], &e);
            if (*e || t <= 0 || t > 86400) fail(1, "bad value for --timeout: %s", argv[i]);
            io_timeout_ms = (int)(t * 1000);
        }
        else if (strcmp(a, "--duration") == 0) {
            char *e;
            duration = strtod(argv[++i], &e);
            if (*e || duration <= 0) fail(1, "bad value for --duration: %s", argv[i]);
        }
        else usage();
    }
    if (count == 0) count = duration > 0 ? UINT64_MAX / 4 : 1000;
    if (print_payload) { /* the literal of request id 1, then exit (no child) */
        build_payload(bytes);
        payload_set_id(1);
        fwrite(payload, 1, payload_len, stdout);
        return fflush(stdout) ? 1 : 0;
    }
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
