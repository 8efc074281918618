#include "cjsonscan.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MCPD_X86 1
#endif

/* The value of the four hex digits at bytes[at], or -1 (also when they do not fit before end). */
static inline int32_t hex4(const uint8_t *bytes, int64_t at, int64_t end) {
    if (end - at < 4) return -1;
    int32_t value = 0;
    for (int k = 0; k < 4; k++) {
        const uint8_t c = bytes[at + k];
        int32_t digit;
        if (c >= '0' && c <= '9') digit = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') digit = (c | 0x20) - 'a' + 10;
        else return -1;
        value = value << 4 | digit;
    }
    return value;
}

#ifdef MCPD_X86

/* The escaped-byte check: a byte may follow a backslash when the bits its high and low nibbles
 * map to share one. Bit 0: 0x2_ (" /), bit 1: 0x5_ (\), bit 2: 0x6_ (b f n), bit 3: 0x7_ (r t u). */
static const uint8_t escape_high[16] = {0, 0, 1, 0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t escape_low[16] = {0, 0, 1 | 4 | 8, 0, 8, 8, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1};

/* Keiser and Lemire's UTF-8 tables: each maps a nibble to the error classes it is part of; a
 * byte pair is invalid when the three lookups (high and low nibble of the byte before, high
 * nibble of the byte) share a class. */
enum {
    TOO_SHORT = 1 << 0,       /* a lead or ASCII byte where a continuation was due */
    TOO_LONG = 1 << 1,        /* a continuation after ASCII */
    OVERLONG_3 = 1 << 2,      /* E0 80..9F */
    TOO_LARGE = 1 << 3,       /* past U+10FFFF */
    SURROGATE = 1 << 4,       /* ED A0..BF */
    OVERLONG_2 = 1 << 5,      /* C0, C1 */
    TOO_LARGE_1000 = 1 << 6,  /* F5.. 80..8F */
    OVERLONG_4 = 1 << 6,      /* F0 80..8F */
    TWO_CONTS = 1 << 7,       /* a continuation after a continuation (allowed only where a lead
                                 two or three bytes before says so: checked apart) */
    CARRY = TOO_SHORT | TOO_LONG | TWO_CONTS,
    LARGE = TOO_LARGE | TOO_LARGE_1000,
};
static const uint8_t utf8_first_high[16] = {
    TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG,  /* ASCII */
    TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS,                                      /* continuation */
    TOO_SHORT | OVERLONG_2, TOO_SHORT,                                               /* 2-byte lead */
    TOO_SHORT | OVERLONG_3 | SURROGATE,                                              /* 3-byte lead */
    TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,                             /* 4-byte lead */
};
static const uint8_t utf8_first_low[16] = {
    CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4, CARRY | OVERLONG_2, CARRY, CARRY,
    CARRY | TOO_LARGE, CARRY | LARGE, CARRY | LARGE, CARRY | LARGE,
    CARRY | LARGE, CARRY | LARGE, CARRY | LARGE, CARRY | LARGE,
    CARRY | LARGE, CARRY | LARGE | SURROGATE, CARRY | LARGE, CARRY | LARGE,
};
static const uint8_t utf8_second_high[16] = {
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,  /* ASCII */
    TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,            /* 80..8F */
    TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,                              /* 90..9F */
    TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,                               /* A0..AF */
    TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,                               /* B0..BF */
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,                                              /* lead */
};

/* The bytes past which the last three of a chunk begin a sequence the chunk does not finish (the
 * last 16, 32 or 64 entries, by the chunk's width). */
static const uint8_t incomplete_last[64] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF0 - 1, 0xE0 - 1, 0xC0 - 1,
};

/* SSSE3: four 16-byte chunks per block. */
#define SCAN_FN skip_string_ssse3
#define SCAN_TARGET __attribute__((target("ssse3")))
#define V __m128i
#define W 16
#define V_ZERO _mm_setzero_si128()
#define V_SET1(c) _mm_set1_epi8((char)(c))
#define V_TABLE(table) _mm_loadu_si128((const __m128i *)(const void *)(table))
#define V_LOAD(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define V_EQ_MASK(a, b) ((uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b)))
#define V_LE_MASK(a, b) V_EQ_MASK(_mm_min_epu8(a, b), a)
#define V_SIGN_MASK(a) ((uint64_t)(uint32_t)_mm_movemask_epi8(a))
#define V_NONZERO_MASK(a) (V_EQ_MASK(a, V_ZERO) ^ 0xFFFFu)
#define V_SUBS(a, b) _mm_subs_epu8(a, b)
#define V_AND(a, b) _mm_and_si128(a, b)
#define V_OR(a, b) _mm_or_si128(a, b)
#define V_XOR(a, b) _mm_xor_si128(a, b)
#define V_SHR4(x) _mm_srli_epi16(x, 4)
#define V_SHUF(table, index) _mm_shuffle_epi8(table, index)
/* The vector of the bytes n places before those of x, the first n from the end of before. */
#define V_PREV(x, before, n) _mm_alignr_epi8(x, before, 16 - (n))
#define V_INCOMPLETE V_LOAD(incomplete_last + 48)
#include "string_block.h"

/* AVX2: two 32-byte chunks per block; the nibble tables are repeated in both 16-byte lanes
 * (a byte shuffle stays in its lane). */
#define SCAN_FN skip_string_avx2
#define SCAN_TARGET __attribute__((target("avx2")))
#define V __m256i
#define W 32
#define V_ZERO _mm256_setzero_si256()
#define V_SET1(c) _mm256_set1_epi8((char)(c))
#define V_TABLE(table) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(table)))
#define V_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define V_EQ_MASK(a, b) ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, b)))
#define V_LE_MASK(a, b) V_EQ_MASK(_mm256_min_epu8(a, b), a)
#define V_SIGN_MASK(a) ((uint64_t)(uint32_t)_mm256_movemask_epi8(a))
#define V_NONZERO_MASK(a) (V_EQ_MASK(a, V_ZERO) ^ 0xFFFFFFFFu)
#define V_SUBS(a, b) _mm256_subs_epu8(a, b)
#define V_AND(a, b) _mm256_and_si256(a, b)
#define V_OR(a, b) _mm256_or_si256(a, b)
#define V_XOR(a, b) _mm256_xor_si256(a, b)
#define V_SHR4(x) _mm256_srli_epi16(x, 4)
#define V_SHUF(table, index) _mm256_shuffle_epi8(table, index)
/* Across lanes: the upper lane of before and the lower lane of x, then the in-lane align. */
#define V_PREV(x, before, n) _mm256_alignr_epi8(x, _mm256_permute2x128_si256(before, x, 0x21), 16 - (n))
#define V_INCOMPLETE V_LOAD(incomplete_last + 32)
#include "string_block.h"

/* AVX-512BW: the block is one vector, and compares give their 64-bit masks directly. */
#define SCAN_FN skip_string_avx512
#define SCAN_TARGET __attribute__((target("avx512f,avx512bw")))
#define V __m512i
#define W 64
#define V_ZERO _mm512_setzero_si512()
#define V_SET1(c) _mm512_set1_epi8((char)(c))
#define V_TABLE(table) _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(const void *)(table)))
#define V_LOAD(p) _mm512_loadu_si512((const void *)(p))
#define V_EQ_MASK(a, b) ((uint64_t)_mm512_cmpeq_epi8_mask(a, b))
#define V_LE_MASK(a, b) ((uint64_t)_mm512_cmple_epu8_mask(a, b))
#define V_SIGN_MASK(a) ((uint64_t)_mm512_movepi8_mask(a))
#define V_NONZERO_MASK(a) ((uint64_t)_mm512_test_epi8_mask(a, a))
#define V_SUBS(a, b) _mm512_subs_epu8(a, b)
#define V_AND(a, b) _mm512_and_si512(a, b)
#define V_OR(a, b) _mm512_or_si512(a, b)
#define V_XOR(a, b) _mm512_xor_si512(a, b)
#define V_SHR4(x) _mm512_srli_epi16(x, 4)
#define V_SHUF(table, index) _mm512_shuffle_epi8(table, index)
/* Across lanes: each lane's predecessor lane (the last of before for the first), then the
 * in-lane align. */
#define V_PREV(x, before, n) _mm512_alignr_epi8(x, _mm512_alignr_epi64(x, before, 6), 16 - (n))
#define V_INCOMPLETE V_LOAD(incomplete_last)
#include "string_block.h"

static int level = -1;

int mcpd_string_scan_level(void) {
    if (level < 0) {
        __builtin_cpu_init();
        level = __builtin_cpu_supports("avx512bw") ? 3 : __builtin_cpu_supports("avx2") ? 2
              : __builtin_cpu_supports("ssse3") ? 1 : 0;
        const char *cap = getenv("MCPD_SIMD");
        if (cap && *cap >= '0' && *cap <= '3' && *cap - '0' < level) level = *cap - '0';
    }
    return level;
}

int64_t mcpd_skip_string_at_level(int at, const uint8_t *bytes, int64_t start, int64_t end) {
    switch (at) {
    case 3: return skip_string_avx512(bytes, start, end);
    case 2: return skip_string_avx2(bytes, start, end);
    case 1: return skip_string_ssse3(bytes, start, end);
    default: return -1;
    }
}

int64_t mcpd_skip_string(const uint8_t *bytes, int64_t start, int64_t end) {
    return mcpd_skip_string_at_level(level < 0 ? mcpd_string_scan_level() : level, bytes, start, end);
}

#else

int mcpd_string_scan_level(void) { return 0; }

int64_t mcpd_skip_string_at_level(int at, const uint8_t *bytes, int64_t start, int64_t end) {
    (void)at; (void)bytes; (void)start; (void)end; (void)hex4;
    return -1;
}

int64_t mcpd_skip_string(const uint8_t *bytes, int64_t start, int64_t end) {
    return mcpd_skip_string_at_level(0, bytes, start, end);
}

#endif
