import Reactor

/// A JSON value, for the messages mcpd builds or reads itself (initialize, lists, config in
/// JSON form). Routed traffic never becomes a `JSONValue`. Numbers keep their literal text so
/// that `9223372036854775808` or `1e400` survive a round trip byte for byte; objects keep
/// member order.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's literal text.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// A number from an integer.
    public static func int(_ value: Int) -> JSONValue { .number(String(value)) }

    /// The member `key` of an object, or nil.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// Serialises compactly (no spaces), as one line.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .null: buffer.append(string: "null")
        case .bool(let value): buffer.append(string: value ? "true" : "false")
        case .number(let text): buffer.append(string: text)
        case .string(let text): writeJSONString(text, to: &buffer)
        case .array(let items):
            buffer.appendByte(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { buffer.appendByte(UInt8(ascii: ",")) }
                item.write(to: &buffer)
            }
            buffer.appendByte(UInt8(ascii: "]"))
        case .object(let object):
            buffer.appendByte(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { buffer.appendByte(UInt8(ascii: ",")) }
                writeJSONString(member.key, to: &buffer)
                buffer.appendByte(UInt8(ascii: ":"))
                member.value.write(to: &buffer)
            }
            buffer.appendByte(UInt8(ascii: "}"))
        }
    }

    /// The compact serialisation as a buffer.
    public var serialized: ByteBuffer {
        var buffer = ByteBuffer(capacity: 256)
        write(to: &buffer)
        return buffer
    }

    /// The compact serialisation as a string.
    public var jsonText: String { serialized.string }
}

/// An object with its members in order. Lookup is linear: objects mcpd builds are small.
public struct JSONObject: Equatable, Sendable {
    public var members: [(key: String, value: JSONValue)]

    public init(_ members: [(key: String, value: JSONValue)] = []) {
        self.members = members
    }

    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }

    public var isEmpty: Bool { members.isEmpty }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Writes `text` as a JSON string literal: quotes, backslashes and control characters escaped,
/// everything else as UTF-8.
public func writeJSONString(_ text: String, to buffer: inout ByteBuffer) {
    buffer.appendByte(UInt8(ascii: "\""))
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""): buffer.append(string: "\\\"")
        case UInt8(ascii: "\\"): buffer.append(string: "\\\\")
        case 0x0A: buffer.append(string: "\\n")
        case 0x0D: buffer.append(string: "\\r")
        case 0x09: buffer.append(string: "\\t")
        case 0x08: buffer.append(string: "\\b")
        case 0x0C: buffer.append(string: "\\f")
        case 0..<0x20:
            buffer.append(string: "\\u00")
            buffer.appendByte(hex[Int(byte >> 4)])
            buffer.appendByte(hex[Int(byte & 0xF)])
        default: buffer.appendByte(byte)
        }
    }
    buffer.appendByte(UInt8(ascii: "\""))
}

/// A JSON string literal for `text`, as a buffer.
public func jsonStringLiteral(_ text: String) -> ByteBuffer {
    var buffer = ByteBuffer(capacity: text.utf8.count + 2)
    writeJSONString(text, to: &buffer)
    return buffer
}

/// Parses JSON text into a `JSONValue` (cold paths only; routing uses `JSONScanner`).
public enum JSONParser {
    /// Parses a complete JSON text.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 128) throws(ScanError) -> JSONValue {
        var parser = Parser(bytes: bytes.bindMemory(to: UInt8.self), maxDepth: maxDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index != parser.bytes.count { throw ScanError.invalidJSON(offset: parser.index, reason: "trailing bytes after the JSON value") }
        return value
    }

    /// Parses the readable bytes of a buffer.
    public static func parse(_ buffer: ByteBuffer) throws(ScanError) -> JSONValue {
        try withExtendedLifetime(buffer) { () throws(ScanError) in try parse(UnsafeRawBufferPointer(buffer.readablePointer)) }
    }

    /// Parses a string.
    public static func parse(_ text: String) throws(ScanError) -> JSONValue {
        try parse(ByteBuffer(string: text))
    }

    /// Decodes one string literal (quotes included).
    public static func parseString(_ literal: UnsafeRawBufferPointer) throws(ScanError) -> String {
        var parser = Parser(bytes: literal.bindMemory(to: UInt8.self), maxDepth: 1)
        let value = try parser.parseString()
        guard parser.index == literal.count else { throw ScanError.invalidJSON(offset: parser.index, reason: "trailing bytes after the string") }
        return value
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func fail(_ reason: String) -> ScanError { .invalidJSON(offset: index, reason: reason) }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
        }

        mutating func parseValue(depth: Int) throws(ScanError) -> JSONValue {
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "{"):
                guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
                index += 1
                var object = JSONObject()
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(object)
                }
                while true {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                    let key = try parseString()
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    index += 1
                    let value = try parseValue(depth: depth + 1)
                    object.members.append((key, value))
                    skipWhitespace()
                    guard index < bytes.count else { throw fail("unterminated object") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
                index += 1
                var items: [JSONValue] = []
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                }
                while true {
                    items.append(try parseValue(depth: depth + 1))
                    skipWhitespace()
                    guard index < bytes.count else { throw fail("unterminated array") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = index
                try skipNumber()
                return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
            default: throw fail("unexpected byte")
            }
        }

        mutating func literal(_ text: String) throws(ScanError) {
            for byte in text.utf8 {
                guard index < bytes.count, bytes[index] == byte else { throw fail("invalid literal") }
                index += 1
            }
        }

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        mutating func skipNumber() throws(ScanError) {
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            if bytes[index] == UInt8(ascii: "0") { index += 1 } else { while index < bytes.count && isDigit(bytes[index]) { index += 1 } }
            if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
                while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
                index += 1
                if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
                while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            }
        }

        mutating func hex4() throws(ScanError) -> UInt32 {
            guard bytes.count - index >= 4 else { throw fail("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                guard let digit = UInt32(String(UnicodeScalar(byte)), radix: 16) else { throw fail("invalid \\u escape") }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        mutating func parseString() throws(ScanError) -> String {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string") }
            index += 1
            var out: [UInt8] = []
            while true {
                guard index < bytes.count else { throw fail("unterminated string") }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    guard let text = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
                    return text
                }
                if byte < 0x20 { throw fail("control character in string") }
                if byte != UInt8(ascii: "\\") {
                    out.append(byte)
                    index += 1
                    continue
                }
                index += 1
                guard index < bytes.count else { throw fail("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw fail("lone high surrogate")
                        }
                        index += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw fail("invalid low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw fail("lone low surrogate")
                    }
                    out.append(contentsOf: String(Character(UnicodeScalar(scalar)!)).utf8)
                default: throw fail("invalid escape")
                }
            }
        }
    }
}
