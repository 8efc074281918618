import Reactor

/// A request mcpd sent to a backend and has not seen answered.
struct PendingRequest {
    enum Origin {
        /// Forwarded for a client: the answer goes back with the client's own id and token.
        case client(ClientSession, id: RawValue, progressToken: RawValue?, batch: BatchCollector?)
        /// mcpd's own request (initialize, tools/list).
        case gateway((Result<BackendReply, BackendFailure>) -> Void)
    }

    var origin: Origin
    /// The method, for error messages.
    var method: StaticString
    /// The backend's tool name, for error messages.
    var detail: String?
    /// Loop time (ms) after which the request is cancelled.
    var deadline: UInt64
}

/// A backend's answer to one of mcpd's own requests.
struct BackendReply {
    var frame: ByteBuffer
    var scan: MessageScan

    /// The `result` member parsed, or nil.
    var result: JSONValue? {
        guard let range = scan.result else { return nil }
        return try? JSONParser.parse(frame.slice(range))
    }

    /// The error message of an error reply.
    var errorMessage: String? {
        guard let range = scan.error, let error = try? JSONParser.parse(frame.slice(range)) else { return nil }
        return error["message"]?.stringValue ?? error.jsonText
    }
}

/// Why a request to a backend failed without an answer.
struct BackendFailure: Error {
    var code: Int
    var message: String
}

/// JSON-RPC error codes mcpd uses.
enum ErrorCode {
    static let parseError = -32700
    static let invalidRequest = -32600
    static let methodNotFound = -32601
    static let invalidParams = -32602
    static let internalError = -32603
    static let requestTimeout = -32001
}
