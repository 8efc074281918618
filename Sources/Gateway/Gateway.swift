import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// The gateway: the configured backends, the merged catalog, the client sessions, and the
/// start-up and shutdown phases that tie them together on one loop.
///
/// Start-up: backends with an entry in the persisted catalog (`StateDirectory`) are listed from
/// it and start on the first request that needs them (`lazy: false` ones start at once);
/// backends without one start at launch, and client frames are held until each of those is
/// ready or has failed (at most `gateway.startup_wait`), so the first `tools/list` is complete.
/// Late ones arrive with `list_changed`.
///
/// Shutdown (stdio client closed its input and its requests drained, or SIGINT/SIGTERM):
///   1. stop reading clients; fail what is still in flight,
///   2. stop every backend (close stdin, SIGTERM, SIGKILL to its process group),
///   3. flush and close client streams, close timers and signal handles; the loop then ends.
/// A second SIGINT/SIGTERM kills the backends' process groups at once.
public final class Gateway {
    public let loop: EventLoop
    /// The configuration in force (replaced by a reload).
    public internal(set) var config: Config
    public let log: Logger
    let scanner = JSONScanner()

    /// Backends in configuration order (enabled ones only).
    public internal(set) var backends: [Backend] = []
    /// Backends a reload removed or replaced, until their processes are gone.
    var retiring: [Backend] = []
    /// Every backend process: the servers', their stateless twins, and the processes of
    /// `isolation: session` servers that HTTP sessions have of their own.
    var allBackends: [Backend] { backends + backends.compactMap(\.statelessTwin) + isolated }
    /// Processes of `isolation: session` servers, one per server and HTTP session that used it.
    var isolated: [Backend] = []
    /// The pinned tool definitions (`Pins`).
    var pins = Pins()
    /// Backends by server name: resource URIs name their server.
    var backendsByName: [String: Backend] = [:]
    /// What clients of `/mcp` and stdio without a role see: every backend, prefixed.
    let view: CatalogView
    /// The other views (`/mcp/<server>`, roles), by `CatalogView.key`, made when first asked
    /// for: at most (servers + 1) x (roles + 1).
    private(set) var views: [String: CatalogView] = [:]
    /// The merged tool list, for `mcpd list`.
    public var exposedTools: [(name: String, backend: String, description: String)] { view.exposedTools }
    /// The level a client last set with `logging/setLevel`, applied to backends that start
    /// later.
    var clientLogLevel: String?
    /// The environment every backend starts from: the inherited variables of mcpd's.
    let backendEnvironment: [String]

    /// The client sessions (on stdio, one).
    private(set) var sessions: [ClientSession] = []
    /// True while some client does not read its output fast enough (its queue is over the
    /// high watermark): backends are not read meanwhile, so what they send waits in their
    /// pipes, not in mcpd's memory. On stdio every backend's bytes are for the one client.
    /// True while a client does not read what mcpd sends it: backends are not read meanwhile.
    /// Stream sessions (stdio, `mcpd call`) are few and asked; HTTP sessions keep a count.
    var clientOutputStalled: Bool { stalledOutputs > 0 || streamSessions.contains { !$0.output.isWritable } }
    /// HTTP sessions whose client stopped reading.
    var stalledOutputs = 0
    /// The sessions served over a byte stream.
    private(set) var streamSessions: [ClientSession] = []
    public private(set) var isStartupSettled = false
    public private(set) var isShuttingDown = false
    /// The signal that cut the shutdown short (a second SIGINT or SIGTERM): mcpd then exits with
    /// 128 + its number. One signal drains and exits 0.
    public private(set) var abortedBySignal: Int32?
    private var startupWaiters: [() -> Void] = []
    private var startupTimer: LoopTimer?
    private var sweepTimer: LoopTimer?
    private var trimTimer: LoopTimer?
    private var signalWatchers: [SignalWatcher] = []
    private(set) var startedAt: UInt64 = 0
    /// The HTTP front of `mcpd serve`, if it listens.
    var httpServer: HTTPServer?
    /// Its `/mcp` endpoint.
    var streamableHTTP: StreamableHTTP?
    /// The state directory, when it is usable.
    private(set) var stateDirectory: StateDirectory?
    /// mcpd's environment: the state directory's default place, `${VAR}` on a reload.
    let variables: [String: String]
    /// systemd's notification socket, when mcpd runs under it.
    private(set) var notifier: SystemdNotifier?
    private var watchdogTimer: LoopTimer?
    /// True once READY=1 went out: status lines follow it, never precede it.
    private var announcedReady = false
    /// What a running mcpd of the same configuration reports, by server (`mcpd list`).
    var liveReports: [String: RunRecord.Entry] = [:]
    /// A reload in progress, and whether another was asked for meanwhile.
    var isReloading = false
    var reloadAgain = false
    /// The backends start-up waits for: those the catalog knows nothing of.
    private var awaited: [Backend] = []
    /// True: every backend starts at launch and start-up waits for all of them, whatever the
    /// catalog holds (`mcpd list --refresh`).
    public var startEverything = false
    /// True: start-up waits for the backends it starts as long as a request may take, not
    /// `gateway.startup_wait` (`mcpd list`).
    public var waitForAll = false
    /// Batches run-record writes: one per burst of state changes.
    private var recordTimer: LoopTimer?
    /// mcpd's own start time (clock ticks since boot), in its run record.
    private var ownStartTime: UInt64 = 0
    /// Called once everything is closed; the loop ends after it.
    public var onStopped: (() -> Void)?

    /// The variable that counts mcpd processes in a chain, each a backend of the one before.
    public static let depthVariable = "MCPD_DEPTH"

    /// Variables never passed to backends: they address mcpd's own supervisor.
    static let privateVariables: Set<String> = ["NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                                                "MCPD_ROLE", "MCP_GATEWAY_ROLE"]
    /// What a backend inherits of mcpd's environment, besides its configured `env` (all of it
    /// with `inherit_env: true`): enough to find programs and behave as the user's, no secrets
    /// meant for other servers.
    static let inheritedVariables: Set<String> = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "TZ", "TMPDIR", "SHELL"]
    static func isInherited(_ name: String) -> Bool {
        inheritedVariables.contains(name) || name.hasPrefix("LC_") || name.hasPrefix("XDG_")
    }
    /// mcpd's environment less the private variables, for `inherit_env: true`.
    let fullBackendEnvironment: [String]

    public init(loop: EventLoop, config: Config, log: Logger, environment: [(name: String, value: String)]) {
        self.loop = loop
        self.config = config
        self.log = log
        self.view = CatalogView(server: nil, config: config.gateway)
        // Backends learn how deep in a chain of mcpd processes they run: an mcpd among them
        // stops the chain at `Setup.maxDepth`.
        let depth = environment.last { $0.name == Gateway.depthVariable }.flatMap { Int($0.value) } ?? 0
        let depthEntry = "\(Gateway.depthVariable)=\(depth + 1)"
        self.fullBackendEnvironment = environment.filter { !Gateway.privateVariables.contains($0.name) && $0.name != Gateway.depthVariable }
            .map { "\($0.name)=\($0.value)" } + [depthEntry]
        self.backendEnvironment = environment.filter { Gateway.isInherited($0.name) }.map { "\($0.name)=\($0.value)" } + [depthEntry]
        self.variables = Dictionary(environment.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        for server in config.servers where server.enabled {
            let backend = Backend(config: server, gateway: self)
            backends.append(backend)
            backendsByName[server.name] = backend
        }
    }

    /// How long clients wait for backends at start-up before being served with what is ready.
    var startupTimeoutMs: UInt64 { waitForAll ? config.gateway.requestTimeoutMs : config.gateway.startupWaitMs }

    /// Lists backends from the catalog, starts those it lacks (and `lazy: false` ones), and
    /// starts the deadline sweep and the signal handlers.
    public func start() throws(UVError) {
        loop.assertInLoop()
        startedAt = loop.now
        log.attach(to: loop)
        for note in config.notes { log.info(note) }
        for warning in config.warnings { log.warning(warning) }
        for server in config.servers where !server.enabled { log.info("server \"\(server.name)\" is disabled in the config") }
        for signal in [SIGINT, SIGTERM] {
            signalWatchers.append(try SignalWatcher(loop: loop, signal: signal) { [unowned self] signal in
                log.info("received \(signal == SIGINT ? "SIGINT" : "SIGTERM")")
                if isShuttingDown { abortedBySignal = signal }
                shutdown(reason: "signal")
            })
        }
        signalWatchers.append(try SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in
            log.info("received SIGHUP")
            reload()
        })
        notifier = SystemdNotifier(environment: variables, log: log)
        if let notifier, let interval = notifier.watchdogIntervalMs {
            // From a loop timer: a loop that stops turning stops the keep-alives.
            let timer = LoopTimer(loop: loop, unreferenced: true)
            watchdogTimer = timer
            timer.start(timeout: interval, repeat: interval) { notifier.send("WATCHDOG=1") }
        }
        let sweepInterval = max(50, min(1000, (backends.map(\.timeoutMs).min() ?? 1000) / 4))
        let sweep = LoopTimer(loop: loop, unreferenced: true)
        sweepTimer = sweep
        sweep.start(timeout: sweepInterval, repeat: sweepInterval) { [unowned self] in
            let now = loop.now
            for backend in allBackends {
                backend.expireRequests(now: now)
                backend.stopIfIdle(now: now)
            }
        }
        openStateDirectory()
        loadPins()
        loadRegistered()
        var launched: [Backend] = []
        for backend in backends {
            let entry = startEverything ? nil : stateDirectory?.loadEntry(backend.config)
            if let entry {
                backend.loadCatalog(entry)
                checkPins(backend)
            } else {
                awaited.append(backend)
            }
            if entry == nil || !backend.config.lazy { launched.append(backend) }
        }
        let cached = backends.count - awaited.count
        log.info("\(backends.count) backend\(backends.count == 1 ? "" : "s") in \(config.path): \(cached) listed from the catalog, \(launched.count) starting now")
        writeRunRecord()
        if awaited.isEmpty {
            settleStartup()
        } else {
            let timer = LoopTimer(loop: loop, unreferenced: true)
            startupTimer = timer
            timer.start(timeout: startupTimeoutMs) { [unowned self] in
                let waiting = awaited.filter { !$0.hasSettledOnce }.map(\.name)
                log.warning("backends still starting after \(formatSeconds(startupTimeoutMs)): \(waiting.joined(separator: ", ")); serving the others, which they join when ready")
                settleStartup()
            }
        }
        for backend in launched { backend.start() }
    }

    /// Opens the state directory and stops what an mcpd killed earlier left running there.
    /// At start-up, before the loop serves and before any backend starts.
    private func openStateDirectory() {
        guard let path = StateDirectory.resolve(config.gateway.stateDir, environment: variables) else {
            log.warning("no state directory (HOME is not set and gateway.state_dir is not configured): every backend starts at launch, and nothing is kept between runs")
            return
        }
        let directory = StateDirectory(path: path, loop: loop, log: log)
        if let why = directory.prepare() {
            log.warning("state directory unusable (\(why)): every backend starts at launch, and nothing is kept between runs; set gateway.state_dir")
            return
        }
        stateDirectory = directory
        ownStartTime = ProcessStat.of(getpid())?.startTime ?? 0
        for line in RunRecord.sweep(directory: path, ownPid: getpid()) { log.warning(line) }
    }

    /// The run record's file.
    private var runRecordPath: String? { stateDirectory.map { "\($0.path)/run/\(getpid()).json" } }

    /// A backend's state, process or start time changed: the run record and systemd's status
    /// line are rewritten soon, once for a burst of changes.
    func backendStateChanged(_ backend: Backend) {
        guard stateDirectory != nil || notifier != nil, !isShuttingDown, recordTimer == nil else { return }
        let timer = LoopTimer(loop: loop, unreferenced: true)
        recordTimer = timer
        timer.start(timeout: 100) { [unowned self] in
            recordTimer?.close()
            recordTimer = nil
            writeRunRecord()
            if announcedReady { notifier?.status(statusLine) }
        }
    }

    /// `12 backends: 3 ready, 8 cached, 1 circuit-open; 140 tools`.
    var statusLine: String {
        var counts: [(String, Int)] = []
        for backend in backends {
            let state = backend.displayState
            if let index = counts.firstIndex(where: { $0.0 == state }) { counts[index].1 += 1 } else { counts.append((state, 1)) }
        }
        let states = counts.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
        return "\(plural(backends.count, "backend"))\(states.isEmpty ? "" : ": \(states)"); \(ListKind.tools.counted(view.lists[ListKind.tools.rawValue].items.count))"
    }

    /// Writes `run/<pid>.json`: each backend's state, process group and start time.
    func writeRunRecord() {
        guard let stateDirectory, let file = runRecordPath else { return }
        // A session's own processes are not recorded: they are its, and end with it.
        let entries = (backends + backends.compactMap(\.statelessTwin)).map { backend in
            RunRecord.Entry(name: backend.name, statelessTwin: backend.isTwin, state: backend.displayState, pid: backend.pid,
                            startTime: backend.pid == nil ? nil : backend.processStartTime, restarts: backend.restarts,
                            lastExit: backend.lastExitDescription, lastError: backend.lastError.map { redact($0, config.secrets) },
                            tools: backend.tools.count)
        }
        let record = RunRecord(pid: getpid(), startTime: ownStartTime, config: absolutePath(config.path), updatedAt: Int(time(nil)), backends: entries)
        stateDirectory.write(record.json.serialized.withUnsafeReadableBytes { Array($0) }, to: file)
    }

    /// Writes the backend's catalog entry when what it said differs from the entry.
    func persistCatalog(_ backend: Backend) {
        guard let stateDirectory, !backend.isTwin, !backend.listsIncomplete else { return }
        var entry = CatalogEntry(key: CatalogEntry.key(of: backend.config), savedAt: 0, of: backend)
        let content = entry.json.serialized.withUnsafeReadableBytes { Array($0) }
        guard content != backend.savedCatalog else { return }
        backend.savedCatalog = content
        entry.savedAt = Int(time(nil))
        backend.catalogSavedAt = entry.savedAt
        stateDirectory.save(entry, server: backend.name)
    }

    /// Serves one client on a pair of descriptors: mcpd's stdin and stdout, or (`mcpd call`) a
    /// pair of pipes to a client in this process. Its role is `MCPD_ROLE` (also
    /// `MCP_GATEWAY_ROLE`, mcp-unify's name), else `gateway.default_role`.
    public func serveStdio(inputFD: Int32 = 0, outputFD: Int32 = 1) throws(UVError) {
        let input = try IOStream.open(loop: loop, fd: inputFD)
        let output: IOStream
        do {
            output = try IOStream.open(loop: loop, fd: outputFD)
        } catch {
            input.close()
            throw error
        }
        let transport = StdioTransport(input: input, output: output, maxLineLength: config.gateway.maxMessageSize)
        let role = role(given: Gateway.stdioRole(variables))
        if let role, config.roles[role] == nil {
            log.error("role \"\(role)\" (\(Gateway.stdioRole(variables) != nil ? "MCPD_ROLE" : "gateway.default_role")) is not defined in roles: of \(config.path): this client sees nothing")
        }
        let session = ClientSession(gateway: self, transport: transport, view: view(server: nil, role: role)!)
        sessions.append(session)
        streamSessions.append(session)
        session.start()
        if inputFD == 0 { log.info("waiting for an MCP client on stdin") }
    }

    /// The role a stdio client asks for in mcpd's environment, if any.
    static func stdioRole(_ variables: [String: String]) -> String? {
        for name in ["MCPD_ROLE", "MCP_GATEWAY_ROLE"] { if let role = variables[name], !role.isEmpty { return role } }
        return nil
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
        // Views made before (the stdio session's role, early HTTP sessions) are built again.
        for view in [view] + views.values { _ = rebuild(view, ListKind.allCases) }
        let ready = backends.filter { $0.state == .ready }.count
        let cached = backends.filter { $0.cachedAt != nil }.count
        let counts = ListKind.allCases.filter { $0 == .tools || !view.lists[$0.rawValue].items.isEmpty }.map { $0.counted(view.lists[$0.rawValue].items.count) }
        log.info("serving after \(loop.now - startedAt) ms: \(ready) of \(backends.count) backends ready\(cached > 0 ? ", \(cached) listed from the catalog" : ""); \(counts.joined(separator: ", "))")
        let waiters = startupWaiters
        startupWaiters.removeAll()
        for waiter in waiters { waiter() }
        for session in sessions { session.startupSettled() }
        // At the loop's next turn: once the client transports are open too.
        loop.execute { [unowned self] in
            guard !isShuttingDown, let notifier else { return }
            announcedReady = true
            notifier.send("READY=1\nSTATUS=\(statusLine)")
        }
    }

    /// A backend became ready, failed, or changed some of its lists.
    func backendDidChange(_ backend: Backend, lists: [ListKind]) {
        // A session's own process lists what its server does: the catalog is the server's.
        if backend.owner != nil { return }
        checkPins(backend)
        if backend.state == .ready { persistCatalog(backend) }
        if !isStartupSettled {
            if awaited.allSatisfy(\.hasSettledOnce) { settleStartup() }
            return
        }
        let kinds = backend.state == .failed ? ListKind.allCases : lists
        guard !kinds.isEmpty else { return }
        catalogMayHaveChanged(kinds)
    }

    /// Rebuilds the lists of `kinds` in every view and tells each client which of its view's
    /// changed.
    func catalogMayHaveChanged(_ kinds: [ListKind]) {
        // Templates are announced with resources: one notification for both.
        var changes: [ObjectIdentifier: Set<String>] = [:]
        for view in [view] + views.values {
            changes[ObjectIdentifier(view)] = Set(rebuild(view, kinds).map(\.capability))
        }
        // A view whose server or role a reload removed is empty now, and kept: its sessions see
        // it again if a later reload restores them.
        for session in sessions {
            guard let changed = changes[ObjectIdentifier(session.view)] else { continue }
            for capability in ["tools", "prompts", "resources"] where changed.contains(capability) {
                session.sendNotification("notifications/\(capability)/list_changed")
            }
        }
    }

    /// The view of `server` (nil: every server; `/mcp/<server>` otherwise) for `role` (nil:
    /// everything), or nil when no such server is configured and enabled. A role `roles:` does
    /// not define sees nothing.
    func view(server: String?, role: String?) -> CatalogView? {
        if server == nil && role == nil { return view }
        let key = CatalogView.key(server: server, role: role)
        if let view = views[key] { return view }
        if let server, backendsByName[server] == nil { return nil }
        if views.count >= Gateway.maxViews {
            // Names that came and went over many reloads: views no session uses go.
            views = views.filter { entry in sessions.contains { $0.view === entry.value } }
        }
        let view = CatalogView(server: server, role: role, config: config.gateway)
        _ = rebuild(view, ListKind.allCases)
        views[key] = view
        return view
    }

    static let maxViews = 4096

    /// Rebuilds `view`'s lists of `kinds` with its role's filter as the config now has it.
    private func rebuild(_ view: CatalogView, _ kinds: [ListKind]) -> [ListKind] {
        let filter = view.role.map { config.roles[$0] ?? RoleFilter(allow: []) }
        let admin = config.gateway.registration && view.role.map { $0 == "admin" || config.gateway.adminRoles.contains($0) } == true
        return view.rebuild(kinds, from: backends, config: config.gateway, filter: filter, commands: config.commandTools, pipelines: config.pipelines,
                            admin: admin)
    }

    /// The role of a session: the one it was given (a token's, `MCPD_ROLE`), else
    /// `gateway.default_role`.
    func role(given: String?) -> String? { given ?? config.gateway.defaultRole }

    /// Why `name` routes nowhere: a tool the configuration hides, or a name with the closest
    /// exposed ones ("did you mean").
    func unknownNameMessage(_ name: String, router: Router, noun: String, list: String) -> String {
        let shown = name.count > 200 ? String(name.prefix(200)) + "..." : name
        if noun == "tool" {
            for backend in backends where !backend.changedTools.isEmpty {
                let prefix = backend.name + config.gateway.separator
                guard name.hasPrefix(prefix) else { continue }
                if let refusal = withheldMessage(backend, String(name.dropFirst(prefix.count)), shown: shown) { return refusal }
            }
            for backend in backends where !backend.config.tools.allowsEverything {
                let prefix = backend.name + config.gateway.separator
                let original = name.hasPrefix(prefix) ? String(name.dropFirst(prefix.count)) : name
                if backend.tools.contains(where: { $0["name"]?.stringValue == original }) && !backend.config.tools.admits(original) {
                    return "Tool \"\(shown)\" is not available: servers.\(backend.name).tools in \(config.path) hides \"\(original)\""
                }
            }
        }
        // A server that is down and lists nothing (it never started, so no catalog): say why.
        let down = backends.filter { !$0.hasBeenReady && $0.cachedAt == nil && $0.state != .ready }
        if let backend = down.first(where: { name.hasPrefix($0.name + config.gateway.separator) }) {
            let reason = backend.unavailableReason() ?? "backend \"\(backend.name)\" is \(backend.displayState)"
            return redact("\(noun.prefix(1).uppercased() + noun.dropFirst()) \"\(shown)\" is not available: \(reason) (`mcpd list` shows every server's state)", config.secrets)
        }
        let suggestions = router.suggestions(for: name)
        var hint = suggestions.isEmpty ? "" : "; did you mean \(suggestions.map { "\"\($0)\"" }.joined(separator: ", "))?"
        if suggestions.isEmpty && !down.isEmpty {
            let names = down.prefix(5).map { "\"\($0.name)\" (\($0.displayState))" }.joined(separator: ", ")
            hint = "; \(down.count == 1 ? "a server lists" : "\(down.count) servers list") nothing, as \(down.count == 1 ? "it is" : "they are") not running: \(names)\(down.count > 5 ? ", ..." : "")"
        }
        return "Unknown \(noun): \"\(shown)\" (mcpd lists its \(noun)s in \(list))\(hint)"
    }

    /// Why `tool` of `backend` is refused, when it is withheld (`pin: strict`); `shown`: the
    /// name the client used.
    func withheldMessage(_ backend: Backend, _ tool: String, shown: String? = nil) -> String? {
        guard let change = backend.changedTools[tool], backend.withholds(tool, config.gateway) else { return nil }
        return "Tool \"\(shown ?? tool)\" is withheld: its definition changed since it was pinned (sha256 \(change.pinned.prefix(12)) -> \(change.current.prefix(12))) and server \"\(backend.name)\" pins strictly; review the change, then run `mcpd approve \(backend.name) \(tool)`"
    }

    /// The server named `name`, if it is configured and enabled.
    func backend(named name: String) -> Backend? { backendsByName[name] }

    /// The route of a subscription's key (the resource's URI in the gateway's view).
    func subscriptionRoute(_ key: String) -> Route? {
        view.resourceRoute(key, backendsByName: backendsByName)
    }

    /// A session ended. A stdio gateway has one client: when it is done, mcpd is done. The
    /// shutdown runs at the loop's next safe point, never inside the handler that ended the
    /// session (a backend's exit, a write error), which may still be reconciling its state.
    /// A session ended: the stdio session's end stops mcpd; another's is dropped.
    func sessionFinished(_ session: ClientSession) {
        guard session.endsGateway else {
            sessions.removeAll { $0 === session }
            return
        }
        loop.execute { [unowned self] in shutdown(reason: "the client closed its input") }
    }

    /// Adds a session served by another front (HTTP).
    func addSession(_ session: ClientSession) {
        sessions.append(session)
        session.start()
    }

    /// Stops everything in order; `onStopped` runs when the last handle is closed. A second call
    /// while stopping kills the backends at once.
    public func shutdown(reason: String) {
        loop.assertInLoop()
        if isShuttingDown {
            if reason == "signal" {
                log.warning("stopping now: killing every backend's process group")
                for backend in allBackends { backend.kill() }
            }
            return
        }
        isShuttingDown = true
        notifier?.send("STOPPING=1\nSTATUS=shutting down (\(reason))")
        log.info("shutting down (\(reason)): stopping \(backends.count) backend\(backends.count == 1 ? "" : "s")")
        startupTimer?.close()
        startupTimer = nil
        for session in sessions { session.transport.stopReading() }
        httpServer?.drain()
        streamableHTTP?.endAll()
        // Nothing new arrives; what is in flight is answered with an error by the backend's exit.
        let stopping = backends + retiring + isolated
        var remaining = stopping.count
        if remaining == 0 {
            finishShutdown()
            return
        }
        for backend in stopping {
            backend.stopAll { [unowned self] in
                remaining -= 1
                if remaining == 0 { finishShutdown() }
            }
        }
    }

    private func finishShutdown() {
        httpServer?.closeAll()
        httpServer = nil
        sweepTimer?.close()
        sweepTimer = nil
        recordTimer?.close()
        recordTimer = nil
        watchdogTimer?.close()
        watchdogTimer = nil
        if let file = runRecordPath { stateDirectory?.remove(file) }
        trimTimer?.close()
        trimTimer = nil
        for watcher in signalWatchers { watcher.close() }
        signalWatchers.removeAll()
        for backend in allBackends + retiring { backend.closeHandles() }
        // Descendants that left their backend's process group and outlived their parent were
        // re-parented to mcpd (a subreaper): they go with it.
        let orphans = ProcessSetup.orphans(excluding: [])
        if !orphans.isEmpty {
            log.info("killing \(orphans.count) process\(orphans.count == 1 ? "" : "es") left behind by backends: pid \(orphans.map(String.init).joined(separator: ", "))")
            for pid in orphans {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
            }
        }
        for session in sessions { session.close() }
        log.info("stopped")
        log.detach(flushDeadlineMs: 2000)
        onStopped?()
    }

    /// A client's output fell below its low watermark: backends paused for it read again.
    func clientOutputDrained() {
        guard !clientOutputStalled else { return }
        for backend in allBackends { backend.resumeReading() }
        // What queued during the stall is freed as it drains; a second later the heap's free
        // pages go back to the system, so a stall does not leave mcpd bigger.
        guard trimTimer == nil else { return }
        let timer = LoopTimer(loop: loop, unreferenced: true)
        trimTimer = timer
        timer.start(timeout: 1000) { [unowned self] in
            trimTimer?.close()
            trimTimer = nil
            ProcessSetup.releaseFreeMemory()
        }
    }
}
