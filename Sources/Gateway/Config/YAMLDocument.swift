import CYAML
#if canImport(Glibc)
import Glibc
#endif

/// A YAML node with its position (1-based line and column), read with libyaml. Aliases are
/// resolved to copies of their anchored node.
public struct YAMLNode: Sendable {
    public enum Value: Sendable {
        /// A scalar and whether it was plain (unquoted: `null`, `true` and numbers mean themselves).
        case scalar(String, plain: Bool)
        case mapping([(key: YAMLNode, value: YAMLNode)])
        case sequence([YAMLNode])
    }

    public var value: Value
    public var line: Int
    public var column: Int

    /// The scalar's text, or nil.
    public var scalar: String? {
        if case .scalar(let text, _) = value { return text }
        return nil
    }

    /// True for `null`, `~` and an empty plain scalar.
    public var isNull: Bool {
        if case .scalar(let text, let plain) = value { return plain && (text.isEmpty || text == "null" || text == "~" || text == "Null" || text == "NULL") }
        return false
    }

    /// The value of `key` in a mapping, or nil.
    public func mappingValue(_ key: String) -> YAMLNode? {
        guard case .mapping(let members) = value else { return nil }
        return members.first { $0.key.scalar == key }?.value
    }

    /// What the node is, for error messages.
    public var kindName: String {
        switch value {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }
}

/// A YAML syntax error with its position.
public struct YAMLError: Error, Sendable {
    public var line: Int
    public var column: Int
    public var message: String
}

/// Parses YAML (and so JSON) text into one `YAMLNode` tree. An empty document is nil.
public func parseYAML(_ text: String, maxDepth: Int = 64) throws(YAMLError) -> YAMLNode? {
    let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
    guard yaml_parser_initialize(parser) != 0 else { throw YAMLError(line: 0, column: 0, message: "libyaml could not initialise") }
    defer {
        yaml_parser_delete(parser)
        parser.deallocate()
    }
    var bytes = Array(text.utf8)
    return try bytes.withUnsafeMutableBufferPointer { (buffer) throws(YAMLError) -> YAMLNode? in
        yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
        var builder = TreeBuilder(maxDepth: maxDepth)
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(parser, &event) != 0 else {
                let mark = parser.pointee.problem_mark
                let problem = parser.pointee.problem.map { String(cString: $0) } ?? "syntax error"
                var message = problem
                if let context = parser.pointee.context { message = "\(problem) \(String(cString: context))" }
                throw YAMLError(line: mark.line + 1, column: mark.column + 1, message: message)
            }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT { break }
            try builder.consume(&event)
        }
        return builder.root
    }
}

private struct TreeBuilder {
    /// A mapping or sequence being read. A class, so that adding to it is in place: linear in
    /// the size of the document (a value in the stack would be copied at each member).
    final class Open {
        let isMapping: Bool
        let line: Int
        let column: Int
        let anchor: String?
        var members: [(key: YAMLNode, value: YAMLNode)] = []
        var keys: Set<String> = []
        var pendingKey: YAMLNode?
        var items: [YAMLNode] = []

        init(isMapping: Bool, line: Int, column: Int, anchor: String?) {
            self.isMapping = isMapping
            self.line = line
            self.column = column
            self.anchor = anchor
        }
    }

    let maxDepth: Int
    var stack: [Open] = []
    var anchors: [String: YAMLNode] = [:]
    var root: YAMLNode?

    init(maxDepth: Int) { self.maxDepth = maxDepth }

    mutating func consume(_ event: inout yaml_event_t) throws(YAMLError) {
        let line = event.start_mark.line + 1
        let column = event.start_mark.column + 1
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let node = YAMLNode(value: .scalar(text, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE), line: line, column: column)
            if let anchor = scalar.anchor { anchors[String(cString: anchor)] = node }
            try add(node)
        case YAML_ALIAS_EVENT:
            let name = String(cString: event.data.alias.anchor)
            guard let node = anchors[name] else { throw YAMLError(line: line, column: column, message: "unknown alias *\(name)") }
            try add(node)
        case YAML_MAPPING_START_EVENT:
            guard stack.count < maxDepth else { throw YAMLError(line: line, column: column, message: "nesting deeper than \(maxDepth)") }
            stack.append(Open(isMapping: true, line: line, column: column, anchor: event.data.mapping_start.anchor.map { String(cString: $0) }))
        case YAML_SEQUENCE_START_EVENT:
            guard stack.count < maxDepth else { throw YAMLError(line: line, column: column, message: "nesting deeper than \(maxDepth)") }
            stack.append(Open(isMapping: false, line: line, column: column, anchor: event.data.sequence_start.anchor.map { String(cString: $0) }))
        case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
            let open = stack.removeLast()
            let node = YAMLNode(value: open.isMapping ? .mapping(open.members) : .sequence(open.items), line: open.line, column: open.column)
            if let anchor = open.anchor { anchors[anchor] = node }
            try add(node)
        default:
            break
        }
    }

    mutating func add(_ node: YAMLNode) throws(YAMLError) {
        guard let top = stack.last else {
            if root != nil { throw YAMLError(line: node.line, column: node.column, message: "more than one document") }
            root = node
            return
        }
        guard top.isMapping else {
            top.items.append(node)
            return
        }
        if let key = top.pendingKey {
            top.members.append((key, node))
            top.pendingKey = nil
            return
        }
        guard let name = node.scalar else { throw YAMLError(line: node.line, column: node.column, message: "a mapping key must be a scalar") }
        guard top.keys.insert(name).inserted else {
            throw YAMLError(line: node.line, column: node.column, message: "duplicate key \"\(name)\"")
        }
        top.pendingKey = node
    }
}
