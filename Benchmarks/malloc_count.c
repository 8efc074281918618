/*
 * malloc_count: LD_PRELOAD library that counts heap allocation calls of one process.
 *
 *   env LD_PRELOAD=/abs/malloc_count.so MALLOC_COUNT_FILE=/tmp/count.%p  CMD ARGS...
 *
 * Counts calls of malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign,
 * valloc and pvalloc (relaxed atomic counters; the real functions are found with
 * dlsym(RTLD_NEXT); the calloc that dlsym itself may make is served from a static
 * bootstrap buffer). free is wrapped only to ignore pointers into that buffer.
 *
 * The constructor records the pid and the output file name, then removes LD_PRELOAD and
 * MALLOC_COUNT_FILE from the environment, so processes the program spawns (mcpd's backends) neither load the
 * library nor write a file. At exit (destructor, so exit() or a return from main; not
 * _exit or a fatal signal) the process whose pid was recorded writes one line
 *
 *   allocs=N malloc=.. calloc=.. realloc=.. memalign=.. frees=.. pid=..
 *
 * to MALLOC_COUNT_FILE, where a "%p" in the name is replaced by the pid. allocs is the sum
 * of the allocation calls (realloc counted once per call, whatever it does).
 *
 * Build: gcc -shared -fPIC -O2 -Wall -Wextra -o malloc_count.so malloc_count.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef void *(*malloc_fn)(size_t);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void (*free_fn)(void *);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
typedef void *(*aligned_alloc_fn)(size_t, size_t);
typedef void *(*valloc_fn)(size_t);

static malloc_fn real_malloc;
static calloc_fn real_calloc;
static realloc_fn real_realloc;
static free_fn real_free;
static posix_memalign_fn real_posix_memalign;
static aligned_alloc_fn real_aligned_alloc, real_memalign;
static valloc_fn real_valloc, real_pvalloc;

static uint64_t n_malloc, n_calloc, n_realloc, n_memalign, n_free;

#define COUNT(c) __atomic_fetch_add(&(c), 1, __ATOMIC_RELAXED)

/* bootstrap heap for allocations made while dlsym runs (glibc's dlsym may calloc) */
static _Alignas(64) unsigned char boot[16384];
static size_t boot_used;
static __thread int resolving __attribute__((tls_model("initial-exec")));

static int in_boot(const void *p) {
    return (const unsigned char *)p >= boot && (const unsigned char *)p < boot + sizeof boot;
}

static void *boot_alloc(size_t n) {
    size_t need = (n + 15) & ~(size_t)15;
    size_t off = __atomic_fetch_add(&boot_used, need, __ATOMIC_RELAXED);
    if (off + need > sizeof boot) return NULL;
    return boot + off; /* static storage: already zeroed */
}

static void resolve(void) {
    if (__atomic_load_n(&real_free, __ATOMIC_ACQUIRE)) return;
    resolving = 1;
    real_malloc = (malloc_fn)dlsym(RTLD_NEXT, "malloc");
    real_calloc = (calloc_fn)dlsym(RTLD_NEXT, "calloc");
    real_realloc = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = (posix_memalign_fn)dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (aligned_alloc_fn)dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (aligned_alloc_fn)dlsym(RTLD_NEXT, "memalign");
    real_valloc = (valloc_fn)dlsym(RTLD_NEXT, "valloc");
    real_pvalloc = (valloc_fn)dlsym(RTLD_NEXT, "pvalloc");
    free_fn f = (free_fn)dlsym(RTLD_NEXT, "free");
    resolving = 0;
    if (!real_malloc || !real_calloc || !real_realloc || !f) {
        static const char msg[] = "malloc_count: dlsym(RTLD_NEXT) failed\n";
        (void)!write(2, msg, sizeof msg - 1);
        _exit(127);
    }
    __atomic_store_n(&real_free, f, __ATOMIC_RELEASE);
}

void *malloc(size_t n) {
    COUNT(n_malloc);
    if (resolving) return boot_alloc(n);
    resolve();
    return real_malloc(n);
}

void *calloc(size_t a, size_t b) {
    COUNT(n_calloc);
    if (resolving) return b && a > SIZE_MAX / b ? NULL : boot_alloc(a * b);
    resolve();
    return real_calloc(a, b);
}

void *realloc(void *p, size_t n) {
    COUNT(n_realloc);
    if (resolving || in_boot(p)) {
        /* rare: only dlsym's own buffers. Copy out of the bootstrap area. */
        void *q = resolving ? boot_alloc(n) : (resolve(), real_malloc(n));
        if (q && p) {
            size_t avail = (size_t)(boot + sizeof boot - (unsigned char *)p);
            memcpy(q, p, n < avail ? n : avail);
        }
        return q;
    }
    resolve();
    return real_realloc(p, n);
}

void free(void *p) {
    if (!p || in_boot(p)) return;
    COUNT(n_free);
    resolve();
    real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n) {
    COUNT(n_memalign);
    resolve();
    if (!real_posix_memalign) return ENOMEM;
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n) {
    COUNT(n_memalign);
    resolve();
    return real_aligned_alloc ? real_aligned_alloc(align, n) : NULL;
}

void *memalign(size_t align, size_t n) {
    COUNT(n_memalign);
    resolve();
    return real_memalign ? real_memalign(align, n) : NULL;
}

void *valloc(size_t n) {
    COUNT(n_memalign);
    resolve();
    return real_valloc ? real_valloc(n) : NULL;
}

void *pvalloc(size_t n) {
    COUNT(n_memalign);
    resolve();
    return real_pvalloc ? real_pvalloc(n) : NULL;
}

/* ---- output ---- */

static pid_t owner_pid;
static char out_name[4096];

__attribute__((constructor)) static void mc_init(void) {
    owner_pid = getpid();
    const char *f = getenv("MALLOC_COUNT_FILE");
    if (f && strlen(f) < sizeof out_name) strcpy(out_name, f);
    /* Children (mcpd's backends) must neither count nor write: drop both variables from the
     * environment array in place (not with unsetenv, which a program such as bash may override;
     * main's envp is the same array). */
    extern char **environ;
    if (environ) {
        char **w = environ;
        for (char **r = environ; *r; r++)
            if (strncmp(*r, "LD_PRELOAD=", 11) != 0 && strncmp(*r, "MALLOC_COUNT_FILE=", 18) != 0) *w++ = *r;
        *w = NULL;
    }
}

static char *put_str(char *o, const char *s) {
    while (*s) *o++ = *s++;
    return o;
}

static char *put_u64(char *o, uint64_t v) {
    char tmp[24];
    int n = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n) *o++ = tmp[--n];
    return o;
}

__attribute__((destructor)) static void mc_fini(void) {
    if (!out_name[0] || getpid() != owner_pid) return;
    uint64_t m = __atomic_load_n(&n_malloc, __ATOMIC_RELAXED), c = __atomic_load_n(&n_calloc, __ATOMIC_RELAXED),
             r = __atomic_load_n(&n_realloc, __ATOMIC_RELAXED), a = __atomic_load_n(&n_memalign, __ATOMIC_RELAXED),
             fr = __atomic_load_n(&n_free, __ATOMIC_RELAXED);
    /* file name: %p -> pid */
    char name[sizeof out_name + 24], *o = name;
    for (const char *s = out_name; *s; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            o = put_u64(o, (uint64_t)owner_pid);
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
    char line[256];
    o = line;
    o = put_str(o, "allocs="), o = put_u64(o, m + c + r + a);
    o = put_str(o, " malloc="), o = put_u64(o, m);
    o = put_str(o, " calloc="), o = put_u64(o, c);
    o = put_str(o, " realloc="), o = put_u64(o, r);
    o = put_str(o, " memalign="), o = put_u64(o, a);
    o = put_str(o, " frees="), o = put_u64(o, fr);
    o = put_str(o, " pid="), o = put_u64(o, (uint64_t)owner_pid);
    *o++ = '\n';
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    (void)!write(fd, line, (size_t)(o - line));
    close(fd);
}
