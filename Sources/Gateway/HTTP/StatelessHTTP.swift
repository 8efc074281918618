import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One request of the stateless era (2026-07-28) over HTTP: POST only, no session. The request
/// is served by a `ClientSession` of its own, which ends with the answer; the answer is the
/// POST's JSON body, or an event stream that carries the request's notifications first
/// (`subscriptions/listen` always streams, until the client closes it). A client that closes
/// the stream cancels the request at the backend.
final class StatelessExchange: SessionTransport {
    unowned let front: StreamableHTTP
    private(set) var session: ClientSession!
    private let response: HTTPResponse
    private let requestID: String
    private let streaming: Bool
    private var done = false

    init(front: StreamableHTTP, response: HTTPResponse, requestID: String, streaming: Bool) {
        self.front = front
        self.response = response
        self.requestID = requestID
        self.streaming = streaming
        let output = SessionOutput(deliver: { [unowned self] message in deliver(message) })
        session = ClientSession(gateway: front.gateway, transport: self, output: output, label: "http-stateless")
    }

    func start(for session: ClientSession) {}
    func resumeReading(for session: ClientSession) {}
    func stopReading() {}
    func close(flushDeadlineMs: UInt64) { finish() }

    func serve(_ body: ByteBuffer) {
        if streaming {
            response.startStream(status: 200, headers: StreamableHTTP.sseHeaders + [("X-Accel-Buffering", "no")])
            response.onWritable = { [unowned self] in
                session.output.messagesStalled = false
                front.gateway.clientOutputDrained()
            }
        }
        response.onClientGone = { [unowned self] in
            // The stateless era's cancel: the request ends at the backend too.
            guard !done else { return }
            done = true
            session.end(reason: "the client closed the request's stream")
        }
        front.gateway.addSession(session)
        session.receive(body)
    }

    private func deliver(_ message: ByteBuffer) {
        guard !done else { return }
        let isAnswer = front.responseID(message) == requestID
        if streaming {
            var event = ByteBuffer(capacity: message.readableBytes + 24)
            event.append(string: "event: message\ndata: ")
            event.append(message)
            event.append(string: "\n\n")
            response.write(event)
            if !response.isWritable { session.output.messagesStalled = true }
            if isAnswer {
                response.finish()
                finish()
            }
            return
        }
        // JSON: only the answer is sent; what comes before it has no stream to go on.
        guard isAnswer else { return }
        var body = ByteBuffer(capacity: message.readableBytes + 1)
        body.append(message)
        body.appendByte(0x0A)
        response.send(status: 200, headers: front.jsonHeaders, body: body)
        finish()
    }

    private func finish() {
        guard !done else { return }
        done = true
        // After this turn: the session may still be inside the call that answered.
        front.gateway.loop.execute { [self] in session.end(reason: "answered") }
    }
}

extension StreamableHTTP {
    /// A POST of protocol 2026-07-28: the headers must agree with the body (`Mcp-Method`, and
    /// `Mcp-Name` for the methods that name something), else 400 with -32020.
    func statelessPost(_ request: HTTPRequest, _ response: HTTPResponse) {
        guard let (body, scan, json, sse) = readMessage(request, response) else { return }
        if scan.kind == .notification || scan.kind == .response {
            // Nothing stays open to take them: a request's stream closing is its cancel.
            return response.send(status: 202, headers: [], body: "")
        }
        guard scan.kind == .request, let idRange = scan.id, let methodRange = scan.method else {
            return rpcError(response, 400, id: "null", code: ErrorCode.invalidRequest, "Invalid request: protocol \(ProtocolVersion.stateless) takes one request per POST")
        }
        let id = String(decoding: body.slice(idRange).readablePointer, as: UTF8.self)
        let method = body.withUnsafeReadableBytes { (try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: $0[methodRange]))) ?? "" }
        guard request.header("mcp-method") == method else {
            return rpcError(response, 400, id: id, code: StreamableHTTP.headerMismatch, "Mcp-Method header does not match the request body's method \"\(method.prefix(80))\"")
        }
        let named: Range<Int>? = method == "tools/call" || method == "prompts/get" ? scan.paramsName : method == "resources/read" ? scan.paramsURI : nil
        if let named, let value = body.withUnsafeReadableBytes({ try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: $0[named])) }),
           StreamableHTTP.decodeHeaderValue(request.header("mcp-name")) != value {
            return rpcError(response, 400, id: id, code: StreamableHTTP.headerMismatch,
                            "Mcp-Name header does not match the request body's \(method == "resources/read" ? "uri" : "name")")
        }
        let streaming = sse && (method == "subscriptions/listen" || !json || scan.metaProgressToken != nil)
        if method == "subscriptions/listen" && !sse {
            return error(response, 406, "subscriptions/listen streams: Accept must include text/event-stream")
        }
        StatelessExchange(front: self, response: response, requestID: id, streaming: streaming).serve(body)
    }

    /// -32020: a header that says something else than the body.
    static let headerMismatch = -32020

    func rpcError(_ response: HTTPResponse, _ status: Int, id: String, code: Int, _ message: String) {
        response.send(status: status, headers: jsonHeaders,
                      body: "{\"jsonrpc\":\"2.0\",\"id\":\(id),\"error\":{\"code\":\(code),\"message\":\(JSONValue.string(message).jsonText)}}\n")
    }

    /// A header value as sent, or the UTF-8 inside `=?base64?...?=` (nil when that is malformed).
    static func decodeHeaderValue(_ value: String?) -> String? {
        guard let value, value.hasPrefix("=?base64?"), value.hasSuffix("?="), value.count >= 11 else { return value }
        let payload = Array(value.utf8.dropFirst(9).dropLast(2))
        guard let bytes = decodeBase64(payload) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// Standard base64 with padding; nil for anything else.
func decodeBase64(_ text: [UInt8]) -> [UInt8]? {
    guard text.count % 4 == 0 else { return nil }
    func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }
    var out: [UInt8] = []
    var index = 0
    while index < text.count {
        let chunk = text[index..<index + 4]
        let padding = chunk.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        guard padding <= 2, index + 4 == text.count || padding == 0 else { return nil }
        var bits: UInt32 = 0
        for c in chunk.prefix(4 - padding) {
            guard let v = value(c) else { return nil }
            bits = bits << 6 | UInt32(v)
        }
        bits <<= UInt32(6 * padding)
        out.append(UInt8(truncatingIfNeeded: bits >> 16))
        if padding < 2 { out.append(UInt8(truncatingIfNeeded: bits >> 8)) }
        if padding < 1 { out.append(UInt8(truncatingIfNeeded: bits)) }
        index += 4
    }
    return out
}
