import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// The gateway: the configured backends, the merged catalog, the client sessions, and the
/// start-up and shutdown phases that tie them together on one loop.
///
/// Start-up: every enabled backend is spawned at once. Client frames are held until each one is
/// ready or has failed (bounded by `startupTimeout`), so the first `tools/list` is complete.
///
/// Shutdown (stdio client closed its input and its requests drained, or SIGINT/SIGTERM):
///   1. stop reading clients; fail what is still in flight,
///   2. stop every backend (close stdin, SIGTERM, SIGKILL to its process group),
///   3. flush and close client streams, close timers and signal handles; the loop then ends.
/// A second SIGINT/SIGTERM kills the backends' process groups at once.
public final class Gateway {
    public let loop: EventLoop
    public let config: Config
    public let log: Logger
    let scanner = JSONScanner()

    /// Backends in configuration order (enabled ones only).
    public private(set) var backends: [Backend] = []
    /// Exposed tool name -> backend.
    public private(set) var router: Router
    /// The cached `tools/list` result: `{"tools":[...]}`.
    public private(set) var toolsListResult = ByteBuffer(string: "{\"tools\":[]}")
    /// The merged tool list, for `mcpd list`.
    public private(set) var exposedTools: [(name: String, backend: String, description: String)] = []
    /// Capabilities mcpd announces to clients.
    let capabilities: JSONValue = ["tools": ["listChanged": true]]
    /// The environment every backend starts from (mcpd's, less systemd's notification variables).
    let backendEnvironment: [String]

    private var sessions: [ClientSession] = []
    public private(set) var isStartupSettled = false
    public private(set) var isShuttingDown = false
    private var startupWaiters: [() -> Void] = []
    private var startupTimer: LoopTimer?
    private var sweepTimer: LoopTimer?
    private var signalWatchers: [SignalWatcher] = []
    private var startedAt: UInt64 = 0
    /// Called once everything is closed; the loop ends after it.
    public var onStopped: (() -> Void)?

    /// Variables never passed to backends: they address mcpd's own supervisor.
    static let privateVariables: Set<String> = ["NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]

    public init(loop: EventLoop, config: Config, log: Logger, environment: [(name: String, value: String)]) {
        self.loop = loop
        self.config = config
        self.log = log
        self.router = Router(separator: config.gateway.separator)
        self.backendEnvironment = environment.filter { !Gateway.privateVariables.contains($0.name) }.map { "\($0.name)=\($0.value)" }
        var index = 0
        for server in config.servers where server.enabled {
            backends.append(Backend(index: index, config: server, gateway: self))
            index += 1
        }
    }

    /// How long clients wait for backends at start-up before being served with what is ready.
    var startupTimeoutMs: UInt64 { min(config.gateway.requestTimeoutMs, 30_000) }

    /// Starts every backend, the deadline sweep and the signal handlers.
    public func start() throws(UVError) {
        loop.assertInLoop()
        startedAt = loop.now
        for warning in config.warnings { log.warning(warning) }
        for server in config.servers where !server.enabled { log.info("server \"\(server.name)\" is disabled in the config") }
        for signal in [SIGINT, SIGTERM] {
            signalWatchers.append(try SignalWatcher(loop: loop, signal: signal) { [unowned self] signal in
                log.info("received \(signal == SIGINT ? "SIGINT" : "SIGTERM")")
                shutdown(reason: "signal")
            })
        }
        signalWatchers.append(try SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in
            log.warning("received SIGHUP: configuration reload is not supported by this version; restart mcpd to apply changes")
        })
        let sweepInterval = max(50, min(1000, (backends.map(\.timeoutMs).min() ?? 1000) / 4))
        let sweep = LoopTimer(loop: loop, unreferenced: true)
        sweepTimer = sweep
        sweep.start(timeout: sweepInterval, repeat: sweepInterval) { [unowned self] in
            let now = loop.now
            for backend in backends { backend.expireRequests(now: now) }
        }
        log.info("starting \(backends.count) backend\(backends.count == 1 ? "" : "s") from \(config.path)")
        if backends.isEmpty {
            settleStartup()
            return
        }
        let timer = LoopTimer(loop: loop, unreferenced: true)
        startupTimer = timer
        timer.start(timeout: startupTimeoutMs) { [unowned self] in
            let waiting = backends.filter { !$0.hasSettledOnce }.map(\.name)
            log.warning("backends still starting after \(formatSeconds(startupTimeoutMs)): \(waiting.joined(separator: ", ")); serving the others")
            settleStartup()
        }
        for backend in backends { backend.start() }
    }

    /// Serves one client on mcpd's stdin and stdout.
    public func serveStdio() throws(UVError) {
        let input = try IOStream.open(loop: loop, fd: 0)
        let output: IOStream
        do {
            output = try IOStream.open(loop: loop, fd: 1)
        } catch {
            input.close()
            throw error
        }
        let session = ClientSession(gateway: self, input: input, output: output)
        sessions.append(session)
        session.start()
        log.info("waiting for an MCP client on stdin")
    }

    /// Runs `body` once start-up has settled (at once if it has).
    public func whenStartupSettled(_ body: @escaping () -> Void) {
        if isStartupSettled { body() } else { startupWaiters.append(body) }
    }

    private func settleStartup() {
        guard !isStartupSettled else { return }
        isStartupSettled = true
        startupTimer?.close()
        startupTimer = nil
        rebuildCatalog()
        let ready = backends.filter { $0.state == .ready }.count
        log.info("\(ready) of \(backends.count) backends ready in \(loop.now - startedAt) ms; \(router.count) tools")
        let waiters = startupWaiters
        startupWaiters.removeAll()
        for waiter in waiters { waiter() }
        for session in sessions { session.startupSettled() }
    }

    /// A backend became ready, failed, or changed its tools.
    func backendDidChange(_ backend: Backend, toolsChanged: Bool, firstSettle: Bool) {
        if !isStartupSettled {
            if backends.allSatisfy(\.hasSettledOnce) { settleStartup() }
            return
        }
        if toolsChanged || backend.state == .failed {
            if rebuildCatalog() {
                for session in sessions { session.sendNotification("notifications/tools/list_changed") }
            }
        }
    }

    /// Rebuilds the router and the cached `tools/list` result. Returns whether the list changed.
    @discardableResult
    private func rebuildCatalog() -> Bool {
        let router = Router(separator: config.gateway.separator)
        var tools: [JSONValue] = []
        var exposed: [(name: String, backend: String, description: String)] = []
        for backend in backends where backend.state != .failed {
            for tool in backend.tools {
                guard let original = tool["name"]?.stringValue else { continue }
                let name = router.add(server: backend.name, tool: original, backendIndex: backend.index)
                var renamed = tool
                renamed["name"] = .string(name)
                tools.append(.object(renamed))
                exposed.append((name, backend.name, tool["description"]?.stringValue ?? ""))
            }
        }
        let result: JSONValue = ["tools": .array(tools)]
        let serialized = result.serialized
        let changed = !serialized.elementsEqual(toolsListResult)
        self.router = router
        self.exposedTools = exposed
        self.toolsListResult = serialized
        return changed
    }

    /// A session ended. A stdio gateway has one client: when it is done, mcpd is done.
    func sessionFinished(_ session: ClientSession) {
        shutdown(reason: "the client closed its input")
    }

    /// Stops everything in order; `onStopped` runs when the last handle is closed. A second call
    /// while stopping kills the backends at once.
    public func shutdown(reason: String) {
        loop.assertInLoop()
        if isShuttingDown {
            if reason == "signal" {
                log.warning("stopping now: killing every backend's process group")
                for backend in backends { backend.kill() }
            }
            return
        }
        isShuttingDown = true
        log.info("shutting down (\(reason)): stopping \(backends.count) backend\(backends.count == 1 ? "" : "s")")
        startupTimer?.close()
        startupTimer = nil
        for session in sessions { session.input.stopReading() }
        // Nothing new arrives; what is in flight is answered with an error by the backend's exit.
        var remaining = backends.count
        if remaining == 0 {
            finishShutdown()
            return
        }
        for backend in backends {
            backend.stop { [unowned self] in
                remaining -= 1
                if remaining == 0 { finishShutdown() }
            }
        }
    }

    private func finishShutdown() {
        sweepTimer?.close()
        sweepTimer = nil
        for watcher in signalWatchers { watcher.close() }
        signalWatchers.removeAll()
        for backend in backends { backend.closeHandles() }
        for session in sessions { session.close() }
        log.info("stopped")
        onStopped?()
    }
}
