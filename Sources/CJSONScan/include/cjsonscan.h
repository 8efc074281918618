#ifndef MCPD_CJSONSCAN_H
#define MCPD_CJSONSCAN_H

#include <stdint.h>

/* Skips the body of a JSON string in blocks of 64 bytes with SIMD compares: the string starts at
 * bytes[start], just after its opening quote, and the frame ends at bytes[end] (nothing at or
 * past `end` is read). On success returns (offset after the closing quote) << 1, plus 1 when the
 * string holds an escape. Returns -1 when the string is not valid (a control byte, a bad escape
 * or \u escape, a lone surrogate escape, invalid UTF-8), is not closed before `end`, or when the
 * CPU has none of AVX-512BW, AVX2 and SSSE3: the caller's byte-by-byte scan then finds the error and its
 * offset, so that errors stay those of one implementation. */
int64_t mcpd_skip_string(const uint8_t *bytes, int64_t start, int64_t end);

/* Which implementation mcpd_skip_string uses on this CPU: 3 AVX-512BW, 2 AVX2, 1 SSSE3, 0 none
 * (every call returns -1). The environment variable MCPD_SIMD (a digit) caps it, to compare
 * them or to rule one out. */
int mcpd_string_scan_level(void);

/* mcpd_skip_string with a given implementation (3 AVX-512BW, 2 AVX2, 1 SSSE3), which the CPU must have: for
 * the tests, which check each one against the byte-by-byte scan. */
int64_t mcpd_skip_string_at_level(int level, const uint8_t *bytes, int64_t start, int64_t end);

#endif
