import Gateway
import Reactor

/// `mcpd serve`: the gateway on HTTP (Streamable HTTP at /mcp, and the probes), until SIGTERM or
/// SIGINT.
enum Serve {
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        var host = setup.config.gateway.http.host
        var port = setup.config.gateway.http.port
        if let listen = arguments.listen {
            guard let parsed = HTTPSettings.parseListen(listen) else {
                writeStandardError("Error: --listen \"\(listen)\" must be HOST:PORT, [IPv6]:PORT or :PORT\n\(Arguments.shortUsage(.serve))")
                throw ProgramExit(code: 64)
            }
            (host, port) = parsed
        }
        if let named = arguments.host { host = named == "localhost" ? "127.0.0.1" : named }
        if let text = arguments.port {
            guard let number = Int(text), number >= 0, number <= 65535 else {
                writeStandardError("Error: --port must be a number from 0 to 65535 (got \"\(text)\")\n\(Arguments.shortUsage(.serve))")
                throw ProgramExit(code: 64)
            }
            port = number
        }
        try setup.runLoop { gateway throws(UVError) in
            let shownHost = host.contains(":") ? "[\(host)]" : host
            let bound: Int
            do throws(UVError) {
                bound = try gateway.serveHTTP(host: host, port: port)
            } catch {
                setup.log.error("cannot listen on \(shownHost):\(port): \(error.message) (set another address with --listen or http.listen)")
                throw error
            }
            let url = "http://\(shownHost):\(bound)/mcp"
            let snippet: JSONValue = ["mcpServers": ["mcpd": ["type": "http", "url": .string(url)]]]
            setup.log.info("listening on \(url) (Streamable HTTP; probes: /health, /ready); a client's config: \(snippet.jsonText)")
        }
    }
}
