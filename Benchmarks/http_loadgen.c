/*
 * http_loadgen: closed-loop HTTP load generator for mcpd serve (and, as the floor, any HTTP
 * server answering a fixed body).
 *
 *   http_loadgen --port P --connections C --duration SECS --mode handshake|stateless|plain
 *                [--tool NAME] [--path /mcp] [--warmup SECS]
 *
 * Opens C keep-alive connections to 127.0.0.1:P, each with one request in flight at a time.
 *   handshake: each connection opens its own session (POST initialize, read Mcp-Session-Id,
 *              POST notifications/initialized), then POSTs tools/call TOOL {"text": ...} with
 *              the session id and MCP-Protocol-Version 2025-11-25.
 *   stateless: each POST is a 2026-07-28 request: _meta with the protocol version and client
 *              capabilities, and the Mcp-Method / Mcp-Name headers; no session.
 *   plain:     GET PATH (e.g. nginx returning a fixed 100-byte JSON body).
 * Every response must be 200 with a Content-Length or a chunked body (uvicorn's event streams);
 * for tools/call the body must contain the request's own marker text (the echo), else the run
 * fails with exit 2.
 *
 * After --warmup seconds (default 0.5), counts the calls answered in --duration seconds.
 * Output (one line): calls=N secs=S calls_per_s=X p50_us=A p99_us=B
 *
 * Build: gcc -O2 -Wall -Wextra -o http_loadgen http_loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { HANDSHAKE, STATELESS, PLAIN };
enum phase { INIT, INITIALIZED, CALLING };

struct conn {
    int fd;
    enum phase phase;
    char session[80];
    char in[65536];
    size_t in_len;
    char out[4096];
    size_t out_len, out_sent;
    uint64_t seq;
    double sent_at;
};

static int port = 0, nconn = 1;
static double duration = 2.0, warmup = 0.5;
static enum mode mode = HANDSHAKE;
static const char *tool = "echo__echo";
static const char *path = "/mcp";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "http_loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* Latencies of the measured phase, in microseconds. */
static double *lat;
static size_t nlat, caplat;

static void record(double us) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 16;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) die("out of memory");
    }
    lat[nlat++] = us;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void post(struct conn *c, const char *body, const char *extra) {
    int n = snprintf(c->out, sizeof c->out,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Accept: application/json, text/event-stream\r\n%sContent-Length: %zu\r\n\r\n%s",
                     path, extra, strlen(body), body);
    if (n < 0 || (size_t)n >= sizeof c->out) die("request too large");
    c->out_len = (size_t)n;
    c->out_sent = 0;
}

static void next_request(struct conn *c) {
    char body[1024], extra[512];
    c->seq++;
    switch (c->phase) {
    case INIT:
        post(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\","
                "\"capabilities\":{},\"clientInfo\":{\"name\":\"http_loadgen\",\"version\":\"1\"}}}", "");
        break;
    case INITIALIZED:
        snprintf(extra, sizeof extra, "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", c->session);
        post(c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", extra);
        break;
    case CALLING:
        if (mode == PLAIN) {
            int n = snprintf(c->out, sizeof c->out, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
            c->out_len = (size_t)n;
            c->out_sent = 0;
        } else if (mode == HANDSHAKE) {
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
                     "\"arguments\":{\"text\":\"m%d-%llu \\u00e9 \\\"q\\\" filler-filler-filler\"}}}",
                     (unsigned long long)c->seq, tool, c->fd, (unsigned long long)c->seq);
            snprintf(extra, sizeof extra, "Mcp-Session-Id: %s\r\nMCP-Protocol-Version: 2025-11-25\r\n", c->session);
            post(c, body, extra);
        } else {
            snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\","
                     "\"arguments\":{\"text\":\"m%d-%llu \\u00e9 \\\"q\\\" filler-filler-filler\"},"
                     "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
                     "\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
                     (unsigned long long)c->seq, tool, c->fd, (unsigned long long)c->seq);
            snprintf(extra, sizeof extra, "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: %s\r\n", tool);
            post(c, body, extra);
        }
        break;
    }
    c->sent_at = now();
}

static int ep;

/* Writes what is pending; watches for writability only while something is left. */
static void flush_out(struct conn *c) {
    while (c->out_sent < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_sent, c->out_len - c->out_sent);
        if (n < 0) {
            if (errno != EAGAIN) die("write: %s", strerror(errno));
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        c->out_sent += (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Consumes one complete response from c->in if there is one; returns 1 then. */
static int take_response(struct conn *c, double start, double stop, uint64_t *calls) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - c->in) + 4;
    c->in[head - 1] = 0;
    int status = atoi(c->in + 9);
    char *cl = strcasestr(c->in, "\r\ncontent-length:");
    size_t length; /* the bytes after the head this response takes */
    char *body = c->in + head;
    size_t body_len;
    static char dechunked[sizeof c->in];
    if (cl) {
        length = strtoul(cl + 17, NULL, 10);
        if (c->in_len < head + length) {
            c->in[head - 1] = '\n';
            return 0;
        }
        body_len = length;
    } else if (strcasestr(c->in, "\r\ntransfer-encoding: chunked")) {
        /* Chunked (uvicorn's event streams): the body is the chunks' data, joined. */
        size_t pos = head;
        body_len = 0;
        for (;;) {
            char *eol = memmem(c->in + pos, c->in_len - pos, "\r\n", 2);
            if (!eol) {
                c->in[head - 1] = '\n';
                return 0;
            }
            size_t size = strtoul(c->in + pos, NULL, 16);
            size_t data = (size_t)(eol - c->in) + 2;
            if (c->in_len < data + size + 2) {
                c->in[head - 1] = '\n';
                return 0;
            }
            memcpy(dechunked + body_len, c->in + data, size);
            body_len += size;
            pos = data + size + 2;
            if (size == 0) break;
        }
        length = pos - head;
        body = dechunked;
    } else {
        die("a response without Content-Length or chunked coding (status %d)", status);
    }
    if (c->phase == INIT) {
        char *sid = strcasestr(c->in, "\r\nmcp-session-id:");
        if (status != 200 || !sid) die("initialize: status %d, no session id", status);
        sid += 17;
        while (*sid == ' ') sid++;
        size_t n = strcspn(sid, "\r");
        if (n >= sizeof c->session) die("session id too long");
        memcpy(c->session, sid, n);
        c->session[n] = 0;
        c->phase = mode == HANDSHAKE ? INITIALIZED : CALLING;
    } else if (c->phase == INITIALIZED) {
        if (status != 202) die("notifications/initialized: status %d", status);
        c->phase = CALLING;
    } else {
        if (status != 200) die("status %d: %.*s", status, (int)body_len, body);
        if (mode != PLAIN) {
            char marker[64];
            int n = snprintf(marker, sizeof marker, "m%d-%llu ", c->fd, (unsigned long long)c->seq);
            if (!memmem(body, body_len, marker, (size_t)n)) die("the answer lacks its marker %s: %.*s", marker, (int)body_len, body);
        }
        double t = now();
        if (c->sent_at >= start && t <= stop) {
            (*calls)++;
            record((t - c->sent_at) * 1e6);
        }
    }
    memmove(c->in, c->in + head + length, c->in_len - head - length);
    c->in_len -= head + length;
    return 1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port") && v) port = atoi(v), i++;
        else if (!strcmp(a, "--connections") && v) nconn = atoi(v), i++;
        else if (!strcmp(a, "--duration") && v) duration = atof(v), i++;
        else if (!strcmp(a, "--warmup") && v) warmup = atof(v), i++;
        else if (!strcmp(a, "--tool") && v) tool = v, i++;
        else if (!strcmp(a, "--path") && v) path = v, i++;
        else if (!strcmp(a, "--mode") && v) {
            mode = !strcmp(v, "handshake") ? HANDSHAKE : !strcmp(v, "stateless") ? STATELESS : !strcmp(v, "plain") ? PLAIN : (die("unknown mode %s", v), HANDSHAKE);
            i++;
        } else die("usage: http_loadgen --port P --connections C --duration S --mode handshake|stateless|plain [--tool T] [--path P]");
    }
    if (port <= 0 || nconn <= 0) die("--port and --connections are needed");
    ep = epoll_create1(0);
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (!conns) die("out of memory");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect: %s", strerror(errno));
        fcntl(c->fd, F_SETFL, O_NONBLOCK);
        c->phase = mode == HANDSHAKE ? INIT : CALLING;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        next_request(c);
        flush_out(c);
    }
    double start = now() + warmup, stop = start + duration;
    uint64_t calls = 0;
    struct epoll_event events[256];
    while (now() < stop) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (events[k].events & (EPOLLERR | EPOLLHUP)) die("connection closed by the server");
            if (events[k].events & EPOLLOUT) flush_out(c);
            if (events[k].events & EPOLLIN) {
                ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
                if (r == 0) die("connection closed by the server");
                if (r < 0 && errno != EAGAIN) die("read: %s", strerror(errno));
                if (r > 0) c->in_len += (size_t)r;
                while (take_response(c, start, stop, &calls)) {
                    next_request(c);
                    flush_out(c);
                }
                if (c->in_len == sizeof c->in) die("response too large");
            }
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] : 0;
    printf("calls=%llu secs=%.3f calls_per_s=%.0f p50_us=%.0f p99_us=%.0f\n", (unsigned long long)calls, duration,
           calls / duration, p50, p99);
    return 0;
}
