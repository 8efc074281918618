import Gateway
import XCTest

final class RouterTests: XCTestCase {
    func testPlainNames() {
        let router = Router(separator: "__")
        XCTAssertEqual(router.add(server: "github", tool: "create_issue", backendIndex: 0), "github__create_issue")
        XCTAssertEqual(router.add(server: "fs", tool: "read-file", backendIndex: 1), "fs__read-file")
        XCTAssertEqual(router.route("github__create_issue")?.originalName, "create_issue")
        XCTAssertEqual(router.route("fs__read-file")?.backendIndex, 1)
        XCTAssertNil(router.route("github__nope"))
    }

    func testInvalidCharactersAndLongNamesAreShortenedDeterministically() {
        let router = Router(separator: "__")
        let dotted = router.add(server: "s", tool: "files.read", backendIndex: 0)
        let underscored = router.add(server: "s", tool: "files_read", backendIndex: 0)
        XCTAssertNotEqual(dotted, underscored)
        XCTAssertTrue(Router.isValidName(dotted), dotted)
        XCTAssertTrue(dotted.hasPrefix("s__files_read_"), dotted)
        let long = String(repeating: "x", count: 100)
        let shortened = router.add(server: "server", tool: long, backendIndex: 0)
        XCTAssertEqual(shortened.utf8.count, 64)
        XCTAssertTrue(Router.isValidName(shortened))
        XCTAssertEqual(router.route(shortened)?.originalName, long)

        let again = Router(separator: "__")
        XCTAssertEqual(again.add(server: "s", tool: "files.read", backendIndex: 0), dotted, "names must not depend on run")
    }

    func testNamesNeverCollide() {
        let router = Router(separator: "__")
        var names = Set<String>()
        let tools = ["a", "a.b", "a_b", "a-b", "a b", "a/b", String(repeating: "y", count: 80), String(repeating: "y", count: 81), "é", "ü"]
        for server in ["one", "two"] {
            for tool in tools {
                let name = router.add(server: server, tool: tool, backendIndex: server == "one" ? 0 : 1)
                XCTAssertTrue(Router.isValidName(name), name)
                XCTAssertTrue(names.insert(name).inserted, "collision on \(name)")
            }
        }
        XCTAssertEqual(router.count, 20)
    }

    func testRouteFromLiteral() {
        let router = Router(separator: "__")
        _ = router.add(server: "a", tool: "t", backendIndex: 3)
        let plain = Array("\"a__t\"".utf8)
        let escaped = Array("\"a\\u005f_t\"".utf8)
        plain.withUnsafeBytes { XCTAssertEqual(router.route(literal: $0)?.backendIndex, 3) }
        escaped.withUnsafeBytes { XCTAssertEqual(router.route(literal: $0)?.backendIndex, 3) }
    }

    func testVersionNegotiation() {
        XCTAssertEqual(ProtocolVersion.negotiate("2024-11-05"), "2024-11-05")
        XCTAssertEqual(ProtocolVersion.negotiate("2025-03-26"), "2025-03-26")
        XCTAssertEqual(ProtocolVersion.negotiate("2099-01-01"), "2025-11-25")
        XCTAssertEqual(ProtocolVersion.negotiate(nil), "2025-11-25")
    }
}
