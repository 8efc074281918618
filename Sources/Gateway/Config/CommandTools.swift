import Reactor

/// A tool of mcpd's own that runs a program (`command_tools:`): no MCP server behind it.
public struct CommandToolConfig: Sendable {
    public var name: String
    /// argv: the program and its arguments, never a shell.
    public var command: [String] = []
    public var description = ""
    /// The tool's `inputSchema` (default: any object).
    public var inputSchema: JSONValue = .object(JSONObject([("type", "object")]))
    public var timeoutMs: UInt64?
    /// The most stdout it may write: past it the call is an error, never a truncated success.
    public var maxOutput = 1 << 20
    /// `text`: stdout is the result's text; `json`: stdout is a JSON value, the result's
    /// structured content (and its text twin).
    public var json = false
    public var cwd: String?
    public var env: [(key: String, value: String)] = []

    public init(name: String) { self.name = name }

    /// The definition `tools/list` gives.
    var definition: JSONObject {
        JSONObject([("name", .string(name)), ("description", .string(description)), ("inputSchema", inputSchema)])
    }
}

extension ConfigLoader {
    /// `command_tools: {NAME: {command: [argv], description, input_schema, timeout, max_output,
    /// output: text|json, cwd, env}}`.
    mutating func loadCommandTools(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else { throw error(node, "command_tools must be a mapping from tool name to {command, description, input_schema, ...}") }
        for (key, value) in members {
            do throws(ConfigError) { try loadCommandTool(key, value) } catch { record(error) }
        }
    }

    private mutating func loadCommandTool(_ key: YAMLNode, _ node: YAMLNode) throws(ConfigError) {
        let name = key.scalar!
        let what = "command_tools.\(name)"
        guard Router.isValidName(name) else {
            throw error(key, "command tool name \"\(name.prefix(80))\" must be 1-64 letters, digits, _ and - (it is exposed as it is)")
        }
        guard case .mapping(let fields) = node.value else { throw error(node, "\(what) must be a mapping with at least command") }
        var tool = CommandToolConfig(name: name)
        for (field, value) in fields {
            let key = field.scalar!
            switch key {
            case "command":
                guard case .sequence(let items) = value.value, !items.isEmpty else {
                    throw error(value, "\(what).command must be a list: the program and its arguments (no shell), e.g. [\"jq\", \".\"]")
                }
                var argv: [String] = []
                for (index, item) in items.enumerated() { argv.append(try string(item, "\(what).command[\(index)]")) }
                guard !argv[0].isEmpty else { throw error(value, "\(what).command names no program") }
                argv[0] = resolvePath(argv[0], isProgram: true)
                tool.command = argv
            case "description": tool.description = try string(value, "\(what).description")
            case "input_schema", "inputSchema":
                let schema = try jsonValue(value, "\(what).\(key)")
                guard schema.objectValue?["type"]?.stringValue == "object" else {
                    throw error(value, "\(what).\(key) must be a JSON Schema of type object (type: object, properties: {...})")
                }
                tool.inputSchema = schema
            case "timeout": tool.timeoutMs = try positiveDuration(value, "\(what).timeout")
            case "max_output":
                let text = try string(value, "\(what).max_output")
                guard let size = parseSize(text), size >= 1, size <= 1 << 30 else {
                    throw error(value, "\(what).max_output \"\(text)\" must be a size between 1 byte and 1GiB (example: 1MiB)")
                }
                tool.maxOutput = size
            case "output":
                let output = try string(value, "\(what).output")
                guard output == "text" || output == "json" else { throw error(value, "\(what).output must be text or json") }
                tool.json = output == "json"
            case "cwd": tool.cwd = resolvePath(try string(value, "\(what).cwd"), isProgram: false)
            case "env": tool.env = try stringMap(value, "\(what).env")
            default:
                let expected = ["command", "description", "input_schema", "timeout", "max_output", "output", "cwd", "env"]
                throw error(field, "unknown key \"\(key)\" in \(what)\(didYouMean(key, expected)) (expected \(expected.joined(separator: ", ")))")
            }
        }
        guard !tool.command.isEmpty else { throw error(key, "\(what) needs command (a list: the program and its arguments)") }
        if config.commandTools.contains(where: { $0.name == name }) { throw error(key, "command tool \"\(name)\" is defined twice") }
        config.commandTools.append(tool)
    }

    /// A YAML value as JSON: plain scalars `null`, `true`, `false` and numbers keep their
    /// type; everything else is a string (not expanded: a schema is not a setting).
    func jsonValue(_ node: YAMLNode, _ what: String) throws(ConfigError) -> JSONValue {
        switch node.value {
        case .scalar(let text, let plain):
            guard plain else { return .string(text) }
            if node.isNull { return .null }
            if text == "true" { return .bool(true) }
            if text == "false" { return .bool(false) }
            if let number = try? JSONParser.parse(text), case .number = number { return number }
            return .string(text)
        case .sequence(let items):
            var array: [JSONValue] = []
            for item in items { array.append(try jsonValue(item, what)) }
            return .array(array)
        case .mapping(let members):
            var object = JSONObject()
            for (key, value) in members { object[key.scalar!] = try jsonValue(value, what) }
            return .object(object)
        }
    }
}
