import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One server as `mcpd list` shows it.
public struct BackendReport: Sendable {
    public var name: String
    /// cached, configured (nothing cached yet), starting, ready, idle-stopped, backoff,
    /// circuit-open, failed, stopped; as the running mcpd sees it when one runs.
    public var state: String
    public var pid: Int32?
    public var restarts: Int
    public var lastExit: String?
    public var lastError: String?
    /// Items by `ListKind` (tools as exposed, prompts, resources, templates).
    public var counts: [Int]
    /// Unix time of the catalog entry the lists come from.
    public var catalogSavedAt: Int?
    public var command: String
    /// Tools whose definition changed since it was pinned (`mcpd approve` pins it again).
    public var changedTools: [String] = []
    /// True when they are withheld (`pin: strict`).
    public var withholdsChanged = false
}

extension Gateway {
    /// For `mcpd list`: what another running mcpd of the same configuration reports, kept for
    /// `reports`. Returns its pid, if one runs.
    public func readRunningDaemon() -> Int32? {
        guard let stateDirectory else { return nil }
        let configPath = absolutePath(config.path)
        let own = getpid()
        guard let (_, record) = RunRecord.all(in: stateDirectory.path).first(where: { $0.record.config == configPath && $0.record.pid != own && $0.record.isLive }) else {
            return nil
        }
        liveReports = Dictionary(record.backends.filter { !$0.statelessTwin }.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return record.pid
    }

    /// The pids of the running mcpd processes whose record names this configuration's file.
    public static func runningDaemons(config: Config, environment: [String: String]) -> [Int32] {
        guard let path = StateDirectory.resolve(config.gateway.stateDir, environment: environment) else { return [] }
        let configPath = absolutePath(config.path)
        return RunRecord.all(in: path).filter { $0.record.config == configPath && $0.record.pid != getpid() && $0.record.isLive }.map(\.record.pid)
    }

    /// Every configured server, enabled ones first in configuration order.
    public var reports: [BackendReport] {
        var reports = backends.map { backend in
            let live = liveReports[backend.name]
            return BackendReport(name: backend.name, state: live?.state ?? backend.displayState, pid: live?.pid ?? backend.pid,
                                 restarts: live?.restarts ?? backend.restarts, lastExit: live?.lastExit ?? backend.lastExitDescription,
                                 lastError: (live?.lastError ?? backend.lastError).map { redact($0, config.secrets) },
                                 counts: ListKind.allCases.map { kind in
                                     // Tools as exposed (a `tools:` filter hides some).
                                     kind == .tools ? exposedTools.lazy.filter { $0.backend == backend.name }.count : backend.lists[kind.rawValue].count
                                 },
                                 catalogSavedAt: backend.catalogSavedAt, command: redact(backend.commandLine, config.secrets),
                                 changedTools: backend.changedTools.keys.sorted(), withholdsChanged: backend.pinsStrictly(config.gateway))
        }
        for server in config.servers where !server.enabled {
            reports.append(BackendReport(name: server.name, state: "disabled", restarts: 0, counts: [0, 0, 0, 0], command: redact(([server.command ?? ""] + server.args).joined(separator: " "), config.secrets)))
        }
        return reports
    }
}
