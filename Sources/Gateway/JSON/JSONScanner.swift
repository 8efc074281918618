import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Where the members mcpd routes on sit inside one JSON-RPC message, as byte offsets into the
/// frame. Offsets cover the raw JSON value: a string range includes its quotes.
public struct MessageScan {
    /// What the message is.
    public enum Kind: Equatable {
        case request, notification, response
        /// A JSON array: a batch (served only when 2025-03-26 was negotiated); its elements
        /// come from `JSONScanner.batchElements`.
        case batch
    }

    public var kind: Kind = .notification
    // Ranges are kept as 32-bit offsets (frames are far below 2 GiB), -1 when absent: the scan
    // is returned and passed by value on every message, and this keeps it near 100 bytes. They
    // sit in one tuple so that the scanner stores a member's range by index, not through a
    // switch (a jump table, whose indirect branch is mispredicted after context switches).
    private var spans = (Span(), Span(), Span(), Span(), Span(), Span(), Span(), Span(), Span(), Span(), Span(), Span())

    /// Where each range is kept: the top-level keys first, in `JSONCursor.TopKey` order, then the
    /// `params` members in their slot order, then `params._meta.progressToken`.
    enum Slot {
        static let jsonrpc = 0, id = 1, method = 2, params = 3, result = 4, error = 5
        static let paramsName = 6, paramsURI = 7, paramsProgressToken = 8, paramsRequestID = 9, paramsCursor = 10
        static let metaProgressToken = 11
    }

    @inline(always)
    func span(_ slot: Int) -> Range<Int>? {
        withUnsafeBytes(of: spans) { $0.load(fromByteOffset: slot &* 8, as: Span.self) }.range
    }

    @inline(always)
    mutating func setSpan(_ slot: Int, _ range: Range<Int>?) {
        withUnsafeMutableBytes(of: &spans) { $0.storeBytes(of: Span(range), toByteOffset: slot &* 8, as: Span.self) }
    }

    public var jsonrpc: Range<Int>? { get { span(Slot.jsonrpc) } set { setSpan(Slot.jsonrpc, newValue) } }
    public var id: Range<Int>? { get { span(Slot.id) } set { setSpan(Slot.id, newValue) } }
    public var method: Range<Int>? { get { span(Slot.method) } set { setSpan(Slot.method, newValue) } }
    public var params: Range<Int>? { get { span(Slot.params) } set { setSpan(Slot.params, newValue) } }
    public var result: Range<Int>? { get { span(Slot.result) } set { setSpan(Slot.result, newValue) } }
    public var error: Range<Int>? { get { span(Slot.error) } set { setSpan(Slot.error, newValue) } }
    /// `params.name` (tools/call, prompts/get).
    public var paramsName: Range<Int>? { get { span(Slot.paramsName) } set { setSpan(Slot.paramsName, newValue) } }
    /// `params.uri` (resources/read, resources/subscribe).
    public var paramsURI: Range<Int>? { get { span(Slot.paramsURI) } set { setSpan(Slot.paramsURI, newValue) } }
    /// `params._meta.progressToken` (a request's token).
    public var metaProgressToken: Range<Int>? { get { span(Slot.metaProgressToken) } set { setSpan(Slot.metaProgressToken, newValue) } }
    /// `params.progressToken` (in `notifications/progress`).
    public var paramsProgressToken: Range<Int>? { get { span(Slot.paramsProgressToken) } set { setSpan(Slot.paramsProgressToken, newValue) } }
    /// `params.requestId` (in `notifications/cancelled`).
    public var paramsRequestID: Range<Int>? { get { span(Slot.paramsRequestID) } set { setSpan(Slot.paramsRequestID, newValue) } }
    /// `params.cursor` (list methods).
    public var paramsCursor: Range<Int>? { get { span(Slot.paramsCursor) } set { setSpan(Slot.paramsCursor, newValue) } }

    /// A byte range as two 32-bit offsets; -1 when absent.
    /// A byte range as two 32-bit offsets in one word (lower in the low half); all ones when
    /// absent. One word, so that storing a range is one store and reading it back is one load
    /// (a load spanning two smaller stores stalls store-to-load forwarding).
    private struct Span {
        var bits: UInt64 = ~0

        init() {}

        @inline(__always)
        init(_ range: Range<Int>?) {
            if let range {
                bits = UInt64(UInt32(truncatingIfNeeded: range.lowerBound)) | UInt64(UInt32(truncatingIfNeeded: range.upperBound)) &<< 32
            }
        }

        @inline(__always)
        var range: Range<Int>? {
            bits == ~0 ? nil : Int(UInt32(truncatingIfNeeded: bits))..<Int(UInt32(truncatingIfNeeded: bits &>> 32))
        }
    }

    public init() {}
}

/// Why a frame was refused.
public enum ScanError: Error, Equatable, CustomStringConvertible {
    /// Not JSON (answered with -32700).
    case invalidJSON(offset: Int, reason: String)
    /// JSON, but not a JSON-RPC message (answered with -32600).
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .invalidJSON(let offset, let reason): return "\(reason) at byte \(offset)"
        case .invalidRequest(let reason): return reason
        }
    }
}

/// A validating single-pass scanner for JSON-RPC frames that builds no tree.
///
/// It checks the whole frame (UTF-8, string escapes with paired surrogates, number grammar,
/// nesting depth, no trailing bytes) and records the byte ranges of the members mcpd routes
/// on. Duplicate keys are refused at the top level and for every member recorded inside
/// `params`: what mcpd checked must be what the backend reads. Short strings are read a word at
/// a time, long ones 64 bytes at a time by SIMD compares (`JSONCursor.skipString`).
public struct JSONScanner {
    /// The deepest nesting accepted: at most 128 (the scan keeps one bit per open container).
    public let maxDepth: Int

    public init(maxDepth: Int = 128) {
        self.maxDepth = min(max(maxDepth, 1), 128)
    }

    /// Scans one frame.
    public func scan(_ frame: UnsafeRawBufferPointer) throws(ScanError) -> MessageScan {
        var scan = MessageScan()
        try self.scan(frame, into: &scan)
        return scan
    }

    /// Scans one frame into `scan` (a fresh `MessageScan()`). The hot paths use this form: the
    /// ranges are stored where they are read, not copied out of a returned value.
    public func scan(_ frame: UnsafeRawBufferPointer, into scan: inout MessageScan) throws(ScanError) {
        guard frame.count < Int(Int32.max) else { throw .invalidJSON(offset: 0, reason: "message larger than 2 GiB") }
        var cursor = JSONCursor(bytes: frame.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!,
                            count: frame.count, maxDepth: maxDepth)
        cursor.skipWhitespace()
        guard cursor.index < cursor.count else { throw .invalidJSON(offset: 0, reason: "empty message") }
        let first = cursor.peek
        if first == UInt8(ascii: "{") {
            try cursor.scanMessageObject(into: &scan)
        } else if first == UInt8(ascii: "[") {
            scan.kind = .batch
            _ = try cursor.scanBatch()
        } else {
            try cursor.skipValue(depth: 0)
            cursor.skipWhitespace()
            if cursor.index != cursor.count { throw .invalidJSON(offset: cursor.index, reason: "trailing bytes after the JSON value") }
            throw .invalidRequest("a JSON-RPC message must be an object")
        }
        cursor.skipWhitespace()
        if cursor.index != cursor.count { throw .invalidJSON(offset: cursor.index, reason: "trailing bytes after the JSON value") }
        if let refusal = cursor.refusal { throw cursor.refusalError(refusal.reason, refusal.key) }
        if scan.kind != .batch { try classify(&scan, frame: frame) }
    }

    /// The top-level element ranges of a batch (a frame `scan` classified as `.batch`).
    public func batchElements(_ frame: ByteBuffer) throws(ScanError) -> [Range<Int>] {
        try withExtendedLifetime(frame) { () throws(ScanError) in
            let bytes = UnsafeRawBufferPointer(frame.readablePointer)
            var cursor = JSONCursor(bytes: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!,
                                count: bytes.count, maxDepth: maxDepth)
            cursor.skipWhitespace()
            guard cursor.index < cursor.count, cursor.peek == UInt8(ascii: "[") else { throw .invalidJSON(offset: cursor.index, reason: "expected a batch") }
            return try cursor.scanBatch()
        }
    }

    /// Scans the readable bytes of a buffer.
    public func scan(_ buffer: ByteBuffer) throws(ScanError) -> MessageScan {
        try withExtendedLifetime(buffer) { () throws(ScanError) in try scan(UnsafeRawBufferPointer(buffer.readablePointer)) }
    }

    /// Scans the readable bytes of a buffer into `scan` (a fresh `MessageScan()`).
    public func scan(_ buffer: ByteBuffer, into scan: inout MessageScan) throws(ScanError) {
        try withExtendedLifetime(buffer) { () throws(ScanError) in try self.scan(UnsafeRawBufferPointer(buffer.readablePointer), into: &scan) }
    }

    /// Validates a whole value (any JSON) with nothing after it.
    public func validate(_ bytes: UnsafeRawBufferPointer) throws(ScanError) {
        var cursor = JSONCursor(bytes: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!,
                            count: bytes.count, maxDepth: maxDepth)
        cursor.skipWhitespace()
        try cursor.skipValue(depth: 0)
        cursor.skipWhitespace()
        if cursor.index != cursor.count { throw .invalidJSON(offset: cursor.index, reason: "trailing bytes after the JSON value") }
    }

    /// The value range of member `key` of the object at `range` in `frame` (a frame a scan
    /// accepted), or nil when the value there is not an object or has no such member. For the
    /// few members mcpd rewrites off the hot path (`params.ref.name`, `params.logger`); an
    /// escaped member name is compared decoded.
    public func member(_ key: StaticString, inObjectAt range: Range<Int>, of frame: UnsafeRawBufferPointer) -> Range<Int>? {
        guard !range.isEmpty, range.upperBound <= frame.count, frame[range.lowerBound] == UInt8(ascii: "{") else { return nil }
        var cursor = JSONCursor(bytes: frame.baseAddress!.assumingMemoryBound(to: UInt8.self), count: range.upperBound, maxDepth: maxDepth)
        cursor.index = range.lowerBound
        let wanted = UnsafeRawBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
        do {
            guard cursor.openContainer(closer: UInt8(ascii: "}")) else { return nil }
            repeat {
                let (name, hasEscape, _) = try cursor.memberName()
                let start = cursor.index
                try cursor.skipValue(depth: 1)
                let matches = hasEscape
                    ? cursor.decodeKey(name).utf8.elementsEqual(wanted)
                    : name.count == wanted.count && memcmp(frame.baseAddress! + name.lowerBound, wanted.baseAddress!, wanted.count) == 0
                if matches { return start..<cursor.index }
            } while try cursor.nextInContainer(closer: UInt8(ascii: "}"))
        } catch {
            return nil
        }
        return nil
    }

    /// The members of the object at `range` of `frame` (a frame a scan accepted): each name's
    /// range with its quotes, its decoded text, and its value's range. Empty when the value is
    /// not an object.
    public func members(ofObjectAt range: Range<Int>, of frame: UnsafeRawBufferPointer) -> [(name: String, key: Range<Int>, value: Range<Int>)] {
        guard !range.isEmpty, range.upperBound <= frame.count, frame[range.lowerBound] == UInt8(ascii: "{") else { return [] }
        var cursor = JSONCursor(bytes: frame.baseAddress!.assumingMemoryBound(to: UInt8.self), count: range.upperBound, maxDepth: maxDepth)
        cursor.index = range.lowerBound
        var result: [(name: String, key: Range<Int>, value: Range<Int>)] = []
        do {
            guard cursor.openContainer(closer: UInt8(ascii: "}")) else { return [] }
            repeat {
                let (key, hasEscape, _) = try cursor.memberName()
                let start = cursor.index
                try cursor.skipValue(depth: 1)
                let name = hasEscape ? cursor.decodeKey(key) : cursor.keyText(key)
                result.append((name, (key.lowerBound - 1)..<(key.upperBound + 1), start..<cursor.index))
            } while try cursor.nextInContainer(closer: UInt8(ascii: "}"))
        } catch {
            return []
        }
        return result
    }

    /// The bytes to delete from `frame` to take member `key` out of the object at `range`
    /// (with the comma that separates it from a neighbour), or nil when there is no such
    /// member.
    public func removal(of key: String, inObjectAt range: Range<Int>, of frame: UnsafeRawBufferPointer) -> Range<Int>? {
        let all = members(ofObjectAt: range, of: frame)
        guard let index = all.firstIndex(where: { $0.name == key }) else { return nil }
        if index + 1 < all.count { return all[index].key.lowerBound..<all[index + 1].key.lowerBound }
        if index > 0 { return all[index - 1].value.upperBound..<all[index].value.upperBound }
        return all[index].key.lowerBound..<all[index].value.upperBound
    }

    /// True when the object at `range` of `frame` has no members.
    public func isEmptyObject(at range: Range<Int>, of frame: UnsafeRawBufferPointer) -> Bool {
        guard !range.isEmpty, frame[range.lowerBound] == UInt8(ascii: "{") else { return false }
        var cursor = JSONCursor(bytes: frame.baseAddress!.assumingMemoryBound(to: UInt8.self), count: range.upperBound, maxDepth: maxDepth)
        cursor.index = range.lowerBound
        return !cursor.openContainer(closer: UInt8(ascii: "}"))
    }

    private func classify(_ scan: inout MessageScan, frame: UnsafeRawBufferPointer) throws(ScanError) {
        guard let jsonrpc = scan.jsonrpc, rangeEquals(frame, jsonrpc, "\"2.0\"") else {
            throw .invalidRequest("\"jsonrpc\" must be \"2.0\"")
        }
        if let method = scan.method {
            guard frame[method.lowerBound] == UInt8(ascii: "\"") else { throw .invalidRequest("\"method\" must be a string") }
            if let params = scan.params {
                let first = frame[params.lowerBound]
                guard first == UInt8(ascii: "{") || first == UInt8(ascii: "[") else {
                    throw .invalidRequest("\"params\" must be an object or an array")
                }
            }
            if let id = scan.id {
                let first = frame[id.lowerBound]
                guard first == UInt8(ascii: "\"") || first == UInt8(ascii: "-") || (first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else {
                    throw .invalidRequest("\"id\" must be a string or a number")
                }
                scan.kind = .request
            } else {
                scan.kind = .notification
            }
            if scan.result != nil || scan.error != nil { throw .invalidRequest("a request cannot carry \"result\" or \"error\"") }
        } else if scan.result != nil || scan.error != nil {
            guard scan.id != nil else { throw .invalidRequest("a response needs an \"id\"") }
            if scan.result != nil && scan.error != nil { throw .invalidRequest("a response cannot carry both \"result\" and \"error\"") }
            scan.kind = .response
        } else {
            throw .invalidRequest("no \"method\", \"result\" or \"error\"")
        }
    }
}

/// True when the bytes in `range` equal the ASCII literal.
@inline(__always)
func rangeEquals(_ frame: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString) -> Bool {
    guard range.count == literal.utf8CodeUnitCount else { return false }
    return memcmp(frame.baseAddress! + range.lowerBound, literal.utf8Start, range.count) == 0
}

/// The JSON-RPC layer of the scan: the members of a message, of its `params` and of
/// `params._meta` that mcpd records, and the reasons it refuses a message.
extension JSONCursor {
    enum Refusal { case duplicate, escaped, tooManyMembers, duplicateInParams, escapedInParams, duplicateInMeta, escapedInMeta }

    /// Keys mcpd records at the top level, as bits for duplicate detection.
    enum TopKey: Int { case jsonrpc = 0, id, method, params, result, error }

    mutating func scanMessageObject(into scan: inout MessageScan) throws(ScanError) {
        guard openContainer(closer: UInt8(ascii: "}")) else { return }
        var seen: UInt32 = 0
        // Other top-level keys, for duplicate detection; most messages have none, so the array
        // is allocated only when one appears.
        var others: [Range<Int>]? = nil
        repeat {
            let (key, hasEscape, top) = try topMemberName()
            let valueStart = index
            if top == .params && index < count && bytes[index] == UInt8(ascii: "{") {
                try scanParams(into: &scan)
            } else if top == .jsonrpc && count &- index >= 8
                        && load(at: index) & 0xFF_FFFF_FFFF == 0x22_302E_3222 {  // "2.0"
                index &+= 5
            } else {
                try skipValue(depth: 1)
            }
            let value = valueStart..<index
            if let top {
                let bit: UInt32 = 1 << UInt32(top.rawValue)
                if seen & bit != 0 { refuse(.duplicate, key) }
                seen |= bit
                scan.setSpan(top.rawValue, value)  // TopKey order is Slot order
            } else {
                if hasEscape {
                    // An escaped name may spell a routed key ("\u0069d"): refuse rather than guess.
                    let decoded = decodeKey(key)
                    if ["jsonrpc", "id", "method", "params", "result", "error"].contains(decoded) { refuse(.escaped, key) }
                }
                for other in others ?? [] where other.count == key.count && memcmp(bytes + other.lowerBound, bytes + key.lowerBound, key.count) == 0 {
                    refuse(.duplicate, key)
                }
                if others?.count ?? 0 >= 64 {
                    refuse(.tooManyMembers, key)
                } else if others == nil {
                    others = [key]
                } else {
                    others!.append(key)
                }
            }
        } while try nextInContainer(closer: UInt8(ascii: "}"))
    }

    /// Eight bytes at `offset` (at least eight must remain), little-endian.
    @inline(always)
    func load(at offset: Int) -> UInt64 {
        UnsafeRawPointer(bytes + offset).loadUnaligned(as: UInt64.self)
    }

    /// `memberName` for the top level, with the key it names. The names JSON-RPC messages
    /// use are matched first, each with its closing quote (and most with the ':') by one
    /// compare of the word after the opening quote.
    @inline(always)
    mutating func topMemberName() throws(ScanError) -> (key: Range<Int>, hasEscape: Bool, top: TopKey?) {
        if count &- index >= 10 && bytes[index] == UInt8(ascii: "\"") {
            let start = index &+ 1
            let word = load(at: start)
            var top: TopKey?
            var length = 0
            // Compares in the order messages usually list their members (no jump table).
            if word == 0x2263_7072_6E6F_736A {  // jsonrpc"
                if bytes[start &+ 8] == UInt8(ascii: ":") { top = .jsonrpc; length = 7 }
            } else if word & 0xFFFF_FFFF == 0x3A22_6469 {  // id":
                top = .id; length = 2
            } else if word == 0x3A22_646F_6874_656D {  // method":
                top = .method; length = 6
            } else if word == 0x3A22_736D_6172_6170 {  // params":
                top = .params; length = 6
            } else if word == 0x3A22_746C_7573_6572 {  // result":
                top = .result; length = 6
            } else if word & 0xFF_FFFF_FFFF_FFFF == 0x3A_2272_6F72_7265 {  // error":
                top = .error; length = 5
            }
            if let top {
                index = start &+ length &+ 2
                skipWhitespace()
                return (start..<(start &+ length), false, top)
            }
        }
        let (key, hasEscape, word) = try memberName()
        return (key, hasEscape, hasEscape ? nil : topKey(key, word))
    }

    /// `memberName` for `params`, with the slot of a recorded name (-1 for others). The names
    /// tools/call uses are matched first, as in `topMemberName`.
    @inline(always)
    mutating func paramsMemberName() throws(ScanError) -> (key: Range<Int>, hasEscape: Bool, slot: Int) {
        // 17: the quote, and the two words after it that the `arguments` test loads.
        if count &- index >= 17 && bytes[index] == UInt8(ascii: "\"") {
            let start = index &+ 1
            let word = load(at: start)
            var slot = -2
            var length = 0
            if word & 0xFFFF_FFFF_FFFF == 0x3A22_656D_616E {  // name":
                slot = 0; length = 4
            } else if word == 0x746E_656D_7567_7261 && load(at: start &+ 8) & 0xFF_FFFF == 0x3A_2273 {  // arguments":
                slot = -1; length = 9
            } else if word & 0xFF_FFFF_FFFF_FFFF == 0x3A_2261_7465_6D5F {  // _meta":
                slot = 5; length = 5
            }
            if slot != -2 {
                index = start &+ length &+ 2
                skipWhitespace()
                return (start..<(start &+ length), false, slot)
            }
        }
        let (key, hasEscape, word) = try memberName()
        return (key, hasEscape, hasEscape ? -1 : paramsSlot(key, word))
    }

    /// The slot of a recorded `params` member name (-1 for others): 0 name, 1 uri,
    /// 2 progressToken, 3 requestId, 4 cursor, 5 _meta.
    @inline(always)
    func paramsSlot(_ key: Range<Int>, _ word: UInt64) -> Int {
        switch word {
        case 0x697275: return 1
        case 0x656d_616e: return 0
        case 0x61_7465_6d5f: return 5
        case 0x726f_7372_7563: return 4
        case 0: break
        default: return -1
        }
        // A name not read from one word (eight bytes or longer, or near the frame's end).
        let p = bytes + key.lowerBound
        switch key.count {
        case 3 where memcmp(p, "uri", 3) == 0: return 1
        case 4 where memcmp(p, "name", 4) == 0: return 0
        case 5 where memcmp(p, "_meta", 5) == 0: return 5
        case 6 where memcmp(p, "cursor", 6) == 0: return 4
        case 9 where memcmp(p, "requestId", 9) == 0: return 3
        case 13 where memcmp(p, "progressToken", 13) == 0: return 2
        default: return -1
        }
    }

    mutating func refuse(_ reason: Refusal, _ key: Range<Int>) {
        if refusal == nil { refusal = (reason, key) }
    }

    /// The error for `refusal`.
    func refusalError(_ reason: Refusal, _ key: Range<Int>) -> ScanError {
        let name = reason == .escaped || reason == .escapedInParams || reason == .escapedInMeta ? decodeKey(key) : keyText(key)
        switch reason {
        case .duplicate: return .invalidRequest("duplicate member \"\(name)\"")
        case .escaped: return .invalidRequest("member name \"\(name)\" must not be escaped")
        case .tooManyMembers: return .invalidRequest("too many members in a message (over 64)")
        case .duplicateInParams: return .invalidRequest("duplicate params member \"\(name)\"")
        case .escapedInParams: return .invalidRequest("params member name \"\(name)\" must not be escaped")
        case .duplicateInMeta: return .invalidRequest("duplicate _meta member \"\(name)\"")
        case .escapedInMeta: return .invalidRequest("_meta member name \"\(name)\" must not be escaped")
        }
    }

    func keyText(_ key: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(start: bytes + key.lowerBound, count: key.count), as: UTF8.self)
    }

    @inline(always)
    func topKey(_ key: Range<Int>, _ word: UInt64) -> TopKey? {
        switch word {
        case 0: return topKeySlow(key)
        case 0x6469: return .id
        case 0x6370_726e_6f73_6a: return .jsonrpc
        case 0x646f_6874_656d: return .method
        case 0x736d_6172_6170: return .params
        case 0x746c_7573_6572: return .result
        case 0x72_6f72_7265: return .error
        default: return nil
        }
    }

    /// `topKey` for a name not read from one word (eight bytes or longer, or near the frame end).
    func topKeySlow(_ key: Range<Int>) -> TopKey? {
        let p = bytes + key.lowerBound
        switch key.count {
        case 2: return p[0] == UInt8(ascii: "i") && p[1] == UInt8(ascii: "d") ? .id : nil
        case 5:
            if memcmp(p, "error", 5) == 0 { return .error }
            return nil
        case 6:
            if memcmp(p, "method", 6) == 0 { return .method }
            if memcmp(p, "params", 6) == 0 { return .params }
            if memcmp(p, "result", 6) == 0 { return .result }
            return nil
        case 7: return memcmp(p, "jsonrpc", 7) == 0 ? .jsonrpc : nil
        default: return nil
        }
    }

    mutating func scanParams(into scan: inout MessageScan) throws(ScanError) {
        guard openContainer(closer: UInt8(ascii: "}")) else { return }
        var seen: UInt32 = 0
        repeat {
            let (key, hasEscape, slot) = try paramsMemberName()
            let valueStart = index
            if hasEscape {
                let decoded = decodeKey(key)
                if ["name", "uri", "_meta", "cursor", "requestId", "progressToken"].contains(decoded) { refuse(.escapedInParams, key) }
            }
            if slot == 5 && index < count && bytes[index] == UInt8(ascii: "{") {
                scan.metaProgressToken = try scanMeta()
            } else {
                try skipValue(depth: 2)
            }
            if slot >= 0 {
                let bit: UInt32 = 1 << UInt32(slot)
                if seen & bit != 0 { refuse(.duplicateInParams, key) }
                seen |= bit
                if slot < 5 { scan.setSpan(MessageScan.Slot.paramsName &+ slot, valueStart..<index) }
            }
        } while try nextInContainer(closer: UInt8(ascii: "}"))
    }

    /// Scans `params._meta`, returning the range of its `progressToken`.
    mutating func scanMeta() throws(ScanError) -> Range<Int>? {
        var token: Range<Int>?
        guard openContainer(closer: UInt8(ascii: "}")) else { return nil }
        repeat {
            let (key, hasEscape, _) = try memberName()
            let valueStart = index
            try skipValue(depth: 3)
            let isToken = !hasEscape && key.count == 13 && memcmp(bytes + key.lowerBound, "progressToken", 13) == 0
            if hasEscape && decodeKey(key) == "progressToken" { refuse(.escapedInMeta, key) }
            if isToken {
                if token != nil { refuse(.duplicateInMeta, key) }
                token = valueStart..<index
            }
        } while try nextInContainer(closer: UInt8(ascii: "}"))
        return token
    }

    /// Scans a batch, returning the range of each element.
    mutating func scanBatch() throws(ScanError) -> [Range<Int>] {
        var elements: [Range<Int>] = []
        guard openContainer(closer: UInt8(ascii: "]")) else { return elements }
        repeat {
            skipWhitespace()
            let start = index
            try skipValue(depth: 1)
            elements.append(start..<index)
        } while try nextInContainer(closer: UInt8(ascii: "]"))
        return elements
    }

    func decodeKey(_ key: Range<Int>) -> String {
        let literal = UnsafeRawBufferPointer(start: bytes + key.lowerBound - 1, count: key.count + 2)
        return (try? JSONParser.parseString(literal)) ?? ""
    }
}
