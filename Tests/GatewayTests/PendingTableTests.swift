@testable import Gateway
import XCTest

final class PendingTableTests: XCTestCase {
    private func entry(_ deadline: UInt64, _ log: Log? = nil) -> PendingRequest {
        PendingRequest(origin: .gateway { _ in log?.calls += 1 }, method: "tools/call", route: nil, deadline: deadline)
    }

    /// Counts completions, and lets a test see whether an entry's closure is still alive.
    final class Log {
        var calls = 0
    }

    func testIdsAreUniqueIncreasingAndFoundAgain() {
        let table = PendingTable(capacity: 4)
        var ids: [Int] = []
        for index in 0..<100 { ids.append(table.insert(entry(UInt64(index)))) }
        XCTAssertEqual(table.count, 100)
        XCTAssertEqual(ids, ids.sorted())
        XCTAssertEqual(Set(ids).count, 100)
        for (index, id) in ids.enumerated() { XCTAssertEqual(table[id]?.deadline, UInt64(index)) }
        XCTAssertNil(table[0])
        XCTAssertNil(table[ids.last! + 1], "an id never issued is not found")
        XCTAssertNil(table[-5])
    }

    func testRemovedIdsAreGoneAndNeverReissued() {
        let table = PendingTable(capacity: 4)
        let first = table.insert(entry(1))
        let second = table.insert(entry(2))
        XCTAssertEqual(table.remove(first)?.deadline, 1)
        XCTAssertNil(table.remove(first), "a second answer to the same id is unknown")
        XCTAssertEqual(table.count, 1)
        let third = table.insert(entry(3))
        XCTAssertGreaterThan(third, second)
        XCTAssertEqual(table.sortedIDs(), [second, third])
    }

    func testLongLivedRequestSurvivesWraparoundAndGrowth() {
        // One request stays in flight while thousands pass through its slot's neighbourhood:
        // new ids skip its slot, and growing keeps it findable.
        let table = PendingTable(capacity: 4)
        let old = table.insert(entry(42))
        for round in 0..<5000 {
            let id = table.insert(entry(UInt64(round)))
            XCTAssertNotEqual(id, old)
            XCTAssertEqual(table.remove(id)?.deadline, UInt64(round))
            if round == 2500 { for _ in 0..<10 { _ = table.insert(entry(7)) } }
        }
        XCTAssertEqual(table[old]?.deadline, 42)
        XCTAssertEqual(table.count, 11)
        XCTAssertEqual(table.firstID { $0.deadline == 42 }, old)
        let all = table.removeAll()
        XCTAssertEqual(all.first?.deadline, 42, "oldest first")
        XCTAssertEqual(all.count, 11)
        XCTAssertTrue(table.isEmpty)
    }

    func testEntriesAreReleasedWhenRemovedOrWhenTheTableGoes() {
        weak var weakLog: Log?
        do {
            let log = Log()
            weakLog = log
            let table = PendingTable(capacity: 4)
            let id = table.insert(entry(1, log))
            for _ in 0..<20 { _ = table.insert(entry(2, log)) }
            if case .gateway(let callback)? = table.remove(id)?.origin { callback(.failure(BackendFailure(code: 0, message: ""))) }
            XCTAssertEqual(log.calls, 1, "the entry moved out intact")
        }
        XCTAssertNil(weakLog, "entries still in the table are released with it")
    }
}
