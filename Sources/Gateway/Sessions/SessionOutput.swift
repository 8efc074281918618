import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Where a session's messages go, each a line: mcpd's stdout (a stream), or an HTTP session,
/// whose transport gets each message whole (without its newline) and sends it as the answer to
/// its POST or on an event stream.
///
/// Writes to a stream go straight to it; the check costs one compare on the hot path.
final class SessionOutput: ByteSink {
    /// The stream of a stdio session.
    let stream: IOStream?
    /// An HTTP session's: gets each whole message, and the id of the request it answers when
    /// the session said so (`answering`), so that the transport need not scan the message for it.
    private let deliver: ((ByteBuffer, RawValue?) -> Void)?
    /// The id of the request whose answer is being written, set around the write.
    var answering: RawValue?
    /// The part of a message written so far (HTTP sessions).
    private var partial = ByteBuffer(capacity: 0)
    /// Set by an HTTP session's transport while its client does not read what it is sent; the
    /// gateway keeps count (`stalledOutputs`), so that its check does not visit every session.
    var messagesStalled = false {
        didSet {
            if messagesStalled != oldValue { onStallChange?(messagesStalled ? 1 : -1) }
        }
    }
    /// Told +1 when the output stalls and -1 when it drains.
    var onStallChange: ((Int) -> Void)?

    init(stream: IOStream) {
        self.stream = stream
        self.deliver = nil
    }

    init(deliver: @escaping (ByteBuffer, RawValue?) -> Void) {
        self.stream = nil
        self.deliver = deliver
    }

    /// False while the client does not take what it is sent (back-pressure on the backends).
    @inline(__always)
    var isWritable: Bool {
        if let stream { return stream.isWritable }
        return !messagesStalled
    }

    @inline(__always)
    func write(_ buffer: ByteBuffer) {
        if let stream { return stream.write(buffer) }
        buffer.withUnsafeReadableBytes { collect($0) }
    }

    @inline(__always)
    func write(_ bytes: UnsafeRawBufferPointer) {
        if let stream { return stream.write(bytes) }
        collect(bytes)
    }

    @inline(__always)
    func write(count: Int, _ fill: (UnsafeMutablePointer<UInt8>) -> Void) {
        if let stream { return stream.write(count: count, fill) }
        partial.reserveWritable(count)
        let start = partial.readableBytes
        fill(partial.writablePointer)
        partial.moveWriterIndex(forwardBy: count)
        splitMessages(from: start)
    }

    func write(string: String) {
        var copy = string
        copy.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// Appends bytes and hands over every message they complete. JSON text has no raw newline,
    /// so a newline ends a message.
    private func collect(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let start = partial.readableBytes
        partial.append(bytes)
        splitMessages(from: start)
    }

    private func splitMessages(from start: Int) {
        var searched = start
        while true {
            let found: Int? = partial.withUnsafeReadableBytes { raw in
                guard searched < raw.count, let hit = memchr(raw.baseAddress! + searched, 0x0A, raw.count - searched) else { return nil }
                return UnsafeRawPointer(hit) - raw.baseAddress!
            }
            guard let newline = found else { return }
            let message = partial.slice(0..<newline)
            let rest = partial.readableBytes - newline - 1
            if rest > 0 {
                var remainder = ByteBuffer(capacity: rest)
                remainder.append(partial.slice((newline + 1)..<partial.readableBytes))
                partial = remainder
            } else {
                // The usual case, one whole message: the next one starts in fresh storage (the
                // message keeps this one).
                partial = ByteBuffer(capacity: 0)
            }
            searched = 0
            let id = answering
            answering = nil
            if message.readableBytes > 0 { deliver?(message, id) }
        }
    }
}
