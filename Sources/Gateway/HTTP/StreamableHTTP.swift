import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// `/mcp`: MCP's Streamable HTTP transport, handshake era (protocol versions up to 2025-11-25).
///
/// `initialize` without a session id opens a session: a `ClientSession` like stdio's, whose
/// messages come from POST bodies and whose output is split into messages (`SessionOutput`).
/// Each answer goes back as the response of the POST that carried its request: JSON when the
/// client accepts it, else one Server-Sent Event. What the gateway sends on its own
/// (notifications, the backends' requests to the client) goes on the session's GET stream, or
/// waits, a bounded number, until the client opens one. The session id is 128 bits from
/// `getrandom`; DELETE ends the session; a session with nothing in flight and no stream expires
/// after `http.session_timeout`.
final class HTTPSession: SessionTransport {
    let id: String
    unowned let front: StreamableHTTP
    private(set) var session: ClientSession!
    /// POSTs waiting for answers, by the request id's JSON text.
    private var waiting: [String: PostExchange] = [:]
    /// The GET stream, while the client holds one open.
    private var stream: HTTPResponse?
    private var keepalive: LoopTimer?
    /// Messages for the GET stream sent before the client opened one.
    private var backlog: [ByteBuffer] = []
    private var backlogBytes = 0
    private var droppedMessages = 0
    var lastActivity: UInt64
    private(set) var ended = false

    static let maxBacklogMessages = 1000
    static let maxBacklogBytes = 4 << 20
    static let keepaliveMs: UInt64 = 15_000

    /// Who opened it (the bearer token's index, or nil without tokens): only they may use it.
    let principal: String?
    /// A session of the 2024-11-05 transport (`/sse` + `/messages`): every message, answers
    /// included, goes on its one event stream, and the session ends with the stream.
    let legacy: Bool

    init(id: String, front: StreamableHTTP, principal: String?, view: CatalogView, legacy: Bool = false) {
        self.id = id
        self.front = front
        self.principal = principal
        self.legacy = legacy
        lastActivity = front.gateway.loop.now
        let output = SessionOutput(deliver: { [unowned self] message, id in deliver(message, answering: id) })
        session = ClientSession(gateway: front.gateway, transport: self, output: output, label: "http:\(id.prefix(8))", view: view)
    }

    var isIdle: Bool { waiting.isEmpty && stream == nil }

    // MARK: SessionTransport

    func start(for session: ClientSession) {}
    func resumeReading(for session: ClientSession) {}
    func stopReading() {}

    func close(flushDeadlineMs: UInt64) {
        endStreams()
    }

    // MARK: Requests

    /// A POST's body: its requests wait for their answers, notifications and responses are
    /// accepted at once (202).
    func post(_ body: ByteBuffer, scan: MessageScan, requestIDs: [String], wantsJSON: Bool, response: HTTPResponse, headers: [(String, String)]) {
        lastActivity = front.gateway.loop.now
        guard !requestIDs.isEmpty else {
            session.receive(body)
            response.send(status: 202, headers: headers, body: "")
            return
        }
        for id in requestIDs where waiting[id] != nil {
            return response.send(status: 400, headers: front.jsonHeaders,
                                 body: "{\"error\":\"request id \(id.prefix(40)) is already in flight in this session\"}\n")
        }
        let exchange = PostExchange(response: response, ids: requestIDs, batch: scan.kind == .batch, json: wantsJSON, headers: headers)
        for id in requestIDs { waiting[id] = exchange }
        response.onClientGone = { [unowned self] in
            // Handshake era: a closed connection is not a cancel; the answer is dropped.
            for id in exchange.ids where waiting[id] === exchange { waiting[id] = nil }
        }
        // An error the session answers at once with a null id (a batch refused, say) is this
        // POST's answer.
        receiving = exchange
        session.receive(body, scanned: scan)
        receiving = nil
    }

    /// The POST whose body the session is reading now.
    private var receiving: PostExchange?

    /// Opens the GET stream (a second one replaces the first). `first`: an event sent before
    /// anything else (the legacy transport's `endpoint`).
    func openStream(_ response: HTTPResponse, headers: [(String, String)], first: String? = nil) {
        lastActivity = front.gateway.loop.now
        if let old = stream {
            stream = nil
            old.finish()
        }
        response.startStream(status: 200, headers: headers + StreamableHTTP.sseHeaders)
        if let first { response.write(string: first) }
        stream = response
        response.onClientGone = { [unowned self] in
            guard stream === response else { return }
            closeStream()
            if legacy { front.legacyStreamClosed(self) }
        }
        response.onWritable = { [unowned self] in
            session.output.messagesStalled = false
            front.gateway.clientOutputDrained()
        }
        if droppedMessages > 0 {
            front.gateway.log.warning("http session \(id.prefix(8)): \(droppedMessages) messages were dropped while no GET stream was open")
            droppedMessages = 0
        }
        let pending = backlog
        backlog.removeAll()
        backlogBytes = 0
        for message in pending { sendEvent(message, on: response) }
        let timer = keepalive ?? LoopTimer(loop: front.gateway.loop)
        keepalive = timer
        timer.start(timeout: HTTPSession.keepaliveMs, repeat: HTTPSession.keepaliveMs) { [unowned self] in
            stream?.write(string: ": keepalive\n\n")
        }
    }

    private func closeStream() {
        stream = nil
        keepalive?.stop()
        session.output.messagesStalled = false
        lastActivity = front.gateway.loop.now
    }

    /// Ends the session (DELETE, expiry, shutdown).
    func end(reason: String) {
        guard !ended else { return }
        ended = true
        session.end(reason: reason)
        endStreams()
    }

    private func endStreams() {
        keepalive?.close()
        keepalive = nil
        if let stream {
            self.stream = nil
            stream.finish()
        }
        for exchange in waiting.values {
            exchange.response.send(status: 404, headers: front.jsonHeaders, body: "{\"error\":\"the session ended\"}\n")
        }
        waiting.removeAll()
        backlog.removeAll()
        backlogBytes = 0
    }

    // MARK: Output

    /// A message POSTed to a legacy session's `/messages`: answered on its stream.
    func postLegacy(_ body: ByteBuffer, response: HTTPResponse) {
        lastActivity = front.gateway.loop.now
        response.send(status: 202, headers: [("Content-Type", "text/plain")], body: "Accepted")
        session.receive(body)
    }

    /// One message from the session: an answer to its POST, or something for the GET stream.
    private func deliver(_ message: ByteBuffer, answering: RawValue?) {
        lastActivity = front.gateway.loop.now
        if !legacy, let id = answering?.text ?? front.responseID(message) {
            if let exchange = waiting[id] {
                waiting[id] = nil
                // An idle session holds no table storage.
                if waiting.isEmpty { waiting = [:] }
                exchange.add(message, id: id)
                return
            }
            if id == "null", let exchange = receiving {
                for id in exchange.ids where waiting[id] === exchange { waiting[id] = nil }
                exchange.finish(with: message)
                return
            }
        }
        if let stream {
            sendEvent(message, on: stream)
            if !stream.isWritable { session.output.messagesStalled = true }
            return
        }
        guard backlog.count < HTTPSession.maxBacklogMessages, backlogBytes + message.readableBytes <= HTTPSession.maxBacklogBytes else {
            droppedMessages += 1
            return
        }
        var copy = ByteBuffer(capacity: message.readableBytes)
        copy.append(message)
        backlog.append(copy)
        backlogBytes += copy.readableBytes
    }

    private func sendEvent(_ message: ByteBuffer, on stream: HTTPResponse) {
        var event = ByteBuffer(capacity: message.readableBytes + 24)
        event.append(string: "event: message\ndata: ")
        event.append(message)
        event.append(string: "\n\n")
        stream.write(event)
    }

}

/// One POST waiting for the answers to the requests it carried.
final class PostExchange {
    let response: HTTPResponse
    let ids: [String]
    let batch: Bool
    let json: Bool
    private var headers: [(String, String)]
    private var answers: [ByteBuffer] = []

    init(response: HTTPResponse, ids: [String], batch: Bool, json: Bool, headers: [(String, String)]) {
        self.response = response
        self.ids = ids
        self.batch = batch
        self.json = json
        self.headers = headers
    }

    /// An answer; once every request has one, the response goes.
    func add(_ message: ByteBuffer, id: String) {
        // A batch's answers come back as one JSON array from the session.
        if batch || answers.count + 1 >= ids.count {
            answers.append(message)
            send()
        } else {
            answers.append(message)
        }
    }

    /// Answers with `message` alone (an error for the whole body).
    func finish(with message: ByteBuffer) {
        answers = [message]
        send()
    }

    private func send() {
        guard !response.isFinished else { return }
        if json && answers.count == 1 {
            // The usual answer: sent from where it is.
            headers.append(("Content-Type", "application/json"))
            return response.send(status: 200, headers: headers, body: answers[0])
        }
        var body = ByteBuffer(capacity: answers.reduce(2) { $0 + $1.readableBytes + 1 })
        for answer in answers { body.append(answer) }
        if json {
            body.appendByte(0x0A)
            headers.append(("Content-Type", "application/json"))
            response.send(status: 200, headers: headers, body: body)
        } else {
            var event = ByteBuffer(capacity: body.readableBytes + 24)
            event.append(string: "event: message\ndata: ")
            event.append(body)
            event.append(string: "\n\n")
            response.startStream(status: 200, headers: headers + StreamableHTTP.sseHeaders)
            response.write(event)
            response.finish()
        }
    }
}

/// The `/mcp` endpoint: sessions by id, and the checks every request passes.
final class StreamableHTTP {
    unowned let gateway: Gateway
    private var sessions: [String: HTTPSession] = [:]
    /// Stateless sessions waiting for the retry of an input-required result, by its handle.
    var statelessWaits: [String: StatelessExchange] = [:]
    private var expiryTimer: LoopTimer?
    let jsonHeaders = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    static let sseHeaders = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")]

    init(gateway: Gateway) {
        self.gateway = gateway
    }

    var sessionCount: Int { sessions.values.lazy.filter { !$0.legacy }.count }
    var legacySessionCount: Int { sessions.values.lazy.filter(\.legacy).count }

    // MARK: The 2024-11-05 transport

    /// `GET /sse`: a session whose every message goes on this stream; its first event names
    /// where the client POSTs (`/messages?session_id=...`).
    func openLegacy(_ request: HTTPRequest, _ response: HTTPResponse, principal: String?, view: CatalogView) {
        guard request.method == "GET" else {
            return response.send(status: 405, headers: jsonHeaders + [("Allow", "GET")], body: "{\"error\":\"open the event stream with GET\"}\n")
        }
        guard accepts(request).sse else { return error(response, 406, "the event stream needs Accept: text/event-stream") }
        let session = HTTPSession(id: StreamableHTTP.newSessionID(), front: self, principal: principal, view: view, legacy: true)
        sessions[session.id] = session
        gateway.addSession(session.session)
        startExpiry()
        gateway.log.info("sse session \(session.id.prefix(8)) opened")
        session.openStream(response, headers: [], first: "event: endpoint\ndata: /messages?session_id=\(session.id)\n\n")
    }

    /// `POST /messages?session_id=...`: one message (or batch) for a legacy session; 202, and
    /// the answer goes on the session's stream.
    func legacyMessage(_ request: HTTPRequest, _ response: HTTPResponse, principal: String?) {
        guard request.method == "POST" else {
            return response.send(status: 405, headers: jsonHeaders + [("Allow", "POST")], body: "{\"error\":\"POST messages here\"}\n")
        }
        var id: String?
        for pair in request.query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 && (parts[0] == "session_id" || parts[0] == "sessionId") { id = String(parts[1]) }
        }
        guard let id else { return error(response, 400, "session_id is required (the endpoint the event stream named)") }
        guard let session = sessions[id], session.legacy, !session.ended, session.principal == principal else {
            return error(response, 404, "unknown or ended session; open a new one with GET /sse")
        }
        if request.header("content-type") != nil && !request.header("content-type", hasPrefix: "application/json") {
            return error(response, 415, "Content-Type must be application/json")
        }
        let body = trimmed(request.body)
        guard (try? gateway.scanner.scan(body)) != nil else {
            return response.send(status: 400, headers: jsonHeaders,
                                 body: "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":\(ErrorCode.parseError),\"message\":\"Parse error: the body is not one JSON-RPC message\"}}\n")
        }
        session.postLegacy(body, response: response)
    }

    /// A legacy session ends with its stream.
    func legacyStreamClosed(_ session: HTTPSession) {
        guard sessions[session.id] === session else { return }
        sessions[session.id] = nil
        session.end(reason: "the client closed its event stream")
        gateway.log.info("sse session \(session.id.prefix(8)) ended: its stream closed")
    }

    /// A request to `/mcp` (`view` the gateway's) or `/mcp/<server>` (that server's view).
    func handle(_ request: HTTPRequest, _ response: HTTPResponse, principal: String?, view: CatalogView) {
        let version = request.header("mcp-protocol-version")
        if version == ProtocolVersion.stateless {
            // The stateless era: POST only, no session.
            guard request.method == "POST" else {
                return response.send(status: 405, headers: jsonHeaders + [("Allow", "POST")],
                                     body: "{\"error\":\"protocol \(ProtocolVersion.stateless) has no GET or DELETE: every request is a POST\"}\n")
            }
            return statelessPost(request, response, view: view)
        }
        if let version, !ProtocolVersion.supported.contains(version) {
            return error(response, 400, "unsupported MCP-Protocol-Version \"\(version.prefix(40))\" (supported: \(ProtocolVersion.supported.joined(separator: ", ")))")
        }
        switch request.method {
        case "POST": post(request, response, principal, view)
        case "GET": get(request, response, principal, view)
        case "DELETE": delete(request, response, principal, view)
        default:
            response.send(status: 405, headers: jsonHeaders + [("Allow", "GET, POST, DELETE")], body: "{\"error\":\"use POST, GET or DELETE\"}\n")
        }
    }

    func error(_ response: HTTPResponse, _ status: Int, _ message: String) {
        response.send(status: status, headers: jsonHeaders, body: "{\"error\":\(JSONValue.string(message).jsonText)}\n")
    }

    /// What the client accepts: JSON, an event stream, or both (`*/*` and no header mean both).
    func accepts(_ request: HTTPRequest) -> (json: Bool, sse: Bool) {
        request.withHeader("accept") { value in
            guard let value else { return (true, true) }
            let any = asciiContains(value, "*/*")
            return (any || asciiContains(value, "application/json") || asciiContains(value, "application/*"),
                    any || asciiContains(value, "text/event-stream") || asciiContains(value, "text/*"))
        }
    }

    /// The session of the request's `Mcp-Session-Id`, if it exists, belongs to `principal` (a
    /// session used with another token is unknown to it) and was opened at this endpoint.
    private func session(_ request: HTTPRequest, _ principal: String?, _ view: CatalogView) -> HTTPSession? {
        guard let id = request.header("mcp-session-id"), let found = sessions[id], !found.ended, found.principal == principal,
              found.session.view.server == view.server, !found.legacy
        else { return nil }
        if found.session.view !== view {
            // A reload gave its token another role: the session ends, and the client starts
            // one with the role it has now.
            sessions[id] = nil
            found.end(reason: "its role changed with a reload")
            gateway.log.info("http session \(id.prefix(8)) ended: a reload changed its role from \(found.session.view.role ?? "none") to \(view.role ?? "none"); the client must initialize again")
            return nil
        }
        return found
    }

    /// What every POST to `/mcp` passes: an Accept it can be answered in (406), a JSON body
    /// (415), one JSON-RPC message or batch (400 with -32700). Nil once the error is sent.
    func readMessage(_ request: HTTPRequest, _ response: HTTPResponse) -> (body: ByteBuffer, scan: MessageScan, json: Bool, sse: Bool)? {
        let (json, sse) = accepts(request)
        guard json || sse else {
            error(response, 406, "Accept must include application/json or text/event-stream")
            return nil
        }
        if request.header("content-type") != nil && !request.header("content-type", hasPrefix: "application/json") {
            error(response, 415, "Content-Type must be application/json")
            return nil
        }
        let body = trimmed(request.body)
        do {
            return (body, try gateway.scanner.scan(body), json, sse)
        } catch {
            rpcError(response, 400, id: "null", code: ErrorCode.parseError, "Parse error: \(error)")
            return nil
        }
    }

    private func post(_ request: HTTPRequest, _ response: HTTPResponse, _ principal: String?, _ view: CatalogView) {
        guard let (body, scan, json, _) = readMessage(request, response) else { return }
        let ids = requestIDs(body, scan)
        let isInitialize = scan.kind == .request && body.withUnsafeReadableBytes { rangeEquals($0, scan.method!, "\"initialize\"") }
        var session: HTTPSession
        var headers: [(String, String)] = []
        headers.reserveCapacity(2)  // and Content-Type, when answered
        if request.hasHeader("mcp-session-id") {
            guard let found = self.session(request, principal, view) else { return error(response, 404, "unknown or expired session; initialize a new one") }
            session = found
        } else {
            guard isInitialize else { return error(response, 400, "Mcp-Session-Id is required (initialize first)") }
            session = HTTPSession(id: StreamableHTTP.newSessionID(), front: self, principal: principal, view: view)
            sessions[session.id] = session
            gateway.addSession(session.session)
            startExpiry()
            gateway.log.info("http session \(session.id.prefix(8)) opened")
        }
        headers.append(("Mcp-Session-Id", session.id))
        session.post(body, scan: scan, requestIDs: ids, wantsJSON: json, response: response, headers: headers)
    }

    /// A body without the white space after its message.
    func trimmed(_ body: ByteBuffer) -> ByteBuffer {
        var end = body.readableBytes
        while end > 0, [0x20, 0x09, 0x0A, 0x0D].contains(body[end - 1]) { end -= 1 }
        return body.slice(0..<end)
    }

    /// The id of a response (or of a batch's first response), as JSON text.
    func responseID(_ message: ByteBuffer) -> String? {
        guard let scan = try? gateway.scanner.scan(message) else { return nil }
        if scan.kind == .batch {
            guard let first = (try? gateway.scanner.batchElements(message))?.first,
                  let element = try? gateway.scanner.scan(message.slice(first)), element.kind == .response, let range = element.id
            else { return nil }
            return String(decoding: message.slice(first).slice(range).readablePointer, as: UTF8.self)
        }
        guard scan.kind == .response, let range = scan.id else { return nil }
        return String(decoding: message.slice(range).readablePointer, as: UTF8.self)
    }

    /// The ids of the requests a body carries, as JSON text.
    private func requestIDs(_ body: ByteBuffer, _ scan: MessageScan) -> [String] {
        func text(_ buffer: ByteBuffer, _ range: Range<Int>) -> String { String(decoding: buffer.slice(range).readablePointer, as: UTF8.self) }
        switch scan.kind {
        case .request: return scan.id.map { [text(body, $0)] } ?? []
        case .batch:
            let elements = (try? gateway.scanner.batchElements(body)) ?? []
            // A batch is answered as one array: it waits under its first request's id.
            for range in elements {
                let element = body.slice(range)
                if let inner = try? gateway.scanner.scan(element), inner.kind == .request, let id = inner.id { return [text(element, id)] }
            }
            return []
        default: return []
        }
    }

    private func get(_ request: HTTPRequest, _ response: HTTPResponse, _ principal: String?, _ view: CatalogView) {
        guard accepts(request).sse else { return error(response, 406, "a GET stream needs Accept: text/event-stream") }
        guard let id = request.header("mcp-session-id") else { return error(response, 400, "Mcp-Session-Id is required") }
        guard let session = session(request, principal, view) else { return error(response, 404, "unknown or expired session") }
        session.openStream(response, headers: [("Mcp-Session-Id", id)])
    }

    private func delete(_ request: HTTPRequest, _ response: HTTPResponse, _ principal: String?, _ view: CatalogView) {
        guard let id = request.header("mcp-session-id") else { return error(response, 400, "Mcp-Session-Id is required") }
        guard let session = session(request, principal, view) else { return error(response, 404, "unknown or expired session") }
        sessions[id] = nil
        session.end(reason: "the client ended the session")
        gateway.log.info("http session \(id.prefix(8)) ended by its client")
        response.send(status: 204, headers: [], body: "")
    }

    /// Every minute, sessions idle past `http.session_timeout` end.
    private func startExpiry() {
        guard expiryTimer == nil else { return }
        let timer = LoopTimer(loop: gateway.loop, unreferenced: true)
        expiryTimer = timer
        let interval = min(60_000, max(1_000, gateway.config.gateway.http.sessionTimeoutMs / 4))
        timer.start(timeout: interval, repeat: interval) { [unowned self] in expire() }
    }

    private func expire() {
        let now = gateway.loop.now
        let timeout = gateway.config.gateway.http.sessionTimeoutMs
        for (id, session) in sessions where session.isIdle && now - session.lastActivity >= timeout {
            sessions[id] = nil
            session.end(reason: "the session expired")
            gateway.log.info("http session \(id.prefix(8)) expired after \(formatSeconds(timeout)) without use")
        }
    }

    /// Ends every session (shutdown).
    func endAll() {
        expiryTimer?.close()
        expiryTimer = nil
        for waiting in Array(statelessWaits.values) { waiting.close(flushDeadlineMs: 0) }
        for session in sessions.values { session.end(reason: "mcpd is shutting down") }
        sessions.removeAll()
    }

    /// 128 random bits from the kernel's CSPRNG, in hex.
    static func newSessionID() -> String {
        secureRandomBytes(16).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
