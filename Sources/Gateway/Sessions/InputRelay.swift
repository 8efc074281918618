import Reactor

/// A handshake-era client's call that a stateless-era server answered input-required, while
/// the client answers the input requests, which mcpd sent it as its own requests.
final class InputGathering {
    /// The server, and the process that asked.
    let backend: Backend
    let epoch: Int
    /// The client's call, as it was pending on the server.
    let entry: PendingRequest
    let call: BridgedCall
    /// The server's `requestState`, returned untouched with the retry.
    let requestState: JSONValue?
    /// Keys still unanswered, and the answers so far.
    var waiting: Set<String> = []
    var responses = JSONObject()
    /// Set once the call was answered (an input request refused): later answers are dropped.
    var ended = false

    init(backend: Backend, entry: PendingRequest, call: BridgedCall, requestState: JSONValue?) {
        self.backend = backend
        self.epoch = backend.epoch
        self.entry = entry
        self.call = call
        self.requestState = requestState
    }
}

/// Era translation for a handshake-era client and a server of the stateless era alone: the
/// server's input-required answer becomes the requests it names, sent to the client as
/// server-to-client requests in the client's own era:
///
///     client                      mcpd                                 server
///     tools/call id 5       ->    tools/call id 12 (+ envelope)   ->
///                                                                 <-   id 12: input_required
///                                                                      {"q1": elicitation/create},
///                                                                      requestState "s"
///     <- elicitation/create id 3
///     id 3: {"action":"accept"} ->
///                                 tools/call id 13 + inputResponses
///                                 {"q1": ...}, requestState "s"   ->
///                                                                 <-   id 13: result
///     <- id 5: result
extension ClientSession {
    /// Sends the client the input requests of `result` (an input-required answer to `entry`),
    /// or fails the call when the client cannot answer them.
    func gatherInput(_ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, result: Range<Int>, for entry: PendingRequest, call: BridgedCall,
                     from backend: Backend)
    {
        guard case .client(_, let clientID, _, let batch) = entry.origin else { return }
        let scanner = gateway.scanner
        let state = scanner.member("requestState", inObjectAt: result, of: raw).flatMap { try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[$0])) }
        let gathering = InputGathering(backend: backend, entry: entry, call: call, requestState: state)
        var requests: [(key: String, method: String, params: Range<Int>?)] = []
        if let listed = scanner.member("inputRequests", inObjectAt: result, of: raw) {
            for member in scanner.members(ofObjectAt: listed, of: raw) {
                guard let methodRange = scanner.member("method", inObjectAt: member.value, of: raw),
                      let method = try? JSONParser.parseString(UnsafeRawBufferPointer(rebasing: raw[methodRange]))
                else {
                    return requestFailed(id: clientID, code: ErrorCode.internalError,
                                         message: "backend \"\(backend.name)\" sent an input request \"\(member.name)\" without a method", batch: batch)
                }
                let capability: String
                switch method {
                case "elicitation/create": capability = "elicitation"
                case "sampling/createMessage": capability = "sampling"
                case "roots/list": capability = "roots"
                default:
                    return requestFailed(id: clientID, code: ErrorCode.internalError,
                                         message: "backend \"\(backend.name)\" asked for \(method), which mcpd does not relay", batch: batch)
                }
                guard let declared = clientCapabilities[capability], declared != .null else {
                    return requestFailed(id: clientID, code: ErrorCode.internalError,
                                         message: "backend \"\(backend.name)\" asked for \(method), but client \"\(clientName)\" did not declare the \(capability) capability",
                                         batch: batch)
                }
                requests.append((member.name, method, scanner.member("params", inObjectAt: member.value, of: raw)))
            }
        }
        guard serverRequests.count + requests.count <= ClientSession.maxServerRequests else {
            return requestFailed(id: clientID, code: ErrorCode.internalError,
                                 message: "\(plural(serverRequests.count, "request")) already waiting for the client's answer; try again later", batch: batch)
        }
        if requests.isEmpty {
            backend.retry(call, entry: entry, epoch: gathering.epoch, responses: JSONObject(), requestState: state)
            return
        }
        gateway.log.debug("backend \"\(backend.name)\" asked for \(requests.map(\.method).joined(separator: ", ")) during \(entry.what); relaying to the client")
        for request in requests {
            gathering.waiting.insert(request.key)
            let id = nextServerRequestID
            nextServerRequestID += 1
            serverRequests[id] = .input(gathering, key: request.key)
            var message = ByteBuffer(capacity: (request.params?.count ?? 0) + 96)
            message.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
            message.append(decimal: id)
            message.append(string: ",\"method\":")
            writeJSONString(request.method, to: &message)
            if let params = request.params {
                message.append(string: ",\"params\":")
                message.append(UnsafeRawBufferPointer(rebasing: raw[params]))
            }
            message.append(string: "}\n")
            output.write(message)
        }
    }

    /// The client answered one of the input requests: once all are answered, mcpd retries the
    /// call; an error ends the call with it.
    func inputAnswered(_ frame: ByteBuffer, _ scan: MessageScan, gathering: InputGathering, key: String) {
        guard !gathering.ended, case .client(_, let clientID, _, let batch) = gathering.entry.origin else { return }
        guard let result = scan.result, let answer = try? JSONParser.parse(frame.slice(result)) else {
            gathering.ended = true
            let reason = scan.error.flatMap { try? JSONParser.parse(frame.slice($0)) }?["message"]?.stringValue
            return requestFailed(id: clientID, code: ErrorCode.internalError,
                                 message: "the client refused the input backend \"\(gathering.backend.name)\" asked for during \(gathering.entry.what): \(reason ?? "an error")",
                                 batch: batch)
        }
        gathering.responses[key] = answer
        gathering.waiting.remove(key)
        guard gathering.waiting.isEmpty else { return }
        gathering.ended = true
        gathering.backend.retry(gathering.call, entry: gathering.entry, epoch: gathering.epoch, responses: gathering.responses,
                                requestState: gathering.requestState)
    }
}
