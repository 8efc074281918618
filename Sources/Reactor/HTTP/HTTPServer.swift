import CHTTP
import CUV
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 server on the loop: keep-alive, pipelined requests answered in order, chunked
/// request bodies, and the limits of `HTTPLimits`, parsed with libhttp-parser. It knows nothing
/// of what it serves: `handler` gets each request with its response.
///
/// Requests on one connection are handled one at a time: the parser pauses after each request
/// until its response is finished, and a pipelined request waits, unparsed, in the connection's
/// buffer (so answers go out in order, and a connection holds at most one request's state).
/// Shapes used to smuggle requests are refused and the connection closed: Transfer-Encoding
/// with Content-Length, Transfer-Encoding twice, a bad chunk size and a second Content-Length
/// get 400; a transfer coding other than `chunked` gets 501.
public final class HTTPServer {
    public let loop: EventLoop
    public var limits: HTTPLimits
    /// Gets every request; must answer it through the response, now or later.
    public var handler: ((HTTPRequest, HTTPResponse) -> Void)?
    /// Told of what went wrong where nobody else would hear of it (accept failures).
    public var onWarning: ((String) -> Void)?
    private var listener: TCPListener?
    var connections: [ObjectIdentifier: HTTPConnection] = [:]
    private var isDraining = false

    /// Open connections.
    public var connectionCount: Int { connections.count }
    /// Bytes of closed connections (the open ones' are added on demand).
    private var closedBytesRead: UInt64 = 0
    private var closedBytesWritten: UInt64 = 0

    /// Bytes read from clients, in all.
    public var bytesRead: UInt64 { connections.values.reduce(closedBytesRead) { $0 + $1.stream.bytesRead } }
    /// Bytes written to clients, in all.
    public var bytesWritten: UInt64 { connections.values.reduce(closedBytesWritten) { $0 + $1.stream.bytesWritten } }
    /// Bytes written and not yet taken by the clients' sockets.
    public var queuedBytes: Int { connections.values.reduce(0) { $0 + $1.stream.queuedBytes } }

    public init(loop: EventLoop, limits: HTTPLimits = HTTPLimits()) {
        self.loop = loop
        self.limits = limits
    }

    /// Listens on `host:port` (port 0: any free one); returns the port.
    @discardableResult
    public func listen(host: String, port: Int) throws(UVError) -> Int {
        let listener = try TCPListener(loop: loop, host: host, port: port)
        listener.onConnection = { [unowned self] stream in accept(stream) }
        listener.onAcceptError = { [unowned self] error in onWarning?("cannot accept a connection: \(error)") }
        self.listener = listener
        return listener.port
    }

    private func accept(_ stream: IOStream) {
        let connection = HTTPConnection(server: self, stream: stream)
        connections[ObjectIdentifier(connection)] = connection
        if connections.count > limits.maxConnections || isDraining {
            connection.refuse(status: 503, message: isDraining ? "mcpd is shutting down" : "too many connections (http.max_connections)")
            return
        }
        connection.start()
    }

    func connectionClosed(_ connection: HTTPConnection) {
        closedBytesRead &+= connection.stream.bytesRead
        closedBytesWritten &+= connection.stream.bytesWritten
        connections[ObjectIdentifier(connection)] = nil
    }

    // MARK: Idle connections

    /// Connections that went idle, oldest first, waiting for the sweep that takes their buffers.
    private var idle: [HTTPConnection] = []
    private var idleTimer: LoopTimer?
    /// How long a connection stays idle before its buffers go back to the pool: a client that
    /// sends its next request at once (most do) finds them still there.
    static let idleReleaseMs: UInt64 = 1_000
    /// At most this many idle connections keep their buffers; past it the longest idle give
    /// them back at once, so that many connections going quiet together (thousands of
    /// clients, each with a session) cost no more than this many sets of buffers.
    static let maxIdleHolding = 256

    func becameIdle(_ connection: HTTPConnection) {
        connection.idleSince = loop.now
        if !connection.awaitsRelease {
            connection.awaitsRelease = true
            idle.append(connection)
            if idle.count > HTTPServer.maxIdleHolding {
                let oldest = idle.count - HTTPServer.maxIdleHolding
                for connection in idle[..<oldest] {
                    connection.awaitsRelease = false
                    if connection.isIdle { connection.releaseIdleStorage() }
                }
                idle.removeFirst(oldest)
            }
        }
        if idleTimer == nil {
            let timer = LoopTimer(loop: loop, unreferenced: true)
            idleTimer = timer
            timer.start(timeout: HTTPServer.idleReleaseMs / 2, repeat: HTTPServer.idleReleaseMs / 2) { [unowned self] in sweepIdle() }
        }
    }

    /// Gives back the buffers of connections idle for `idleReleaseMs`; forgets those busy again
    /// (they come back when they next go idle).
    private func sweepIdle() {
        let now = loop.now
        var released = 0
        idle.removeAll { connection in
            guard connection.isIdle else {
                connection.awaitsRelease = false
                return true
            }
            guard now - connection.idleSince >= HTTPServer.idleReleaseMs else { return false }
            connection.awaitsRelease = false
            connection.releaseIdleStorage()
            released += 1
            return true
        }
        // Many at once (a burst of clients gone quiet): what the pool does not keep is in
        // fragments the heap keeps; whole free pages go back to the system.
        if released >= HTTPServer.trimAfterReleases { ProcessSetup.releaseFreeMemory() }
        if idle.isEmpty { stopIdleSweep() }
    }

    static let trimAfterReleases = 256

    private func stopIdleSweep() {
        idleTimer?.close()
        idleTimer = nil
        idle.removeAll()
    }

    /// Stops accepting; idle connections close now, the others once their response is done.
    public func drain() {
        isDraining = true
        stopIdleSweep()
        listener?.close()
        listener = nil
        for connection in Array(connections.values) { connection.closeWhenIdle() }
    }

    /// Closes every connection now.
    public func closeAll() {
        stopIdleSweep()
        listener?.close()
        listener = nil
        for connection in Array(connections.values) { connection.close() }
    }

    /// True while draining: responses ask clients to close.
    var draining: Bool { isDraining }
}

/// One client connection.
final class HTTPConnection {
    unowned let server: HTTPServer
    let stream: IOStream
    private let parser: UnsafeMutablePointer<http_parser>
    private let timer: LoopTimer
    private var closed = false

    // The request being parsed.
    private var method = ""
    private var url: [UInt8] = []
    private var fields = HeaderFields()
    /// The parser is inside a field's name (false: inside its value, or before any field).
    private var inName = false
    private var headBytes = 0
    private var headComplete = false
    private var inMessage = false
    private var body = ByteBuffer(capacity: 0)
    /// An error a callback found: answered once the parser returns.
    private var pendingError: (status: Int, message: String)?

    /// The response being produced; requests after it wait in `stream.inbound`.
    private var response: HTTPResponse?
    private var parsing = false
    private var lingering = false
    private var closeAfterResponse = false

    init(server: HTTPServer, stream: IOStream) {
        self.server = server
        self.stream = stream
        parser = zeroedAllocation(http_parser.self)
        http_parser_init(parser, HTTP_REQUEST)
        timer = LoopTimer(loop: server.loop)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        timer.callback = { [unowned self] in timerFired() }
    }

    /// The method's name: the common ones without building a String.
    private static func methodName(_ method: UInt32) -> String {
        switch http_method(method) {
        case HTTP_POST: return "POST"
        case HTTP_GET: return "GET"
        case HTTP_DELETE: return "DELETE"
        default: return String(cString: http_method_str(http_method(method)))
        }
    }

    deinit { parser.deallocate() }

    func start() {
        stream.onRead = { [unowned self] buffer in didRead(&buffer) }
        stream.onReadEnd = { [unowned self] _ in clientClosed() }
        stream.onWriteError = { [unowned self] _ in close() }
        stream.onWritable = { [unowned self] in response?.onWritable?() }
        stream.startReading()
        armTimer(server.limits.headerTimeoutMs, status: nil)
    }

    // MARK: Reading

    private func didRead(_ buffer: inout ByteBuffer) {
        if lingering {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return
        }
        parse(&buffer)
    }

    /// Feeds what is buffered to the parser until a request is complete (then hands it over
    /// and waits for its response) or the bytes run out.
    private func parse(_ buffer: inout ByteBuffer) {
        parsing = true
        defer { parsing = false }
        while !closed && !lingering && response == nil && buffer.readableBytes > 0 {
            if !inMessage {
                inMessage = true
                headBytes = 0
                // The last request is gone by now: its storage is reused.
                url.removeAll(keepingCapacity: true)
                fields.clear()
                armTimer(server.limits.headerTimeoutMs, status: 408)
            }
            var count = buffer.readableBytes
            if !headComplete {
                // The head may not pass the limit: the parser sees at most one byte more.
                count = min(count, server.limits.maxHeaderBytes - headBytes + 1)
            }
            let consumed = buffer.readablePointer.withMemoryRebound(to: CChar.self) { bytes in
                http_parser_execute(parser, &HTTPConnection.settings, bytes.baseAddress, count)
            }
            if !headComplete { headBytes += consumed }
            buffer.moveReaderIndex(forwardBy: consumed)
            let code = http_errno(parser.pointee.http_errno)
            if code == HPE_PAUSED {
                http_parser_pause(parser, 0)
                dispatch()
                continue
            }
            if let pendingError {
                fail(status: pendingError.status, message: pendingError.message)
                return
            }
            if code != HPE_OK {
                fail(status: code == HPE_HEADER_OVERFLOW ? 431 : 400,
                     message: "malformed request (\(String(cString: http_errno_description(code))))")
                return
            }
            if !headComplete && headBytes > server.limits.maxHeaderBytes {
                fail(status: 431, message: "request head larger than \(server.limits.maxHeaderBytes) bytes (http.max_header_bytes)")
                return
            }
            if consumed < count { return }
        }
        // While a response is produced, the connection keeps reading (to see the client go
        // away), up to one head's worth of the next request.
        if response != nil && buffer.readableBytes > server.limits.maxHeaderBytes { stream.stopReading() }
        if response == nil && !inMessage && !closed && !lingering && buffer.readableBytes == 0 { server.becameIdle(self) }
    }

    /// True while `parse` runs: a response finished from inside it (an answer the handler gave
    /// at once) leaves the next buffered request to its loop.

    private func dispatch() {
        let target = String(decoding: url, as: UTF8.self)
        let question = url.firstIndex(of: UInt8(ascii: "?"))
        let request = HTTPRequest(method: method, target: target,
                                  path: question.map { String(decoding: url[..<$0], as: UTF8.self) } ?? target,
                                  query: question.map { String(decoding: url[($0 + 1)...], as: UTF8.self) } ?? "",
                                  fields: fields, body: body,
                                  keepAlive: http_should_keep_alive(parser) != 0 && !server.draining)
        resetMessage()
        timer.pause()
        let response = HTTPResponse(connection: self, keepAlive: request.keepAlive)
        self.response = response
        if let handler = server.handler {
            handler(request, response)
        } else {
            response.send(status: 404, body: "")
        }
    }

    /// Ready for the next request. The request line and fields keep their storage for it, until
    /// the connection has been idle a while (`releaseIdleStorage`).
    private func resetMessage() {
        inName = false
        headComplete = false
        inMessage = false
        body = ByteBuffer(capacity: 0)
    }

    /// Since when the connection has been idle, and whether the server's sweep holds it.
    var idleSince: UInt64 = 0
    var awaitsRelease = false

    /// True while the connection waits for a request with nothing buffered.
    var isIdle: Bool { !closed && response == nil && !inMessage && !lingering && stream.inbound.readableBytes == 0 }

    /// An idle connection gives its buffers back: memory follows requests, not open
    /// connections.
    func releaseIdleStorage() {
        url = []
        fields.clear(release: true)
        stream.releaseIdleStorage()
    }

    // MARK: Responses

    func streamStarted(_ response: HTTPResponse) {
        // A stream's pace is the server's; no timer applies.
        timer.pause()
    }

    func responseFinished(keepAlive: Bool) {
        response = nil
        guard !closed else { return }
        if !keepAlive || closeAfterResponse {
            stream.closeAfterFlush()
            return
        }
        armTimer(server.limits.keepaliveTimeoutMs, status: nil)
        stream.startReading()
        // Inside `parse` the stream's buffer is being read: its loop goes on.
        if parsing { return }
        if stream.inbound.readableBytes > 0 {
            // A pipelined request already buffered goes next, after this turn (the response may
            // have been sent from inside a read of this very buffer).
            server.loop.execute { [self] in
                guard !closed, response == nil, !lingering, stream.inbound.readableBytes > 0 else { return }
                parse(&stream.inbound)
            }
        } else {
            server.becameIdle(self)
        }
    }

    /// An early error: the status with `Connection: close`, then a lingering close.
    private func fail(status: Int, message: String) {
        guard !closed, !lingering else { return }
        lingering = true
        let body = "{\"error\":\(jsonQuoted(message))}\n"
        var head = HTTPResponse.head(status: status, headers: [("Content-Type", "application/json")], keepAlive: false)
        head.append(string: "Content-Length: ")
        head.append(decimal: body.utf8.count)
        head.append(string: "\r\n\r\n")
        head.append(string: body)
        stream.write(head)
        // The client reads the status and the end of the stream, while what it still sends is
        // read and dropped for a while, so that its kernel does not answer it with a reset.
        stream.shutdownAfterFlush()
        response?.clientGone()
        response = nil
        stream.startReading()
        armTimer(server.limits.lingerMs, status: nil)
    }

    /// 503 at once, for a connection over the limit or while draining.
    func refuse(status: Int, message: String) {
        stream.onReadEnd = { [unowned self] _ in close() }
        stream.onWriteError = { [unowned self] _ in close() }
        stream.onRead = { buffer in buffer.moveReaderIndex(forwardBy: buffer.readableBytes) }
        stream.startReading()
        fail(status: status, message: message)
    }

    /// What the timer answers when it fires: nil closes the connection.
    private var timerStatus: Int?

    private func armTimer(_ timeout: UInt64, status: Int?) {
        timerStatus = status
        timer.restart(timeout: timeout)
    }

    private func timerFired() {
        if let status = timerStatus, !lingering, inMessage {
            fail(status: status, message: headComplete ? "request body too slow (http.body_timeout)" : "request head too slow (http.header_timeout)")
        } else {
            close()
        }
    }

    private func clientClosed() {
        if let response {
            self.response = nil
            response.clientGone()
        }
        close()
    }

    func closeWhenIdle() {
        if response == nil && !inMessage { close() } else { closeAfterResponse = true }
    }

    func close() {
        guard !closed else { return }
        closed = true
        timer.close()
        if let response {
            self.response = nil
            response.clientGone()
        }
        stream.close()
        server.connectionClosed(self)
    }

    // MARK: Parser callbacks

    fileprivate func onURL(_ bytes: UnsafeBufferPointer<UInt8>) {
        url.append(contentsOf: bytes)
    }

    fileprivate func onHeaderField(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
        if !inName {
            // A new field (the previous one's value, if any, is complete).
            if fields.count > 0 { fields.endField() }
            if fields.count >= server.limits.maxHeaders {
                pendingError = (431, "more than \(server.limits.maxHeaders) header fields (http.max_headers)")
                return 1
            }
            fields.beginName()
            inName = true
        }
        fields.appendName(bytes)
        return 0
    }

    fileprivate func onHeaderValue(_ bytes: UnsafeBufferPointer<UInt8>) {
        if inName {
            fields.beginValue()
            inName = false
        }
        fields.appendValue(bytes)
    }

    fileprivate func onHeadersComplete() -> Int32 {
        if fields.count > 0 { fields.endField() }
        inName = false
        headComplete = true
        method = HTTPConnection.methodName(parser.pointee.method)
        let codings = fields.values(of: "transfer-encoding")
        if codings.count > 1 {
            pendingError = (400, "Transfer-Encoding given more than once")
            return 3
        }
        if let coding = codings.first, !(coding.count == 7 && String(decoding: coding, as: UTF8.self).lowercased() == "chunked") {
            pendingError = (501, "transfer coding \"\(String(decoding: coding.prefix(40), as: UTF8.self))\" is not supported (only chunked)")
            return 3
        }
        if parser.pointee.flags & UInt32(F_CONTENTLENGTH.rawValue) != 0 && parser.pointee.content_length > UInt64(server.limits.maxBody) {
            pendingError = (413, "request body of \(parser.pointee.content_length) bytes is larger than \(server.limits.maxBody) (http.max_body)")
            return 3
        }
        if let expect = fields.value(of: "expect"), expect.count == 12, String(decoding: expect, as: UTF8.self).lowercased() == "100-continue" {
            stream.write(string: "HTTP/1.1 100 Continue\r\n\r\n")
        }
        armTimer(server.limits.bodyTimeoutMs, status: 408)
        return 0
    }

    fileprivate func onBody(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
        if body.readableBytes + bytes.count > server.limits.maxBody {
            pendingError = (413, "request body larger than \(server.limits.maxBody) bytes (http.max_body)")
            return 1
        }
        body.append(UnsafeRawBufferPointer(bytes))
        armTimer(server.limits.bodyTimeoutMs, status: 408)
        return 0
    }

    fileprivate func onMessageComplete() {
        // The parser stops here; `parse` hands the request over.
        http_parser_pause(parser, 1)
    }

    nonisolated(unsafe) static var settings: http_parser_settings = {
        var settings = http_parser_settings()
        http_parser_settings_init(&settings)
        settings.on_url = { parser, data, length in
            connection(parser).onURL(UnsafeBufferPointer(start: UnsafeRawPointer(data!).assumingMemoryBound(to: UInt8.self), count: length))
            return 0
        }
        settings.on_header_field = { parser, data, length in
            connection(parser).onHeaderField(UnsafeBufferPointer(start: UnsafeRawPointer(data!).assumingMemoryBound(to: UInt8.self), count: length))
        }
        settings.on_header_value = { parser, data, length in
            connection(parser).onHeaderValue(UnsafeBufferPointer(start: UnsafeRawPointer(data!).assumingMemoryBound(to: UInt8.self), count: length))
            return 0
        }
        settings.on_headers_complete = { parser in connection(parser).onHeadersComplete() }
        settings.on_body = { parser, data, length in
            connection(parser).onBody(UnsafeBufferPointer(start: UnsafeRawPointer(data!).assumingMemoryBound(to: UInt8.self), count: length))
        }
        settings.on_message_complete = { parser in
            connection(parser).onMessageComplete()
            return 0
        }
        return settings
    }()
}

private func connection(_ parser: UnsafeMutablePointer<http_parser>?) -> HTTPConnection {
    Unmanaged<HTTPConnection>.fromOpaque(parser!.pointee.data).takeUnretainedValue()
}

/// A JSON string literal (for error bodies).
func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
