import Reactor

/// JSON-RPC error codes mcpd uses.
enum ErrorCode {
    static let parseError = -32700
    static let invalidRequest = -32600
    static let methodNotFound = -32601
    static let invalidParams = -32602
    static let internalError = -32603
    static let requestTimeout = -32001
    /// 2026-07-28: a request's headers and body disagree.
    static let headerMismatch = -32020
    /// 2026-07-28: the request needs a client capability the client did not declare.
    static let missingCapability = -32021
    /// 2026-07-28: the request's protocol version is not one mcpd serves.
    static let unsupportedVersion = -32022
    /// Resource not found (up to 2025-11-25; 2026-07-28 uses -32602).
    static let resourceNotFound = -32002
}

/// A JSON-RPC error response, without its newline.
func errorResponse(id: RawValue, code: Int, message: String, data: JSONValue? = nil) -> ByteBuffer {
    var out = ByteBuffer(capacity: 128 + message.utf8.count)
    out.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
    id.withBytes { out.append($0) }
    out.append(string: ",\"error\":{\"code\":")
    out.append(decimal: code)
    out.append(string: ",\"message\":")
    writeJSONString(message, to: &out)
    if let data {
        out.append(string: ",\"data\":")
        data.write(to: &out)
    }
    out.append(string: "}}")
    return out
}
