// The JSON grammar mcpd has (JSONCursor, behind JSONScanner and JSONParser) against the
// independent tree parser of JSONOracle, on any bytes:
// - `JSONScanner.validate` accepts exactly what the oracle parses; `JSONParser.parse` builds the
//   oracle's tree; `JSONParser.parseString` decodes as the oracle does;
// - `JSONScanner.scan` gives the outcome `ReferenceJSONRPC.classify` works out (not JSON, not
//   JSON-RPC, or the kind), and for a message every recorded range (jsonrpc, id, method, params,
//   result, error, params.name/uri/progressToken/requestId/cursor, params._meta.progressToken)
//   covers exactly one value that the oracle parses to the tree's member there;
// - for a batch, `batchElements` gives the oracle's elements; for an object, `members`,
//   `member`, `isEmptyObject` and `removal` agree with the oracle's members.
// The frame is the fuzzer's own allocation, exactly `size` bytes: any read past it (the
// word-at-a-time string scan) is an AddressSanitizer report.
import FuzzCheck
import Gateway
import JSONOracle
import Reactor

nonisolated(unsafe) let scanner = JSONScanner()

func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

/// The oracle's value for the bytes of `range`, which must hold one value and no whitespace.
func oracleValue(_ frame: UnsafeRawBufferPointer, _ range: Range<Int>, _ what: String) -> JSONValue {
    require(!range.isEmpty && range.upperBound <= frame.count, "\(what): range \(range) out of the frame", input: frame)
    require(!isWhitespace(frame[range.lowerBound]) && !isWhitespace(frame[range.upperBound - 1]),
            "\(what): range \(range) has whitespace at an end", input: frame)
    let slice = UnsafeRawBufferPointer(rebasing: frame[range])
    guard let value = try? ReferenceJSONParser.parse(slice) else {
        require(false, "\(what): range \(range) holds \(describe(slice)), not a JSON value", input: frame)
        fatalError()
    }
    return value
}

/// `members`, `member`, `isEmptyObject` and `removal` on the object at `range`.
func checkObject(_ frame: UnsafeRawBufferPointer, _ range: Range<Int>, _ object: JSONObject, _ what: String) {
    let members = scanner.members(ofObjectAt: range, of: frame)
    require(members.map(\.name) == object.members.map(\.key),
            "\(what): members named \(members.map(\.name)), oracle \(object.members.map(\.key))", input: frame)
    for (member, expected) in zip(members, object.members) {
        require(oracleValue(frame, member.value, "\(what).\(member.name)") == expected.value, "\(what): member \(member.name) differs", input: frame)
        let key = UnsafeRawBufferPointer(rebasing: frame[member.key])
        require((try? ReferenceJSONParser.parseString(key)) == member.name, "\(what): key range of \(member.name) is \(describe(key))", input: frame)
    }
    require(scanner.isEmptyObject(at: range, of: frame) == object.isEmpty, "\(what): isEmptyObject", input: frame)
    for (key, name) in [("name", "name" as StaticString), ("uri", "uri"), ("_meta", "_meta"), ("progressToken", "progressToken")] {
        let found = scanner.member(name, inObjectAt: range, of: frame).map { oracleValue(frame, $0, "\(what).\(key)") }
        require(found == object[key], "\(what): member(\(key)) gave \(String(describing: found)), oracle \(String(describing: object[key]))", input: frame)
    }
    // Taking out the first or the last member leaves a valid object without it.
    for index in object.members.isEmpty ? [] : Set([0, object.members.count - 1]) {
        let key = object.members[index].key
        guard let cut = scanner.removal(of: key, inObjectAt: range, of: frame) else {
            require(false, "\(what): no removal for member \(key)", input: frame)
            return
        }
        let edited = Array(frame[range.lowerBound..<cut.lowerBound]) + Array(frame[cut.upperBound..<range.upperBound])
        var remaining = object
        remaining.members.remove(at: object.members.firstIndex { $0.key == key }!)
        let parsed = edited.withUnsafeBytes { try? ReferenceJSONParser.parse($0) }
        require(parsed == .object(remaining), "\(what): removing \(key) gave \(describe(edited))", input: frame)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let frame = UnsafeRawBufferPointer(start: data, count: size)

    // The grammar: the scanner's validation, the product parser, the oracle.
    let tree = try? ReferenceJSONParser.parse(frame)
    let validated = (try? scanner.validate(frame)) != nil
    require(validated == (tree != nil), "validate says \(validated), the oracle \(tree != nil)", input: frame)
    let parsed = try? JSONParser.parse(frame)
    require(parsed == tree, "JSONParser gives \(String(describing: parsed)), the oracle \(String(describing: tree))", input: frame)
    let decoded = try? JSONParser.parseString(frame)
    let reference = try? ReferenceJSONParser.parseString(frame)
    require(decoded == reference, "parseString gives \(String(describing: decoded)), the oracle \(String(describing: reference))", input: frame)

    // The message layer.
    let expected = ReferenceJSONRPC.classify(frame)
    let outcome: ReferenceJSONRPC.Outcome
    var scan: MessageScan?
    switch Result(catching: { () throws(ScanError) in try scanner.scan(frame) }) {
    case .success(let result): scan = result; outcome = .kind(result.kind)
    case .failure(.invalidJSON): outcome = .notJSON
    case .failure(.invalidRequest): outcome = .notRPC
    }
    require(outcome == expected, "scan gives \(outcome), the oracle \(expected)", input: frame)
    guard let scan, let tree else { return 0 }

    if scan.kind == .batch {
        let elements = (try? scanner.batchElements(ByteBuffer(bytes: frame))) ?? []
        let items = tree.arrayValue ?? []
        require(elements.count == items.count, "batch of \(elements.count) elements, the oracle \(items.count)", input: frame)
        for (index, (range, item)) in zip(elements, items).enumerated() {
            require(oracleValue(frame, range, "element \(index)") == item, "batch element \(index) differs", input: frame)
        }
        return 0
    }

    for ((name, member), range) in zip(ReferenceJSONRPC.recordedMembers(of: tree), scan.recordedRanges) {
        let value = range.map { oracleValue(frame, $0, name) }
        require(value == member, "recorded \(name): \(String(describing: value)), the oracle \(String(describing: member))", input: frame)
    }
    // The whole message, and params when it is an object.
    var start = 0, end = frame.count
    while isWhitespace(frame[start]) { start += 1 }
    while isWhitespace(frame[end - 1]) { end -= 1 }
    checkObject(frame, start..<end, tree.objectValue!, "message")
    if let params = scan.params, let object = tree["params"]?.objectValue { checkObject(frame, params, object, "params") }
    return 0
}
