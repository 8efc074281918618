import Reactor

/// A client's requests: the ones mcpd answers itself and the ones it routes to a backend.
extension ClientSession {
    /// Every request but `tools/call` (kept apart so that the hot path's compare stays first).
    @inline(never)
    func handleOtherRequest(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        let method = scan.method!
        if rangeEquals(raw, method, "\"ping\"") {
            if era == .stateless { return methodNotFound(frame, raw, scan, because: "ping is not part of protocol \(ProtocolVersion.stateless)") }
            sendResult(frame, idRange, literal: "{}")
        } else if rangeEquals(raw, method, "\"tools/list\"") {
            list(.tools, frame, raw, scan)
        } else if rangeEquals(raw, method, "\"resources/read\"") {
            routeByURI(frame, raw, scan, method: "resources/read", subscribe: nil)
        } else if rangeEquals(raw, method, "\"prompts/get\"") {
            getPrompt(frame, raw, scan)
        } else if rangeEquals(raw, method, "\"prompts/list\"") {
            list(.prompts, frame, raw, scan)
        } else if rangeEquals(raw, method, "\"resources/list\"") {
            list(.resources, frame, raw, scan)
        } else if rangeEquals(raw, method, "\"resources/templates/list\"") {
            list(.templates, frame, raw, scan)
        } else if rangeEquals(raw, method, "\"resources/subscribe\"") {
            routeByURI(frame, raw, scan, method: "resources/subscribe", subscribe: true)
        } else if rangeEquals(raw, method, "\"resources/unsubscribe\"") {
            routeByURI(frame, raw, scan, method: "resources/unsubscribe", subscribe: false)
        } else if rangeEquals(raw, method, "\"completion/complete\"") {
            complete(frame, raw, scan)
        } else if rangeEquals(raw, method, "\"logging/setLevel\"") {
            setLevel(frame, raw, scan)
        } else if rangeEquals(raw, method, "\"initialize\"") {
            initialize(frame, scan)
        } else if rangeEquals(raw, method, "\"tasks/get\"") {
            routeTask(frame, raw, scan, method: "tasks/get", place: .task)
        } else if rangeEquals(raw, method, "\"tasks/result\"") {
            routeTask(frame, raw, scan, method: "tasks/result", place: .relatedTask)
        } else if rangeEquals(raw, method, "\"tasks/cancel\"") {
            routeTask(frame, raw, scan, method: "tasks/cancel", place: .task)
        } else if rangeEquals(raw, method, "\"tasks/list\"") {
            listTasks(frame, raw, scan)
        } else if rangeEquals(raw, method, "\"server/discover\"") {
            discover(frame, scan)
        } else if rangeEquals(raw, method, "\"subscriptions/listen\"") {
            if era != .stateless { return methodNotFound(frame, raw, scan, because: "subscriptions/listen is part of protocol \(ProtocolVersion.stateless); this client initialized with \(negotiatedVersion ?? "none")") }
            listen(frame, raw, scan)
        } else {
            methodNotFound(frame, raw, scan, because: nil)
        }
    }

    func methodNotFound(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan, because reason: String?) {
        let name = (try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[scan.method!]))) ?? "?"
        sendError(frame, scan.id!, code: ErrorCode.methodNotFound, message: "Method not found: \(name)\(reason.map { " (\($0))" } ?? "")")
    }

    func initialize(_ frame: ByteBuffer, _ scan: MessageScan) {
        let idRange = scan.id!
        // A client that probed with server/discover may still choose the handshake; one that
        // holds stateless state (listen streams, calls waiting for input) may not.
        if era == .stateless && (!listenStreams.isEmpty || !inputWaits.isEmpty) {
            sendError(id: RawValue(frame, idRange), code: ErrorCode.unsupportedVersion,
                      message: "this client already speaks protocol \(ProtocolVersion.stateless), which has no initialize",
                      data: ["supported": [.string(ProtocolVersion.stateless)]])
            return
        }
        if currentBatch != nil {
            sendError(frame, idRange, code: ErrorCode.invalidRequest, message: "initialize cannot be part of a batch")
            return
        }
        guard let paramsRange = scan.params, let params = try? JSONParser.parse(frame.slice(paramsRange)),
              let requested = params["protocolVersion"]?.stringValue
        else {
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "initialize needs params.protocolVersion (a string)")
            return
        }
        let version = ProtocolVersion.negotiate(requested)
        negotiatedVersion = version
        era = .handshake
        predatesStructuredOutput = version < ProtocolVersion.structuredOutput
        clientCapabilities = params["capabilities"] ?? .null
        if let name = params["clientInfo"]?["name"]?.stringValue { clientName = name }
        gateway.log.info("client \"\(clientName)\" initialized with protocol \(version)\(version == requested ? "" : " (it asked for \(requested))")")
        let result: JSONValue = [
            "protocolVersion": .string(version),
            "capabilities": view.capabilities,
            "serverInfo": ["name": "mcpd", "version": .string(GatewayVersion.string)],
        ]
        sendResult(frame, idRange, buffer: result.serialized)
    }

    // MARK: Lists

    /// A page of one of mcpd's merged lists.
    private func list(_ kind: ListKind, _ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        if kind != .tools && !view.anyBackendDeclares(kind.capability) {
            methodNotFound(frame, raw, scan, because: "no server behind mcpd offers \(kind.capability)")
            return
        }
        var cursor: String?
        if let range = scan.paramsCursor, !rangeEquals(raw, range, "null") {
            guard raw[range.lowerBound] == UInt8(ascii: "\""), let text = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[range])) else {
                sendError(frame, idRange, code: ErrorCode.invalidParams, message: "Invalid cursor: params.cursor must be a string from nextCursor")
                return
            }
            cursor = text
        }
        switch view.page(kind, cursor: cursor, pageSize: gateway.config.gateway.pageSize, forOlderClient: kind == .tools && predatesStructuredOutput) {
        case .success(let page): sendResult(frame, idRange, buffer: page, cacheHints: true)
        case .failure(let failure): sendError(frame, idRange, code: ErrorCode.invalidParams, message: failure.message)
        }
    }

    // MARK: Routed requests

    func callTool(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan, meta: Bool = true) {
        if era == .stateless && resumeWithInput(frame, raw, scan) { return }
        if view.registration, let range = scan.paramsName,
           let name = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[range])), let tool = AdminTool(name: name) {
            guard isAdmin else {
                return sendError(frame, scan.id!, code: ErrorCode.invalidParams,
                                 message: "Tool \"\(name)\" is only for admin roles (admin, and gateway.admin_roles); this session's role is \(view.role.map { "\"\($0)\"" } ?? "none")")
            }
            return callAdmin(tool, frame, raw, scan)
        }
        if meta && view.isMeta, let name = scan.paramsName, let meta = MetaTool(literal: UnsafeRawBufferPointer(rebasing: raw[name])) {
            return callMeta(meta, frame, raw, scan)
        }
        if view.hasOwnTools, let range = scan.paramsName, let name = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[range])) {
            if let tool = view.commandTools[name] { return runCommandTool(tool, frame, raw, scan) }
            if let pipeline = view.pipelines[name] { return runPipeline(pipeline, frame, raw, scan) }
        }
        routeByName(frame, raw, scan, router: view.router, method: "tools/call", noun: "tool", list: "tools/list")
    }

    private func getPrompt(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        if era == .stateless && resumeWithInput(frame, raw, scan) { return }
        routeByName(frame, raw, scan, router: view.promptRouter, method: "prompts/get", noun: "prompt", list: "prompts/list")
    }

    /// `tools/call` and `prompts/get`: routed by `params.name`, which is spliced back to the
    /// backend's own name.
    @inline(__always)
    func routeByName(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan, router: Router,
                             method: StaticString, noun: StaticString, list: StaticString)
    {
        guard let nameRange = scan.paramsName, raw[nameRange.lowerBound] == UInt8(ascii: "\"") else {
            sendError(frame, scan.id!, code: ErrorCode.invalidParams, message: "\(method) needs params.name (a string)")
            return
        }
        let literal = UnsafeRawBufferPointer(rebasing: raw[nameRange])
        guard let route = router.route(literal: literal) else {
            let name = (try? JSONParser.parseString(literal)) ?? String(decoding: literal, as: UTF8.self)
            sendError(frame, scan.id!, code: ErrorCode.invalidParams,
                      message: roleRefusal(name, noun: "\(noun)") ?? serverViewWithheld(name, noun: "\(noun)")
                        ?? gateway.unknownNameMessage(name, router: router, noun: "\(noun)", list: "\(list)"))
            return
        }
        // A task-augmented call (2025-11-25) is answered with a task whose id is exposed.
        let task = route.backend.offersTasks && gateway.scanner.member("task", inObjectAt: scan.params!, of: raw) != nil
        forward(frame, scan, method: method, route: route, renaming: nameRange, taskID: task ? .createdTask : nil)
    }

    /// `resources/read`, `resources/subscribe` (`subscribe` true) and `resources/unsubscribe`
    /// (false): routed by `params.uri`, which is spliced back to the backend's own URI.
    private func routeByURI(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan, method: StaticString, subscribe: Bool?) {
        let idRange = scan.id!
        if subscribe != nil && era == .stateless {
            return methodNotFound(frame, raw, scan, because: "protocol \(ProtocolVersion.stateless) subscribes with subscriptions/listen")
        }
        if era == .stateless && resumeWithInput(frame, raw, scan) { return }
        if subscribe == nil ? !view.anyBackendDeclares("resources") : !view.supportsSubscriptions {
            methodNotFound(frame, raw, scan, because: subscribe == nil ? "no server behind mcpd offers resources" : "no server behind mcpd supports resource subscriptions")
            return
        }
        guard let uriRange = scan.paramsURI, raw[uriRange.lowerBound] == UInt8(ascii: "\""),
              let uri = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[uriRange]))
        else {
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "\(method) needs params.uri (a string)")
            return
        }
        guard let route = view.resourceRoute(uri, backendsByName: gateway.backendsByName) else {
            sendError(frame, idRange, code: ErrorCode.resourceNotFound,
                      message: "Resource not found: \"\(uri.prefix(200))\" (mcpd exposes resources as mcpd://<server>/<uri>; see resources/list)")
            return
        }
        guard view.admits(resource: route) else {
            sendError(frame, idRange, code: ErrorCode.resourceNotFound, message: view.roleRefusal("resource", uri) ?? "Resource not found")
            return
        }
        let exposed = ExposedURI.expose(server: route.backend.name, uri: route.originalName)
        if subscribe == true {
            guard subscriptions.count < ClientSession.maxSubscriptions else {
                sendError(frame, idRange, code: ErrorCode.invalidParams, message: "too many subscriptions (at most \(ClientSession.maxSubscriptions) per client)")
                return
            }
            subscriptions.insert(exposed)
        } else if subscribe == false {
            subscriptions.remove(exposed)
        }
        if let subscribe, route.backend.era == .stateless {
            // A server of the stateless era alone: mcpd subscribes on its listen stream.
            if subscribe || !gateway.sessions.contains(where: { $0.isSubscribed(exposed) }) {
                route.backend.subscribe(route.originalName, subscribe)
            }
            sendResult(frame, idRange, literal: "{}")
            return
        }
        if subscribe != nil && route.backend.process(for: self).owner == nil
            && gateway.sessions.contains(where: { $0 !== self && $0.isSubscribed(exposed) })
        {
            // Another session holds the shared process's subscription: it stays as it is, and
            // this session's updates come from it. (A session's own process is its alone.)
            sendResult(frame, idRange, literal: "{}")
            return
        }
        forward(frame, scan, method: method, route: route, renaming: uriRange)
    }

    /// The most resources one client may subscribe to.
    static let maxSubscriptions = 10_000

    /// `completion/complete`: routed by the prompt or resource template in `params.ref`.
    private func complete(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        guard view.anyBackendDeclares("completions") else {
            methodNotFound(frame, raw, scan, because: "no server behind mcpd offers completions")
            return
        }
        let scanner = gateway.scanner
        guard let params = scan.params, let ref = scanner.member("ref", inObjectAt: params, of: raw),
              let type = scanner.member("type", inObjectAt: ref, of: raw)
        else {
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "completion/complete needs params.ref with a type")
            return
        }
        if rangeEquals(raw, type, "\"ref/prompt\"") {
            guard let nameRange = scanner.member("name", inObjectAt: ref, of: raw), raw[nameRange.lowerBound] == UInt8(ascii: "\""),
                  let route = view.promptRouter.route(literal: UnsafeRawBufferPointer(rebasing: raw[nameRange]))
            else {
                sendError(frame, idRange, code: ErrorCode.invalidParams, message: "completion/complete: params.ref.name is not a prompt mcpd lists")
                return
            }
            forward(frame, scan, method: "completion/complete", route: route, renaming: nameRange)
        } else if rangeEquals(raw, type, "\"ref/resource\"") {
            guard let uriRange = scanner.member("uri", inObjectAt: ref, of: raw), raw[uriRange.lowerBound] == UInt8(ascii: "\""),
                  let uri = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[uriRange])),
                  let route = view.resourceRoute(uri, backendsByName: gateway.backendsByName), view.admits(resource: route)
            else {
                sendError(frame, idRange, code: ErrorCode.invalidParams, message: "completion/complete: params.ref.uri is not a resource template mcpd lists")
                return
            }
            forward(frame, scan, method: "completion/complete", route: route, renaming: uriRange)
        } else {
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "completion/complete: params.ref.type must be ref/prompt or ref/resource")
        }
    }

    /// At `/mcp/<server>`, where names have no prefix: why a withheld tool is refused.
    private func serverViewWithheld(_ name: String, noun: String) -> String? {
        guard noun == "tool", let server = view.server, let backend = gateway.backend(named: server) else { return nil }
        return gateway.withheldMessage(backend, name)
    }

    /// Why `name` (a tool or prompt) is refused when this session's role hides it: nil when the
    /// view of the same scope without a role does not list it either.
    private func roleRefusal(_ name: String, noun: String) -> String? {
        guard view.role != nil, let all = gateway.view(server: view.server, role: nil),
              (noun == "tool" ? all.router : all.promptRouter).route(name) != nil
                || (noun == "tool" && (all.commandTools[name] != nil || all.pipelines[name] != nil))
        else { return nil }
        return view.roleRefusal(noun, name)
    }

    /// Sends a request to the route's backend; the answer comes back through
    /// `requestSucceeded` or `requestFailed`.
    func forward(_ frame: ByteBuffer, _ scan: MessageScan, method: StaticString, route: Route, renaming: Range<Int>,
                 taskID: TaskIDPlace? = nil)
    {
        if let failure = route.backend.process(for: self).forward(frame, scan: scan, method: method, route: route, renaming: renaming,
                                                                  session: self, batch: currentBatch, taskID: taskID)
        {
            sendError(frame, scan.id!, code: failure.code, message: failure.message)
            return
        }
        inFlight += 1
        currentBatch?.outstanding += 1
    }

    // MARK: Logging

    static let logLevels: Set<String> = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]

    /// `logging/setLevel`: applied to every backend that declared logging (and remembered for
    /// those that start later). The backends get it before any later request of this client.
    private func setLevel(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        if era == .stateless {
            return methodNotFound(frame, raw, scan, because: "logging/setLevel is not part of protocol \(ProtocolVersion.stateless)")
        }
        guard view.anyBackendDeclares("logging") else {
            methodNotFound(frame, raw, scan, because: "no server behind mcpd offers logging")
            return
        }
        guard let params = scan.params, let levelRange = gateway.scanner.member("level", inObjectAt: params, of: raw),
              raw[levelRange.lowerBound] == UInt8(ascii: "\""),
              let level = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[levelRange])),
              ClientSession.logLevels.contains(level)
        else {
            sendError(frame, idRange, code: ErrorCode.invalidParams,
                      message: "Invalid params: logging/setLevel needs params.level, one of \(ClientSession.logLevels.sorted().joined(separator: ", "))")
            return
        }
        gateway.clientLogLevel = level
        let log = gateway.log
        let own = ownProcesses.filter { $0.state == .ready && $0.declares("logging") }
        for backend in view.readyBackends(declaring: "logging") + own {
            backend.setLevel(level) { error in
                if let error { log.warning("backend \"\(backend.name)\" refused logging/setLevel \(level): \(error)") }
            }
        }
        sendResult(frame, idRange, literal: "{}")
    }
}
