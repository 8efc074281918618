import Reactor

/// The four lists a server offers and a client pages through.
public enum ListKind: Int, CaseIterable, Sendable {
    case tools, prompts, resources, templates

    /// The request that lists them.
    var method: StaticString {
        switch self {
        case .tools: return "tools/list"
        case .prompts: return "prompts/list"
        case .resources: return "resources/list"
        case .templates: return "resources/templates/list"
        }
    }

    /// The member of the list result that holds the items.
    public var resultKey: String {
        switch self {
        case .tools: return "tools"
        case .prompts: return "prompts"
        case .resources: return "resources"
        case .templates: return "resourceTemplates"
        }
    }

    /// `1 tool`, `3 resource templates`: for logs.
    func counted(_ count: Int) -> String {
        let noun: String
        switch self {
        case .tools: noun = "tool"
        case .prompts: noun = "prompt"
        case .resources: noun = "resource"
        case .templates: noun = "resource template"
        }
        return plural(count, noun)
    }

    /// The member that identifies an item within one server.
    var identity: String {
        switch self {
        case .tools, .prompts: return "name"
        case .resources: return "uri"
        case .templates: return "uriTemplate"
        }
    }

    /// The server capability that says the server offers the list.
    var capability: String {
        switch self {
        case .tools: return "tools"
        case .prompts: return "prompts"
        case .resources, .templates: return "resources"
        }
    }

    /// The letter that starts a cursor of this list.
    var cursorLetter: UInt8 {
        switch self {
        case .tools: return UInt8(ascii: "t")
        case .prompts: return UInt8(ascii: "p")
        case .resources: return UInt8(ascii: "r")
        case .templates: return UInt8(ascii: "u")
        }
    }

    /// The kinds a server's `notifications/<capability>/list_changed` refreshes.
    static func refreshed(by capability: String) -> [ListKind] {
        allCases.filter { $0.capability == capability }
    }
}

/// One merged list as clients page through it: every backend's items, renamed, each kept
/// serialised, in backend order.
///
/// Cursors are mcpd's own: `<letter><generation>.<offset>` (`t3.100`). Clients treat them as
/// opaque. The generation changes whenever the list does, so a cursor from before a change is
/// refused (-32602) instead of silently skipping or repeating items; the client was sent
/// `list_changed` and lists again from the start. Backends' own cursors never reach clients:
/// mcpd follows every backend's pages when it builds the list.
struct CatalogList {
    let kind: ListKind
    private(set) var items: [ByteBuffer] = []
    private(set) var generation = 0
    /// The first page, cached: most clients list once, from the start.
    private var firstPage: ByteBuffer?
    /// The items without the members clients of versions before 2025-06-18 do not know
    /// (`outputSchema`), made when such a client first lists.
    private var olderItems: [ByteBuffer]?

    init(kind: ListKind) { self.kind = kind }

    /// Replaces the items; returns whether anything changed.
    mutating func replace(with newItems: [ByteBuffer]) -> Bool {
        let same = newItems.count == items.count && zip(newItems, items).allSatisfy { $0.elementsEqual($1) }
        if same { return false }
        items = newItems
        generation += 1
        firstPage = nil
        olderItems = nil
        return true
    }

    /// The result of a list request: `{"<key>":[...],"nextCursor":"..."}` for the page at
    /// `cursor` (nil: the first), or a message saying why the cursor is refused.
    mutating func page(cursor: String?, pageSize: Int, forOlderClient older: Bool = false) -> Result<ByteBuffer, ListError> {
        var offset = 0
        if let cursor {
            guard let parsed = parse(cursor) else {
                return .failure(ListError(message: "Invalid cursor \"\(cursor.prefix(64))\": not one of mcpd's \(kind.method) cursors"))
            }
            guard parsed.generation == generation else {
                return .failure(ListError(message: "Invalid cursor: the \(kind.resultKey) list changed since this cursor was issued; list again from the start"))
            }
            guard parsed.offset > 0 && parsed.offset < items.count else {
                return .failure(ListError(message: "Invalid cursor \"\(cursor.prefix(64))\": past the end of the list"))
            }
            offset = parsed.offset
        } else if let firstPage, !older {
            return .success(firstPage)
        }
        if older && olderItems == nil { olderItems = items.map(CatalogList.withoutStructuredOutput) }
        let items = older ? olderItems! : self.items
        let end = min(items.count, offset + max(pageSize, 1))
        var out = ByteBuffer(capacity: items[offset..<end].reduce(64) { $0 + $1.readableBytes + 1 })
        out.append(string: "{\"\(kind.resultKey)\":[")
        for index in offset..<end {
            if index > offset { out.appendByte(UInt8(ascii: ",")) }
            out.append(items[index])
        }
        out.appendByte(UInt8(ascii: "]"))
        if end < items.count {
            out.append(string: ",\"nextCursor\":\"")
            out.appendByte(kind.cursorLetter)
            out.append(string: "\(generation).\(end)\"")
        }
        out.appendByte(UInt8(ascii: "}"))
        if cursor == nil && !older { firstPage = out }
        return .success(out)
    }

    /// An item without `outputSchema`, which protocol versions before 2025-06-18 do not define.
    static func withoutStructuredOutput(_ item: ByteBuffer) -> ByteBuffer {
        let scanner = JSONScanner()
        let cut: Range<Int>? = item.withUnsafeReadableBytes { raw in scanner.removal(of: "outputSchema", inObjectAt: 0..<raw.count, of: raw) }
        guard let cut else { return item }
        var out = ByteBuffer(capacity: item.readableBytes)
        out.append(item.slice(0..<cut.lowerBound))
        out.append(item.slice(cut.upperBound..<item.readableBytes))
        return out
    }

    private func parse(_ cursor: String) -> (generation: Int, offset: Int)? {
        let utf8 = Array(cursor.utf8)
        guard utf8.count >= 4, utf8.count <= 40, utf8[0] == kind.cursorLetter, let dot = utf8.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        guard let generation = Int(String(decoding: utf8[1..<dot], as: UTF8.self)),
              let offset = Int(String(decoding: utf8[(dot + 1)...], as: UTF8.self))
        else { return nil }
        return (generation, offset)
    }
}

/// Why a list request was refused (answered with -32602).
struct ListError: Error {
    var message: String
}

/// `1 request`, `2 requests`.
func plural(_ count: Int, _ noun: String) -> String {
    count == 1 ? "1 \(noun)" : "\(count) \(noun)s"
}
