import Gateway
import Reactor
#if canImport(Glibc)
import Glibc
#endif

enum Reload {
    /// Validates the configuration, then signals every running mcpd that serves it.
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        let signalled = setup.runningDaemons()
        guard !signalled.isEmpty else {
            setup.log.error("no running mcpd uses \(setup.config.path) (looked for its record in the state directory); nothing to reload")
            throw ProgramExit.failure
        }
        for pid in signalled {
            if kill(pid, SIGHUP) == 0 {
                print("sent SIGHUP to mcpd pid \(pid); it logs the outcome")
            } else {
                setup.log.error("cannot signal mcpd pid \(pid): \(String(cString: strerror(errno)))")
                throw ProgramExit.failure
            }
        }
    }
}
