import Reactor

/// A request mcpd sent to a backend and has not seen answered.
struct PendingRequest {
    enum Origin {
        /// Forwarded for a client: the answer goes back with the client's own id and token.
        case client(ClientSession, id: RawValue, progressToken: RawValue?, batch: BatchCollector?)
        /// mcpd's own request (initialize, tools/list).
        case gateway((Result<BackendReply, BackendFailure>) -> Void)
    }

    var origin: Origin
    /// The method, for error messages.
    var method: StaticString
    /// The tool, prompt or resource called, for error messages.
    var route: Route?
    /// What was asked, for error messages: `tools/call "echo"`.
    var what: String { route.map { "\(method) \"\($0.originalName)\"" } ?? "\(method)" }
    /// Loop time (ms) after which the request is cancelled.
    var deadline: UInt64
    /// Where the answer carries a task id that clients see namespaced (tasks, 2025-11-25).
    var taskID: TaskIDPlace? = nil
}

/// A backend's requests in flight, by the ids mcpd issued for them.
///
/// The table issues the ids itself: each new id is the next one whose slot (`id & mask`) is free,
/// so ids stay unique and increasing, and finding a request is one index and one compare, with
/// no hashing. Entries live in manually managed memory, so that storing one and taking it back
/// are single moves (no copies, no reference counting). The table is kept at most half full;
/// doubling keeps each id in its own slot (ids distinct modulo n stay distinct modulo 2n). Its
/// size is bounded by the backend's limit on requests in flight.
final class PendingTable {
    /// The id in each slot, 0 when the slot is free.
    private var ids: UnsafeMutablePointer<Int>
    /// Initialized exactly where `ids` is not 0.
    private var entries: UnsafeMutablePointer<PendingRequest>
    private var capacity: Int
    private var nextID = 1
    /// Requests in flight.
    private(set) var count = 0

    init(capacity: Int = 64) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "capacity must be a power of two")
        self.capacity = capacity
        ids = .allocate(capacity: capacity)
        ids.initialize(repeating: 0, count: capacity)
        entries = .allocate(capacity: capacity)
    }

    deinit {
        for slot in 0..<capacity where ids[slot] != 0 { (entries + slot).deinitialize(count: 1) }
        ids.deallocate()
        entries.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    /// Stores `entry` and returns the id issued for it.
    func insert(_ entry: __owned PendingRequest) -> Int {
        if (count + 1) * 2 > capacity { grow() }
        let mask = capacity - 1
        while true {
            let id = nextID
            nextID += 1
            let slot = id & mask
            if ids[slot] == 0 {
                ids[slot] = id
                (entries + slot).initialize(to: entry)
                count += 1
                return id
            }
        }
    }

    /// Removes and returns the request with `id`, or nil when none is in flight.
    @discardableResult
    func remove(_ id: Int) -> PendingRequest? {
        let slot = id & (capacity - 1)
        guard id > 0, ids[slot] == id else { return nil }
        ids[slot] = 0
        count -= 1
        return (entries + slot).move()
    }

    /// The request with `id` (a copy), or nil.
    subscript(id: Int) -> PendingRequest? {
        let slot = id & (capacity - 1)
        return id > 0 && ids[slot] == id ? entries[slot] : nil
    }

    /// The ids whose requests satisfy `predicate` (all by default), oldest first. The requests
    /// are looked at in place, not copied.
    func sortedIDs(where predicate: (PendingRequest) -> Bool = { _ in true }) -> [Int] {
        var result: [Int] = []
        for slot in 0..<capacity where ids[slot] != 0 && predicate(entries[slot]) { result.append(ids[slot]) }
        return result.sorted()
    }

    /// The first id whose request satisfies `predicate`, or nil.
    func firstID(where predicate: (PendingRequest) -> Bool) -> Int? {
        for slot in 0..<capacity where ids[slot] != 0 && predicate(entries[slot]) { return ids[slot] }
        return nil
    }

    /// Changes the request with `id` in place; false when none is in flight.
    @discardableResult
    func update(_ id: Int, _ body: (inout PendingRequest) -> Void) -> Bool {
        let slot = id & (capacity - 1)
        guard id > 0, ids[slot] == id else { return false }
        body(&entries[slot])
        return true
    }

    /// Removes every request, returning them oldest first.
    func removeAll() -> [PendingRequest] {
        sortedIDs().compactMap { remove($0) }
    }

    private func grow() {
        let grown = capacity * 2
        let newIDs = UnsafeMutablePointer<Int>.allocate(capacity: grown)
        newIDs.initialize(repeating: 0, count: grown)
        let newEntries = UnsafeMutablePointer<PendingRequest>.allocate(capacity: grown)
        for slot in 0..<capacity where ids[slot] != 0 {
            let id = ids[slot]
            newIDs[id & (grown - 1)] = id
            (newEntries + (id & (grown - 1))).moveInitialize(from: entries + slot, count: 1)
        }
        ids.deallocate()
        entries.deallocate()
        ids = newIDs
        entries = newEntries
        capacity = grown
    }
}

/// A backend's answer to one of mcpd's own requests.
struct BackendReply {
    var frame: ByteBuffer
    var scan: MessageScan

    /// The `result` member parsed, or nil.
    var result: JSONValue? {
        guard let range = scan.result else { return nil }
        return try? JSONParser.parse(frame.slice(range))
    }

    /// The error code of an error reply.
    var errorCode: Int? {
        guard let range = scan.error, let error = try? JSONParser.parse(frame.slice(range)),
              case .number(let text)? = error["code"] else { return nil }
        return Int(text)
    }

    /// The error message of an error reply.
    var errorMessage: String? {
        guard let range = scan.error, let error = try? JSONParser.parse(frame.slice(range)) else { return nil }
        return error["message"]?.stringValue ?? error.jsonText
    }
}

/// Why a request to a backend failed without an answer.
struct BackendFailure: Error {
    var code: Int
    var message: String
}

