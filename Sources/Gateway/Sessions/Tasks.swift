import Reactor

/// Tasks (2025-11-25, experimental) through mcpd: a task-augmented `tools/call` is answered with
/// a task whose id mcpd exposes as `<server><separator><the backend's id>`; `tasks/get`,
/// `tasks/result` and `tasks/cancel` are routed by that id, spliced back to the backend's own;
/// `tasks/list` merges every server's tasks; `notifications/tasks/status` reaches the client with
/// the id exposed (`BackendTraffic.swift`). Stateless clients get none of this yet: there tasks
/// are an extension.
extension ClientSession {
    /// `tasks/get`, `tasks/result`, `tasks/cancel`: routed by `params.taskId`.
    func routeTask(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan, method: StaticString, place: TaskIDPlace) {
        let idRange = scan.id!
        if era == .stateless { return methodNotFound(frame, raw, scan, because: "tasks are an extension in protocol \(ProtocolVersion.stateless)") }
        guard let params = scan.params, let taskRange = gateway.scanner.member("taskId", inObjectAt: params, of: raw),
              raw[taskRange.lowerBound] == UInt8(ascii: "\""),
              let taskID = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[taskRange]))
        else {
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "\(method) needs params.taskId (a string)")
            return
        }
        guard let (server, original) = ExposedTaskID.split(taskID, separator: gateway.config.gateway.separator),
              let backend = gateway.backend(named: server)
        else {
            sendError(frame, idRange, code: ErrorCode.invalidParams,
                      message: "Unknown task \"\(taskID.prefix(200))\": mcpd's task ids are <server>\(gateway.config.gateway.separator)<id>, as tools/call and tasks/list give them")
            return
        }
        forward(frame, scan, method: method, route: Route(backend: backend, originalName: original), renaming: taskRange, taskID: place)
    }

    /// A backend's answer that carries a task id: the client's id put back and the task id
    /// exposed; everything else as the backend sent it.
    func taskRequestSucceeded(_ frame: ByteBuffer, replacing idRange: Range<Int>, with id: RawValue, result: Range<Int>, place: TaskIDPlace,
                              backend: Backend, batch: BatchCollector?)
    {
        let scanner = gateway.scanner
        let taskRange: Range<Int>? = frame.withUnsafeReadableBytes { raw in
            switch place {
            case .createdTask:
                return scanner.member("task", inObjectAt: result, of: raw).flatMap { scanner.member("taskId", inObjectAt: $0, of: raw) }
            case .task:
                return scanner.member("taskId", inObjectAt: result, of: raw)
            case .relatedTask:
                return scanner.member("_meta", inObjectAt: result, of: raw)
                    .flatMap { scanner.member("io.modelcontextprotocol/related-task", inObjectAt: $0, of: raw) }
                    .flatMap { scanner.member("taskId", inObjectAt: $0, of: raw) }
            }
        }
        guard let taskRange,
              let original = frame.withUnsafeReadableBytes({ raw in
                  raw[taskRange.lowerBound] == UInt8(ascii: "\"") ? try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[taskRange])) : nil
              })
        else {
            requestSucceeded(frame, replacing: idRange, with: id, result: result, batch: batch)
            return
        }
        let exposed = jsonStringLiteral(ExposedTaskID.expose(server: backend.name, separator: gateway.config.gateway.separator, id: original))
        relayEdited(frame, replacing: idRange, with: id, and: (taskRange, exposed), batch: batch)
        requestEnded()
    }

    /// `tasks/list`: every server's tasks (each backend's pages followed), with ids exposed, in
    /// one page.
    func listTasks(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        if era == .stateless { return methodNotFound(frame, raw, scan, because: "tasks are an extension in protocol \(ProtocolVersion.stateless)") }
        // A server of `isolation: session` holds this session's tasks in its own process.
        let processes = view.backends.compactMap { server in
            server.config.isolation == "session" && !endsGateway && !isStateless ? ownProcesses.first { $0.name == server.name } : server
        }
        let backends = processes.filter { $0.state == .ready && $0.capabilities["tasks"]?["list"].map { $0 != .null } == true }
        guard !backends.isEmpty else { return methodNotFound(frame, raw, scan, because: "no server behind mcpd lists tasks") }
        if let cursor = scan.paramsCursor, !rangeEquals(raw, cursor, "null") {
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "Invalid cursor: mcpd lists every task in one page")
            return
        }
        let clientID = RawValue(frame, idRange)
        let batch = currentBatch
        batch?.outstanding += 1
        inFlight += 1
        var remaining = backends.count
        var collected: [[JSONValue]] = Array(repeating: [], count: backends.count)
        let separator = gateway.config.gateway.separator
        for (index, backend) in backends.enumerated() {
            backend.listTasks { [unowned self] tasks in
                collected[index] = tasks.map { task in
                    guard var object = task.objectValue, let id = object["taskId"]?.stringValue else { return task }
                    object["taskId"] = .string(ExposedTaskID.expose(server: backend.name, separator: separator, id: id))
                    return .object(object)
                }
                remaining -= 1
                guard remaining == 0 else { return }
                let result: JSONValue = ["tasks": .array(collected.flatMap { $0 })]
                var message = ByteBuffer(capacity: 256)
                message.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
                clientID.withBytes { message.append($0) }
                message.append(string: ",\"result\":")
                result.write(to: &message)
                message.appendByte(UInt8(ascii: "}"))
                if let batch {
                    batch.outstanding -= 1
                    batch.add(message)
                } else if !finished {
                    message.appendByte(0x0A)
                    output.write(message)
                }
                requestEnded()
            }
        }
    }
}
