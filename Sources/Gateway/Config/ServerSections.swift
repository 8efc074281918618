import Reactor
#if canImport(Glibc)
import Glibc
#endif

// The servers sections in every form: mcpd's own, other clients' files, and the paths in them.
extension ConfigLoader {
    /// `servers:` and `mcpServers` (one command, args), `backends:` (one command line), Zed's
    /// `context_servers` (also `command: {path, args, env}`).
    enum Form {
        case servers, backends, mcpServers, zed

        /// The form of a top-level servers section, by its key.
        init?(sectionKey: String) {
            switch sectionKey {
            case "servers": self = .servers
            case "backends": self = .backends
            case "mcpServers": self = .mcpServers
            case "context_servers": self = .zed
            default: return nil
            }
        }
    }

    /// mcpd's per-server keys.
    static let serverKeys = ["command", "args", "env", "envFile", "inherit_env", "cwd", "enabled", "description", "timeout", "era", "url",
                             "http_url", "lazy", "idle_timeout", "isolation", "pin", "tools", "stderr"]
    /// Per-server keys of other clients' files, ignored with a warning: Cline (autoApprove,
    /// alwaysAllow, transportType, networkTimeout), VS Code (dev, gallery, version), Claude Code
    /// (oauth), Zed (source, settings). Cursor's and Windsurf's `disabledTools` is acted on: those
    /// tools are hidden, as `tools.deny` hides them.
    static let otherClientsServerKeys: Set<String> = ["autoApprove", "alwaysAllow", "transportType", "networkTimeout",
                                                       "dev", "gallery", "version", "oauth", "note", "notes", "source", "settings"]

    /// `; did you mean "x"?` for the closest of `candidates`, or nothing.
    func didYouMean(_ word: String, _ candidates: [String]) -> String {
        closestName(to: word, among: candidates).map { "; did you mean \"\($0)\"?" } ?? ""
    }

    /// `project`: the Claude Code project (`projects.<path>.mcpServers`) the section belongs to.
    /// A project's server named as one already defined is left out: the same definition
    /// silently, a different one with a warning.
    mutating func loadServers(_ node: YAMLNode, form: Form, project: String? = nil) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else {
            throw error(node, "the servers section must be a mapping of server names, found \(node.kindName)")
        }
        for (key, value) in members {
            let name = key.scalar!
            if let existing = config.servers.first(where: { $0.name == name }) {
                if let project {
                    if let server = try? loadServer(name: name, key: key, node: value, form: form), server.hasSameSettings(as: existing) { continue }
                    config.warnings.append("\(path):\(key.line):\(key.column): server \"\(name)\" of project \(project) is left out: a different server of that name is defined at line \(existing.line)")
                    continue
                }
                record(error(key, "server \"\(name)\" is defined twice (first at line \(existing.line))"))
                continue
            }
            guard config.servers.count < Config.maxServers else { throw error(key, "more than \(Config.maxServers) servers") }
            serverKeys.append((name, key))
            do {
                if let server = try loadServer(name: name, key: key, node: value, form: form) {
                    config.servers.append(server)
                }
            } catch {
                record(error)
            }
        }
    }

    func checkServerName(_ name: String, _ node: YAMLNode) throws(ConfigError) {
        let separator = config.gateway.separator
        let valid = !name.isEmpty && name.count <= 48
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }
        guard valid else {
            throw error(node, "server name \"\(name)\" must be 1-48 letters, digits, _ or - (it prefixes tool names)")
        }
        // With no separator inside and none of its characters at either end, a server name is
        // recovered unambiguously from <server><separator><tool>: names cannot collide.
        if name.contains(separator) || separator.contains(name.first!) || separator.contains(name.last!) {
            throw error(node, "server name \"\(name)\" must not contain \"\(separator)\" or begin or end with its characters (it separates server and tool names)")
        }
    }

    mutating func loadServer(name: String, key: YAMLNode, node: YAMLNode, form: Form) throws(ConfigError) -> ServerConfig? {
        guard case .mapping(let members) = node.value else {
            throw error(node, "server \"\(name)\" must be a mapping with at least \"command\", found \(node.kindName)")
        }
        var server = ServerConfig(name: name)
        server.line = key.line
        var commandNode: YAMLNode?
        var envFileNode: YAMLNode?
        // Every field is read, so that one run reports each mistake in it.
        var fieldErrors: [ConfigError] = []
        unsetInServer = []
        defer { unsetInServer = [] }
        for (field, value) in members {
            do {
                try loadServerKey(&server, field, value, form: form, commandNode: &commandNode, envFileNode: &envFileNode)
            } catch {
                fieldErrors.append(error)
            }
        }
        if server.url != nil && server.command == nil && fieldErrors.isEmpty {
            config.warnings.append("\(path):\(key.line):\(key.column): server \"\(name)\" uses url, and remote backends are not supported by this version of mcpd; it is skipped")
            return nil
        }
        if server.command == nil && form == .zed && members.contains(where: { $0.key.scalar == "source" || $0.key.scalar == "settings" }) && fieldErrors.isEmpty {
            config.warnings.append("\(path):\(key.line):\(key.column): server \"\(name)\" is a Zed extension, which only Zed can start; it is skipped (give it a command to run it through mcpd)")
            return nil
        }
        if server.command == nil && !fieldErrors.contains(where: { $0.line == commandNode?.line }) {
            fieldErrors.append(error(key, "server \"\(name)\" has no \"command\" (the program to run, e.g. command: npx)"))
        } else if server.command?.isEmpty == true {
            fieldErrors.append(error(commandNode ?? key, "server \"\(name)\" has an empty \"command\""))
        }
        guard fieldErrors.isEmpty else {
            for fieldError in fieldErrors { record(fieldError) }
            return nil
        }
        server.unsetVariables = unsetInServer
        server.commandLine = commandNode?.line ?? key.line
        // As a shell would: `~/` is the home directory. Relative paths are the config file's
        // folder's, so a config works from any current directory.
        server.command = resolvePath(expandHome(server.command!), isProgram: true)
        server.cwd = server.cwd.map { resolvePath(expandHome($0), isProgram: false) }
        server.args = server.args.map { $0.hasPrefix("./") || $0.hasPrefix("../") ? resolvePath($0, isProgram: false) : expandHome($0) }
        if let file = server.envFile, let envFileNode {
            server.envFile = resolvePath(expandHome(file), isProgram: false)
            try loadEnvFile(&server, envFileNode)
        }
        return server
    }

    /// Adds an `envFile`'s variables to the server's `env` (which wins where both set one), once
    /// the file has been read; until then, asks for it (`Config.envFilesToRead`).
    mutating func loadEnvFile(_ server: inout ServerConfig, _ node: YAMLNode) throws(ConfigError) {
        guard expandVariables, let file = server.envFile else { return }
        guard let content = envFiles[file] else {
            if !config.envFilesToRead.contains(file) { config.envFilesToRead.append(file) }
            return
        }
        switch content {
        case .failed(let reason):
            throw error(node, "servers.\(server.name).envFile: cannot read \(file): \(reason)")
        case .bytes(let bytes):
            let set = Set(server.env.map(\.key))
            for (number, line) in parseEnvFile(bytes) {
                switch line {
                case .invalid(let text):
                    config.warnings.append("\(file):\(number): not NAME=value, skipped: \(text.prefix(40))")
                case .variable(let key, let value) where !set.contains(key):
                    server.env.append((key, value))
                    if value.count >= 4 && !config.secrets.contains(value) { config.secrets.append(value) }
                case .variable: continue
                }
            }
        }
    }

    mutating func loadServerKey(_ server: inout ServerConfig, _ field: YAMLNode, _ value: YAMLNode, form: Form,
                                commandNode: inout YAMLNode?, envFileNode: inout YAMLNode?) throws(ConfigError) {
        let name = server.name
        let what = "servers.\(name).\(field.scalar!)"
        switch field.scalar! {
        case "command" where form == .zed && value.mappingValue("path") != nil:
            // Zed's older form: command: {path, args, env}.
            commandNode = value
            guard case .mapping(let parts) = value.value else { return }
            for (part, partValue) in parts {
                switch part.scalar! {
                case "path": server.command = try string(partValue, "\(what).path")
                case "args": server.args += try stringList(partValue, "\(what).args")
                case "env": server.env += try stringMap(partValue, "\(what).env")
                default: throw error(part, "unknown key \"\(part.scalar!)\" in \(what) (expected path, args, env)")
                }
            }
        case "command":
            commandNode = value
            let command = try string(value, what)
            if form == .backends {
                // The backends: form takes one command line.
                guard let words = splitCommandLine(command), let first = words.first else {
                    throw error(value, "\(what) \"\(command)\" is not a valid command line (check its quotes)")
                }
                server.command = first
                server.args = Array(words.dropFirst()) + server.args
            } else {
                server.command = command
            }
        case "args": server.args += try stringList(value, what)
        case "env": server.env += try stringMap(value, what)
        case "envFile", "env_file":
            envFileNode = value
            server.envFile = try string(value, what)
        case "cwd": server.cwd = try string(value, what)
        case "enabled": server.enabled = try bool(value, what)
        case "disabled": server.enabled = !(try bool(value, what))
        case "description": server.description = try string(value, what)
        case "timeout": server.timeoutMs = try positiveDuration(value, what)
        case "url", "serverUrl", "http_url": server.url = try string(value, what)
        case "type", "transport":
            let kind = try string(value, what)
            guard ["stdio", "http", "sse", "streamable-http", "streamableHttp"].contains(kind) else {
                throw error(value, "\(what) must be stdio, http or sse")
            }
        case "headers": _ = try stringMap(value, what)
        case "inherit_env": server.inheritEnv = try bool(value, what)
        case "lazy":
            server.lazy = try bool(value, what)
        case "idle_timeout":
            server.idleTimeoutMs = try duration(value, what)
        case "era":
            let era = try string(value, what)
            guard ["auto", "handshake"].contains(era) else { throw error(value, "\(what) must be auto or handshake") }
            server.era = era
        case "pin":
            let pin = try string(value, what)
            guard pin == "warn" || pin == "strict" else { throw error(value, "\(what) must be warn or strict") }
            server.pin = pin
        case "isolation":
            let isolation = try string(value, what)
            guard ["shared", "session"].contains(isolation) else { throw error(value, "\(what) must be shared or session") }
            server.isolation = isolation
        case "tools":
            let filter = try toolFilter(value, what)
            server.tools.allow = filter.allow
            server.tools.deny += filter.deny
        case "disabledTools":
            // Cursor's and Windsurf's: these tools are not offered.
            server.tools.deny += try stringList(value, what)
        case "stderr":
            let level = try string(value, what)
            if level == "quiet" || level == "off" {
                server.stderrLevel = nil
            } else {
                guard let parsed = LogLevel(name: level) else { throw error(value, "\(what) must be debug, info, warning, error or quiet") }
                server.stderrLevel = parsed
            }
        case "source" where form == .zed, "settings" where form == .zed:
            // Zed's own: where the server comes from, and settings for its extension.
            break
        case let other where ConfigLoader.otherClientsServerKeys.contains(other):
            // Another client's per-server key (Cline, VS Code, Claude Code, Zed): its file
            // works unchanged.
            config.warnings.append("\(path):\(field.line):\(field.column): \(what) is another client's setting; mcpd ignores it")
        default:
            let expected = ConfigLoader.serverKeys
            throw error(field, "unknown key \"\(field.scalar!)\" in server \"\(name)\"\(didYouMean(field.scalar!, expected)) (expected \(expected.joined(separator: ", ")))")
        }
    }

    /// `~` and `~/x` with the home directory (when HOME is set).
    func expandHome(_ text: String) -> String {
        guard text == "~" || text.hasPrefix("~/"), let home = environment["HOME"], !home.isEmpty else { return text }
        return home + text.dropFirst()
    }

    /// A relative path against the config file's folder. A program named without a slash is
    /// looked up on PATH instead.
    func resolvePath(_ text: String, isProgram: Bool) -> String {
        if text.hasPrefix("/") || (isProgram && !text.contains("/")) || text.isEmpty { return text }
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let base = absolutePath(folder.isEmpty ? "/" : folder)
        var joined = base.hasSuffix("/") ? base + text : base + "/" + text
        while joined.contains("/./") { joined = joined.replacing("/./", with: "/") }
        if joined.hasSuffix("/.") { joined.removeLast(2) }
        return joined
    }
}
