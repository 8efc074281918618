import Gateway
import JSONOracle
import Reactor
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class JSONScannerTests: XCTestCase {
    let scanner = JSONScanner()

    private func scan(_ text: String) throws -> MessageScan {
        try scanner.scan(ByteBuffer(string: text))
    }

    private func text(_ message: String, _ range: Range<Int>?) -> String? {
        guard let range else { return nil }
        return String(decoding: Array(message.utf8)[range], as: UTF8.self)
    }

    func testRequestRanges() throws {
        let message = #"{"jsonrpc":"2.0","id":"a\"b","method":"tools/call","params":{"name":"x__y","arguments":{"name":"inner","deep":[1,{"_meta":2}]},"_meta":{"progressToken":17,"other":true}}}"#
        let result = try scan(message)
        XCTAssertEqual(result.kind, .request)
        XCTAssertEqual(text(message, result.id), #""a\"b""#)
        XCTAssertEqual(text(message, result.method), #""tools/call""#)
        XCTAssertEqual(text(message, result.paramsName), #""x__y""#, "only params.name, not arguments.name")
        XCTAssertEqual(text(message, result.metaProgressToken), "17")
        XCTAssertNil(result.result)
    }

    func testResponsesNotificationsAndOtherMembers() throws {
        let response = #"{"id":9223372036854775808,"result":{"content":[]},"jsonrpc":"2.0"}"#
        let scanned = try scan(response)
        XCTAssertEqual(scanned.kind, .response)
        XCTAssertEqual(text(response, scanned.id), "9223372036854775808")
        XCTAssertEqual(text(response, scanned.result), #"{"content":[]}"#)

        let progress = #"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t-1","progress":0.5,"total":1e400}}"#
        let notification = try scan(progress)
        XCTAssertEqual(notification.kind, .notification)
        XCTAssertEqual(text(progress, notification.paramsProgressToken), #""t-1""#)

        let cancel = #" { "jsonrpc" : "2.0" , "method" : "notifications/cancelled" , "params" : { "requestId" : 1e400 } } "#
        XCTAssertEqual(text(cancel, try scan(cancel).paramsRequestID), "1e400")
    }

    func testMemberNamesAreMatchedWhateverTheirLengthOrPlace() throws {
        // Names up to seven bytes are matched from one word; near the end of a frame, or when
        // longer, byte by byte. Both must give the same answer.
        let endsWithID = #"{"jsonrpc":"2.0","result":{},"id":7}"#
        XCTAssertEqual(text(endsWithID, try scan(endsWithID).id), "7")
        let call = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{},"name":"a__b"}}"#
        XCTAssertEqual(text(call, try scan(call).paramsName), #""a__b""#)
        let tail = #"{"jsonrpc":"2.0","id":1,"method":"m","params":{"uri":"u"}}"#
        XCTAssertEqual(text(tail, try scan(tail).paramsURI), #""u""#)
        // Names that only start like a routed one, or have it as a prefix, are other members.
        for other in ["i", "ids", "idx", "method2", "params_", "jsonrpc1", "resul", "errors", ""] {
            let message = #"{"jsonrpc":"2.0","id":1,"method":"m",""# + other + #"":"x"}"#
            let scanned = try scan(message)
            XCTAssertEqual(text(message, scanned.id), "1", other)
            XCTAssertEqual(text(message, scanned.method), #""m""#, other)
            XCTAssertNil(scanned.params, other)
        }
        // An escaped routed name is refused rather than guessed, however short.
        XCTAssertThrowsError(try scan(#"{"jsonrpc":"2.0","\u0069d":1,"method":"m"}"#))
        XCTAssertThrowsError(try scan(#"{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}"#), "duplicate id")
    }

    func testBatch() throws {
        let batch = #"[{"jsonrpc":"2.0","id":1,"method":"ping"}, {"jsonrpc":"2.0","method":"x"}]"#
        let result = try scan(batch)
        XCTAssertEqual(result.kind, .batch)
        let elements = try JSONScanner().batchElements(ByteBuffer(string: batch))
        XCTAssertEqual(elements.count, 2)
        XCTAssertEqual(text(batch, elements[1]), #"{"jsonrpc":"2.0","method":"x"}"#)
    }

    private func assertParseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try scan(text), "accepted: \(text.debugDescription)", file: file, line: line) { error in
            guard case .invalidJSON = error as? ScanError else {
                return XCTFail("expected a parse error for \(text.debugDescription), got \(error)", file: file, line: line)
            }
        }
    }

    private func assertInvalidRequest(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try scan(text), "accepted: \(text.debugDescription)", file: file, line: line) { error in
            guard case .invalidRequest = error as? ScanError else {
                return XCTFail("expected an invalid request for \(text.debugDescription), got \(error)", file: file, line: line)
            }
        }
    }

    func testInvalidJSON() {
        let cases = [
            "", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "{\"a\":1}x", "{\"a\":01}", "{\"a\":1.}",
            "{\"a\":.5}", "{\"a\":-}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
            "{\"a\":\"tab\there\"}", "{'a':1}", "{\"a\":1 \"b\":2}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":+1}",
            "{\"a\":\"\u{0001}\"}", "{\"a\":[1 2]}", "\u{FEFF}{}",
        ]
        for text in cases { assertParseError(text) }
    }

    func testInvalidUTF8() throws {
        let sequences: [[UInt8]] = [
            [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0xC3], [0x80], [0xF0, 0x9F, 0x98],
        ]
        for bytes in sequences {
            let frame = ByteBuffer(bytes: Array("{\"jsonrpc\":\"2.0\",\"method\":\"".utf8) + bytes + Array("\"}".utf8))
            XCTAssertThrowsError(try scanner.scan(frame), "accepted invalid UTF-8 \(bytes)")
        }
        // Valid multi-byte sequences, including one spanning the 8-byte fast path boundary.
        let valid = "{\"jsonrpc\":\"2.0\",\"method\":\"abcdefgé😀ü€ plain ascii text of some length\"}"
        XCTAssertNoThrow(try scan(valid))
    }

    /// Every special byte or escape at every offset of a long string, against the tree parser:
    /// the word-at-a-time string scan must stop exactly where the byte-wise parser would.
    func testStringScanAgreesWithParserAtEveryOffset() throws {
        let inserts: [[UInt8]] = [
            Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\n"#.utf8), Array(#"\u00e9"#.utf8), Array(#"\uD83D\uDE00"#.utf8),
            Array("é".utf8), Array("😀".utf8), Array("€".utf8),
            [0x22], [0x01], [0x1F], [0x7F], [0x80], [0xC3], [0xED, 0xA0, 0x80], Array(#"\x"#.utf8), Array(#"\u12G4"#.utf8),
            Array(#"\uDC00"#.utf8), Array(#"\uD800x"#.utf8),
        ]
        for insert in inserts {
            for offset in 0..<40 {
                for tail in [0, 1, 7, 8, 9, 16, 33] {
                    let body = Array(repeating: UInt8(ascii: "a"), count: offset) + insert + Array(repeating: UInt8(ascii: "b"), count: tail)
                    let literal = [UInt8(ascii: "\"")] + body + [UInt8(ascii: "\"")]
                    let frame = ByteBuffer(bytes: Array(#"{"jsonrpc":"2.0","method":"m","params":{"t":"#.utf8) + literal + Array("}}".utf8))
                    let parsed = literal.withUnsafeBytes { (try? ReferenceJSONParser.parseString($0)) != nil }
                    let product = literal.withUnsafeBytes { try? JSONParser.parseString($0) }
                    XCTAssertEqual(product, literal.withUnsafeBytes { try? ReferenceJSONParser.parseString($0) }, "decoded \(insert) at \(offset)")
                    let scanned = (try? scanner.scan(frame)) != nil
                    XCTAssertEqual(scanned, parsed, "insert \(insert) at \(offset), tail \(tail)")
                }
            }
        }
    }

    func testLoneSurrogatesAreRefused() throws {
        assertParseError(#"{"a":"\ud800"}"#)
        assertParseError(#"{"a":"\udc00"}"#)
        assertParseError(#"{"a":"\ud800\u0041"}"#)
        let pair = ByteBuffer(string: #""\ud83d\ude00""#)
        try pair.withUnsafeReadableBytes { raw in try scanner.validate(raw) }
    }

    func testDepthLimit() {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        assertParseError("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"a\":\(deep)}}")
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertNoThrow(try scan("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":{\"a\":\(ok)}}"))
        // Far past any stack: refused quickly, no crash.
        let huge = String(repeating: "[", count: 100_000)
        assertParseError(huge)
    }

    func testHugeNumbersAndLongStringsAreAccepted() throws {
        let digits = String(repeating: "9", count: 10_000)
        let message = "{\"jsonrpc\":\"2.0\",\"id\":\(digits),\"result\":{\"s\":\"\(String(repeating: "x", count: 100_000))\"}}"
        let result = try scan(message)
        XCTAssertEqual(result.id?.count, 10_000)
    }

    func testDuplicateKeys() {
        assertInvalidRequest(#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#)
        assertInvalidRequest(#"{"jsonrpc":"2.0","id":1,"method":"ping","x":1,"x":2}"#)
        assertInvalidRequest(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#)
        assertInvalidRequest(#"{"jsonrpc":"2.0","id":1,"\u0069d":2,"method":"ping"}"#)
        // Duplicates deeper inside arguments are the backend's business.
        XCTAssertNoThrow(try scan(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"k":1,"k":2}}}"#))
    }

    func testNotJSONRPC() {
        assertInvalidRequest("42")
        assertInvalidRequest("\"text\"")
        assertInvalidRequest(#"{"foo":1}"#)
        assertInvalidRequest(#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#)
        assertInvalidRequest(#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#)
        assertInvalidRequest(#"{"jsonrpc":"2.0","id":1,"method":3}"#)
        assertInvalidRequest(#"{"jsonrpc":"2.0","id":1,"method":"m","params":3}"#)
        assertInvalidRequest(#"{"jsonrpc":"2.0","result":{}}"#)
    }

    func testEveryTruncationIsRefusedWithoutCrashing() {
        let message = #"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"é😀","_meta":{"progressToken":1},"arguments":{"a":[1.5e-3,true,null,"\u00e9\n"]}}}"#
        let bytes = Array(message.utf8)
        XCTAssertNoThrow(try scanner.scan(ByteBuffer(bytes: bytes)))
        for length in 0..<bytes.count {
            XCTAssertThrowsError(try scanner.scan(ByteBuffer(bytes: bytes[0..<length])), "accepted a truncation to \(length) bytes")
        }
    }

    /// The scanner and the tree parser (independent, byte by byte) accept exactly the same texts:
    /// random JSON documents with random whitespace, and each of them mutated (a byte replaced by
    /// a structural or special one, a byte dropped, a byte doubled, cut short). Deterministic.
    func testScannerAgreesWithParserOnRandomDocuments() throws {
        var random = SplitMix(seed: 0x6D63_7064)
        let specials: [[UInt8]] = [
            Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\n"#.utf8), Array(#"\u00e9"#.utf8), Array(#"\ud83d\ude00"#.utf8),
            Array("é".utf8), Array("😀".utf8), Array("€".utf8), Array("abcdefghij".utf8), Array("k".utf8), Array("_meta".utf8),
        ]
        let noise: [UInt8] = Array("{}[],:\"\\ \n\t0-1.5eE+tfnu".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xED, 0xF0, 0xFF]

        func string(_ out: inout [UInt8]) {
            out.append(UInt8(ascii: "\""))
            for _ in 0..<random.next(below: 6) { out += specials[random.next(below: specials.count)] }
            out.append(UInt8(ascii: "\""))
        }
        func space(_ out: inout [UInt8]) {
            if random.next(below: 4) == 0 { out += [[0x20], [0x0A], [0x09, 0x20], [0x0D, 0x0A]][random.next(below: 4)] }
        }
        func value(_ out: inout [UInt8], depth: Int) {
            space(&out)
            switch random.next(below: depth > 4 ? 5 : 7) {
            case 0: string(&out)
            case 1: out += Array(["0", "-12", "3.25", "1e9", "-0.5E-3", "123456789012345678901234567890"][random.next(below: 6)].utf8)
            case 2: out += Array(["true", "false", "null"][random.next(below: 3)].utf8)
            case 3, 4: string(&out)
            case 5:
                out.append(UInt8(ascii: "{"))
                let members = random.next(below: 4)
                for k in 0..<members {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    space(&out); string(&out); space(&out); out.append(UInt8(ascii: ":"))
                    value(&out, depth: depth + 1); space(&out)
                }
                if members == 0 { space(&out) }
                out.append(UInt8(ascii: "}"))
            default:
                out.append(UInt8(ascii: "["))
                let items = random.next(below: 4)
                for k in 0..<items {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    value(&out, depth: depth + 1); space(&out)
                }
                if items == 0 { space(&out) }
                out.append(UInt8(ascii: "]"))
            }
        }
        var outcomes = [false: 0, true: 0]
        @discardableResult
        func agree(_ bytes: [UInt8], _ what: String) -> Bool {
            let scanned = bytes.withUnsafeBytes { (try? scanner.validate($0)) != nil }
            let reference = bytes.withUnsafeBytes { try? ReferenceJSONParser.parse($0) }
            let parsed = reference != nil
            XCTAssertEqual(scanned, parsed, "\(what): \(String(decoding: bytes, as: UTF8.self).debugDescription) \(bytes)")
            // mcpd's own parser, on the scanner's grammar, builds the same tree.
            XCTAssertEqual(bytes.withUnsafeBytes { try? JSONParser.parse($0) }, reference, "\(what): the product parser differs")
            outcomes[scanned, default: 0] += 1
            return scanned
        }

        var accepted = 0
        for round in 0..<10000 {
            var document: [UInt8] = []
            value(&document, depth: 0)
            space(&document)
            if agree(document, "document \(round)") { accepted += 1 }
            for _ in 0..<8 {
                var mutated = document
                let at = random.next(below: mutated.count)
                switch random.next(below: 4) {
                case 0: mutated[at] = noise[random.next(below: noise.count)]
                case 1: mutated.remove(at: at)
                case 2: mutated.insert(mutated[at], at: at)
                default: mutated.removeSubrange(at...)
                }
                agree(mutated, "mutation of document \(round)")
            }
        }
        XCTAssertEqual(accepted, 10000, "every generated document is valid JSON")
        XCTAssertGreaterThan(outcomes[false]!, 20000, "most mutations break the document")
        XCTAssertGreaterThan(outcomes[true]!, 20000, "and some leave it valid")
    }

    /// Whole JSON-RPC messages, random and mutated, against a reference built on the tree
    /// parser: the scan fails exactly when the reference says the text is not JSON or not a
    /// JSON-RPC message, and every range it records holds the member the tree has there.
    func testMessageScanAgreesWithTreeReference() throws {
        var random = SplitMix(seed: 0x6A73_6F6E)
        func pick<T>(_ choices: [T]) -> T { choices[random.next(below: choices.count)] }
        func space() -> String { random.next(below: 5) == 0 ? pick([" ", "\n", "\t ", "\r\n"]) : "" }
        func scalar() -> String {
            pick(["1", "-7", "0.5", "12345678901234567890", "\"s\"", "\"é\\n\\u00e9😀\"", "\"a longer plain string value\"", "null", "true"])
        }
        func object(_ members: [(String, String)]) -> String {
            var members = members
            if !members.isEmpty && random.next(below: 12) == 0 { members.append(pick(members)) }  // a duplicate
            members.shuffle(using: &random)
            return "{" + members.map { space() + "\"\($0.0)\"" + space() + ":" + space() + $0.1 + space() }.joined(separator: ",") + "}"
        }
        func some(_ candidates: [(String, String)]) -> [(String, String)] { candidates.filter { _ in random.next(below: 3) != 0 } }
        func message() -> String {
            let meta = object(some([("progressToken", scalar()), ("other", scalar()), ("x", "[1,{\"progressToken\":2}]")]))
            let params = random.next(below: 8) == 0 ? pick(["[1,2]", "3", "\"p\""]) : object(some([
                ("name", pick(["\"echo__echo\"", "\"x\"", "7"])), ("arguments", object(some([("text", scalar()), ("name", scalar())]))),
                ("_meta", random.next(below: 6) == 0 ? scalar() : meta), ("uri", scalar()), ("cursor", scalar()),
                ("requestId", scalar()), ("progressToken", scalar()), ("argumentsX", scalar()),
            ]))
            var members = some([("id", pick(["1", "42", "\"abc\"", "null", "1.5"])), ("params", params), ("other", scalar())])
            members.append(("jsonrpc", random.next(below: 10) == 0 ? pick(["\"1.0\"", "2", "\"2.0 \""]) : "\"2.0\""))
            switch random.next(below: 4) {
            case 0: members.append(("result", object(some([("content", "[{\"type\":\"text\",\"text\":\(scalar())}]")]))))
            case 1: members.append(("error", "{\"code\":-32000,\"message\":\"m\"}"))
            case 2: members += [("result", "{}"), ("error", "{}")]
            default: members.append(("method", pick(["\"tools/call\"", "\"ping\"", "\"notifications/progress\"", "5"])))
            }
            return space() + object(members) + space()
        }

        typealias Outcome = ReferenceJSONRPC.Outcome
        func expected(_ bytes: [UInt8]) -> Outcome { bytes.withUnsafeBytes { ReferenceJSONRPC.classify($0) } }
        func check(_ bytes: [UInt8], _ what: @autoclosure () -> String) -> Bool {
            let want = expected(bytes)
            let got: Outcome
            var scanned: MessageScan?
            switch Result(catching: { () throws(ScanError) in try scanner.scan(ByteBuffer(bytes: bytes)) }) {
            case .success(let result): scanned = result; got = .kind(result.kind)
            case .failure(.invalidJSON): got = .notJSON
            case .failure(.invalidRequest): got = .notRPC
            }
            XCTAssertEqual(got, want, "\(what()): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            guard let scanned, got == want, want != .kind(.batch), let tree = bytes.withUnsafeBytes({ try? JSONParser.parse($0) }) else { return false }
            func value(_ range: Range<Int>?) -> JSONValue? {
                guard let range else { return nil }
                return Array(bytes[range]).withUnsafeBytes { try? JSONParser.parse($0) }
            }
            for ((name, member), range) in zip(ReferenceJSONRPC.recordedMembers(of: tree), scanned.recordedRanges) {
                XCTAssertEqual(value(range), member, "\(what()): recorded member \(name) of \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            }
            return true
        }

        var kinds: [Outcome: Int] = [:]
        for round in 0..<6000 {
            let document = Array(message().utf8)
            _ = check(document, "message \(round)")
            kinds[expected(document), default: 0] += 1
            for _ in 0..<6 {
                var mutated = document
                let at = random.next(below: mutated.count)
                switch random.next(below: 3) {
                case 0: mutated[at] = pick(Array("{}[],:\"\\ 0a".utf8) + [0x01, 0x80, 0xC3])
                case 1: mutated.remove(at: at)
                default: mutated.insert(mutated[at], at: at)
                }
                _ = check(mutated, "mutation of message \(round)")
            }
        }
        for outcome in [Outcome.notRPC, .kind(.request), .kind(.notification), .kind(.response)] {
            XCTAssertGreaterThan(kinds[outcome, default: 0], 200, "the generator makes enough of \(outcome)")
        }
    }

    /// Every word the scanner loads lies inside the frame: each frame here ends where an
    /// unmapped page begins, so a read past its end crashes, sanitizer or not. Regression: `make
    /// fuzz` (JSONFuzz, AddressSanitizer) found the `arguments` test of `params` member names
    /// reading one byte past a frame that ended 16 bytes after the name's opening quote.
    func testWordLoadsStayInsideTheFrame() {
        let found: [UInt8] = Array(#"{"params":{"name":"h"#.utf8) + [0xC3, 0xA9] + Array(#"l ","arguments"#.utf8) + [0x92, 0xA9]
            + Array(#""}}}"#.utf8)
        var frames = [found]
        // Every prefix of a message with each member the scanner matches by words, so that each
        // name's fast path meets the end of the frame at every distance.
        let message = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":"arguments"},"uri":"u","#
            + #""_meta":{"progressToken":"t","x":1},"cursor":"c","requestId":1,"progressToken":2},"result":"a longer string","error":{}}"#
        for length in 0...message.utf8.count { frames.append(Array(message.utf8.prefix(length))) }
        for frame in frames {
            atPageEnd(frame) { raw in
                _ = try? scanner.scan(raw)
                _ = try? scanner.validate(raw)
                _ = try? JSONParser.parse(raw)
            }
        }
    }

    /// Calls `body` with a copy of `bytes` that ends exactly where an inaccessible page starts.
    private func atPageEnd(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) -> Void) {
        let page = sysconf(Int32(_SC_PAGESIZE))
        let size = (bytes.count / page + 2) * page
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1) else { return XCTFail("mmap failed") }
        defer { munmap(base, size) }
        XCTAssertEqual(mprotect(base + size - page, page, PROT_NONE), 0)
        let start = base + size - page - bytes.count
        bytes.withUnsafeBytes { if let source = $0.baseAddress { start.copyMemory(from: source, byteCount: bytes.count) } }
        body(UnsafeRawBufferPointer(start: start, count: bytes.count))
    }

    func testParserRoundTrip() throws {
        let text = #"{"a":[1,-2.5e10,9223372036854775808,"\u00e9\"\\\n\u0001",true,false,null,{}],"b":{"c":"😀"}}"#
        let value = try JSONParser.parse(text)
        XCTAssertEqual(value["b"]?["c"]?.stringValue, "😀")
        XCTAssertEqual(value["a"]?.arrayValue?[2], .number("9223372036854775808"))
        let again = try JSONParser.parse(value.jsonText)
        XCTAssertEqual(value, again)
        XCTAssertEqual(value.jsonText, #"{"a":[1,-2.5e10,9223372036854775808,"é\"\\\n\u0001",true,false,null,{}],"b":{"c":"😀"}}"#)
    }
}

/// A small deterministic generator (SplitMix64), so that a failure can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

extension SplitMix: RandomNumberGenerator {}
