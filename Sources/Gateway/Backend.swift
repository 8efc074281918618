import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One configured MCP server and its process.
///
///     configured -> starting -> initializing -> ready -> stopping -> stopped
///                      |             |            |
///                      +-------------+------------+-> (exit) -> backoff -> starting ...
///                                                            \-> failed (circuit open)
///
/// A backend owns its process, its table of pending requests (keyed by the ids mcpd issued,
/// unique per backend) and its cached catalog. When the process exits every pending request
/// fails at once with an error naming the backend and the exit status.
public final class Backend {
    /// Where the backend is in its life.
    public enum State: String, Sendable {
        case configured, starting, initializing, ready, backoff, stopping, stopped, failed
    }

    /// Position in the gateway's list (stable for the gateway's life).
    public let index: Int
    public let config: ServerConfig
    public var name: String { config.name }
    unowned(unsafe) let gateway: Gateway
    let loop: EventLoop
    let log: Logger

    public private(set) var state: State = .configured
    /// Why the backend last failed or exited.
    public private(set) var lastError: String?
    /// The backend's tools as it listed them.
    public private(set) var tools: [JSONObject] = []
    public private(set) var serverInfo: JSONValue = .null
    public private(set) var capabilities: JSONValue = .null
    public private(set) var protocolVersion: String?
    public private(set) var restarts = 0
    /// True once the first start attempt settled (ready or failed).
    public private(set) var hasSettledOnce = false

    private var process: ChildProcess?
    private var framer: LineFramer
    private var stderrFramer = LineFramer(maxLineLength: 64 << 10)
    private var discardingStderrLine = false
    let pending = PendingTable()
    private var exitStatus: ExitStatus?
    private var stdoutEnded = false
    private var exitGraceTimer: LoopTimer?
    private var restartTimer: LoopTimer?
    private var crashTimes: [UInt64] = []
    private var startedAt: UInt64 = 0
    private var readyAt: UInt64 = 0
    private var stopCompletions: [() -> Void] = []
    private var stderrWindowStart: UInt64 = 0
    private var stderrLinesInWindow = 0
    private var stderrSuppressed = 0

    /// The request deadline in milliseconds.
    let timeoutMs: UInt64
    /// The most requests in flight to one backend.
    static let maxPending = 65_536
    /// stderr lines logged per second before the rest are counted and dropped.
    static let stderrLinesPerSecond = 200
    /// Crashes within `crashWindowMs` that open the circuit.
    static let maxCrashes = 5
    static let crashWindowMs: UInt64 = 60_000

    init(index: Int, config: ServerConfig, gateway: Gateway) {
        self.index = index
        self.config = config
        self.gateway = gateway
        self.loop = gateway.loop
        self.log = gateway.log
        self.timeoutMs = config.timeoutMs ?? gateway.config.gateway.requestTimeoutMs
        self.framer = LineFramer(maxLineLength: gateway.config.gateway.maxMessageSize)
    }

    /// The process id while running.
    public var pid: Int32? { process?.pid }

    /// The command line, for logs and tables.
    public var commandLine: String { ([config.command ?? ""] + config.args).joined(separator: " ") }

    // MARK: Starting

    /// Spawns the process and begins the MCP handshake.
    func start() {
        guard state == .configured || state == .backoff || state == .stopped else { return }
        guard let command = config.command else { return }
        restartTimer?.close()
        restartTimer = nil
        state = .starting
        exitStatus = nil
        stdoutEnded = false
        framer = LineFramer(maxLineLength: gateway.config.gateway.maxMessageSize)
        stderrFramer = LineFramer(maxLineLength: 64 << 10)
        startedAt = loop.now
        var environment = gateway.backendEnvironment
        for (key, value) in config.env {
            environment.removeAll { $0.hasPrefix(key + "=") }
            environment.append("\(key)=\(value)")
        }
        let options = SpawnOptions(executable: command, arguments: config.args, environment: environment,
                                   workingDirectory: config.cwd)
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(loop: loop, options: options)
        } catch {
            let hint: String
            switch error.code {
            case UVError.noent.code: hint = "command \"\(command)\" not found (check servers.\(name).command and PATH)"
            case -EACCES: hint = "command \"\(command)\" is not executable"
            default: hint = "\(error)"
            }
            if error.code == UVError.noent.code, let cwd = config.cwd, access(cwd, F_OK) != 0 {
                fail("could not start: working directory \"\(cwd)\" does not exist")
            } else {
                fail("could not start: \(hint)")
            }
            return
        }
        process = child
        log.info("backend \"\(name)\" started (pid \(child.pid)): \(commandLine)")
        child.onExit = { [unowned self] status in processExited(status) }
        child.stdout.onRead = { [unowned(unsafe) self] buffer in readFrames(&buffer) }
        child.stdout.onReadEnd = { [unowned self] error in stdoutDidEnd(error) }
        child.stderr.onRead = { [unowned self] buffer in readStderr(&buffer) }
        child.stderr.onReadEnd = { _ in }
        child.stdin.onWriteError = { [unowned self] error in
            log.warning("backend \"\(name)\" stopped reading its stdin (\(error)); its requests will fail")
        }
        child.stdout.startReading()
        child.stderr.startReading()
        sendInitialize()
    }

    private func sendInitialize() {
        state = .initializing
        let params: JSONValue = [
            "protocolVersion": .string(ProtocolVersion.latest),
            "capabilities": .object(JSONObject()),
            "clientInfo": ["name": "mcpd", "version": .string(GatewayVersion.string)],
        ]
        request("initialize", params: params) { [unowned self] result in
            guard state == .initializing else { return }
            switch result {
            case .failure(let failure):
                failStart("initialize failed: \(failure.message)")
            case .success(let reply):
                guard let result = reply.result?.objectValue else {
                    failStart("initialize was refused: \(reply.errorMessage ?? "no result")")
                    return
                }
                protocolVersion = result["protocolVersion"]?.stringValue
                capabilities = result["capabilities"] ?? .null
                serverInfo = result["serverInfo"] ?? .null
                notify("notifications/initialized")
                if capabilities["tools"] != nil {
                    fetchTools(cursor: nil, collected: []) { [unowned self] tools in becomeReady(tools: tools) }
                } else {
                    becomeReady(tools: [])
                }
            }
        }
    }

    /// Pages through `tools/list` (at most 1,000 pages and 10,000 tools).
    private func fetchTools(cursor: JSONValue?, collected: [JSONObject], page: Int = 0, _ done: @escaping ([JSONObject]) -> Void) {
        var params = JSONObject()
        if let cursor { params["cursor"] = cursor }
        request("tools/list", params: .object(params)) { [unowned self] result in
            guard state == .initializing || state == .ready else { return }
            switch result {
            case .failure(let failure):
                log.warning("backend \"\(name)\": tools/list failed: \(failure.message); serving no tools from it")
                done(collected)
            case .success(let reply):
                guard let result = reply.result else {
                    log.warning("backend \"\(name)\": tools/list returned an error: \(reply.errorMessage ?? "?"); serving no tools from it")
                    done(collected)
                    return
                }
                var tools = collected
                for tool in result["tools"]?.arrayValue ?? [] {
                    guard let object = tool.objectValue, let toolName = object["name"]?.stringValue, !toolName.isEmpty else {
                        log.warning("backend \"\(name)\": skipping a tool without a name: \(tool.jsonText.prefix(200))")
                        continue
                    }
                    if tools.contains(where: { $0["name"]?.stringValue == toolName }) {
                        log.warning("backend \"\(name)\" lists tool \"\(toolName)\" twice; keeping the first")
                        continue
                    }
                    tools.append(object)
                }
                if let next = result["nextCursor"], next != .null, page < 1000, tools.count < 10_000 {
                    fetchTools(cursor: next, collected: tools, page: page + 1, done)
                } else {
                    done(tools)
                }
            }
        }
    }

    private func becomeReady(tools: [JSONObject]) {
        let wasReady = hasSettledOnce
        self.tools = tools
        state = .ready
        readyAt = loop.now
        lastError = nil
        hasSettledOnce = true
        let info = serverInfo["name"]?.stringValue.map { " (\($0) \(serverInfo["version"]?.stringValue ?? ""))" } ?? ""
        log.info("backend \"\(name)\" ready in \(loop.now - startedAt) ms: \(tools.count) tools, protocol \(protocolVersion ?? "?")\(info)")
        gateway.backendDidChange(self, toolsChanged: true, firstSettle: !wasReady)
    }

    private func failStart(_ reason: String) {
        log.error("backend \"\(name)\" \(reason)")
        lastError = reason
        // The exit that follows decides between backoff and failure.
        process?.stop(closeGrace: 500, termGrace: 1000)
    }

    private func fail(_ reason: String) {
        log.error("backend \"\(name)\" \(reason)")
        lastError = reason
        state = .failed
        let first = !hasSettledOnce
        hasSettledOnce = true
        gateway.backendDidChange(self, toolsChanged: false, firstSettle: first)
    }

    // MARK: Requests

    /// Sends one of mcpd's own requests.
    private func request(_ method: StaticString, params: JSONValue, _ completion: @escaping (Result<BackendReply, BackendFailure>) -> Void) {
        guard let process else {
            completion(.failure(BackendFailure(code: ErrorCode.internalError, message: "backend \"\(name)\" is not running")))
            return
        }
        let id = pending.insert(PendingRequest(origin: .gateway(completion), method: method, route: nil, deadline: loop.now + timeoutMs))
        var message = ByteBuffer(capacity: 256)
        message.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
        message.append(decimal: id)
        message.append(string: ",\"method\":\"\(method)\",\"params\":")
        params.write(to: &message)
        message.append(string: "}\n")
        process.stdin.write(message)
    }

    private func notify(_ method: String, params: JSONValue? = nil) {
        guard let process else { return }
        var message = ByteBuffer(capacity: 128)
        message.append(string: "{\"jsonrpc\":\"2.0\",\"method\":")
        writeJSONString(method, to: &message)
        if let params {
            message.append(string: ",\"params\":")
            params.write(to: &message)
        }
        message.append(string: "}\n")
        process.stdin.write(message)
    }

    /// Why a forwarded request could not be sent.
    func unavailableReason() -> String? {
        // A compare rather than the switch's jump table, whose indirect branch is mispredicted
        // after every context switch.
        if state == .ready { return nil }
        switch state {
        case .ready: return nil
        case .configured, .starting, .initializing: return "backend \"\(name)\" is still starting"
        case .backoff:
            return "backend \"\(name)\" is restarting after it \(lastError ?? "exited"); try again shortly"
        case .failed: return "backend \"\(name)\" is unavailable: \(lastError ?? "it failed")"
        case .stopping, .stopped: return "backend \"\(name)\" is stopped"
        }
    }

    /// Forwards a client's request, rewriting its id (and progress token) to mcpd's and the
    /// tool name to the backend's own. The frame is not re-serialised: it is written as slices
    /// around the replaced values. Returns an error to send the client instead.
    func forward(_ frame: ByteBuffer, scan: MessageScan, method: StaticString, route: ToolRoute?, session: ClientSession,
                 batch: BatchCollector?) -> BackendFailure?
    {
        if let reason = unavailableReason() { return BackendFailure(code: ErrorCode.internalError, message: reason) }
        guard let process, let idRange = scan.id else {
            return BackendFailure(code: ErrorCode.internalError, message: "backend \"\(name)\" is not running")
        }
        guard process.stdin.isWritable else {
            return BackendFailure(code: ErrorCode.internalError,
                                  message: "backend \"\(name)\" is overloaded: \(process.stdin.queuedBytes) bytes are waiting for it to read its input")
        }
        guard pending.count < Backend.maxPending else {
            return BackendFailure(code: ErrorCode.internalError, message: "backend \"\(name)\" has \(pending.count) requests in flight; try again later")
        }
        let clientID = RawValue(frame, idRange)
        let token = scan.metaProgressToken.map { RawValue(frame, $0) }
        let gatewayID = pending.insert(PendingRequest(origin: .client(session, id: clientID, progressToken: token, batch: batch),
                                                      method: method, route: route, deadline: loop.now + timeoutMs))
        var splice = Splice()
        splice.replace(idRange, decimal: gatewayID)
        if let route, let nameRange = scan.paramsName { splice.replace(nameRange, bytes: route.originalNameLiteral) }
        if let tokenRange = scan.metaProgressToken { splice.replace(tokenRange, decimal: gatewayID) }
        splice.write(frame, to: process.stdin)
        return nil
    }

    /// Forwards a client's `notifications/cancelled` for the request mcpd sent as `gatewayID`.
    /// Returns the batch the cancelled request belonged to, if any.
    func forwardCancel(_ frame: ByteBuffer, requestIDRange: Range<Int>, gatewayID: Int) -> BatchCollector? {
        let entry = pending.remove(gatewayID)
        if let process {
            var splice = Splice()
            splice.replace(requestIDRange, decimal: gatewayID)
            splice.write(frame, to: process.stdin)
        }
        if case .client(_, _, _, let batch)? = entry?.origin { return batch }
        return nil
    }

    /// Cancels mcpd's request `gatewayID` on the backend with a reason.
    private func sendCancel(gatewayID: Int, reason: String) {
        notify("notifications/cancelled", params: ["requestId": .int(gatewayID), "reason": .string(reason)])
    }

    /// The gateway id of the pending request that `session` sent with `clientID`.
    func pendingID(session: ClientSession, clientID: UnsafeRawBufferPointer, range: Range<Int>) -> Int? {
        pending.firstID { entry in
            if case .client(let owner, let id, _, _) = entry.origin, owner === session, id.equals(clientID, range) { return true }
            return false
        }
    }

    /// Cancels every pending request of a session that is going away; with `message`, the
    /// client is also answered with that error (it may still be reading).
    func forgetSession(_ session: ClientSession, message: String?) {
        let owned = pending.sortedIDs { entry in
            if case .client(let owner, _, _, _) = entry.origin { return owner === session }
            return false
        }
        for gatewayID in owned {
            guard let entry = pending.remove(gatewayID) else { continue }
            sendCancel(gatewayID: gatewayID, reason: message ?? "the client disconnected")
            if let message { complete(entry, with: BackendFailure(code: ErrorCode.internalError, message: message)) }
        }
    }

    /// Fails requests whose deadline passed; called by the gateway's sweep timer.
    func expireRequests(now: UInt64) {
        guard !pending.isEmpty else { return }
        let expired = pending.sortedIDs { $0.deadline <= now }
        for gatewayID in expired {
            guard let entry = pending.remove(gatewayID) else { continue }
            let seconds = formatSeconds(timeoutMs)
            let what = entry.detail.map { "\(entry.method) \"\($0)\"" } ?? "\(entry.method)"
            let message = "backend \"\(name)\" did not answer \(what) within \(seconds); raise servers.\(name).timeout if it needs longer"
            log.warning(message)
            sendCancel(gatewayID: gatewayID, reason: "mcpd: request timed out after \(seconds)")
            complete(entry, with: BackendFailure(code: ErrorCode.requestTimeout, message: message))
        }
    }

    private func complete(_ entry: PendingRequest, with failure: BackendFailure) {
        switch entry.origin {
        case .client(let session, let id, _, let batch):
            session.requestFailed(id: id, code: failure.code, message: failure.message, batch: batch)
        case .gateway(let callback):
            callback(.failure(failure))
        }
    }

    private func failAllPending(_ message: String) {
        for entry in pending.removeAll() {
            let what = entry.detail.map { "\(entry.method) \"\($0)\"" } ?? "\(entry.method)"
            complete(entry, with: BackendFailure(code: ErrorCode.internalError, message: "\(message) while handling \(what)"))
        }
    }

    // MARK: Reading

    private func readFrames(_ buffer: inout ByteBuffer) {
        while process != nil {
            let next = framer.next(&buffer)
            // The common case first, by a compare: a switch here is a jump table, whose
            // indirect branch is mispredicted after every context switch.
            if case .line(let frame) = next {
                if !frame.isEmpty { handleFrame(frame) }
                continue
            }
            switch next {
            case .needMore:
                return
            case .tooLong, .skippedLongLine:
                log.error("backend \"\(name)\" sent a line longer than \(framer.maxLineLength) bytes; stopping it (raise gateway.max_message_size if that is legitimate)")
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                failAllPending("backend \"\(name)\" sent an oversized message")
                process?.stdout.close()
                process?.signalGroup(SIGKILL)
                return
            case .line(let frame):
                if frame.isEmpty { continue }
                handleFrame(frame)
            }
        }
    }

    private func handleFrame(_ frame: ByteBuffer) {
        var scan = MessageScan()
        do {
            try gateway.scanner.scan(frame, into: &scan)
        } catch {
            log.warning("backend \"\(name)\" wrote a line that is not a JSON-RPC message (\(error)); dropped: \(frame.string.prefix(200))")
            return
        }
        frame.withUnsafeReadableBytes { raw in
            // Compares, not a jump table (see `unavailableReason`).
            if scan.kind == .response {
                handleResponse(frame, raw, scan)
            } else if scan.kind == .notification {
                handleNotification(frame, raw, scan)
            } else if scan.kind == .request {
                handleRequest(frame, raw, scan)
            } else {
                log.warning("backend \"\(name)\" sent a batch; mcpd does not accept batches from backends")
            }
        }
    }

    private func handleResponse(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        guard let idRange = scan.id, let gatewayID = parseGatewayInteger(raw, idRange),
              let entry = pending.remove(gatewayID)
        else {
            log.debug("backend \"\(name)\" answered an unknown or cancelled request: \(frame.string.prefix(200))")
            return
        }
        switch entry.origin {
        case .client(let session, let id, _, let batch):
            session.requestSucceeded(frame, replacing: idRange, with: id, batch: batch)
        case .gateway(let callback):
            callback(.success(BackendReply(frame: frame, scan: scan)))
        }
    }

    private func handleNotification(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let method = scan.method!
        if rangeEquals(raw, method, "\"notifications/progress\"") {
            guard let tokenRange = scan.paramsProgressToken, let gatewayID = parseGatewayInteger(raw, tokenRange),
                  let entry = pending[gatewayID], case .client(let session, _, let token?, _) = entry.origin
            else { return }
            session.relayNotification(frame, replacing: tokenRange, with: token)
        } else if rangeEquals(raw, method, "\"notifications/tools/list_changed\"") {
            guard state == .ready else { return }
            fetchTools(cursor: nil, collected: []) { [unowned self] tools in
                guard state == .ready else { return }
                self.tools = tools
                log.info("backend \"\(name)\" changed its tools: now \(tools.count)")
                gateway.backendDidChange(self, toolsChanged: true, firstSettle: false)
            }
        } else if rangeEquals(raw, method, "\"notifications/message\"") {
            if log.enabled(.debug), let params = scan.params {
                log.debug("[\(name)] \(frame.slice(params).string.prefix(1000))")
            }
        } else {
            log.debug("backend \"\(name)\" notification ignored: \(frame.string.prefix(200))")
        }
    }

    private func handleRequest(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        guard let process, let idRange = scan.id else { return }
        var reply = ByteBuffer(capacity: 160)
        reply.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
        frame.withUnsafeReadableBytes { reply.append(UnsafeRawBufferPointer(rebasing: $0[idRange])) }
        if rangeEquals(raw, scan.method!, "\"ping\"") {
            reply.append(string: ",\"result\":{}}\n")
        } else if rangeEquals(raw, scan.method!, "\"roots/list\"") {
            reply.append(string: ",\"result\":{\"roots\":[]}}\n")
        } else {
            let method = frame.slice(scan.method!).string
            log.debug("backend \"\(name)\" asked \(method), which mcpd does not relay yet")
            reply.append(string: ",\"error\":{\"code\":-32601,\"message\":")
            writeJSONString("mcpd does not relay \(method) from backends yet", to: &reply)
            reply.append(string: "}}\n")
        }
        process.stdin.write(reply)
    }

    private func readStderr(_ buffer: inout ByteBuffer) {
        while true {
            switch stderrFramer.next(&buffer) {
            case .needMore:
                return
            case .skippedLongLine(let length):
                if !discardingStderrLine { logStderr("(a stderr line of \(length) bytes was dropped)") }
                discardingStderrLine = false
            case .tooLong:
                if !discardingStderrLine {
                    logStderr(String(decoding: buffer.readablePointer.prefix(4096), as: UTF8.self) + " ... (line truncated)")
                }
                discardingStderrLine = true
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                stderrFramer.reset()
                return
            case .line(let line):
                if discardingStderrLine {
                    discardingStderrLine = false
                    continue
                }
                logStderr(String(decoding: line.readablePointer.prefix(4096), as: UTF8.self))
            }
        }
    }

    /// Logs one stderr line as `[name] line`, at most `stderrLinesPerSecond` a second.
    private func logStderr(_ line: String) {
        let now = loop.now
        if now - stderrWindowStart >= 1000 {
            if stderrSuppressed > 0 {
                log.writeLine("[\(name)] (\(stderrSuppressed) stderr lines dropped: over \(Backend.stderrLinesPerSecond)/s)")
            }
            stderrWindowStart = now
            stderrLinesInWindow = 0
            stderrSuppressed = 0
        }
        stderrLinesInWindow += 1
        if stderrLinesInWindow > Backend.stderrLinesPerSecond {
            stderrSuppressed += 1
            return
        }
        if log.enabled(.info) || state != .ready { log.writeLine("[\(name)] \(line)") }
    }

    // MARK: Exit

    private func stdoutDidEnd(_ error: UVError) {
        stdoutEnded = true
        if exitStatus != nil {
            finishExit()
        } else if state != .stopping {
            log.warning("backend \"\(name)\" closed its stdout (\(error == .eof ? "end of file" : "\(error)")); stopping it")
            failAllPending("backend \"\(name)\" closed its stdout")
            process?.signalGroup(SIGKILL)
        }
    }

    private func processExited(_ status: ExitStatus) {
        exitStatus = status
        if stdoutEnded {
            finishExit()
        } else {
            // Let the last bytes the backend wrote arrive before failing what is left.
            let timer = LoopTimer(loop: loop)
            exitGraceTimer = timer
            timer.start(timeout: 500) { [unowned self] in finishExit() }
        }
    }

    private func finishExit() {
        guard let process, let status = exitStatus else { return }
        exitGraceTimer?.close()
        exitGraceTimer = nil
        process.close()
        self.process = nil
        let stopping = state == .stopping
        let what = "backend \"\(name)\" exited with \(status)"
        failAllPending(what)
        if stopping {
            state = .stopped
            log.info("backend \"\(name)\" stopped (\(status))")
            let completions = stopCompletions
            stopCompletions.removeAll()
            for completion in completions { completion() }
            return
        }
        let whileStarting = state != .ready
        let reason = lastError ?? (whileStarting ? "exited with \(status) while starting" : "exited with \(status)")
        lastError = reason
        log.error("\(what)\(whileStarting ? " while starting" : "")")
        scheduleRestart(whileStarting: whileStarting)
    }

    private func scheduleRestart(whileStarting: Bool) {
        let now = loop.now
        if readyAt > 0 && now - readyAt > Backend.crashWindowMs { crashTimes.removeAll() }
        crashTimes.append(now)
        crashTimes.removeAll { now - $0 > Backend.crashWindowMs }
        if crashTimes.count >= Backend.maxCrashes || gateway.isShuttingDown {
            if !gateway.isShuttingDown {
                lastError = "\(lastError ?? "crashed"); it exited \(crashTimes.count) times within \(formatSeconds(Backend.crashWindowMs)), so mcpd stopped restarting it"
            }
            fail(lastError!)
            return
        }
        let base = min(30_000, 250 << min(crashTimes.count - 1, 10))
        let jitter = UInt64(Double(base) * (0.8 + 0.4 * Double(UInt32.random(in: 0...1000)) / 1000))
        state = .backoff
        restarts += 1
        log.info("backend \"\(name)\" restarts in \(jitter) ms (restart \(restarts))")
        if whileStarting && !hasSettledOnce {
            hasSettledOnce = true
            gateway.backendDidChange(self, toolsChanged: false, firstSettle: true)
        }
        let timer = LoopTimer(loop: loop)
        restartTimer = timer
        timer.start(timeout: jitter) { [unowned self] in start() }
    }

    // MARK: Stopping

    /// Stops the backend with the stop sequence; `completion` runs once it is gone.
    func stop(_ completion: @escaping () -> Void) {
        restartTimer?.close()
        restartTimer = nil
        guard let process else {
            if state != .failed { state = .stopped }
            completion()
            return
        }
        stopCompletions.append(completion)
        if state == .stopping { return }
        state = .stopping
        let grace = gateway.config.gateway.stopGraceMs
        process.stop(closeGrace: grace, termGrace: grace)
    }

    /// Kills the process group at once (a second SIGTERM or SIGINT while stopping).
    func kill() {
        process?.signalGroup(SIGKILL)
    }

    /// Closes timers after the process is gone.
    func closeHandles() {
        restartTimer?.close()
        restartTimer = nil
        exitGraceTimer?.close()
        exitGraceTimer = nil
    }
}

/// `1.5 s`, `60 s`, `250 ms`.
func formatSeconds(_ milliseconds: UInt64) -> String {
    if milliseconds < 1000 { return "\(milliseconds) ms" }
    if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
    return "\(Double(milliseconds) / 1000) s"
}
