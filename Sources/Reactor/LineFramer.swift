#if canImport(Glibc)
import Glibc
#endif

/// Splits a byte stream into newline-terminated frames, as slices that share the buffer's
/// storage. Remembers how far it has scanned, so a long line arriving in many reads is scanned
/// once, and refuses lines longer than `maxLineLength`. A trailing `\r` is dropped.
public struct LineFramer {
    /// The longest frame accepted, newline excluded.
    public let maxLineLength: Int
    /// Bytes after the reader index already known to hold no newline.
    private var scanned = 0

    /// What `next` found.
    public enum Frame {
        /// A complete line (possibly empty), without its newline.
        case line(ByteBuffer)
        /// No complete line yet.
        case needMore
        /// A complete line longer than `maxLineLength` was consumed and dropped; framing goes on
        /// with the next line.
        case skippedLongLine(length: Int)
        /// The current line exceeds `maxLineLength` and its newline has not arrived: the caller
        /// drops what is buffered and, if it wants to go on, skips up to the next newline.
        case tooLong
    }

    /// A framer refusing lines over `maxLineLength` bytes (default 16 MiB).
    public init(maxLineLength: Int = 16 << 20) {
        self.maxLineLength = maxLineLength
    }

    /// Takes the next complete line from `buffer`, consuming it and its newline.
    public mutating func next(_ buffer: inout ByteBuffer) -> Frame {
        let readable = buffer.readableBytes
        if scanned < readable {
            let start = buffer.readablePointer.baseAddress! + scanned
            if let hit = memchr(start, Int32(UInt8(ascii: "\n")), readable - scanned) {
                let newline = scanned + (UnsafeRawPointer(hit) - UnsafeRawPointer(start))
                scanned = 0
                if newline > maxLineLength {
                    buffer.moveReaderIndex(forwardBy: newline + 1)
                    return .skippedLongLine(length: newline)
                }
                var length = newline
                if length > 0 && buffer[length - 1] == UInt8(ascii: "\r") { length -= 1 }
                let line = buffer.slice(from: 0, length: length)
                buffer.moveReaderIndex(forwardBy: newline + 1)
                return .line(line)
            }
            scanned = readable
        }
        return readable > maxLineLength ? .tooLong : .needMore
    }

    /// Forgets scan progress (after the owner replaced or reset the buffer).
    public mutating func reset() { scanned = 0 }
}
