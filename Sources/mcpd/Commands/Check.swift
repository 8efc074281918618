import Gateway
import Reactor
#if canImport(Glibc)
import Glibc
#endif

enum Check {
    /// Like `nginx -t`: every problem found, each with its line, and a non-zero exit if any is
    /// an error.
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        let config = setup.config
        for note in config.notes { setup.log.info(note) }
        for warning in config.warnings where !config.unsetVariables.contains(warning) { setup.log.warning(warning) }
        var errors = config.unsetVariables
        let path = setup.environment.first { $0.name == "PATH" }?.value ?? "/usr/bin:/bin"
        for server in config.servers where server.enabled {
            if let problem = server.launchProblem(path: path) {
                errors.append("\(config.path):\(server.commandLine): server \"\(server.name)\": \(problem)")
            }
        }
        let enabled = config.servers.filter(\.enabled)
        // Three pipes per backend process, twice for servers run in both eras, and a margin
        // for clients, the loop and the config.
        let needed = enabled.count * 6 + 64
        let limit = ProcessSetup.openFileLimit
        if needed > limit {
            setup.log.warning("\(enabled.count) servers may need \(needed) open files, above the limit of \(limit) (ulimit -Hn); raise it (LimitNOFILE= in a systemd unit, --ulimit nofile= in a container)")
        }
        if arguments.json {
            let document: JSONValue = [
                "config": .string(config.path), "ok": .bool(errors.isEmpty),
                "errors": .array(errors.map { .string(redact($0, config.secrets)) }),
                "warnings": .array(config.warnings.filter { !config.unsetVariables.contains($0) }.map { .string(redact($0, config.secrets)) }),
                "servers": .array(enabled.map { JSONValue.string($0.name) }),
            ]
            print(document.jsonText)
            if !errors.isEmpty { throw ProgramExit.failure }
            return
        }
        guard errors.isEmpty else {
            for error in errors { setup.log.error(error) }
            writeStandardError("\(config.path): \(errors.count) error\(errors.count == 1 ? "" : "s")\n")
            throw ProgramExit.failure
        }
        print("\(config.path): OK, \(enabled.count) server\(enabled.count == 1 ? "" : "s") enabled: \(enabled.map(\.name).joined(separator: ", "))")
    }
}
