import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// A backend call held open while a stateless client answers an input-required result.
struct InputWait {
    let backend: Backend
    let epoch: Int
    /// mcpd's id of the client's call on the backend (still in flight there).
    let gatewayID: Int
    /// The key of the input request in `inputRequests`.
    let key: String
    /// The backend's own id for its request to the client.
    let backendRequestID: RawValue
}

/// Era translation for a stateless (2026-07-28) client and a handshake-era backend: the
/// backend's `sampling/createMessage`, `elicitation/create` or `roots/list`, sent while it
/// serves the client's `tools/call`, `prompts/get` or `resources/read`, becomes an
/// input-required result for that call:
///
///     client                  mcpd                              backend
///     tools/call id 5   ->    (id 12 on the backend)       ->   tools/call id 12
///                                                         <-    elicitation/create id 3
///     <- id 5: {"resultType":"input_required",
///               "inputRequests":{"mcpd-1":{method, params}},
///               "requestState":"<handle>"}
///     tools/call id 6 + inputResponses + requestState ->
///                             answers id 3 with inputResponses["mcpd-1"]  ->
///                             the call's answer now goes to id 6      <-    id 12 result
///     <- id 6: result
///
/// The handle is `mcpd.` and 128 random bits from the system's CSPRNG, valid only for this
/// session and only while the backend call is in flight (its deadline is the call's): a retry
/// with an unknown or spent handle gets -32602. A `requestState` without the prefix is a
/// backend's own (a server served in its stateless era) and passes through untouched.
extension ClientSession {
    /// The most calls one client may leave waiting for input.
    static let maxInputWaits = 256

    /// Turns a backend's request into an input-required answer to the client's call it is
    /// serving. Returns the error to answer the backend with when that is not possible.
    func requestInput(_ frame: ByteBuffer, _ scan: MessageScan, method: String, from backend: Backend) -> BackendFailure? {
        guard let call = backend.oldestRequest(of: self) else {
            return BackendFailure(code: ErrorCode.invalidRequest, message: "\(method) is only relayed while the backend serves a request of the client")
        }
        let callMethod = call.method.description
        guard callMethod == "tools/call" || callMethod == "prompts/get" || callMethod == "resources/read" else {
            return BackendFailure(code: ErrorCode.invalidRequest,
                                  message: "the client speaks protocol \(ProtocolVersion.stateless), where only tools/call, prompts/get and resources/read may ask for input (this is \(callMethod))")
        }
        inputWaits = inputWaits.filter { $0.value.backend.pending[$0.value.gatewayID] != nil }
        guard inputWaits.count < ClientSession.maxInputWaits else {
            return BackendFailure(code: ErrorCode.internalError, message: "\(inputWaits.count) calls are already waiting for the client's input")
        }
        guard case .client(_, let clientID, _, _)? = backend.pending[call.gatewayID]?.origin else { return nil }
        nextInputKey += 1
        let key = "mcpd-\(nextInputKey)"
        let handle = ClientSession.newHandle()
        inputWaits[handle] = InputWait(backend: backend, epoch: backend.epoch, gatewayID: call.gatewayID, key: key,
                                       backendRequestID: RawValue(frame, scan.id!))
        var message = ByteBuffer(capacity: frame.readableBytes + 160)
        message.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
        clientID.withBytes { message.append($0) }
        message.append(string: ",\"result\":{\"resultType\":\"input_required\",\"inputRequests\":{")
        writeJSONString(key, to: &message)
        message.append(string: ":{\"method\":")
        writeJSONString(method, to: &message)
        if let params = scan.params {
            message.append(string: ",\"params\":")
            message.append(frame.slice(params))
        }
        message.append(string: "}},\"requestState\":\"\(handle)\"}}\n")
        output.write(message)
        gateway.log.debug("backend \"\(backend.name)\" asked \(method) during \(callMethod); sent the client an input-required result")
        return nil
    }

    /// A stateless client's retry of a call that got one of mcpd's input-required results: the
    /// backend gets the client's answer to its request, and the call's answer will go to the
    /// retry's id. Returns false when the request is not such a retry (no `requestState`, or a
    /// backend's own).
    func resumeWithInput(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) -> Bool {
        let scanner = gateway.scanner
        guard let params = scan.params, let stateRange = scanner.member("requestState", inObjectAt: params, of: raw),
              stateRange.count > ClientSession.handlePrefix.utf8.count + 1,
              memcmp(raw.baseAddress! + stateRange.lowerBound + 1, ClientSession.handlePrefix, ClientSession.handlePrefix.utf8.count) == 0
        else { return false }
        let idRange = scan.id!
        guard raw[stateRange.lowerBound] == UInt8(ascii: "\""),
              let handle = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[stateRange])),
              let wait = inputWaits.removeValue(forKey: handle),
              wait.epoch == wait.backend.epoch, wait.backend.pending[wait.gatewayID] != nil
        else {
            sendError(frame, idRange, code: ErrorCode.invalidParams,
                      message: "Invalid params: requestState is not one mcpd issued to this client, or the call it belonged to has ended; call again without it")
            return true
        }
        guard let responses = scanner.member("inputResponses", inObjectAt: params, of: raw),
              let response = scanner.members(ofObjectAt: responses, of: raw).first(where: { $0.name == wait.key })
        else {
            wait.backend.answer(wait.backendRequestID, code: ErrorCode.invalidRequest, message: "the client did not answer", epoch: wait.epoch)
            sendError(frame, idRange, code: ErrorCode.invalidParams, message: "Invalid params: inputResponses has no answer for \"\(wait.key)\"")
            return true
        }
        let retryID = RawValue(frame, idRange)
        let token = scan.metaProgressToken.map { RawValue(frame, $0) }
        wait.backend.pending.update(wait.gatewayID) { entry in
            if case .client(let session, _, let oldToken, _) = entry.origin {
                entry.origin = .client(session, id: retryID, progressToken: token ?? oldToken, batch: nil)
            }
        }
        wait.backend.answer(wait.backendRequestID, result: response.value, of: frame, epoch: wait.epoch)
        return true
    }

    /// What starts every `requestState` mcpd issues.
    static let handlePrefix = "mcpd."

    /// `mcpd.` and 128 random bits in hex, from the system's CSPRNG (getrandom on Linux).
    static func newHandle() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for _ in 0..<2 {
            let word = generator.next()
            for shift in stride(from: 60, through: 0, by: -4) { out.append(digits[Int((word >> UInt64(shift)) & 0xF)]) }
        }
        return handlePrefix + String(decoding: out, as: UTF8.self)
    }
}
