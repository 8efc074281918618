/* The block scan of a JSON string body, written once over a vector of W bytes and included by
 * string.c for each instruction set (SSSE3: W 16, AVX2: W 32, AVX-512BW: W 64). A block is 64
 * bytes, so that every per-byte property is one 64-bit mask (bit k: byte k of the block):
 *   - quotes, backslashes, control bytes (< 0x20) and non-ASCII bytes from vector compares;
 *   - which bytes are escaped, from the backslash mask by carry arithmetic (odd-length runs of
 *     backslashes escape the byte after them), with the carry into the next block;
 *   - the closing quote: the first quote not escaped;
 *   - escaped bytes must be one of " \ / b f n r t u (two nibble lookups, tables in string.c);
 *     each \u escape is then checked on its own (four hex digits, surrogates paired);
 *   - UTF-8 by Keiser and Lemire's lookup algorithm ("Validating UTF-8 In Less Than One
 *     Instruction Per Byte", 2021): three 16-entry tables indexed by the nibbles of each byte and
 *     of the byte before it flag every invalid pair, and a compare of the two and three bytes
 *     before flags a missing or extra continuation byte; an all-ASCII block is one test.
 * Only what lies before the closing quote counts (and, for UTF-8, the quote itself: a sequence
 * cut short by it is an error). Any error returns -1 and the caller rescans byte by byte.
 *
 * Expects: SCAN_FN, SCAN_TARGET, V (vector type), W, and the V_ macros (string.c), and undefines
 * them at its end. The _MASK ones give one bit per byte, in a uint64_t. */

#define CHUNKS (64 / W)

SCAN_TARGET
static int64_t SCAN_FN(const uint8_t *bytes, int64_t start, int64_t end) {
    const uint8_t *base = bytes + start;
    const int64_t length = end - start;
    // Escape state: whether the first byte of the next block is escaped.
    uint64_t escapeCarry = 0;
    // UTF-8 state: the last W bytes of the previous block (zeros after an ASCII block), and
    // whether that block had non-ASCII bytes (then a sequence it began may be cut short).
    V previous = V_ZERO;
    int previousHigh = 0;
    // UTF-8 errors of the blocks before the last, checked once at the closing quote: a string
    // that has one is refused all the same, and valid text pays no test per block.
    V earlierErrors = V_ZERO;
    // The offset (from `bytes`) of a \u escape's 'u' already checked as the second half of a
    // surrogate pair.
    int64_t pairedLow = -1;
    int hadEscape = 0;
    uint8_t tail[64];

    const V escapeHigh = V_TABLE(escape_high), escapeLow = V_TABLE(escape_low);
    const V firstHigh = V_TABLE(utf8_first_high), firstLow = V_TABLE(utf8_first_low), secondHigh = V_TABLE(utf8_second_high);
    const V nibble = V_SET1(0x0F);
    const V quote = V_SET1('"'), backslash = V_SET1('\\'), lastControl = V_SET1(0x1F), letterU = V_SET1('u');

    for (int64_t offset = 0;; offset += 64) {
        const uint8_t *block = base + offset;
        const int64_t available = length - offset;
        int last = 0;
        if (available < 64) {
            // The frame's last bytes, padded with spaces (plain bytes): a string not closed
            // before the end has no closing quote in them.
            // Byte by byte, not memcpy: a call in the loop would make the compiler reload every
            // vector constant after it, in every block.
            if (available <= 0) return -1;
            for (int k = 0; k < 64; k++) tail[k] = k < available ? block[k] : ' ';
            block = tail;
            last = 1;
        }
        V chunk[CHUNKS];
        uint64_t quotes = 0, backslashes = 0, controls = 0, high = 0;
        for (int c = 0; c < CHUNKS; c++) {
            V x = V_LOAD(block + c * W);
            chunk[c] = x;
            quotes |= V_EQ_MASK(x, quote) << (c * W);
            backslashes |= V_EQ_MASK(x, backslash) << (c * W);
            controls |= V_LE_MASK(x, lastControl) << (c * W);
            high |= V_SIGN_MASK(x) << (c * W);
        }

        // Escaped bytes: a backslash not itself escaped escapes the byte after it.
        uint64_t escaped = 0;
        if ((backslashes | escapeCarry) != 0) {
            const uint64_t even = 0x5555555555555555ULL;
            uint64_t escapers = backslashes & ~escapeCarry;
            uint64_t follows = escapers << 1 | escapeCarry;
            uint64_t oddStarts = escapers & ~even & ~follows;
            uint64_t evenRuns;
            escapeCarry = __builtin_add_overflow(oddStarts, escapers, &evenRuns);
            escaped = (even ^ (evenRuns << 1)) & follows;
        }
        const uint64_t closing = quotes & ~escaped;
        if (closing == 0 && last) return -1;
        // The string's bytes in this block (all of them when it goes on).
        const uint64_t inside = closing ? (closing & (0 - closing)) - 1 : ~0ULL;
        if ((controls & inside) != 0) return -1;

        const uint64_t escapes = escaped & inside;
        if (escapes != 0) {
            hadEscape = 1;
            uint64_t valid = 0, unicode = 0;
            for (int c = 0; c < CHUNKS; c++) {
                V x = chunk[c];
                V classes = V_AND(V_SHUF(escapeHigh, V_AND(V_SHR4(x), nibble)), V_SHUF(escapeLow, V_AND(x, nibble)));
                valid |= V_NONZERO_MASK(classes) << (c * W);
                unicode |= V_EQ_MASK(x, letterU) << (c * W);
            }
            if ((escapes & ~valid) != 0) return -1;
            for (uint64_t u = escapes & unicode; u != 0; u &= u - 1) {
                const int64_t at = start + offset + __builtin_ctzll(u);
                if (at == pairedLow) continue;
                const int32_t unit = hex4(bytes, at + 1, end);
                if (unit < 0) return -1;
                if ((unit & 0xF800) == 0xD800) {
                    // A high surrogate, and a \u low surrogate right after it.
                    if (unit >= 0xDC00 || end - at < 11 || bytes[at + 5] != '\\' || bytes[at + 6] != 'u') return -1;
                    const int32_t low = hex4(bytes, at + 7, end);
                    if (low < 0 || (low & 0xFC00) != 0xDC00) return -1;
                    pairedLow = at + 6;
                }
            }
        }

        if (high != 0) {
            V errors = V_ZERO;
            V before = previous;
            for (int c = 0; c < CHUNKS; c++) {
                V x = chunk[c];
                V prev1 = V_PREV(x, before, 1);
                V special = V_AND(V_AND(V_SHUF(firstHigh, V_AND(V_SHR4(prev1), nibble)), V_SHUF(firstLow, V_AND(prev1, nibble))),
                                  V_SHUF(secondHigh, V_AND(V_SHR4(x), nibble)));
                V third = V_SUBS(V_PREV(x, before, 2), V_SET1(0xE0 - 0x80));
                V fourth = V_SUBS(V_PREV(x, before, 3), V_SET1(0xF0 - 0x80));
                V expected = V_AND(V_OR(third, fourth), V_SET1((char)0x80));
                V error = V_XOR(expected, special);
                errors = V_OR(errors, error);
                chunk[c] = error;  // kept for the error's position below
                before = x;
            }
            if (closing == 0) {
                earlierErrors = V_OR(earlierErrors, errors);
            } else if (V_NONZERO_MASK(errors) != 0) {
                // An error counts up to the closing quote (a sequence it cuts short included).
                uint64_t at = 0;
                for (int c = 0; c < CHUNKS; c++) at |= V_NONZERO_MASK(chunk[c]) << (c * W);
                if ((at & (inside | (inside + 1))) != 0) return -1;
            }
            previous = before;
            previousHigh = 1;
        } else if (previousHigh) {
            // After an ASCII block, a sequence the previous block began is cut short.
            if (V_NONZERO_MASK(V_SUBS(previous, V_INCOMPLETE)) != 0) return -1;
            previous = V_ZERO;
            previousHigh = 0;
        }

        if (closing != 0) {
            if (V_NONZERO_MASK(earlierErrors) != 0) return -1;
            return (start + offset + __builtin_ctzll(closing) + 1) << 1 | hadEscape;
        }
    }
}

#undef CHUNKS
/* The parameters, for the next instruction set's. */
#undef SCAN_FN
#undef SCAN_TARGET
#undef V
#undef W
#undef V_ZERO
#undef V_SET1
#undef V_TABLE
#undef V_LOAD
#undef V_EQ_MASK
#undef V_LE_MASK
#undef V_SIGN_MASK
#undef V_NONZERO_MASK
#undef V_SUBS
#undef V_AND
#undef V_OR
#undef V_XOR
#undef V_SHR4
#undef V_SHUF
#undef V_PREV
#undef V_INCOMPLETE
