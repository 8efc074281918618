import Reactor
#if canImport(Glibc)
import Glibc
#endif

// What a config file says: each server's settings and the gateway's.

/// One configured backend.
public struct ServerConfig: Sendable {
    public var name: String
    /// The program (stdio backends).
    public var command: String?
    public var args: [String] = []
    /// Variables added to mcpd's environment for this backend, in config order.
    public var env: [(key: String, value: String)] = []
    public var cwd: String?
    /// A file of `NAME=value` lines (VS Code's `envFile`), absolute; its variables are in `env`.
    public var envFile: String?
    /// True: the backend inherits mcpd's whole environment (less systemd's variables), not only
    /// `Gateway.inheritedVariables`.
    public var inheritEnv = false
    public var enabled = true
    public var description: String?
    /// Request deadline in milliseconds (nil: the gateway's `request_timeout`).
    public var timeoutMs: UInt64?
    /// A remote backend's URL (not served by this version; such servers are skipped with a warning).
    public var url: String?
    /// True: started on the first request that needs it (at launch only to fill its catalog
    /// entry), and stopped after `idle_timeout` without work. False: started at launch and kept
    /// running.
    public var lazy = true
    /// Idle time before a lazy backend is stopped (nil: the gateway's; 0: never).
    public var idleTimeoutMs: UInt64?
    public var isolation = "shared" {
        didSet { isolatesSessions = isolation == "session" }
    }
    /// `isolation: session`, as a flag for the call path.
    public private(set) var isolatesSessions = false
    /// `warn` or `strict` (nil: `gateway.pin`).
    public var pin: String?
    /// Added at run time (`gateway_register_server`), not by the config file.
    public var registered = false
    /// Which of the server's tools are exposed (to every client).
    public var tools = ToolFilter()
    /// The level its stderr lines are logged at; nil (`stderr: quiet`): not logged.
    public var stderrLevel: LogLevel? = .info
    /// `auto`: a stateless client's requests go to a second process of the server in the
    /// stateless era when it speaks it; `handshake`: one process only, and stateless clients
    /// are served through it by translation (for servers that cannot run twice).
    public var era = "auto"
    /// The `${VAR}`s in its settings that had no value (each became empty): a failed start
    /// names them.
    public var unsetVariables: [String] = []
    /// Where the server was defined.
    public var line = 0
    /// The line of its `command`.
    public var commandLine = 0

    public init(name: String) { self.name = name }

    /// True when `other` configures the same server the same way (where in the file aside):
    /// a reload leaves such a server's process alone.
    func hasSameSettings(as other: ServerConfig) -> Bool {
        name == other.name && command == other.command && args == other.args
            && env.map { "\($0.key)=\($0.value)" } == other.env.map { "\($0.key)=\($0.value)" }
            && cwd == other.cwd && inheritEnv == other.inheritEnv && enabled == other.enabled && description == other.description
            && timeoutMs == other.timeoutMs && url == other.url && lazy == other.lazy && idleTimeoutMs == other.idleTimeoutMs
            && isolation == other.isolation && era == other.era
    }
}

/// Per-server `tools: {allow, deny}`: globs (`*`, `?`, `[...]`) over the server's own tool
/// names. With `allow`, only the tools it matches; `deny` hides what it matches, and wins.
public struct ToolFilter: Sendable, Equatable {
    public var allow: [String]?
    public var deny: [String] = []

    public init() {}

    /// True when every tool passes.
    public var allowsEverything: Bool { allow == nil && deny.isEmpty }

    public func admits(_ tool: String) -> Bool {
        if let allow, !allow.contains(where: { globMatches($0, tool) }) { return false }
        return !deny.contains { globMatches($0, tool) }
    }
}

/// A shell glob (`fnmatch(3)`) match of the whole name.
func globMatches(_ pattern: String, _ name: String) -> Bool {
    fnmatch(pattern, name, 0) == 0
}

/// The `gateway:` section.
public struct GatewaySettings: Sendable {
    /// The state directory (catalog, running backends); nil: `$XDG_STATE_HOME/mcpd`, else
    /// `~/.local/state/mcpd`.
    public var stateDir: String?
    public var separator = "__"
    /// The longest exposed tool or prompt name (lowered for clients that prefix names).
    public var nameBudget = 64
    /// Items per page of mcpd's merged lists.
    public var pageSize = 500
    /// `direct` (every tool listed), `meta` (the gateway's search-and-invoke tools instead) or
    /// `hybrid` (those and the pinned tools).
    public var mode = "direct"
    /// Exposed tool names (globs) listed beside the gateway's tools in hybrid mode.
    public var pinnedTools: [String] = []
    /// `warn`: a tool whose definition changed since it was pinned is reported; `strict`: it is
    /// also withheld until approved.
    public var pin = "warn"
    /// True: admin roles may register servers at run time (`gateway_register_server`).
    public var registration = false
    /// The interpreter of `plugins:` (nil: `python3` on PATH).
    public var pluginsPython: String?
    public var requestTimeoutMs: UInt64 = 60_000
    /// Idle time before a lazy backend is stopped (0: never).
    public var idleTimeoutMs: UInt64 = 300_000
    /// How long the first `initialize` waits for backends that have no catalog entry yet.
    public var startupWaitMs: UInt64 = 5_000
    public var maxMessageSize = 16 << 20
    /// Bytes of requests that may wait for one backend to read its input; past them its calls
    /// get "overloaded" errors (and its own requests go unanswered).
    public var maxBackendQueue = 32 << 20
    /// Grace after closing a backend's stdin before SIGTERM, and after SIGTERM before SIGKILL.
    public var stopGraceMs: UInt64 = 2_000
    /// How long requests in flight may finish after the client closed its input.
    public var drainTimeoutMs: UInt64 = 2_000
    /// Exits of one backend within `restartWindowMs` that open its circuit.
    public var restartLimit = 5
    public var restartWindowMs: UInt64 = 60_000
    /// The `http:` section (`mcpd serve`).
    public var http = HTTPSettings()
    /// `auth.tokens`: when any is set, every HTTP request but the probes needs one.
    public var tokens: [BearerToken] = []
    /// The role of a session that has none (no token role, no `MCPD_ROLE`); nil: everything.
    public var defaultRole: String?
    /// Roles with the admin's rights, besides the one named `admin`.
    public var adminRoles: [String] = []

    public init() {}
}

/// A bearer token of `auth.tokens`, and the role it gives.
public struct BearerToken: Sendable {
    public var token: String
    public var role: String?
}

/// The `http:` section: where `mcpd serve` listens, and the limits of its HTTP server.
public struct HTTPSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 39400
    /// The server's limits; `maxBody` defaults to `gateway.max_message_size`.
    public var limits = HTTPLimits()
    /// True once `http.max_body` is set (else it follows `gateway.max_message_size`).
    public var maxBodySet = false
    /// A Streamable HTTP session with nothing in flight and no stream open ends after this.
    public var sessionTimeoutMs: UInt64 = 30 * 60_000
    /// Browser origins allowed to call (`Origin`); nil: only localhost's.
    public var allowedOrigins: [String]?
    /// True: `/metrics` needs no token even when `auth.tokens` are set.
    public var publicMetrics = false

    public init() {}

    /// `HOST:PORT`, `[v6]:PORT`, `:PORT` or `PORT`; nil when malformed.
    public static func parseListen(_ text: String) -> (host: String, port: Int)? {
        var host = "127.0.0.1"
        var portText = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            if colon != text.startIndex { host = String(text[..<colon]) }
            portText = text[text.index(after: colon)...]
        }
        if host == "localhost" { host = "127.0.0.1" }
        guard let port = Int(portText), port >= 0, port <= 65535, !host.isEmpty else { return nil }
        return (host, port)
    }
}
