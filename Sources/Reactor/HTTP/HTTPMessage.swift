#if canImport(Glibc)
import Glibc
#endif

// What the HTTP server hands its user: the limits it applies, a parsed request, and the
// response to write.

/// Limits of the HTTP server: each is a key of mcpd's `http:` section.
public struct HTTPLimits: Sendable {
    /// The whole request head (request line and headers): past it, 431.
    public var maxHeaderBytes = 16 << 10
    /// Header fields: past it, 431.
    public var maxHeaders = 100
    /// The request body: past it, 413, as soon as the headers show it.
    public var maxBody = 16 << 20
    /// Open connections: past it, a new connection gets 503 and is closed.
    public var maxConnections = 10_000
    /// Time for the whole head once a request has begun (and for the first request): 408.
    public var headerTimeoutMs: UInt64 = 10_000
    /// Time without progress while a body arrives: 408.
    public var bodyTimeoutMs: UInt64 = 30_000
    /// An idle keep-alive connection is closed after this.
    public var keepaliveTimeoutMs: UInt64 = 75_000
    /// After an early error response, how long the connection reads and discards before it
    /// closes, so that the client reads the status instead of a reset (nginx's lingering close).
    public var lingerMs: UInt64 = 2_000

    public init() {}
}

/// One parsed request.
public struct HTTPRequest {
    public var method: String
    /// The request target as sent (`/mcp?x=1`).
    public var target: String
    /// The target's path (`/mcp`) and query (`x=1`, or empty).
    public var path: String
    public var query: String
    /// Header fields in order, names lowercased.
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer
    /// False when the client asked to close after this request (or spoke HTTP/1.0 without
    /// keep-alive).
    public var keepAlive: Bool

    /// The first value of a header field (name in lowercase).
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// True when header `name`'s value contains `needle` (lowercase ASCII), compared without
    /// case: `Accept` and `Content-Type` checks without building lowercased strings.
    public func header(_ name: String, contains needle: StaticString) -> Bool {
        guard var value = header(name) else { return false }
        return value.withUTF8 { asciiFind($0, needle, prefixOnly: false) }
    }

    /// True when header `name`'s value starts with `needle` (lowercase ASCII), without case.
    public func header(_ name: String, hasPrefix needle: StaticString) -> Bool {
        guard var value = header(name) else { return false }
        return value.withUTF8 { asciiFind($0, needle, prefixOnly: true) }
    }
}

/// Whether `needle` (lowercase ASCII) occurs in `text` (or starts it), ASCII letters compared
/// without case.
func asciiFind(_ text: UnsafeBufferPointer<UInt8>, _ needle: StaticString, prefixOnly: Bool) -> Bool {
    let count = needle.utf8CodeUnitCount
    let pattern = needle.utf8Start
    guard count <= text.count else { return false }
    let last = prefixOnly ? 0 : text.count - count
    var start = 0
    outer: while start <= last {
        for offset in 0..<count {
            var byte = text[start + offset]
            if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
            if byte != pattern[offset] {
                start += 1
                continue outer
            }
        }
        return true
    }
    return false
}

/// The answer to one request: a whole response (`send`), or a stream (`startStream`, `write`,
/// `finish`) sent with chunked transfer coding, as Server-Sent Events are.
public final class HTTPResponse {
    private weak var connection: HTTPConnection?
    private let keepAlive: Bool
    private var started = false
    public private(set) var isFinished = false
    /// Called once if the client goes away before the response is finished.
    public var onClientGone: (() -> Void)?
    /// Called when a stream that was not writable (its client reads slowly) can take more.
    public var onWritable: (() -> Void)?

    init(connection: HTTPConnection, keepAlive: Bool) {
        self.connection = connection
        self.keepAlive = keepAlive
    }

    /// False while the client has not read what was written (back-pressure for streams).
    public var isWritable: Bool { connection?.stream.isWritable ?? false }

    /// Bytes written and not yet taken by the client's socket.
    public var queuedBytes: Int { connection?.stream.queuedBytes ?? 0 }

    /// Sends a whole response.
    public func send(status: Int, headers: [(String, String)] = [], body: String) {
        var buffer = ByteBuffer(capacity: body.utf8.count)
        buffer.append(string: body)
        send(status: status, headers: headers, body: buffer)
    }

    public func send(status: Int, headers: [(String, String)] = [], body: ByteBuffer) {
        guard !started, !isFinished, let connection else { return }
        started = true
        isFinished = true
        var head = HTTPResponse.head(status: status, headers: headers, keepAlive: keepAlive)
        head.append(string: "Content-Length: ")
        head.append(decimal: body.readableBytes)
        head.append(string: "\r\n\r\n")
        connection.stream.write(head)
        if body.readableBytes > 0 { connection.stream.write(body) }
        connection.responseFinished(keepAlive: keepAlive)
    }

    /// Starts a streamed response (chunked).
    public func startStream(status: Int, headers: [(String, String)]) {
        guard !started, !isFinished, let connection else { return }
        started = true
        var head = HTTPResponse.head(status: status, headers: headers, keepAlive: keepAlive)
        head.append(string: "Transfer-Encoding: chunked\r\n\r\n")
        connection.stream.write(head)
        connection.streamStarted(self)
    }

    /// Writes one chunk of a stream.
    public func write(_ bytes: ByteBuffer) {
        guard started, !isFinished, let connection, bytes.readableBytes > 0 else { return }
        var size = ByteBuffer(capacity: 16)
        size.append(string: String(bytes.readableBytes, radix: 16))
        size.append(string: "\r\n")
        connection.stream.write(size)
        connection.stream.write(bytes)
        connection.stream.write(string: "\r\n")
    }

    public func write(string: String) {
        var buffer = ByteBuffer(capacity: string.utf8.count)
        buffer.append(string: string)
        write(buffer)
    }

    /// Ends a stream.
    public func finish() {
        guard started, !isFinished, let connection else { return }
        isFinished = true
        connection.stream.write(string: "0\r\n\r\n")
        connection.responseFinished(keepAlive: keepAlive)
    }

    func clientGone() {
        guard !isFinished else { return }
        isFinished = true
        let callback = onClientGone
        onClientGone = nil
        onWritable = nil
        callback?()
    }


    static func head(status: Int, headers: [(String, String)], keepAlive: Bool) -> ByteBuffer {
        var head = ByteBuffer(capacity: 256)
        head.append(string: "HTTP/1.1 ")
        head.append(decimal: status)
        head.append(string: " \(HTTPResponse.reason(status))\r\n")
        for (name, value) in headers {
            head.append(string: name)
            head.append(string: ": ")
            head.append(string: value)
            head.append(string: "\r\n")
        }
        if !keepAlive { head.append(string: "Connection: close\r\n") }
        return head
    }

    /// The reason phrase of a status code.
    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 415: return "Unsupported Media Type"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
