import Gateway
import Reactor
#if canImport(Glibc)
import Glibc
#endif

enum Approve {
    /// Pins a server's current tool definitions (one tool, or every changed one), then has the
    /// running mcpd of this configuration apply them (SIGHUP).
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        let server = arguments.positionals[0]
        let tool = arguments.positionals.count > 1 ? arguments.positionals[1] : nil
        guard setup.config.servers.contains(where: { $0.name == server }) else {
            let names = setup.config.servers.map(\.name)
            let near = closestName(to: server, among: names).map { "; did you mean \"\($0)\"?" } ?? ""
            setup.log.error("no server \"\(server)\" in \(setup.config.path)\(near)")
            throw ProgramExit.failure
        }
        let variables = Dictionary(setup.environment.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        switch PinApproval.approve(config: setup.config, environment: variables, server: server, tool: tool) {
        case .failure(let error):
            setup.log.error("cannot approve: \(error)")
            throw ProgramExit.failure
        case .success(let approved):
            if approved.isEmpty {
                print(tool.map { "\(server) \($0): its definition is the pinned one; nothing to approve" } ?? "\(server): no tool definition changed; nothing to approve")
            } else {
                print("approved the current definition of \(approved.map { "\(server) \($0)" }.joined(separator: ", "))")
            }
        }
        for pid in setup.runningDaemons() where kill(pid, SIGHUP) == 0 {
            print("sent SIGHUP to mcpd pid \(pid): it applies the pins now")
        }
    }
}
