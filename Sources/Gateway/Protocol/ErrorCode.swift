/// JSON-RPC error codes mcpd uses.
enum ErrorCode {
    static let parseError = -32700
    static let invalidRequest = -32600
    static let methodNotFound = -32601
    static let invalidParams = -32602
    static let internalError = -32603
    static let requestTimeout = -32001
    /// Resource not found (up to 2025-11-25; 2026-07-28 uses -32602).
    static let resourceNotFound = -32002
}
