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
