import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// `mcpd serve`: the gateway's HTTP endpoints on `Reactor.HTTPServer`.
///
/// `/mcp` is MCP's Streamable HTTP transport (`StreamableHTTP`, `StatelessHTTP`); `/metrics` is
/// for Prometheus (`Metrics.swift`); `/health`
/// says what mcpd and each backend are doing (200 while mcpd serves) and `/ready` is 200 once
/// start-up has settled (503 while starting or draining). `/sse` and `/messages` are the
/// 2024-11-05 transport, for old clients. `/mcp/<server>`: one server alone, under its own names.
extension Gateway {
    /// Listens on the `http:` section's address; returns the port (the kernel's choice for 0).
    public func serveHTTP(host: String, port: Int) throws(UVError) -> Int {
        let server = HTTPServer(loop: loop, limits: config.gateway.http.limits)
        server.onWarning = { [unowned self] message in log.warning("http: \(message)") }
        let mcp = StreamableHTTP(gateway: self)
        streamableHTTP = mcp
        server.handler = { [unowned self] request, response in handleHTTP(request, response) }
        let bound = try server.listen(host: host, port: port)
        httpServer = server
        return bound
    }

    static let jsonHeaders = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]

    private func handleHTTP(_ request: HTTPRequest, _ response: HTTPResponse) {
        let json = Gateway.jsonHeaders
        if request.hasHeader("origin"), let origin = request.header("origin"), !originAllowed(origin) {
            // A web page the user visits must not reach a gateway on localhost (DNS rebinding).
            return response.send(status: 403, headers: json,
                                 body: "{\"error\":\"Origin \(JSONValue.string(String(origin.prefix(100))).jsonText.dropFirst().dropLast()) is not allowed (http.allowed_origins)\"}\n")
        }
        var principal: String?
        var tokenRole: String?
        let open = request.path == "/health" || request.path == "/ready" || (request.path == "/metrics" && config.gateway.http.publicMetrics)
        if !open && !config.gateway.tokens.isEmpty {
            guard let index = tokenIndex(request.header("authorization")) else {
                return response.send(status: 401, headers: json + [("WWW-Authenticate", "Bearer realm=\"mcpd\"")],
                                     body: "{\"error\":\"a valid bearer token is required (Authorization: Bearer <token>, one of auth.tokens)\"}\n")
            }
            principal = "token#\(index)"
            tokenRole = config.gateway.tokens[index].role
        }
        // What the session sees: the token's role, else gateway.default_role.
        let role = role(given: tokenRole)
        switch request.path {
        case "/health":
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(response, "GET") }
            response.send(status: 200, headers: json, body: healthDocument.jsonText + "\n")
        case "/ready":
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(response, "GET") }
            let ready = isStartupSettled && !isShuttingDown
            let reason = isShuttingDown ? "draining" : ready ? "ready" : "starting"
            response.send(status: ready ? 200 : 503, headers: json, body: "{\"status\":\"\(reason)\"}\n")
        case "/metrics":
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(response, "GET") }
            response.send(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
                          body: metricsText)
        case "/mcp":
            guard let streamableHTTP, !isShuttingDown else {
                return response.send(status: 503, headers: json, body: "{\"error\":\"mcpd is shutting down\"}\n")
            }
            streamableHTTP.handle(request, response, principal: principal, view: view(server: nil, role: role)!)
        case "/sse", "/messages":
            guard let streamableHTTP, !isShuttingDown else {
                return response.send(status: 503, headers: json, body: "{\"error\":\"mcpd is shutting down\"}\n")
            }
            if request.path == "/sse" {
                streamableHTTP.openLegacy(request, response, principal: principal, view: view(server: nil, role: role)!)
            } else {
                streamableHTTP.legacyMessage(request, response, principal: principal)
            }
        case let path where path.hasPrefix("/mcp/"):
            guard let streamableHTTP, !isShuttingDown else {
                return response.send(status: 503, headers: json, body: "{\"error\":\"mcpd is shutting down\"}\n")
            }
            let name = String(path.dropFirst(5))
            guard let view = view(server: name, role: role) else {
                let names = backends.prefix(20).map(\.name).joined(separator: ", ")
                let message = "no server named \"\(name.prefix(80))\" (per-server endpoints: /mcp/<server> for \(names.isEmpty ? "no server" : names))"
                return response.send(status: 404, headers: json, body: "{\"error\":\(JSONValue.string(message).jsonText)}\n")
            }
            streamableHTTP.handle(request, response, principal: principal, view: view)
        default:
            response.send(status: 404, headers: json, body: "{\"error\":\"no such endpoint; mcpd serves /mcp, /sse, /messages, /health, /ready and /metrics\"}\n")
        }
    }

    /// The index of the configured token the `Authorization` header carries, or nil. Every
    /// token is compared in full, in time that depends only on the lengths.
    private func tokenIndex(_ header: String?) -> Int? {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        // RFC 6750: one or more spaces after the scheme.
        let offered = Array(header.utf8.dropFirst(7).drop { $0 == 0x20 })
        var found: Int?
        for (index, configured) in config.gateway.tokens.enumerated() where constantTimeEqual(offered, Array(configured.token.utf8)) {
            found = found ?? index
        }
        return found
    }

    /// Whether a browser page of `origin` may call: one of `http.allowed_origins` (`*`: any),
    /// else only pages of this machine (localhost, 127.0.0.1, [::1]).
    private func originAllowed(_ origin: String) -> Bool {
        if let allowed = config.gateway.http.allowedOrigins {
            return allowed.contains("*") || allowed.contains(origin)
        }
        guard let scheme = origin.firstRange(of: "://") else { return false }
        var host = origin[scheme.upperBound...]
        if host.hasPrefix("[") {
            host = host.prefix { $0 != "]" }.dropFirst()
        } else {
            host = host.prefix { $0 != ":" && $0 != "/" }
        }
        return host == "localhost" || host == "127.0.0.1" || host == "::1"
    }

    private func methodNotAllowed(_ response: HTTPResponse, _ allowed: String) {
        response.send(status: 405, headers: [("Allow", allowed), ("Content-Type", "application/json")],
                      body: "{\"error\":\"method not allowed; use \(allowed)\"}\n")
    }

    /// `/health`: mcpd's status (`ok`, `degraded` when a backend is restarting or its circuit
    /// is open, `failing` when every backend's circuit is open), uptime, sessions and backends.
    var healthDocument: JSONValue {
        var servers = JSONObject()
        var broken = 0
        var down = 0
        for backend in backends {
            let state = healthState(backend)
            if state == "backoff" || state == "circuit_open" { broken += 1 }
            if state == "circuit_open" { down += 1 }
            servers[backend.name] = [
                "state": .string(state),
                "running": .bool(backend.pid != nil),
                "restarts": .int(backend.restarts),
                "tools": .int(exposedTools.lazy.filter { $0.backend == backend.name }.count),
                "last_error": backend.lastError.map { .string(redact($0, config.secrets)) } ?? .null,
                // Tools whose definition changed since it was pinned.
                "changed_tools": .array(backend.changedTools.keys.sorted().map(JSONValue.string)),
            ]
        }
        let status = !backends.isEmpty && down == backends.count ? "failing" : broken > 0 ? "degraded" : "ok"
        return [
            "status": .string(status),
            "uptime_s": .int(Int((loop.now - startedAt) / 1000)),
            "sessions": ["http": .int(streamableHTTP?.sessionCount ?? 0), "sse": .int(streamableHTTP?.legacySessionCount ?? 0), "stdio": .int(sessions.filter(\.endsGateway).count)],
            "backends": .object(servers),
        ]
    }

    /// A backend's state in `/health`'s words.
    private func healthState(_ backend: Backend) -> String {
        switch backend.state {
        case .configured: return backend.cachedAt != nil ? "cached" : "stopped"
        case .starting, .initializing: return "starting"
        case .ready: return "ready"
        case .backoff: return "backoff"
        case .failed: return "circuit_open"
        case .stopping, .stopped: return backend.idleStopped ? "idle" : "stopped"
        }
    }
}

/// Whether two byte strings are equal, in time that depends on their lengths only.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    let count = max(a.count, b.count)
    for index in 0..<count {
        difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0xFF)
    }
    return difference == 0
}
