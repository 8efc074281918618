import Reactor

/// The MCP client side of a backend: the handshake, mcpd's own requests, and the lists.
extension Backend {
    /// What mcpd declares to backends. A handshake-era backend is initialized once for every
    /// client, so mcpd declares what it can relay; a server request for a client that did not
    /// declare the capability is answered as such a client would answer it.
    static let clientCapabilities: JSONValue = [
        "roots": ["listChanged": true],
        "sampling": .object(JSONObject()),
        "elicitation": ["form": .object(JSONObject()), "url": .object(JSONObject())],
    ]

    func sendInitialize() {
        let params: JSONValue = [
            "protocolVersion": .string(ProtocolVersion.latest),
            "capabilities": Backend.clientCapabilities,
            "clientInfo": ["name": "mcpd", "version": .string(GatewayVersion.string)],
        ]
        request("initialize", params: params) { [unowned self] result in
            guard state == .initializing else { return }
            switch result {
            case .failure(let failure):
                failStart("initialize failed: \(failure.message)")
            case .success(let reply):
                guard let result = reply.result?.objectValue else {
                    let refusal = "initialize was refused: \(reply.errorMessage ?? "no result")"
                    // A server of the stateless era alone refuses the handshake: ask it that way.
                    if config.era == "auto" && reply.errorCode != nil {
                        sendDiscover { [unowned self] why in failStart("\(refusal); and server/discover: \(why)") }
                    } else {
                        failStart(refusal)
                    }
                    return
                }
                protocolVersion = result["protocolVersion"]?.stringValue
                capabilities = result["capabilities"] ?? .null
                serverInfo = result["serverInfo"] ?? .null
                notify("notifications/initialized")
                fetchLists(ListKind.allCases) { [unowned self] changed in becomeReady(changed: changed) }
            }
        }
    }

    /// The stateless envelope of mcpd's own requests to a stateless-era process.
    static let envelope: JSONValue = [
        "io.modelcontextprotocol/protocolVersion": .string(ProtocolVersion.stateless),
        "io.modelcontextprotocol/clientCapabilities": clientCapabilities,
        "io.modelcontextprotocol/clientInfo": ["name": "mcpd", "version": .string(GatewayVersion.string)],
    ]

    /// `server/discover` says whether the server speaks 2026-07-28; any other answer (an
    /// error, no such version) or a timeout means it does not, and `refused` gets why. A
    /// stateless twin is then ready; a server's own process, which asked after `initialize`
    /// was refused, turns to the stateless era and fetches its lists in it.
    func sendDiscover(refused: ((String) -> Void)? = nil) {
        let refused = refused ?? { [unowned self] why in notStateless(why) }
        request("server/discover", params: .object(JSONObject()), timeoutMs: min(timeoutMs, Backend.discoverTimeoutMs)) { [unowned self] result in
            guard state == .initializing else { return }
            switch result {
            case .failure(let failure):
                refused("server/discover: \(failure.message)")
            case .success(let reply):
                guard let result = reply.result?.objectValue,
                      result["supportedVersions"]?.arrayValue?.contains(.string(ProtocolVersion.stateless)) == true
                else {
                    refused("server/discover: \(reply.errorMessage ?? "2026-07-28 is not among its versions")")
                    return
                }
                protocolVersion = ProtocolVersion.stateless
                capabilities = result["capabilities"] ?? .null
                serverInfo = result["_meta"]?[ProtocolVersion.serverInfoKey] ?? .null
                if isTwin {
                    becomeReady()
                    return
                }
                era = .stateless
                speaksStateless = true
                log.info("backend \"\(name)\" speaks only protocol \(ProtocolVersion.stateless); mcpd speaks it for its clients of every version")
                fetchLists(ListKind.allCases) { [unowned self] changed in becomeReady(changed: changed) }
            }
        }
    }

    /// The least time a starting server gets to answer mcpd's handshake and list requests,
    /// whatever its call deadline (`timeout`).
    static let handshakeTimeoutMs: UInt64 = 60_000

    /// How long a server may take to answer `server/discover` before mcpd takes it as a no
    /// (the official SDK's client waits as long).
    static let discoverTimeoutMs: UInt64 = 10_000

    /// The server does not speak the stateless era: this process is stopped, and its clients
    /// are served by the handshake-era process.
    private func notStateless(_ why: String) {
        log.info("backend \"\(name)\" does not speak protocol \(ProtocolVersion.stateless) (\(why)); its stateless clients are served through the handshake era")
        lastError = "does not speak protocol \(ProtocolVersion.stateless)"
        abandonStartQueue(lastError!)
        stop {}
    }

    /// Sends one of mcpd's own requests; returns its id here.
    @discardableResult
    func request(_ method: StaticString, params: JSONValue, timeoutMs: UInt64? = nil,
                 _ completion: @escaping (Result<BackendReply, BackendFailure>) -> Void) -> Int?
    {
        guard let process else {
            completion(.failure(BackendFailure(code: ErrorCode.internalError, message: "backend \"\(name)\" is not running")))
            return nil
        }
        var params = params
        if era == .stateless, case .object(var object) = params {
            object["_meta"] = Backend.envelope
            params = .object(object)
        }
        // The handshake and first lists may take longer than a call (a first `npx` run
        // downloads the server): at least `handshakeTimeoutMs`.
        let deadline = timeoutMs ?? (state == .initializing ? max(self.timeoutMs, Backend.handshakeTimeoutMs) : self.timeoutMs)
        let id = pending.insert(PendingRequest(origin: .gateway(completion), method: method, route: nil, deadline: loop.now + deadline))
        var message = ByteBuffer(capacity: 256)
        message.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
        message.append(decimal: id)
        message.append(string: ",\"method\":\"\(method)\",\"params\":")
        params.write(to: &message)
        message.append(string: "}\n")
        process.stdin.write(message)
        return id
    }

    /// Sends a notification of mcpd's own.
    func notify(_ method: String, params: JSONValue? = nil) {
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

    /// Refreshes the lists of `kinds` that the backend declares, one after the other, and
    /// calls `done` with the kinds whose items changed.
    func fetchLists(_ kinds: [ListKind], _ done: @escaping ([ListKind]) -> Void) {
        var remaining = kinds.filter { declares($0.capability) }[...]
        var changed: [ListKind] = []
        listsIncomplete = false
        // What it no longer declares, it no longer lists (its last process, or the catalog,
        // may have).
        for kind in kinds where !declares(kind.capability) && !lists[kind.rawValue].isEmpty {
            lists[kind.rawValue] = []
            changed.append(kind)
        }
        let epoch = self.epoch
        func next() {
            guard self.epoch == epoch, state == .initializing || state == .ready else { return }
            guard let kind = remaining.popFirst() else {
                done(changed)
                return
            }
            fetchPages(kind, cursor: nil, collected: []) { [unowned self] items in
                if items != lists[kind.rawValue] {
                    lists[kind.rawValue] = items
                    changed.append(kind)
                }
                next()
            }
        }
        next()
    }

    /// The most pages and items mcpd reads of one list.
    static let maxListPages = 1000
    static let maxListItems = 10_000

    /// Pages through one list.
    private func fetchPages(_ kind: ListKind, cursor: JSONValue?, collected: [JSONObject], page: Int = 0,
                            _ done: @escaping ([JSONObject]) -> Void)
    {
        var params = JSONObject()
        if let cursor { params["cursor"] = cursor }
        request(kind.method, params: .object(params)) { [unowned self] result in
            switch result {
            case .failure(let failure):
                log.warning("backend \"\(name)\": \(kind.method) failed: \(failure.message); serving none of its \(kind.resultKey)")
                listsIncomplete = true
                done(collected)
            case .success(let reply):
                guard let result = reply.result else {
                    // A server that declares resources need not serve templates.
                    let quiet = kind == .templates && reply.errorCode == ErrorCode.methodNotFound
                    let message = "backend \"\(name)\": \(kind.method) returned an error: \(reply.errorMessage ?? "?"); serving none of its \(kind.resultKey)"
                    if quiet { log.debug(message) } else { log.warning(message) }
                    if !quiet { listsIncomplete = true }
                    done(collected)
                    return
                }
                var items = collected
                var seen = Set(items.compactMap { $0[kind.identity]?.stringValue })
                for item in result[kind.resultKey]?.arrayValue ?? [] {
                    guard let object = item.objectValue, let identity = object[kind.identity]?.stringValue, !identity.isEmpty else {
                        log.warning("backend \"\(name)\": skipping an item of \(kind.method) without a \(kind.identity): \(item.jsonText.prefix(200))")
                        continue
                    }
                    guard seen.insert(identity).inserted else {
                        log.warning("backend \"\(name)\" lists \(kind.identity) \"\(identity)\" twice in \(kind.method); keeping the first")
                        continue
                    }
                    items.append(object)
                }
                if let next = result["nextCursor"], next != .null, page + 1 < Backend.maxListPages, items.count < Backend.maxListItems {
                    fetchPages(kind, cursor: next, collected: items, page: page + 1, done)
                } else {
                    if items.count >= Backend.maxListItems || page + 1 >= Backend.maxListPages {
                        log.warning("backend \"\(name)\": \(kind.method) stopped at \(items.count) \(kind.resultKey) in \(page + 1) pages (mcpd's limit)")
                    }
                    done(items)
                }
            }
        }
    }

    /// A `notifications/<capability>/list_changed` from the backend: refresh those lists, then
    /// tell the gateway.
    func listChanged(_ capability: String) {
        guard state == .ready else { return }
        let kinds = ListKind.refreshed(by: capability)
        fetchLists(kinds) { [unowned self] changed in
            guard state == .ready, !changed.isEmpty else { return }
            log.info("backend \"\(name)\" changed its \(changed.map(\.resultKey).joined(separator: " and ")): now \(changed.map { $0.counted(lists[$0.rawValue].count) }.joined(separator: ", "))")
            gateway.backendDidChange(self, lists: changed)
        }
    }

    /// Sends `logging/setLevel`; `done` gets the error message, if any.
    func setLevel(_ level: String, _ done: @escaping (String?) -> Void) {
        request("logging/setLevel", params: ["level": .string(level)]) { result in
            switch result {
            case .failure(let failure): done(failure.message)
            case .success(let reply): done(reply.result == nil ? (reply.errorMessage ?? "refused") : nil)
            }
        }
    }

    /// Every task the backend lists (pages followed, at most `maxListItems`); none on an error.
    func listTasks(cursor: JSONValue? = nil, collected: [JSONValue] = [], page: Int = 0, _ done: @escaping ([JSONValue]) -> Void) {
        var params = JSONObject()
        if let cursor { params["cursor"] = cursor }
        request("tasks/list", params: .object(params)) { [unowned self] result in
            guard case .success(let reply) = result, let listed = reply.result else {
                log.warning("backend \"\(name)\": tasks/list failed; listing none of its tasks")
                done(collected)
                return
            }
            let tasks = collected + (listed["tasks"]?.arrayValue ?? [])
            if let next = listed["nextCursor"], next != .null, page + 1 < Backend.maxListPages, tasks.count < Backend.maxListItems {
                listTasks(cursor: next, collected: tasks, page: page + 1, done)
            } else {
                done(tasks)
            }
        }
    }
}
