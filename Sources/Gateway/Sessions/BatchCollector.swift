import Reactor

/// Collects the answers to one JSON-RPC batch (protocol 2025-03-26) and writes them as one
/// array once every request in it is answered.
final class BatchCollector {
    unowned let session: ClientSession
    var responses: [ByteBuffer] = []
    /// Requests forwarded and not yet answered.
    var outstanding = 0
    /// True once every element has been dispatched.
    var sealed = false

    init(session: ClientSession) { self.session = session }

    func add(_ response: ByteBuffer) {
        responses.append(response)
        finishIfDone()
    }

    func finishIfDone() {
        guard sealed, outstanding == 0 else { return }
        sealed = false
        guard !responses.isEmpty else { return }
        var out = ByteBuffer(capacity: responses.reduce(2) { $0 + $1.readableBytes + 1 })
        out.appendByte(UInt8(ascii: "["))
        for (index, response) in responses.enumerated() {
            if index > 0 { out.appendByte(UInt8(ascii: ",")) }
            out.append(response)
        }
        out.append(string: "]\n")
        session.output.write(out)
    }
}
