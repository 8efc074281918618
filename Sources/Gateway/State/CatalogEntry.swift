import Reactor

/// What mcpd keeps of a server between runs: what it said in its handshake and what it listed.
/// Keyed by a hash of the server's launch settings, so a changed command, argument, variable
/// or directory invalidates the entry.
struct CatalogEntry {
    var key: String
    /// Unix time (seconds) of the backend's answers this entry holds.
    var savedAt: Int
    var era: BackendEra
    var protocolVersion: String?
    var capabilities: JSONValue
    var serverInfo: JSONValue
    /// By `ListKind`.
    var lists: [[JSONObject]]

    /// The version of the file format: a file of another version is ignored (and rewritten).
    static let format = 1

    /// The hash of what decides which program runs and how it is spoken to.
    static func key(of server: ServerConfig) -> String {
        var text = ""
        func field(_ value: String) {
            text += "\(value.utf8.count):\(value)"
        }
        field(server.command ?? "")
        for argument in server.args { field(argument) }
        text += "|"
        for (name, value) in server.env { field(name); field(value) }
        text += "|"
        field(server.cwd ?? "")
        field(server.inheritEnv ? "inherit" : "minimal")
        field(server.era)
        let hash = fnv1a64(text)
        return hex32(UInt32(hash >> 32)) + hex32(UInt32(truncatingIfNeeded: hash))
    }

    init(key: String, savedAt: Int, era: BackendEra, protocolVersion: String?, capabilities: JSONValue, serverInfo: JSONValue,
         lists: [[JSONObject]])
    {
        self.key = key
        self.savedAt = savedAt
        self.era = era
        self.protocolVersion = protocolVersion
        self.capabilities = capabilities
        self.serverInfo = serverInfo
        self.lists = lists
    }

    /// What `backend` said and listed.
    init(key: String, savedAt: Int, of backend: Backend) {
        self.init(key: key, savedAt: savedAt, era: backend.era, protocolVersion: backend.protocolVersion,
                  capabilities: backend.capabilities, serverInfo: backend.serverInfo, lists: backend.lists)
    }

    var json: JSONValue {
        var object = JSONObject()
        object["format"] = .int(CatalogEntry.format)
        object["key"] = .string(key)
        object["savedAt"] = .int(savedAt)
        object["era"] = .string(era == .stateless ? "stateless" : "handshake")
        if let protocolVersion { object["protocolVersion"] = .string(protocolVersion) }
        object["capabilities"] = capabilities
        object["serverInfo"] = serverInfo
        for kind in ListKind.allCases {
            object[kind.resultKey] = .array(lists[kind.rawValue].map { .object($0) })
        }
        return .object(object)
    }

    /// Reads an entry; nil when the text is not one of this format.
    init?(json value: JSONValue) {
        guard value["format"] == .int(CatalogEntry.format), let key = value["key"]?.stringValue,
              case .number(let saved)? = value["savedAt"], let savedAt = Int(saved)
        else { return nil }
        self.key = key
        self.savedAt = savedAt
        self.era = value["era"]?.stringValue == "stateless" ? .stateless : .handshake
        self.protocolVersion = value["protocolVersion"]?.stringValue
        self.capabilities = value["capabilities"] ?? .null
        self.serverInfo = value["serverInfo"] ?? .null
        var lists: [[JSONObject]] = Array(repeating: [], count: ListKind.allCases.count)
        for kind in ListKind.allCases {
            guard let items = value[kind.resultKey]?.arrayValue else { return nil }
            lists[kind.rawValue] = items.compactMap(\.objectValue)
        }
        self.lists = lists
    }
}
