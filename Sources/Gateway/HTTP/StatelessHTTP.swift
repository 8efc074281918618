import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Requests of the stateless era (2026-07-28) over HTTP: POST only, no session. A request is
/// served by a `ClientSession` of its own, which ends with the answer: the POST's JSON body, or
/// an event stream that carries the request's notifications first (`subscriptions/listen` always
/// streams, until the client closes it). A client that closes the stream cancels the request at
/// the backend.
///
/// One answer keeps the session: an input-required result (a backend asked for sampling,
/// elicitation or roots while serving the call). The backend is still waiting, so the session
/// waits too, under the result's `requestState` handle (128 random bits), for the client's
/// retry, which is served by it whatever POST brings it; then it goes on as before. A retry
/// that does not come within the request deadline ends it.
final class StatelessExchange: SessionTransport {
    unowned let front: StreamableHTTP
    private(set) var session: ClientSession!
    private var response: HTTPResponse?
    private var requestID = ""
    private var streaming = false
    private var done = false
    /// The handle this session waits under for the client's retry, if it does.
    private var waitingUnder: String?
    private var retryTimer: LoopTimer?

    init(front: StreamableHTTP, view: CatalogView) {
        self.front = front
        let output = SessionOutput(deliver: { [unowned self] message, id in deliver(message, answering: id) })
        session = ClientSession(gateway: front.gateway, transport: self, output: output, label: "http-stateless", view: view)
        front.gateway.addSession(session)
    }

    func start(for session: ClientSession) {}
    func resumeReading(for session: ClientSession) {}
    func stopReading() {}
    func close(flushDeadlineMs: UInt64) { end(reason: "mcpd is shutting down", abandon: true) }

    /// Serves one request (the first, or a retry with the `requestState` this session issued).
    func serve(_ body: ByteBuffer, response: HTTPResponse, requestID: String, streaming: Bool) {
        if let handle = waitingUnder {
            front.statelessWaits[handle] = nil
            waitingUnder = nil
            retryTimer?.stop()
        }
        self.response = response
        self.requestID = requestID
        self.streaming = streaming
        if streaming {
            response.startStream(status: 200, headers: StreamableHTTP.sseHeaders + [("X-Accel-Buffering", "no")])
            response.onWritable = { [unowned self] in
                session.output.messagesStalled = false
                front.gateway.clientOutputDrained()
            }
        }
        response.onClientGone = { [unowned self] in
            // The stateless era's cancel: the request ends at the backend too.
            guard !done, self.response === response else { return }
            end(reason: "the client closed the request's stream", abandon: true)
        }
        session.receive(body)
    }

    private func deliver(_ message: ByteBuffer, answering: RawValue?) {
        guard !done, let response else { return }
        let isAnswer = (answering?.text ?? front.responseID(message)) == requestID
        if streaming {
            var event = ByteBuffer(capacity: message.readableBytes + 24)
            event.append(string: "event: message\ndata: ")
            event.append(message)
            event.append(string: "\n\n")
            response.write(event)
            if !response.isWritable { session.output.messagesStalled = true }
            if isAnswer {
                response.finish()
                answered(message)
            }
            return
        }
        // JSON: only the answer is sent; what comes before it has no stream to go on.
        guard isAnswer else { return }
        var body = ByteBuffer(capacity: message.readableBytes + 1)
        body.append(message)
        body.appendByte(0x0A)
        response.send(status: 200, headers: front.jsonHeaders, body: body)
        answered(message)
    }

    /// After an answer: wait for the retry of an input-required result, else end.
    private func answered(_ message: ByteBuffer) {
        response = nil
        if let handle = StatelessExchange.inputRequiredHandle(message) {
            waitingUnder = handle
            front.statelessWaits[handle] = self
            let timer = retryTimer ?? LoopTimer(loop: front.gateway.loop)
            retryTimer = timer
            timer.start(timeout: front.gateway.config.gateway.requestTimeoutMs) { [unowned self] in
                end(reason: "the client did not retry the call with its input within the request deadline", abandon: true)
            }
            return
        }
        // After this turn: the session may still be inside the call that answered.
        front.gateway.loop.execute { [self] in end(reason: "answered", abandon: false) }
    }

    private func end(reason: String, abandon: Bool) {
        guard !done else { return }
        done = true
        if let handle = waitingUnder { front.statelessWaits[handle] = nil }
        retryTimer?.close()
        retryTimer = nil
        response = nil
        session.end(reason: reason, abandon: abandon)
    }

    /// The `requestState` of one of mcpd's input-required results, or nil.
    static func inputRequiredHandle(_ message: ByteBuffer) -> String? {
        let text = message.string
        guard text.contains("\"resultType\":\"input_required\""),
              let marker = text.firstRange(of: "\"requestState\":\"\(ClientSession.handlePrefix)") else { return nil }
        let start = text.index(marker.upperBound, offsetBy: -ClientSession.handlePrefix.count)
        guard let close = text[start...].firstIndex(of: "\"") else { return nil }
        return String(text[start..<close])
    }
}

extension StreamableHTTP {
    /// A POST of protocol 2026-07-28: the headers must agree with the body (`Mcp-Method`, and
    /// `Mcp-Name` for the methods that name something), else 400 with -32020.
    func statelessPost(_ request: HTTPRequest, _ response: HTTPResponse, view: CatalogView) {
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
        // A retry with the requestState of an input-required result goes to the session that
        // issued it (its backend is waiting there); anything else gets a session of its own.
        let exchange = retryTarget(body, scan, view) ?? StatelessExchange(front: self, view: view)
        exchange.serve(body, response: response, requestID: id, streaming: streaming)
    }

    /// The session waiting under the body's `params.requestState`, if any.
    private func retryTarget(_ body: ByteBuffer, _ scan: MessageScan, _ view: CatalogView) -> StatelessExchange? {
        guard !statelessWaits.isEmpty, let params = scan.params else { return nil }
        return body.withUnsafeReadableBytes { raw in
            guard let range = gateway.scanner.member("requestState", inObjectAt: params, of: raw),
                  let handle = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[range])) else { return nil }
            return statelessWaits[handle].flatMap { $0.session.view === view ? $0 : nil }
        }
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
