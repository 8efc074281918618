import Reactor

/// The templates of a pipeline's arguments and result: `{{input.NAME}}` (a dotted path into the
/// call's arguments), `{{steps.ID.text}}` (the step's text content, joined) and
/// `{{steps.ID.structured}}` or `{{steps.ID.structured/JSON/POINTER}}` (its structured content,
/// or a member of it by RFC 6901 pointer). A string that is one whole template takes the
/// value's JSON type; templates inside a longer string are replaced by the value's text (a
/// string as it is, anything else as JSON). `${...}` stays the config's environment expansion.
enum PipelineTemplate {
    /// What templates can refer to.
    struct Context {
        var input: JSONValue
        /// Each finished step's result (`content`, `structuredContent`).
        var steps: [String: JSONObject] = [:]
    }

    struct Failure: Error {
        var message: String
    }

    /// `value` with every template replaced.
    static func render(_ value: JSONValue, _ context: Context) throws(Failure) -> JSONValue {
        switch value {
        case .string(let text):
            guard text.contains("{{") else { return value }
            let parts = split(text)
            if parts.count == 1, case .reference(let expression) = parts[0] { return try resolve(expression, context) }
            var out = ""
            for part in parts {
                switch part {
                case .text(let literal): out += literal
                case .reference(let expression):
                    let resolved = try resolve(expression, context)
                    if case .string(let string) = resolved { out += string } else { out += resolved.jsonText }
                }
            }
            return .string(out)
        case .array(let items):
            var rendered: [JSONValue] = []
            for item in items { rendered.append(try render(item, context)) }
            return .array(rendered)
        case .object(let object):
            var rendered = JSONObject()
            for (key, member) in object.members { rendered[key] = try render(member, context) }
            return .object(rendered)
        default:
            return value
        }
    }

    /// The step ids `value`'s templates refer to.
    static func stepReferences(in value: JSONValue) -> [String] {
        switch value {
        case .string(let text):
            return split(text).compactMap { part in
                guard case .reference(let expression) = part, expression.hasPrefix("steps.") else { return nil }
                return String(expression.dropFirst(6).prefix { $0 != "." && $0 != "/" })
            }
        case .array(let items): return items.flatMap(stepReferences)
        case .object(let object): return object.members.flatMap { stepReferences(in: $0.value) }
        default: return []
        }
    }

    enum Part {
        case text(String)
        case reference(String)
    }

    /// `text` as literal parts and `{{ expression }}` references.
    static func split(_ text: String) -> [Part] {
        var parts: [Part] = []
        var rest = Substring(text)
        while let open = rest.firstRange(of: "{{") {
            guard let close = rest[open.upperBound...].firstRange(of: "}}") else { break }
            if open.lowerBound > rest.startIndex { parts.append(.text(String(rest[..<open.lowerBound]))) }
            let inner = rest[open.upperBound..<close.lowerBound].drop { $0 == " " }
            parts.append(.reference(String(inner.reversed().drop { $0 == " " }.reversed())))
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        return parts
    }

    static func resolve(_ expression: String, _ context: Context) throws(Failure) -> JSONValue {
        if expression.hasPrefix("input.") || expression == "input" {
            var value = context.input
            for key in expression.split(separator: ".").dropFirst() {
                guard let member = value.objectValue?[String(key)] else {
                    throw Failure(message: "{{\(expression)}}: the call's arguments have no \(expression.dropFirst(6))")
                }
                value = member
            }
            return value
        }
        guard expression.hasPrefix("steps.") else {
            throw Failure(message: "{{\(expression)}} is not a template mcpd knows (input.NAME, steps.ID.text, steps.ID.structured/POINTER)")
        }
        let rest = expression.dropFirst(6)
        let id = String(rest.prefix { $0 != "." && $0 != "/" })
        guard let result = context.steps[id] else { throw Failure(message: "{{\(expression)}}: step \"\(id)\" has no result") }
        let field = rest.dropFirst(id.count)
        if field == ".text" {
            let texts = (result["content"]?.arrayValue ?? []).compactMap { $0.objectValue?["text"]?.stringValue }
            return .string(texts.joined(separator: "\n"))
        }
        if field.hasPrefix(".structured") {
            guard let structured = result["structuredContent"] else {
                throw Failure(message: "{{\(expression)}}: step \"\(id)\" returned no structured content")
            }
            let pointer = field.dropFirst(".structured".count)
            guard !pointer.isEmpty else { return structured }
            guard pointer.hasPrefix("/") else { throw Failure(message: "{{\(expression)}}: after structured comes a JSON pointer (/a/0/b)") }
            var value = structured
            for raw in pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
                let token = String(raw).replacing("~1", with: "/").replacing("~0", with: "~")
                if let object = value.objectValue, let member = object[token] {
                    value = member
                } else if let array = value.arrayValue, let index = Int(token), index >= 0, index < array.count {
                    value = array[index]
                } else {
                    throw Failure(message: "{{\(expression)}}: step \"\(id)\"'s structured content has nothing at \(pointer)")
                }
            }
            return value
        }
        throw Failure(message: "{{\(expression)}}: a step gives .text or .structured (with a JSON pointer)")
    }
}
