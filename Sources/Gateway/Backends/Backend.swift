import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One configured MCP server and its process.
///
///     configured -> starting -> initializing -> ready -> stopping -> stopped
///          ^           |             |            |                      |
///          |           |             +------------+-> (exit) -> backoff -> starting ...
///          |           +-> (out of descriptors) -----------/    \-> failed (circuit open)
///          |                                                                 |  60 s later
///     (catalog)        stopped -> starting (a request; idle stop)            +-> starting ...
///
/// A lazy backend with a catalog entry stays `configured`, listed from the entry, until a
/// request needs it; after `idle_timeout` without work it is stopped and listed as before.
/// Requests that arrive while the process starts or restarts wait for it (`startQueue`), each
/// at most its deadline; they fail at once when the circuit opens.
///
/// A backend owns its process, its table of pending requests (keyed by the ids mcpd issued,
/// unique per backend) and its cached catalog. When the process exits every pending request
/// fails at once with an error naming the backend and the exit status.
///
/// State changes go through `moveState(to:)`, where an illegal transition is a bug and stops the
/// program. Handlers that change state reconcile first and call out after: the state, the
/// process and the pending table reach their final values before any session, completion or
/// the gateway hears of it, since any of those may end a session or begin a shutdown.
/// The MCP client side (handshake, lists) is in `BackendClient.swift`; traffic to and from
/// clients in `BackendTraffic.swift`.
public final class Backend {
    /// Where the backend is in its life.
    public enum State: String, Sendable {
        case configured, starting, initializing, ready, backoff, stopping, stopped, failed
    }

    public internal(set) var config: ServerConfig
    public var name: String { config.name }
    /// The era this process is spoken to in. A server is started in the handshake era (its
    /// catalog and every handshake-era client's requests); a stateless client's requests go
    /// to a second process of the same server in the stateless era, its `statelessTwin`,
    /// started on the first such request, when the server speaks that era. A server that
    /// refuses `initialize` but answers `server/discover` speaks only the stateless era: its
    /// one process serves every client in that era (`StatelessBackend.swift`).
    public internal(set) var era: BackendEra
    /// Whether the server speaks 2026-07-28: nil until a stateless twin has tried.
    public internal(set) var speaksStateless: Bool?
    /// The stateless-era process of this server, once a stateless client needed it.
    var statelessTwin: Backend?
    /// Requests that arrived while this (lazily started) process was starting.
    var startQueue: [QueuedRequest] = []
    /// For a stateless twin: the handshake-era process of the same server, which serves its
    /// queued requests (translated) when the server turns out not to speak the stateless era.
    /// The server's process owns its twin and outlives it.
    unowned(unsafe) var fallback: Backend?
    /// True for the stateless-era process of a server whose handshake-era process is its owner.
    var isTwin: Bool { fallback != nil }
    /// Tools whose definition differs from its pin: the pinned digest and the current one.
    var changedTools: [String: (pinned: String, current: String)] = [:]
    /// True when some of them are withheld (`pin: strict`): calls are checked.
    var withholdsAny = false
    /// The HTTP session this process serves alone (`isolation: session`), or nil: shared.
    unowned(unsafe) var owner: ClientSession?
    /// A stateless-era server process: mcpd's own `subscriptions/listen` on it (its id here),
    /// which brings the change notifications that keep the catalog fresh, and the resources
    /// it carries updates for.
    var listenID: Int?
    var listenURIs: Set<String> = []
    /// A stateless-era server process: the requests of handshake-era clients that may come
    /// back input-required, as sent, by mcpd's id, for the retry.
    var bridgedCalls: [Int: BridgedCall] = [:]
    /// The gateway outlives every backend: it owns them and closes them before it goes.
    unowned(unsafe) let gateway: Gateway
    let loop: EventLoop
    let log: Logger

    public private(set) var state: State = .configured
    /// Why the backend last failed or exited.
    public internal(set) var lastError: String?
    /// The backend's lists as it gave them, by `ListKind`.
    public internal(set) var lists: [[JSONObject]] = Array(repeating: [], count: ListKind.allCases.count)
    /// The backend's tools as it listed them.
    public var tools: [JSONObject] { lists[ListKind.tools.rawValue] }
    public internal(set) var serverInfo: JSONValue = .null
    public internal(set) var capabilities: JSONValue = .null {
        didSet { offersTasks = capabilities["tasks"]?["requests"]?["tools"]?["call"].map { $0 != .null } ?? false }
    }
    /// True when the backend declared tasks (2025-11-25, experimental) for `tools/call`: kept,
    /// since every call asks.
    private(set) var offersTasks = false
    public internal(set) var protocolVersion: String?
    public private(set) var restarts = 0
    /// Unix time of the catalog entry the lists came from, while they come from one (nil once
    /// the process listed them itself).
    public internal(set) var cachedAt: Int?
    /// The catalog entry as last written or read (its `savedAt` left out): the entry is
    /// rewritten only when what the backend says differs.
    var savedCatalog: [UInt8]?
    /// Unix time the catalog entry was written (or read), if there is one.
    public internal(set) var catalogSavedAt: Int?
    /// True when a list could not be fetched in the last round: what the backend listed is
    /// served, but not written to the catalog, which keeps its last complete entry.
    var listsIncomplete = false
    /// True at `--log-level debug`: a line per request answered (a stored flag: the hot path
    /// reads it on every answer).
    let logsRequests: Bool
    /// Loop time of the last request to the process, or of the answer that left none in
    /// flight: idle stop counts from it.
    var lastActivity: UInt64 = 0
    /// True once the process was stopped for being idle, until it starts again.
    public private(set) var idleStopped = false
    /// The process's start time (clock ticks since boot, from /proc): with its pid, what tells
    /// it from a later process given the same pid, in the run record.
    var processStartTime: UInt64?
    /// True once the first start attempt settled (ready or failed).
    public private(set) var hasSettledOnce = false
    /// Counts spawns: a message meant for one process of the backend is never delivered to the
    /// next one.
    public private(set) var epoch = 0

    var process: ChildProcess?
    var framer: LineFramer
    /// True while mcpd does not read the backend's stdout (back-pressure: `pauseReading`).
    var readPaused = false
    /// Its requests left unanswered while it did not read its input.
    var droppedRequests = 0
    private var stderrLog: StderrLog
    let pending = PendingTable()
    /// Answered client requests by method, for `/metrics`.
    var methodStats: [MethodStats] = []
    private var exitStatus: ExitStatus?
    /// How the last process ended.
    private var lastExit: ExitStatus?
    /// True once the process is known to be going (its stdout closed, its stdin broke, it sent
    /// an oversized line) until its exit is handled: requests wait for the restart.
    var exiting = false
    private var stdoutEnded = false
    /// Its stderr reached end of file: the last lines, often the reason it failed, were read.
    private var stderrEnded = false
    private var exitGraceTimer: LoopTimer?
    private var restartTimer: LoopTimer?
    private var crashTimes: [UInt64] = []
    var startedAt: UInt64 = 0
    private var readyAt: UInt64 = 0
    private var stopCompletions: [() -> Void] = []

    /// The request deadline in milliseconds.
    var timeoutMs: UInt64
    /// True once a reload removed or replaced the server: its process is stopped for good.
    var isRetired = false
    /// The most requests in flight to one backend.
    static let maxPending = 65_536
    /// Exits within `crashWindowMs` that open the circuit (`gateway.restart_limit` and
    /// `gateway.restart_window`).
    var maxCrashes: Int { gateway.config.gateway.restartLimit }
    var crashWindowMs: UInt64 { gateway.config.gateway.restartWindowMs }

    init(config: ServerConfig, gateway: Gateway, era: BackendEra = .handshake) {
        self.config = config
        self.era = era
        self.gateway = gateway
        self.loop = gateway.loop
        self.log = gateway.log
        self.timeoutMs = config.timeoutMs ?? gateway.config.gateway.requestTimeoutMs
        self.logsRequests = gateway.log.enabled(.debug)
        self.framer = LineFramer(maxLineLength: gateway.config.gateway.maxMessageSize)
        self.stderrLog = StderrLog(name: config.name)
        stderrLog.level = config.stderrLevel
    }

    /// True once the process became ready at least once.
    var hasBeenReady: Bool { readyAt > 0 }

    /// True when its lists are part of the merged catalog: it has not failed, or it failed
    /// after it listed them (its calls then fail with the reason, not as unknown names).
    var isListed: Bool { state != .failed || hasBeenReady || cachedAt != nil }

    /// How long the backend may sit without work before it is stopped (0: never).
    var idleTimeoutMs: UInt64 { config.lazy ? (config.idleTimeoutMs ?? gateway.config.gateway.idleTimeoutMs) : 0 }

    /// What the process a reload replaced listed: this one is listed with it until it lists
    /// for itself (its catalog entry is written then, under its new launch settings).
    func inheritLists(of previous: Backend) {
        lists = previous.lists
        capabilities = previous.capabilities
        serverInfo = previous.serverInfo
        protocolVersion = previous.protocolVersion
        cachedAt = previous.cachedAt ?? previous.catalogSavedAt ?? 0
    }

    /// What a catalog entry said: the backend is listed from it until it starts.
    func loadCatalog(_ entry: CatalogEntry) {
        lists = entry.lists
        capabilities = entry.capabilities
        serverInfo = entry.serverInfo
        protocolVersion = entry.protocolVersion
        era = entry.era
        cachedAt = entry.savedAt
        catalogSavedAt = entry.savedAt
        var unsaved = entry
        unsaved.savedAt = 0
        savedCatalog = unsaved.json.serialized.withUnsafeReadableBytes { Array($0) }
    }

    /// The process id while running.
    public var pid: Int32? { process?.pid }

    /// The command line, for logs and tables.
    public var commandLine: String {
        // The plugin host's source is not worth a log line.
        let args = config.args.first == "-c" && config.args.count > 1 && config.args[1] == PluginHost.source
            ? ["-c", "<mcpd's plugin host>"] + config.args.dropFirst(2) : config.args
        return ([config.command ?? ""] + args).joined(separator: " ")
    }

    /// True when the backend declared `capability` (`tools`, `prompts`, `resources`, `logging`,
    /// `completions`) in its last handshake.
    func declares(_ capability: String) -> Bool {
        if let value = capabilities[capability] { return value != .null }
        return false
    }

    // MARK: State

    /// The one place the state changes. Every transition not drawn in the type's diagram is a
    /// bug in mcpd.
    private func moveState(to next: State) {
        let legal: Bool
        switch (state, next) {
        case (.configured, .starting), (.backoff, .starting), (.stopped, .starting),
             (.starting, .initializing), (.starting, .failed), (.starting, .backoff),
             (.initializing, .ready), (.initializing, .backoff), (.initializing, .failed), (.initializing, .stopping),
             (.ready, .backoff), (.ready, .failed), (.ready, .stopping),
             (.configured, .stopped), (.backoff, .stopped), (.backoff, .failed), (.failed, .starting),
             (.stopping, .stopped):
            legal = true
        default:
            legal = false
        }
        precondition(legal, "backend \"\(name)\": illegal state change \(state) -> \(next)")
        state = next
        gateway.backendStateChanged(self)
    }

    // MARK: Starting

    /// Spawns the process and begins the MCP handshake.
    func start() {
        guard state == .configured || state == .backoff || state == .stopped || state == .failed else { return }
        guard let command = config.command else { return }
        restartTimer?.close()
        restartTimer = nil
        idleStopped = false
        processStartTime = nil
        lastActivity = loop.now
        moveState(to: .starting)
        epoch += 1
        exitStatus = nil
        stdoutEnded = false
        stderrEnded = false
        framer = LineFramer(maxLineLength: gateway.config.gateway.maxMessageSize)
        stderrLog.reset()
        stderrLog.level = config.stderrLevel
        // A server that never became ready and starts again: its stderr was logged in full on
        // its first start; from now on its failures summarise it.
        stderrLog.summarizing = restarts > 0 && !hasBeenReady && stderrLog.loggedAny
        startedAt = loop.now
        listenID = nil
        bridgedCalls.removeAll()
        if !isTwin { era = .handshake }  // asked again: the server may have changed
        var environment = config.inheritEnv ? gateway.fullBackendEnvironment : gateway.backendEnvironment
        if !config.env.isEmpty {
            let overridden = Set(config.env.map(\.key))
            environment.removeAll { entry in overridden.contains(String(entry.prefix { $0 != "=" })) }
            environment += config.env.map { "\($0.key)=\($0.value)" }
        }
        let options = SpawnOptions(executable: command, arguments: config.args, environment: environment,
                                   workingDirectory: config.cwd)
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(loop: loop, options: options)
        } catch {
            if [-EMFILE, -ENFILE, -EAGAIN, -ENOMEM].contains(error.code) {
                // Out of descriptors or processes for now: not the backend's fault, so tried
                // again with backoff.
                lastError = "could not start: \(error) (mcpd is out of open files or processes; see ulimit -n)"
                log.error("backend \"\(name)\" \(lastError!)")
                let (settledNow, circuitOpened) = scheduleRestart()
                if !isTwin && (settledNow || circuitOpened) { gateway.backendDidChange(self, lists: []) }
                if state == .failed { abandonStartQueue(lastError!) }
                return
            }
            let path = environment.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? "/usr/bin:/bin"
            let why = config.launchProblem(path: path) ?? "\(error)"
            fail("could not start: \(why) (servers.\(name) in \(gateway.config.path))")
            return
        }
        process = child
        log.info("backend \"\(name)\" started (pid \(child.pid))\(isTwin ? " for stateless clients" : ""): \(commandLine)")
        recordStartTime(of: child.pid)
        child.onExit = { [unowned self] status in processExited(status) }
        // Unchecked: the hot path's callback. The backend owns the process, and closes it (which
        // drops its callbacks) before it lets it go; backends live as long as the gateway.
        child.stdout.onRead = { [unowned(unsafe) self] buffer in readFrames(&buffer) }
        child.stdout.onReadEnd = { [unowned self] error in stdoutDidEnd(error) }
        child.stderr.onRead = { [unowned self] buffer in
            stderrLog.read(&buffer, now: loop.now, log: log)
        }
        child.stderr.onReadEnd = { [unowned self] _ in
            stderrEnded = true
            if exitStatus != nil && stdoutEnded { finishExit() }
        }
        child.stdout.minimumReadSize = StdioTransport.minimumReadSize
        child.stdout.framesAhead = StdioTransport.framesAhead
        child.stdin.highWatermark = gateway.config.gateway.maxBackendQueue
        child.stdin.lowWatermark = gateway.config.gateway.maxBackendQueue / 4
        child.stdin.onWriteError = { [unowned self] error in stdinFailed(error) }
        child.stdin.onWritable = { [unowned self] in resumeReading() }
        readPaused = false
        child.stdout.startReading()
        child.stderr.startReading()
        moveState(to: .initializing)
        if isTwin { sendDiscover() } else { sendInitialize() }
    }

    /// The handshake and the lists are done. `changed`: the kinds whose items differ from what
    /// the backend was listed with (from the catalog, or its last process); a backend that was
    /// not listed brings every kind.
    func becomeReady(changed: [ListKind] = ListKind.allCases) {
        guard state == .initializing else { return }
        let wasListed = cachedAt != nil || hasBeenReady
        moveState(to: .ready)
        readyAt = loop.now
        lastActivity = loop.now
        cachedAt = nil
        lastError = nil
        hasSettledOnce = true
        let info = serverInfo["name"]?.stringValue.map { " (\($0) \(serverInfo["version"]?.stringValue ?? ""))" } ?? ""
        if isTwin {
            log.info("backend \"\(name)\" ready for stateless clients in \(loop.now - startedAt) ms, protocol \(protocolVersion ?? "?")\(info)")
            drainStartQueue()
            return
        }
        let counts = ListKind.allCases.filter { declares($0.capability) }.map { $0.counted(lists[$0.rawValue].count) }
        log.info("backend \"\(name)\" ready in \(loop.now - startedAt) ms: \(counts.isEmpty ? "nothing listed" : counts.joined(separator: ", ")), protocol \(protocolVersion ?? "?")\(info)")
        if let level = gateway.clientLogLevel, declares("logging"), era == .handshake { setLevel(level) { _ in } }
        // Unchanged lists need no rebuild of the merged catalog (100 servers starting at
        // once from a warm catalog would otherwise rebuild it 100 times).
        gateway.backendDidChange(self, lists: wasListed ? changed : ListKind.allCases)
        if era == .stateless { openListen() }
        drainStartQueue()
    }

    /// The handshake failed: the process is stopped, and its exit decides between backoff and
    /// failure.
    func failStart(_ reason: String) {
        log.error("backend \"\(name)\" \(reason)")
        lastError = reason
        process?.stop(closeGrace: 500, termGrace: 1000)
    }

    /// Could not spawn: the circuit opens at once.
    private func fail(_ reason: String) {
        log.error("backend \"\(name)\" \(reason)")
        lastError = reason
        moveState(to: .failed)
        hasSettledOnce = true
        abandonStartQueue(reason)
        if isTwin { return }
        gateway.backendDidChange(self, lists: [])
    }

    // MARK: Exit

    func stdoutDidEnd(_ error: UVError) {
        stdoutEnded = true
        if exitStatus != nil {
            if stderrEnded { finishExit() }
        } else if state != .stopping {
            log.warning("backend \"\(name)\" closed its stdout (\(error == .eof ? "end of file" : "\(error)")); stopping it")
            exiting = true
            process?.signalGroup(SIGKILL)
            failAllPending("backend \"\(name)\" closed its stdout")
        }
    }

    /// Writing to the backend failed (it closed its stdin): it is treated as crashed. What is
    /// in flight fails now, with the reason, and its group is killed; its exit brings the restart.
    private func stdinFailed(_ error: UVError) {
        guard state != .stopping, let process else { return }
        lastError = "stopped reading its stdin (\(error))"
        log.error("backend \"\(name)\" stopped reading its stdin (\(error)); killing it, it will be restarted")
        exiting = true
        process.signalGroup(SIGKILL)
        failAllPending("backend \"\(name)\" stopped reading its stdin")
    }

    private func processExited(_ status: ExitStatus) {
        exitStatus = status
        if stdoutEnded && stderrEnded {
            finishExit()
        } else {
            // Let the last bytes the backend wrote (answers, and the stderr lines that say why
            // it failed) arrive before failing what is left.
            let timer = LoopTimer(loop: loop)
            exitGraceTimer = timer
            timer.start(timeout: 500) { [unowned self] in finishExit() }
        }
    }

    private func finishExit() {
        guard let process, let status = exitStatus else { return }
        // Reconcile: the process, the pending table and the state take their final values
        // before anything outside the backend hears of the exit.
        exitGraceTimer?.close()
        exitGraceTimer = nil
        process.close()
        self.process = nil
        let orphaned = pending.removeAll()
        lastExit = status
        exiting = false
        let what = "backend \"\(name)\" exited with \(status)"
        var completions: [() -> Void] = []
        var settledNow = false
        var circuitOpened = false
        if state == .stopping {
            moveState(to: .stopped)
            log.info("backend \"\(name)\" stopped (\(status))")
            completions = stopCompletions
            stopCompletions.removeAll()
        } else {
            let whileStarting = state != .ready
            let lastLine = stderrLog.lastLines.last.map { "; its last stderr line: \($0)" } ?? ""
            lastError = lastError ?? (whileStarting ? "exited with \(status) while starting\(lastLine)" : "exited with \(status)")
            if isTwin && !hasBeenReady {
                log.info("\(what) (its stateless-era process)")
            } else if stderrLog.summarizing {
                log.error("\(what) while starting again (\(plural(stderrLog.unlogged, "stderr line")) not shown, as on its first start\(lastLine))")
            } else {
                log.error("\(what)\(whileStarting ? " while starting" : "")")
            }
            (settledNow, circuitOpened) = scheduleRestart()
        }
        // Call out.
        for entry in orphaned {
            complete(entry, with: BackendFailure(code: ErrorCode.internalError, message: "\(what) while handling \(entry.what)"))
        }
        for completion in completions { completion() }
        // Requests waiting for this process wait for the restart; with none coming (stopped,
        // or the circuit open) they fail now with the reason. A request that came while an
        // idle backend was stopping starts it again.
        if state == .stopped && !startQueue.isEmpty && !gateway.isShuttingDown && !isRetired {
            start()
        } else if state != .backoff && !startQueue.isEmpty {
            abandonStartQueue(state == .stopped ? "is stopped" : lastError ?? what)
        }
        if isTwin { return }
        if settledNow || circuitOpened { gateway.backendDidChange(self, lists: []) }
    }

    /// Moves to backoff with a restart timer, or to failed when the backend crashed too often
    /// (or mcpd is shutting down). Returns whether this settled the first start, and whether
    /// the circuit opened; the caller tells the gateway.
    private func scheduleRestart() -> (settledNow: Bool, circuitOpened: Bool) {
        let now = loop.now
        if readyAt > 0 && now - readyAt > crashWindowMs { crashTimes.removeAll() }
        crashTimes.append(now)
        crashTimes.removeAll { now - $0 > crashWindowMs }
        let settledNow = !hasSettledOnce
        hasSettledOnce = true
        // A stateless process that never became ready gave its answer: the server does not
        // speak that era (or cannot start); its clients are served by the handshake process.
        let probeFailed = isTwin && readyAt == 0
        if crashTimes.count >= maxCrashes || gateway.isShuttingDown || probeFailed {
            moveState(to: .failed)
            if !gateway.isShuttingDown && !probeFailed {
                // The circuit opens: calls fail at once, and one more start is tried once the
                // window has passed (a stable run then resets the count).
                let stderr = stderrLog.lastLines.isEmpty ? "" : "; its last stderr lines: \(stderrLog.lastLines.joined(separator: " | "))"
                // Variables its config named without a value are the likeliest cause.
                let unset = hasBeenReady || config.unsetVariables.isEmpty ? ""
                    : "; it was started without \(config.unsetVariables.joined(separator: ", ")), which had no value when mcpd read its config (set it in mcpd's environment and restart mcpd, or write the value in the config and run `mcpd reload`)"
                lastError = "\(lastError ?? "crashed"); it exited \(crashTimes.count) times within \(formatSeconds(crashWindowMs)) (last: \(lastExit.map { "\($0)" } ?? "?")), so mcpd tries again in \(formatSeconds(crashWindowMs))\(stderr)\(unset)"
                log.error("backend \"\(name)\" \(lastError!)")
                let timer = LoopTimer(loop: loop)
                restartTimer = timer
                timer.start(timeout: crashWindowMs) { [unowned self] in
                    crashTimes.removeAll()
                    start()
                }
            }
            return (settledNow, true)
        }
        let base = min(30_000, 250 << min(crashTimes.count - 1, 10))
        let jitter = UInt64(Double(base) * (0.8 + 0.4 * Double(UInt32.random(in: 0...1000)) / 1000))
        moveState(to: .backoff)
        restarts += 1
        log.info("backend \"\(name)\" restarts in \(jitter) ms (restart \(restarts))")
        let timer = LoopTimer(loop: loop)
        restartTimer = timer
        timer.start(timeout: jitter) { [unowned self] in start() }
        return (settledNow, false)
    }

    // MARK: Stopping

    /// Stops the backend with the stop sequence; `completion` runs once it is gone.
    func stop(_ completion: @escaping () -> Void) {
        restartTimer?.close()
        restartTimer = nil
        guard let process else {
            if state == .configured || state == .backoff { moveState(to: .stopped) }
            completion()
            return
        }
        stopCompletions.append(completion)
        if state == .stopping { return }
        moveState(to: .stopping)
        let grace = gateway.config.gateway.stopGraceMs
        process.stop(closeGrace: grace, termGrace: grace)
    }

    /// Stops this process and its stateless twin; `completion` runs once both are gone.
    func stopAll(_ completion: @escaping () -> Void) {
        guard let twin = statelessTwin else {
            stop(completion)
            return
        }
        var remaining = 2
        let one = {
            remaining -= 1
            if remaining == 0 { completion() }
        }
        stop(one)
        twin.stop(one)
    }

    /// Settings a reload changes without a restart (the tool filter is read where lists are
    /// merged): the level of its stderr lines.
    func applyLiveSettings() {
        stderrLog.level = config.stderrLevel
    }

    /// The state as `mcpd list` shows it.
    public var displayState: String {
        switch state {
        case .configured: return cachedAt != nil ? "cached" : "configured"
        case .stopped: return idleStopped ? "idle-stopped" : "stopped"
        case .failed: return restartTimer != nil ? "circuit-open" : "failed"
        default: return state.rawValue
        }
    }

    /// How the last process ended (`exit status 1`, `signal 9`), if one did.
    public var lastExitDescription: String? { lastExit.map { "\($0)" } }

    /// Stops the process if it has been idle for its idle timeout: nothing in flight, nothing
    /// waiting, no client subscribed to one of its resources. Its lists stay in the catalog;
    /// the next request starts it again.
    func stopIfIdle(now: UInt64) {
        guard state == .ready, !exiting, pending.isEmpty, startQueue.isEmpty, listenURIs.isEmpty else { return }
        let timeout = idleTimeoutMs
        guard timeout > 0, now - lastActivity >= timeout else { return }
        let prefix = ExposedURI.expose(server: name, uri: "")
        if gateway.sessions.contains(where: { session in session.subscriptions.contains { $0.hasPrefix(prefix) } }) { return }
        log.info("backend \"\(name)\"\(isTwin ? " (stateless clients)" : "") idle for \(formatSeconds(timeout)); stopping it until it is needed")
        idleStopped = true
        stop {}
    }

    /// Reads the process's start time off the loop thread, for the run record. The completion
    /// finds the backend by its process id: it holds no reference to it (a weak one would give
    /// every backend a side table, and every retain on the hot path its slow path).
    private func recordStartTime(of pid: Int32) {
        AsyncFile.read(loop: loop, path: "/proc/\(pid)/stat", maxBytes: 4096) { [unowned(unsafe) gateway] result in
            guard case .success(let bytes) = result, let stat = ProcessStat(bytes),
                  let backend = (gateway.allBackends + gateway.retiring).first(where: { $0.pid == pid })
            else { return }
            backend.processStartTime = stat.startTime
            gateway.backendStateChanged(backend)
        }
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

/// The protocol era a backend process is spoken to in.
public enum BackendEra: Sendable {
    case handshake, stateless
}

/// `1.5 s`, `60 s`, `250 ms`.
func formatSeconds(_ milliseconds: UInt64) -> String {
    if milliseconds < 1000 { return "\(milliseconds) ms" }
    if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
    return "\(Double(milliseconds) / 1000) s"
}
