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
    /// The header fields, as the connection read them (a String is made only for a value
    /// asked for).
    let fields: HeaderFields
    public var body: ByteBuffer
    /// False when the client asked to close after this request (or spoke HTTP/1.0 without
    /// keep-alive).
    public var keepAlive: Bool

    /// The first value of a header field (name in lowercase).
    public func header(_ name: String) -> String? {
        fields.value(of: name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// True when header `name`'s value contains `needle` (lowercase ASCII), compared without
    /// case: `Accept` and `Content-Type` checks without building lowercased strings.
    public func header(_ name: String, contains needle: StaticString) -> Bool {
        guard let value = fields.value(of: name) else { return false }
        return value.withUnsafeBufferPointer { asciiFind($0, needle, prefixOnly: false) }
    }

    /// True when the request has a header `name` (lowercase).
    public func hasHeader(_ name: String) -> Bool { fields.value(of: name) != nil }

    /// Calls `body` with the bytes of header `name`'s first value (nil when absent): several
    /// checks of one value (`asciiContains`) without a String.
    public func withHeader<R>(_ name: String, _ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        guard let value = fields.value(of: name) else { return body(nil) }
        return value.withUnsafeBufferPointer { body($0) }
    }

    /// True when header `name`'s value starts with `needle` (lowercase ASCII), without case.
    public func header(_ name: String, hasPrefix needle: StaticString) -> Bool {
        guard let value = fields.value(of: name) else { return false }
        return value.withUnsafeBufferPointer { asciiFind($0, needle, prefixOnly: true) }
    }
}

/// A request's header fields in one byte array: each name (lowercased) followed by its value
/// (trailing white space trimmed), and their bounds. Two allocations per connection, reused
/// from request to request, where a String per name and value cost two per field.
struct HeaderFields {
    private(set) var bytes: [UInt8] = []
    /// Per field: where its name starts, where its value starts, where its value ends.
    private(set) var bounds: [(name: Int32, value: Int32, end: Int32)] = []

    var count: Int { bounds.count }

    /// The first value of the field called `name` (lowercase).
    func value(of name: String) -> ArraySlice<UInt8>? {
        var name = name
        return name.withUTF8 { wanted in
            for field in bounds where Int(field.value - field.name) == wanted.count {
                if bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress! + Int(field.name), wanted.baseAddress!, wanted.count) == 0 }) {
                    return bytes[Int(field.value)..<Int(field.end)]
                }
            }
            return nil
        }
    }

    /// Every value of the field called `name`.
    func values(of name: String) -> [ArraySlice<UInt8>] {
        let wanted = Array(name.utf8)
        return bounds.filter { bytes[Int($0.name)..<Int($0.value)].elementsEqual(wanted) }.map { bytes[Int($0.value)..<Int($0.end)] }
    }

    // Building, from the parser's callbacks (a name or value may come in several pieces).

    /// Starts a field's name.
    mutating func beginName() {
        bounds.append((Int32(bytes.count), -1, -1))
    }

    /// Appends to the current name, lowercased.
    mutating func appendName(_ piece: UnsafeBufferPointer<UInt8>) {
        let start = bytes.count
        bytes.append(contentsOf: piece)
        bytes.withUnsafeMutableBufferPointer { all in
            for index in start..<all.count where all[index] >= 0x41 && all[index] <= 0x5A { all[index] |= 0x20 }
        }
    }

    /// Starts the current field's value.
    mutating func beginValue() {
        bounds[bounds.count - 1].value = Int32(bytes.count)
    }

    mutating func appendValue(_ piece: UnsafeBufferPointer<UInt8>) {
        bytes.append(contentsOf: piece)
    }

    /// Ends the current field: its value without trailing white space.
    mutating func endField() {
        let last = bounds.count - 1
        if bounds[last].value < 0 { bounds[last].value = Int32(bytes.count) }
        var end = bytes.count
        while end > Int(bounds[last].value) && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09) { end -= 1 }
        bounds[last].end = Int32(end)
    }

    /// Empties the fields, keeping the storage (or, `release`, giving it back).
    mutating func clear(release: Bool = false) {
        if release {
            bytes = []
            bounds = []
        } else {
            bytes.removeAll(keepingCapacity: true)
            bounds.removeAll(keepingCapacity: true)
        }
    }
}

/// Whether `needle` (lowercase ASCII) occurs in `text`, ASCII letters compared without case.
public func asciiContains(_ text: UnsafeBufferPointer<UInt8>, _ needle: StaticString) -> Bool {
    asciiFind(text, needle, prefixOnly: false)
}

/// Whether `needle` (lowercase ASCII) occurs in `text` (or starts it), ASCII letters compared
/// without case.
func asciiFind(_ text: UnsafeBufferPointer<UInt8>, _ needle: StaticString, prefixOnly: Bool) -> Bool {
    let count = needle.utf8CodeUnitCount
    let pattern = needle.utf8Start
    guard count > 0, count <= text.count, let base = text.baseAddress else { return count == 0 }
    @inline(__always) func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
    let first = pattern[0]
    let last = prefixOnly ? 0 : text.count - count
    var start = 0
    outer: while start <= last {
        if lower(base[start]) != first {
            start += 1
            continue
        }
        for offset in 1..<max(count, 1) where lower(base[start + offset]) != pattern[offset] {
            start += 1
            continue outer
        }
        return true
    }
    return false
}

/// The answer to one request: a whole response (`send`), or a stream (`startStream`, `write`,
/// `finish`) sent with chunked transfer coding, as Server-Sent Events are.
public final class HTTPResponse {
    /// Strong while the response is being produced (the connection holds the response too);
    /// dropped once it is finished or the client is gone. (Not weak: a weak reference gives
    /// the connection a side table, and every retain of it the slow path.)
    private var connection: HTTPConnection?
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
        self.connection = nil
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
        self.connection = nil
        connection.responseFinished(keepAlive: keepAlive)
    }

    func clientGone() {
        connection = nil
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
        head.append(string: " ")
        head.append(string: HTTPResponse.reason(status))
        head.append(string: "\r\n")
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
