import Reactor
#if canImport(Glibc)
import Glibc
#endif

// The sections of `mcpd serve`: `http:` (where it listens, its limits) and `auth:` (tokens).
extension ConfigLoader {
    /// `auth: {tokens: [{token: "${VAR}", role: NAME}, ...]}` (a token alone may be a string):
    /// the bearer tokens `mcpd serve` requires. Each is a secret, whatever its length.
    mutating func loadAuth(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else { throw error(node, "auth must be a mapping, found \(node.kindName)") }
        for (key, value) in members {
            guard key.scalar! == "tokens" else {
                record(error(key, "unknown key auth.\(key.scalar!)\(didYouMean(key.scalar!, ["tokens"])) (expected tokens)"))
                continue
            }
            guard case .sequence(let items) = value.value else {
                record(error(value, "auth.tokens must be a list of {token, role}, found \(value.kindName)"))
                continue
            }
            for (index, item) in items.enumerated() {
                do { try loadToken(item, "auth.tokens[\(index)]") } catch { record(error) }
            }
        }
    }

    mutating func loadToken(_ item: YAMLNode, _ what: String) throws(ConfigError) {
        var token: String?
        var role: String?
        var roleNode: YAMLNode?
        var tokenNode = item
        if item.scalar != nil {
            token = try string(item, what)
        } else {
            guard case .mapping(let fields) = item.value else { throw error(item, "\(what) must be {token, role} or a string") }
            for (field, value) in fields {
                switch field.scalar! {
                case "token":
                    tokenNode = value
                    token = try string(value, "\(what).token")
                case "role":
                    role = try string(value, "\(what).role")
                    roleNode = value
                default: throw error(field, "unknown key \"\(field.scalar!)\" in \(what) (expected token, role)")
                }
            }
        }
        guard let token, !token.isEmpty else {
            throw error(tokenNode, "\(what) has no token (an unset ${VAR} gives an empty one, which would let anyone in)")
        }
        guard token.utf8.count >= 16 else {
            throw error(tokenNode, "\(what): a token of \(token.utf8.count) characters is too easy to guess; use at least 16 (e.g. openssl rand -hex 24)")
        }
        if let role, let roleNode { roleReferences.append((role, roleNode, "\(what).role")) }
        if !config.secrets.contains(token) { config.secrets.append(token) }
        config.gateway.tokens.append(BearerToken(token: token, role: role))
    }

    /// The `http:` section of `mcpd serve`.
    mutating func loadHTTP(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else { throw error(node, "http must be a mapping, found \(node.kindName)") }
        for (key, value) in members {
            do { try loadHTTPKey(key, value) } catch { record(error) }
        }
    }

    mutating func loadHTTPKey(_ key: YAMLNode, _ value: YAMLNode) throws(ConfigError) {
        let name = key.scalar!
        let what = "http.\(name)"
        func count(_ low: Int, _ high: Int) throws(ConfigError) -> Int {
            let number = try integer(value, what)
            guard number >= low && number <= high else { throw error(value, "\(what) must be between \(low) and \(high)") }
            return number
        }
        func size(_ low: Int, _ high: Int) throws(ConfigError) -> Int {
            let text = try string(value, what)
            guard let size = parseSize(text), size >= low, size <= high else {
                throw error(value, "\(what) \"\(text)\" must be a size between \(low) bytes and \(high >> 20) MiB (example: 16KiB)")
            }
            return size
        }
        switch name {
        case "listen":
            let text = try string(value, what)
            guard let (host, port) = HTTPSettings.parseListen(text) else {
                throw error(value, "\(what) \"\(text)\" must be HOST:PORT (e.g. 127.0.0.1:39400, [::1]:39400, :39400)")
            }
            config.gateway.http.host = host
            config.gateway.http.port = port
        case "max_header_bytes": config.gateway.http.limits.maxHeaderBytes = try size(1024, 1 << 20)
        case "max_headers": config.gateway.http.limits.maxHeaders = try count(8, 10_000)
        case "max_body":
            config.gateway.http.limits.maxBody = try size(1024, 1 << 30)
            config.gateway.http.maxBodySet = true
        case "max_connections": config.gateway.http.limits.maxConnections = try count(1, 1_000_000)
        case "header_timeout": config.gateway.http.limits.headerTimeoutMs = try positiveDuration(value, what)
        case "body_timeout": config.gateway.http.limits.bodyTimeoutMs = try positiveDuration(value, what)
        case "keepalive_timeout": config.gateway.http.limits.keepaliveTimeoutMs = try positiveDuration(value, what)
        case "session_timeout": config.gateway.http.sessionTimeoutMs = try positiveDuration(value, what)
        case "allowed_origins":
            config.gateway.http.allowedOrigins = try stringList(value, what)
        case "public_metrics": config.gateway.http.publicMetrics = try bool(value, what)
        default:
            let expected = ["listen", "max_header_bytes", "max_headers", "max_body", "max_connections", "header_timeout", "body_timeout",
                            "keepalive_timeout", "session_timeout", "allowed_origins", "public_metrics"]
            throw error(key, "unknown key \(what)\(didYouMean(name, expected)) (expected \(expected.joined(separator: ", ")))")
        }
    }
}
