/// MCP protocol versions mcpd negotiates with clients and offers to backends.
public enum ProtocolVersion {
    /// The newest handshake-era version: offered to backends, and answered to clients that ask
    /// for a version mcpd does not know.
    public static let latest = "2025-11-25"
    /// Handshake-era versions a client may negotiate, oldest first.
    public static let supported = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]
    /// The stateless version: no `initialize`; each request carries its version and the
    /// client's capabilities in `params._meta`.
    public static let stateless = "2026-07-28"
    /// The `_meta` keys of a stateless request's envelope.
    static let versionKey: StaticString = "io.modelcontextprotocol/protocolVersion"
    static let capabilitiesKey: StaticString = "io.modelcontextprotocol/clientCapabilities"
    static let subscriptionKey = "io.modelcontextprotocol/subscriptionId"
    static let serverInfoKey = "io.modelcontextprotocol/serverInfo"
    /// The first version with structured tool output (`outputSchema`, `structuredContent`):
    /// older clients get neither.
    public static let structuredOutput = "2025-06-18"
    /// The one version that allows JSON-RPC batches.
    public static let batching = "2025-03-26"

    /// The version to answer a client's `initialize` with.
    public static func negotiate(_ requested: String?) -> String {
        if let requested, supported.contains(requested) { return requested }
        return latest
    }
}
