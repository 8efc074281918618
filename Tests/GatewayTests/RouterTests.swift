@testable import Gateway
import Reactor
import XCTest

final class RouterTests: XCTestCase {
    /// Backends to route to: a gateway's, never started.
    private var loop: EventLoop!
    private var gateway: Gateway!

    override func setUpWithError() throws {
        loop = try EventLoop()
        var config = Config(path: "test.yaml")
        for name in ["github", "fs", "s", "server", "one", "two", "a"] {
            var server = ServerConfig(name: name)
            server.command = "true"
            config.servers.append(server)
        }
        gateway = Gateway(loop: loop, config: config, log: Logger(level: .error), environment: [])
    }

    override func tearDownWithError() throws {
        gateway = nil
        try loop.close()
    }

    private func backend(_ name: String) -> Backend { gateway.backends.first { $0.name == name }! }
    func testPlainNames() {
        let router = Router(separator: "__")
        XCTAssertEqual(router.add("create_issue", of: backend("github")), "github__create_issue")
        XCTAssertEqual(router.add("read-file", of: backend("fs")), "fs__read-file")
        XCTAssertEqual(router.route("github__create_issue")?.originalName, "create_issue")
        XCTAssertTrue(router.route("fs__read-file")?.backend === backend("fs"))
        XCTAssertNil(router.route("github__nope"))
    }

    func testInvalidCharactersAndLongNamesAreShortenedDeterministically() {
        let router = Router(separator: "__")
        let dotted = router.add("files.read", of: backend("s"))
        let underscored = router.add("files_read", of: backend("s"))
        XCTAssertNotEqual(dotted, underscored)
        XCTAssertTrue(Router.isValidName(dotted), dotted)
        XCTAssertTrue(dotted.hasPrefix("s__files_read_"), dotted)
        let long = String(repeating: "x", count: 100)
        let shortened = router.add(long, of: backend("server"))
        XCTAssertEqual(shortened.utf8.count, 64)
        XCTAssertTrue(Router.isValidName(shortened))
        XCTAssertEqual(router.route(shortened)?.originalName, long)

        let again = Router(separator: "__")
        XCTAssertEqual(again.add("files.read", of: backend("s")), dotted, "names must not depend on run")
    }

    func testNamesNeverCollide() {
        let router = Router(separator: "__")
        var names = Set<String>()
        let tools = ["a", "a.b", "a_b", "a-b", "a b", "a/b", String(repeating: "y", count: 80), String(repeating: "y", count: 81), "é", "ü"]
        for server in ["one", "two"] {
            for tool in tools {
                let name = router.add(tool, of: backend(server))
                XCTAssertTrue(Router.isValidName(name), name)
                XCTAssertTrue(names.insert(name).inserted, "collision on \(name)")
            }
        }
        XCTAssertEqual(router.count, 20)
    }

    func testRouteFromLiteral() {
        let router = Router(separator: "__")
        _ = router.add("t", of: backend("a"))
        let plain = Array("\"a__t\"".utf8)
        let escaped = Array("\"a\\u005f_t\"".utf8)
        plain.withUnsafeBytes { XCTAssertTrue(router.route(literal: $0)?.backend === backend("a")) }
        escaped.withUnsafeBytes { XCTAssertTrue(router.route(literal: $0)?.backend === backend("a")) }
    }

    func testNameBudgetIsHonouredForEveryName() {
        let router = Router(separator: "__", nameBudget: 53)
        for tool in ["short", String(repeating: "z", count: 60), "x.y", "é"] {
            let name = router.add(tool, of: backend("server"))
            XCTAssertTrue(Router.isValidName(name, budget: 53), name)
            XCTAssertEqual(router.route(name)?.originalName, tool)
        }
        XCTAssertEqual(router.add("short2", of: backend("server")), "server__short2", "names that fit stay plain")
        let tight = Router(separator: "__", nameBudget: Router.minimumBudget)
        let long = String(repeating: "q", count: 40)
        let name = tight.add("tool", of: backend("server"))
        XCTAssertEqual(name, "server__tool")
        let cut = tight.add(long, of: backend("server"))
        XCTAssertEqual(cut.utf8.count, Router.minimumBudget)
        XCTAssertEqual(tight.route(cut)?.originalName, long)
    }

    func testExposedURIsMapBackExactly() {
        for (server, uri) in [("docs", "file:///srv/a.txt"), ("d-1", "gamma://notes/{id}"), ("x", "https://e.com/a?b=c/d#e"), ("s", "mcpd://t/u")] {
            let exposed = ExposedURI.expose(server: server, uri: uri)
            XCTAssertTrue(exposed.hasPrefix("mcpd://\(server)/"))
            XCTAssertEqual(ExposedURI.split(exposed)?.server, server)
            XCTAssertEqual(ExposedURI.split(exposed)?.original, uri)
        }
        XCTAssertNil(ExposedURI.split("file:///a"))
        XCTAssertNil(ExposedURI.split("mcpd://noslash"))
        XCTAssertNil(ExposedURI.split("mcpd:///x"))
    }

    func testExposedTaskIDsMapBackExactly() {
        for (server, id) in [("e1", "task-1"), ("docs", "a__b"), ("x", "é/ü"), ("s-2", "_")] {
            let exposed = ExposedTaskID.expose(server: server, separator: "__", id: id)
            XCTAssertEqual(ExposedTaskID.split(exposed, separator: "__")?.server, server)
            XCTAssertEqual(ExposedTaskID.split(exposed, separator: "__")?.original, id)
        }
        XCTAssertNil(ExposedTaskID.split("task-1", separator: "__"))
        XCTAssertNil(ExposedTaskID.split("__task", separator: "__"))
        XCTAssertNil(ExposedTaskID.split("e1__", separator: "__"))
    }

    func testVersionNegotiation() {
        XCTAssertEqual(ProtocolVersion.negotiate("2024-11-05"), "2024-11-05")
        XCTAssertEqual(ProtocolVersion.negotiate("2025-03-26"), "2025-03-26")
        XCTAssertEqual(ProtocolVersion.negotiate("2099-01-01"), "2025-11-25")
        XCTAssertEqual(ProtocolVersion.negotiate(nil), "2025-11-25")
    }
}
