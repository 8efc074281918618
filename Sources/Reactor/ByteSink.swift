/// What messages are written to: an `IOStream`, or a session's output that is not a stream
/// (an HTTP session's, which hands each message to its HTTP exchange). Generic code over it is
/// specialised, so the stream's writes stay direct calls.
public protocol ByteSink: AnyObject {
    /// Queues the readable bytes of `buffer`.
    func write(_ buffer: ByteBuffer)
    /// Queues a copy of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer)
    /// Queues `count` bytes that `fill` writes in place.
    func write(count: Int, _ fill: (UnsafeMutablePointer<UInt8>) -> Void)
}

extension IOStream: ByteSink {}
