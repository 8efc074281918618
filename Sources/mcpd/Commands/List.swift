import Gateway
import Reactor
#if canImport(Glibc)
import Glibc
#endif

enum List {
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        var allListed = true
        // Servers the catalog lists are not started (unless --refresh); the others are, to
        // fill it, as at any start.
        try setup.runLoop(startEverything: arguments.refresh, waitForAll: true) { gateway throws(UVError) in
            gateway.whenStartupSettled {
                allListed = gateway.backends.allSatisfy { $0.state == .ready || $0.cachedAt != nil }
                let running = gateway.readRunningDaemon()
                print(arguments.json ? renderJSON(gateway, running: running) : renderTables(gateway, running: running), terminator: "")
                fflush(nil)
                gateway.shutdown(reason: "list printed")
            }
        }
        if !allListed { throw ProgramExit.failure }
    }

    private static func renderTables(_ gateway: Gateway, running: Int32?) -> String {
        let now = Int(time(nil))
        var servers: [[String]] = [["SERVER", "STATE", "TOOLS", "PROMPTS", "RESOURCES", "TEMPLATES", "RESTARTS", "LAST EXIT", "CATALOG", "COMMAND"]]
        for report in gateway.reports {
            let state = report.lastError.map { report.state == "ready" ? report.state : "\(report.state): \($0)" } ?? report.state
            let age = report.catalogSavedAt.map { "\(formatAge(now - $0)) old" } ?? "none"
            servers.append([report.name, state] + report.counts.map(String.init) + [String(report.restarts), report.lastExit ?? "-", age, report.command])
        }
        var tools: [[String]] = [["TOOL", "DESCRIPTION"]]
        for tool in gateway.exposedTools {
            let firstLine = tool.description.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
            tools.append([tool.name, firstLine.count > 90 ? String(firstLine.prefix(87)) + "..." : firstLine])
        }
        let source = running.map { "States as mcpd pid \($0) sees them.\n\n" } ?? ""
        var changed = ""
        for report in gateway.reports where !report.changedTools.isEmpty {
            changed += "\nchanged since pinned (\(report.withholdsChanged ? "withheld, pin: strict" : "reported")): "
                + report.changedTools.map { "\(report.name) \($0)" }.joined(separator: ", ") + "; review, then mcpd approve \(report.name) [TOOL]\n"
        }
        return source + formatTable(servers) + "\n" + formatTable(tools) + changed
    }

    private static func renderJSON(_ gateway: Gateway, running: Int32?) -> String {
        var servers: [JSONValue] = []
        for report in gateway.reports {
            var object = JSONObject()
            object["name"] = .string(report.name)
            object["state"] = .string(report.state)
            object["pid"] = report.pid.map { .int(Int($0)) } ?? .null
            object["restarts"] = .int(report.restarts)
            object["lastExit"] = report.lastExit.map(JSONValue.string) ?? .null
            object["lastError"] = report.lastError.map(JSONValue.string) ?? .null
            for (index, kind) in ListKind.allCases.enumerated() { object[kind.resultKey] = .int(report.counts[index]) }
            object["catalogSavedAt"] = report.catalogSavedAt.map(JSONValue.int) ?? .null
            object["command"] = .string(report.command)
            object["changedTools"] = .array(report.changedTools.map(JSONValue.string))
            servers.append(.object(object))
        }
        let tools: [JSONValue] = gateway.exposedTools.map { ["name": .string($0.name), "server": .string($0.backend), "description": .string($0.description)] }
        let document: JSONValue = ["runningPid": running.map { .int(Int($0)) } ?? .null, "servers": .array(servers), "tools": .array(tools)]
        return document.jsonText + "\n"
    }

    /// `42 s`, `5 min`, `3 h`, `2 d`.
    private static func formatAge(_ seconds: Int) -> String {
        let seconds = max(0, seconds)
        if seconds < 120 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        if seconds < 172_800 { return "\(seconds / 3600) h" }
        return "\(seconds / 86400) d"
    }
}
