import Reactor

/// The raw bytes of a small JSON value (a request id or a progress token), kept inline so that
/// remembering a client's id costs no allocation. Longer values (rare) spill to an array.
public struct RawValue: Equatable, Sendable {
    private var inline: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var inlineCount: UInt8 = 0
    private var spill: [UInt8]?

    static let inlineCapacity = 32

    /// Copies `bytes`.
    public init(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count <= RawValue.inlineCapacity {
            inlineCount = UInt8(bytes.count)
            // Built in registers, word by word: copying the bytes into the tuple's memory and
            // then moving the value would load words over smaller stores, which stalls
            // store-to-load forwarding.
            inline = (RawValue.word(bytes, 0), RawValue.word(bytes, 8), RawValue.word(bytes, 16), RawValue.word(bytes, 24))
        } else {
            spill = Array(bytes)
        }
    }

    /// The bytes of `bytes` from `start` as a little-endian word, zero past the end.
    @inline(__always)
    private static func word(_ bytes: UnsafeRawBufferPointer, _ start: Int) -> UInt64 {
        let remaining = bytes.count - start
        if remaining <= 0 { return 0 }
        if remaining >= 8 { return bytes.loadUnaligned(fromByteOffset: start, as: UInt64.self) }
        var word: UInt64 = 0
        var index = bytes.count
        while index > start {
            index -= 1
            word = word &<< 8 | UInt64(bytes[index])
        }
        return word
    }

    /// Copies the bytes of `range` in `frame`.
    public init(_ frame: ByteBuffer, _ range: Range<Int>) {
        self = frame.withUnsafeReadableBytes { RawValue(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// The literal `null`.
    public static let null = RawValue(string: "null")

    /// A value from its JSON text.
    public init(string: String) {
        var copy = string
        self = copy.withUTF8 { RawValue(UnsafeRawBufferPointer($0)) }
    }

    /// Calls `body` with the bytes.
    @inline(__always)
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let spill { return try spill.withUnsafeBytes(body) }
        var copy = inline
        return try withUnsafeBytes(of: &copy) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<Int(inlineCount)])) }
    }

    /// The JSON text (for logs and tests).
    public var text: String { withBytes { String(decoding: $0, as: UTF8.self) } }

    /// True when equal to the bytes of `range` in `frame`.
    public func equals(_ frame: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        withBytes { mine in
            mine.count == range.count && memcmp(mine.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, frame.baseAddress! + range.lowerBound, range.count) == 0
        }
    }

    public static func == (lhs: RawValue, rhs: RawValue) -> Bool {
        lhs.withBytes { a in rhs.withBytes { b in a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0) } }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Parses a non-negative decimal integer literal (the ids and tokens mcpd issues).
@inline(__always)
func parseGatewayInteger(_ frame: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
    guard !range.isEmpty, range.count <= 18 else { return nil }
    var value = 0
    for index in range {
        let byte = frame[index]
        guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
        value = value * 10 + Int(byte - UInt8(ascii: "0"))
    }
    return value
}

extension ByteSink {
    /// Queues an integer in decimal (no allocation).
    func write(decimal value: Int) {
        let length = decimalLength(value)
        write(count: length) { writeDecimal(value, length: length, to: $0) }
    }

    /// Queues a raw JSON value.
    func write(raw value: RawValue) {
        value.withBytes { write($0) }
    }
}
