import CJSONScan
#if canImport(Glibc)
import Glibc
#endif

/// The position of a scan in one frame, and the JSON grammar: whitespace, containers, member
/// names, values, strings (escapes, paired surrogates, UTF-8), numbers. The JSON-RPC layer on
/// top (which members are recorded, what is refused) is in JSONScanner.swift.
struct JSONCursor {
    let bytes: UnsafePointer<UInt8>
    let count: Int
    let maxDepth: Int
    var index = 0
    /// The first reason found to refuse the message as JSON-RPC, and the member name it is
    /// about. Reported only once the whole frame has been read as JSON: not being JSON (-32700)
    /// comes first.
    var refusal: (reason: Refusal, key: Range<Int>)?

    init(bytes: UnsafePointer<UInt8>, count: Int, maxDepth: Int) {
        self.bytes = bytes
        self.count = count
        self.maxDepth = maxDepth
    }

    @inline(always) var peek: UInt8 { bytes[index] }

    @inline(always) mutating func skipWhitespace() {
        // Generators mostly write none: one compare for the common case.
        if index < count && bytes[index] > 0x20 { return }
        skipWhitespaceRun()
    }

    mutating func skipWhitespaceRun() {
        while index < count {
            let byte = bytes[index]
            if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 } else { return }
        }
    }

    func fail(_ reason: String) -> ScanError { .invalidJSON(offset: index, reason: reason) }

    mutating func expect(_ byte: UInt8, _ what: String) throws(ScanError) {
        skipWhitespace()
        guard index < count, bytes[index] == byte else { throw fail("expected \(what)") }
        index += 1
    }

    // MARK: Container steps, shared by every object and array scan

    /// Consumes the opening `{` or `[` and whitespace; false (closer consumed) when empty.
    @inline(always)
    mutating func openContainer(closer: UInt8) -> Bool {
        index += 1
        skipWhitespace()
        if index < count && bytes[index] == closer {
            index += 1
            return false
        }
        return true
    }

    /// Reads a member name and its `:`, leaving the cursor at the value. A plain name of at
    /// most seven bytes (most of those in JSON-RPC) is read from one word, which is also
    /// returned (the name's bytes, little-endian, zero above them) so that known names are
    /// matched by one compare; `word` is 0 for any other name.
    @inline(always)
    mutating func memberName() throws(ScanError) -> (key: Range<Int>, hasEscape: Bool, word: UInt64) {
        skipWhitespace()
        guard index < count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
        let start = index &+ 1
        let key: Range<Int>
        var hasEscape = false
        var word: UInt64 = 0
        if let short = shortPlainString(at: start) {
            key = start..<(start &+ short.length)
            index = start &+ short.length &+ 1
            word = short.word
        } else {
            hasEscape = try skipString()
            key = start..<(index &- 1)
        }
        if index < count && bytes[index] == UInt8(ascii: ":") {
            index &+= 1
        } else {
            try expect(UInt8(ascii: ":"), "':' after a member name")
        }
        skipWhitespace()
        return (key, hasEscape, word)
    }

    /// The string whose body starts at `start`, when it is at most seven plain bytes (its closing
    /// quote within the word loaded there): its length, and its bytes little-endian with zeros
    /// above them (0 for the empty string). Nil for any other string, or near the frame's end.
    @inline(always)
    func shortPlainString(at start: Int) -> (length: Int, word: UInt64)? {
        guard count &- start >= 8 else { return nil }
        let loaded = UnsafeRawPointer(bytes + start).loadUnaligned(as: UInt64.self)
        let flagged = plainMask(loaded)
        guard flagged != 0 else { return nil }
        let length = flagged.trailingZeroBitCount &>> 3
        guard bytes[start &+ length] == UInt8(ascii: "\"") else { return nil }
        return (length, length == 0 ? 0 : loaded & (~0 &>> UInt64(64 &- 8 &* length)))
    }

    /// After a member or element: true at `,` (another follows), false at the closer.
    @inline(always)
    mutating func nextInContainer(closer: UInt8) throws(ScanError) -> Bool {
        skipWhitespace()
        let object = closer == UInt8(ascii: "}")
        guard index < count else { throw fail(object ? "unterminated object" : "unterminated array") }
        if bytes[index] == UInt8(ascii: ",") {
            index += 1
            return true
        }
        if bytes[index] == closer {
            index += 1
            return false
        }
        throw fail(object ? "expected ',' or '}'" : "expected ',' or ']'")
    }

    // MARK: Values

    /// Skips one value, which starts at the cursor (whitespace already skipped). `base` is the
    /// nesting depth of the value itself. Nested containers are walked in one loop, not by
    /// recursion: a bit per open container (set for an object) says which closer is expected.
    mutating func skipValue(depth base: Int) throws(ScanError) {
        var depth = base
        // Bit 0: the innermost open container is an object. At most 128 are open (`maxDepth`).
        var objects: UInt128 = 0
        while true {
            // A value starts at the cursor.
            guard index < count else { throw fail("unexpected end of input") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                // A short plain string from one word; longer ones in the loop.
                if let short = shortPlainString(at: index &+ 1) {
                    index &+= short.length &+ 2
                } else {
                    _ = try skipString()
                }
            } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
                let object = byte == UInt8(ascii: "{")
                if openContainer(closer: object ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    depth &+= 1
                    objects = objects &<< 1 | (object ? 1 : 0)
                    if object { try skipMemberName() }
                    continue
                }
            } else {
                try skipScalar(byte)
            }
            // After a value: close containers until one has another member or element.
            while true {
                if depth == base { return }
                let object = objects & 1 != 0
                if index < count && bytes[index] == UInt8(ascii: ",") {
                    index &+= 1
                } else if index < count && bytes[index] == (object ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    index &+= 1
                    depth &-= 1
                    objects &>>= 1
                    continue
                } else if try nextInContainer(closer: object ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    // The same two cases after whitespace.
                } else {
                    depth &-= 1
                    objects &>>= 1
                    continue
                }
                if object {
                    try skipMemberName()
                } else {
                    skipWhitespace()
                }
                break
            }
        }
    }

    /// Skips a member name and its `:` (and the whitespace after it), for values not recorded.
    @inline(always)
    mutating func skipMemberName() throws(ScanError) {
        skipWhitespace()
        guard index < count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
        if let short = shortPlainString(at: index &+ 1) {
            index &+= short.length &+ 2
        } else {
            _ = try skipString()
        }
        if index < count && bytes[index] == UInt8(ascii: ":") {
            index &+= 1
        } else {
            try expect(UInt8(ascii: ":"), "':' after a member name")
        }
        skipWhitespace()
    }

    /// Skips a literal or a number starting with `byte`, or fails.
    @inline(always)
    mutating func skipScalar(_ byte: UInt8) throws(ScanError) {
        switch byte {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try skipNumber()
        case UInt8(ascii: "t"): try skipLiteral("true")
        case UInt8(ascii: "f"): try skipLiteral("false")
        case UInt8(ascii: "n"): try skipLiteral("null")
        default: throw fail("unexpected byte 0x\(String(byte, radix: 16))")
        }
    }

    @inline(always)
    mutating func skipLiteral(_ literal: StaticString) throws(ScanError) {
        let length = literal.utf8CodeUnitCount
        guard count - index >= length, memcmp(bytes + index, literal.utf8Start, length) == 0 else { throw fail("invalid literal") }
        index += length
    }

    @inline(always) func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    @inline(always)
    mutating func skipNumber() throws(ScanError) {
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < count, isDigit(bytes[index]) else { throw fail("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < count && isDigit(bytes[index]) { index += 1 }
        }
        if index < count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < count, isDigit(bytes[index]) else { throw fail("invalid number: digit expected after '.'") }
            while index < count && isDigit(bytes[index]) { index += 1 }
        }
        if index < count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
            index += 1
            if index < count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
            guard index < count, isDigit(bytes[index]) else { throw fail("invalid number: digit expected in exponent") }
            while index < count && isDigit(bytes[index]) { index += 1 }
        }
    }

    /// Skips a string literal starting at its opening quote; returns whether it had escapes.
    /// A string closed within 16 plain bytes is read here from two words. Longer ones go to the
    /// block scan (CJSONScan: 64 bytes per step whatever they hold); a string it refuses (or
    /// any string, on a CPU without SSSE3) is read again byte by byte, which finds the error and
    /// its offset, so that there is one definition of what a valid string is and how it fails.
    @inline(__always)
    mutating func skipString() throws(ScanError) -> Bool {
        let start = index &+ 1
        guard count &- start >= 16 else { return try skipStringByBytes() }
        let first = plainMask(UnsafeRawPointer(bytes + start).loadUnaligned(as: UInt64.self))
        let special = first != 0 ? first.trailingZeroBitCount &>> 3
            : 8 &+ plainMask(UnsafeRawPointer(bytes + (start &+ 8)).loadUnaligned(as: UInt64.self)).trailingZeroBitCount &>> 3
        if special < 16 && bytes[start &+ special] == UInt8(ascii: "\"") {
            index = start &+ special &+ 1
            return false
        }
        let skipped = skipStringInBlocks(from: start)
        if skipped >= 0 {
            index = Int(truncatingIfNeeded: skipped &>> 1)
            return skipped & 1 != 0
        }
        return try skipStringByBytes()
    }

    /// `mcpd_skip_string` from the body's first byte: (offset after the closing quote) << 1 |
    /// whether it had an escape, or -1.
    @inline(__always)
    func skipStringInBlocks(from start: Int) -> Int64 {
        mcpd_skip_string(bytes, Int64(truncatingIfNeeded: start), Int64(truncatingIfNeeded: count))
    }

    /// Skips a string literal starting at its opening quote, byte by byte where bytes need a
    /// look and a word at a time where they do not; returns whether it had escapes. The reference
    /// for the block scan, and where every string error is reported. It keeps its position in a
    /// register (stored back only on return or failure) and uses wrapping arithmetic, since
    /// every offset is bounded by `count`.
    mutating func skipStringByBytes() throws(ScanError) -> Bool {
        let p = bytes
        let end = count
        var i = index &+ 1  // opening quote
        var hadEscape = false
        while true {
            // Plain ASCII bytes (none of '"', '\\', a control byte, or >= 0x80) a word at a time;
            // the lowest flagged byte of a word is exact (borrows only flag bytes above a real
            // hit), so the scan jumps straight to it. Two words per step once a run is long.
            scan: if end &- i >= 8 {
                let first = plainMask(UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
                if first != 0 {
                    i &+= first.trailingZeroBitCount &>> 3
                    break scan
                }
                i &+= 8
                while end &- i >= 16 {
                    let a = plainMask(UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
                    let b = plainMask(UnsafeRawPointer(p + (i &+ 8)).loadUnaligned(as: UInt64.self))
                    if a | b != 0 {
                        i &+= a != 0 ? a.trailingZeroBitCount &>> 3 : 8 &+ b.trailingZeroBitCount &>> 3
                        break scan
                    }
                    i &+= 16
                }
            }
            // Special bytes, and the last few bytes of the frame, one at a time, until a plain
            // byte with a word after it sends the scan back to words.
            while true {
                guard i < end else { index = i; throw fail("unterminated string") }
                let byte = p[i]
                if byte == UInt8(ascii: "\"") {
                    index = i &+ 1
                    return hadEscape
                }
                if byte == UInt8(ascii: "\\") {
                    hadEscape = true
                    guard end &- i >= 2 else { index = i; throw fail("unterminated escape") }
                    let escaped = p[i &+ 1]
                    if isShortEscape(escaped) {
                        i &+= 2
                    } else if escaped == UInt8(ascii: "u") {
                        guard end &- i >= 6, let unit = hex4(p + (i &+ 2)) else { index = i; throw fail("invalid \\u escape: four hex digits expected") }
                        i &+= 6
                        if unit & 0xF800 == 0xD800 {
                            guard unit < 0xDC00 else { index = i &- 6; throw fail("lone low surrogate in \\u escape") }
                            guard end &- i >= 6, p[i] == UInt8(ascii: "\\"), p[i &+ 1] == UInt8(ascii: "u") else {
                                index = i &- 6; throw fail("lone high surrogate in \\u escape")
                            }
                            guard let low = hex4(p + (i &+ 2)), low & 0xFC00 == 0xDC00 else {
                                index = i; throw fail("high surrogate not followed by a low surrogate")
                            }
                            i &+= 6
                        }
                    } else {
                        index = i
                        throw fail("invalid escape")
                    }
                } else if byte >= 0x80 {
                    let length = utf8SequenceLength(p, i, end)
                    guard length > 0 else { index = i; throw fail("invalid UTF-8 sequence") }
                    i &+= length
                } else if byte >= 0x20 {
                    i &+= 1
                } else {
                    index = i
                    throw fail("control character in string")
                }
                // Another special byte next stays here; a plain one goes back to words.
                if end &- i >= 8 && p[i] != UInt8(ascii: "\\") && p[i] < 0x80 { break }
            }
        }
    }

    /// True for the byte after '\\' in the two-byte escapes: " \\ / b f n r t. A bit test,
    /// not a switch (its jump table's indirect branch is mispredicted after context switches).
    @inline(always)
    func isShortEscape(_ byte: UInt8) -> Bool {
        // Bits for '"' (0x22) and '/' (0x2F); then, from 0x40: '\\' (0x5C), b, f, n, r, t.
        let low: UInt64 = 1 << 0x22 | 1 << 0x2F
        let high: UInt64 = 1 << (0x5C - 0x40) | 1 << (0x62 - 0x40) | 1 << (0x66 - 0x40) | 1 << (0x6E - 0x40) | 1 << (0x72 - 0x40) | 1 << (0x74 - 0x40)
        let bits = byte < 0x40 ? low : byte < 0x80 ? high : 0
        return bits &>> UInt64(byte & 0x3F) & 1 != 0
    }

    /// The high bit set in every byte of `word` that a string cannot hold as is: '"', '\\', a
    /// control byte, or a byte >= 0x80. Exact for the lowest flagged byte only: below it no
    /// subtraction borrows, and a byte that is none of those leaves every term's high bit clear
    /// (a byte >= 0x80 is flagged by the last term, whatever the others say).
    @inline(always)
    func plainMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = (word ^ (ones &* 0x22)) &- ones
        let backslash = (word ^ (ones &* 0x5C)) &- ones
        let control = word &- ones &* 0x20
        return (quote | backslash | control | word) & 0x8080_8080_8080_8080
    }

    /// The value of four hex digits at `p`, or nil: each byte looked up in a table that holds
    /// 'A' + the digit's value, or '.' for a byte that is not a hex digit.
    @inline(always)
    func hex4(_ p: UnsafePointer<UInt8>) -> UInt32? {
        let table: StaticString = """
            ................................................ABCDEFGHIJ.......KLMNOP..........................KLMNOP.........................\
            ................................................................................................................................
            """
        let t = table.utf8Start
        let a = t[Int(p[0])] &- 0x41, b = t[Int(p[1])] &- 0x41, c = t[Int(p[2])] &- 0x41, d = t[Int(p[3])] &- 0x41
        guard (a | b | c | d) & 0xF0 == 0 else { return nil }
        return UInt32(a) &<< 12 | UInt32(b) &<< 8 | UInt32(c) &<< 4 | UInt32(d)
    }
}

/// The length of the valid multi-byte UTF-8 sequence at `i` (no overlongs, no surrogates,
/// at most U+10FFFF), or 0. The one UTF-8 rule: strings in JSON, and config files.
@inline(always)
func utf8SequenceLength(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
    let lead = p[i]
    let length: Int
    var lower: UInt8 = 0x80
    var upper: UInt8 = 0xBF
    switch lead {
    case 0xC2...0xDF: length = 2
    case 0xE0: length = 3; lower = 0xA0
    case 0xE1...0xEC, 0xEE...0xEF: length = 3
    case 0xED: length = 3; upper = 0x9F
    case 0xF0: length = 4; lower = 0x90
    case 0xF1...0xF3: length = 4
    case 0xF4: length = 4; upper = 0x8F
    default: return 0
    }
    guard end &- i >= length else { return 0 }
    let second = p[i &+ 1]
    guard second >= lower && second <= upper else { return 0 }
    if length >= 3 && p[i &+ 2] & 0xC0 != 0x80 { return 0 }
    if length == 4 && p[i &+ 3] & 0xC0 != 0x80 { return 0 }
    return length
}
