import Reactor

/// A request relayed to the client: where the client's answer goes back.
enum RelayedServerRequest {
    /// A backend's own request, answered with the backend's own `id`; dropped if the process
    /// that asked (`epoch`) is gone.
    case backend(Backend, epoch: Int, id: RawValue)
    /// One of the input requests of a stateless-era server's input-required answer, by its key.
    case input(InputGathering, key: String)
}

/// Requests backends make of the client (`sampling/createMessage`, `elicitation/create`,
/// `roots/list`): relayed with an id of mcpd's, and the client's answer sent back with the
/// backend's own id.
extension ClientSession {
    /// The most backend requests waiting for one client's answer.
    static let maxServerRequests = 256

    /// Relays a backend's request to the client. Returns the error to answer the backend with
    /// instead: the one a client without the capability would give, when this client did not
    /// declare it.
    func relayServerRequest(_ frame: ByteBuffer, _ scan: MessageScan, capability: String, method: String, from backend: Backend) -> BackendFailure? {
        guard !finished, isInitialized else {
            return BackendFailure(code: ErrorCode.internalError, message: "the client is not connected; mcpd did not forward \(method)")
        }
        guard let declared = clientCapabilities[capability], declared != .null else {
            gateway.log.info("backend \"\(backend.name)\" asked \(method), but client \"\(clientName)\" did not declare the \(capability) capability; refused")
            return BackendFailure(code: ErrorCode.methodNotFound, message: "Method not found: the client did not declare the \(capability) capability, so mcpd did not forward \(method)")
        }
        if era == .stateless { return requestInput(frame, scan, method: method, from: backend) }
        guard serverRequests.count < ClientSession.maxServerRequests else {
            return BackendFailure(code: ErrorCode.internalError, message: "\(plural(serverRequests.count, "request")) already waiting for the client's answer; try again later")
        }
        let id = nextServerRequestID
        nextServerRequestID += 1
        serverRequests[id] = .backend(backend, epoch: backend.epoch, id: RawValue(frame, scan.id!))
        var splice = Splice()
        splice.replace(scan.id!, decimal: id)
        splice.write(frame, to: output)
        return nil
    }

    /// The client answered one of the relayed requests.
    func handleResponse(_ frame: ByteBuffer, _ scan: MessageScan) {
        let idRange = scan.id!
        let id = frame.withUnsafeReadableBytes { parseGatewayInteger($0, idRange) }
        guard let id, let request = serverRequests.removeValue(forKey: id) else {
            gateway.log.debug("ignoring a response from the client to a request mcpd did not send or no longer waits for: \(frame.string.prefix(200))")
            return
        }
        switch request {
        case .backend(let backend, let epoch, let backendID):
            backend.deliverClientResponse(frame, replacing: idRange, with: backendID, epoch: epoch)
        case .input(let gathering, let key):
            inputAnswered(frame, scan, gathering: gathering, key: key)
        }
    }

    /// The backend cancelled one of its requests to the client: the client is told with
    /// mcpd's id for it.
    func serverRequestCancelled(_ frame: ByteBuffer, requestIDRange: Range<Int>, backend: Backend) {
        let match = frame.withUnsafeReadableBytes { raw in
            serverRequests.first {
                if case .backend(let asker, let epoch, let id) = $0.value { return asker === backend && epoch == backend.epoch && id.equals(raw, requestIDRange) }
                return false
            }?.key
        }
        guard let id = match else { return }
        serverRequests[id] = nil
        var splice = Splice()
        splice.replace(requestIDRange, decimal: id)
        relay(frame, splice)
    }

    /// Answers every backend request still waiting for this client with an error.
    func refuseServerRequests(_ reason: String) {
        let waiting = serverRequests.values
        serverRequests.removeAll()
        for case .backend(let backend, let epoch, let id) in waiting {
            backend.answer(id, code: ErrorCode.internalError, message: reason, epoch: epoch)
        }
    }
}
