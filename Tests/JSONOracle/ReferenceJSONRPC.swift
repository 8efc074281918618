import Gateway

/// What `JSONScanner.scan` must make of a frame, worked out on the trees of `ReferenceJSONParser`
/// (independent of the scanner's code): not JSON, JSON but not a JSON-RPC message, or a message
/// of some kind. The rules are the scanner's documented contract:
/// - any JSON value is checked whole first: not JSON (-32700) comes before any other refusal;
/// - an array is a batch (its elements are judged one by one later);
/// - a message is an object; at its top level a routed name (`jsonrpc`, `id`, `method`, `params`,
///   `result`, `error`) must not be written with an escape, must not repeat, and no other name may
///   repeat as written; at most 64 other members;
/// - in a `params` object the recorded names (`name`, `uri`, `_meta`, `cursor`, `requestId`,
///   `progressToken`) are neither escaped nor repeated, and in a `params._meta` object
///   `progressToken` is neither escaped nor repeated (other members there are the backend's
///   business);
/// - `jsonrpc` is exactly the literal `"2.0"`; a `method` makes a request (with a string or
///   number `id`) or a notification (no `id`), with object or array `params`, and no `result` or
///   `error`; otherwise `result` or `error` (one of them) with an `id` make a response.
public enum ReferenceJSONRPC {
    public enum Outcome: Hashable {
        case notJSON
        case notRPC
        case kind(MessageScan.Kind)
    }

    static let routed: Set<String> = ["jsonrpc", "id", "method", "params", "result", "error"]
    static let recordedInParams: Set<String> = ["name", "uri", "_meta", "cursor", "requestId", "progressToken"]

    /// The outcome for `bytes`.
    public static func classify(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard let tree = try? ReferenceJSONParser.parse(bytes) else { return .notJSON }
        // Without a backslash anywhere every string is written as it reads.
        let raw = bytes.contains(UInt8(ascii: "\\")) ? try! ReferenceJSONParser.parse(bytes, strings: .raw) : tree
        if case .array = tree { return .kind(.batch) }
        guard let top = tree.objectValue, let rawTop = raw.objectValue else { return .notRPC }
        guard namesAreAcceptable(top, rawTop) else { return .notRPC }

        guard rawTop["jsonrpc"] == .string("2.0") else { return .notRPC }
        if let method = top["method"] {
            guard case .string = method else { return .notRPC }
            if let params = top["params"] {
                switch params { case .object, .array: break; default: return .notRPC }
            }
            if top["result"] != nil || top["error"] != nil { return .notRPC }
            guard let id = top["id"] else { return .kind(.notification) }
            switch id { case .string, .number: return .kind(.request); default: return .notRPC }
        }
        guard top["result"] != nil || top["error"] != nil else { return .notRPC }
        guard top["id"] != nil, top["result"] == nil || top["error"] == nil else { return .notRPC }
        return .kind(.response)
    }

    /// The rules on member names, given the object decoded and as written (same members, same
    /// order).
    static func namesAreAcceptable(_ top: JSONObject, _ rawTop: JSONObject) -> Bool {
        var routedSeen: Set<String> = []
        var othersWritten: Set<String> = []
        for (member, written) in zip(top.members, rawTop.members) {
            let escaped = written.key.utf8.contains(UInt8(ascii: "\\"))
            if routed.contains(member.key) {
                if escaped || !routedSeen.insert(member.key).inserted { return false }
            } else if !othersWritten.insert(written.key).inserted {
                return false
            }
        }
        if top.members.count - routedSeen.count > 64 { return false }
        // Each `params` (there is one, or the message was refused above) that is an object.
        for (member, written) in zip(top.members, rawTop.members) where member.key == "params" {
            guard case .object(let params) = member.value, case .object(let rawParams) = written.value else { continue }
            var seen: Set<String> = []
            for (inner, innerWritten) in zip(params.members, rawParams.members) where recordedInParams.contains(inner.key) {
                if innerWritten.key.utf8.contains(UInt8(ascii: "\\")) || !seen.insert(inner.key).inserted { return false }
                guard inner.key == "_meta", case .object(let meta) = inner.value, case .object(let rawMeta) = innerWritten.value else { continue }
                var tokens = 0
                for (entry, entryWritten) in zip(meta.members, rawMeta.members) where entry.key == "progressToken" {
                    if entryWritten.key.utf8.contains(UInt8(ascii: "\\")) { return false }
                    tokens += 1
                }
                if tokens > 1 { return false }
            }
        }
        return true
    }

    /// The members `MessageScan` records, with the value the tree holds for each (nil when
    /// absent), in `MessageScan`'s order: for checking that each recorded range parses to it.
    public static func recordedMembers(of tree: JSONValue) -> [(name: String, value: JSONValue?)] {
        let params = tree["params"]?.objectValue
        return [
            ("jsonrpc", tree["jsonrpc"]), ("id", tree["id"]), ("method", tree["method"]), ("params", tree["params"]),
            ("result", tree["result"]), ("error", tree["error"]),
            ("params.name", params?["name"]), ("params.uri", params?["uri"]), ("params.progressToken", params?["progressToken"]),
            ("params.requestId", params?["requestId"]), ("params.cursor", params?["cursor"]),
            ("params._meta.progressToken", params?["_meta"]?["progressToken"]),
        ]
    }
}

extension MessageScan {
    /// The recorded ranges in the order of `ReferenceJSONRPC.recordedMembers`.
    public var recordedRanges: [Range<Int>?] {
        [jsonrpc, id, method, params, result, error, paramsName, paramsURI, paramsProgressToken, paramsRequestID, paramsCursor,
         metaProgressToken]
    }
}
