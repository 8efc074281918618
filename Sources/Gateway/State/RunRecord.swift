import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// A process as `/proc/<pid>/stat` shows it: enough to tell it from a later process that was
/// given the same pid (its start time, in clock ticks since boot) and to find its group.
struct ProcessStat: Equatable {
    var state: UInt8
    var parent: Int32
    var group: Int32
    var session: Int32
    var startTime: UInt64

    /// Parses the text of `/proc/<pid>/stat`.
    init?(_ bytes: [UInt8]) {
        // The command name is in parentheses and may hold anything, ')' included: the fields
        // start after the last one.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count else { return nil }
        let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        guard fields.count > 19, let parent = Int32(decimal: fields[1]), let group = Int32(decimal: fields[2]),
              let session = Int32(decimal: fields[3]), let start = UInt64(decimal: fields[19])
        else { return nil }
        self.state = fields[0].first ?? 0
        self.parent = parent
        self.group = group
        self.session = session
        self.startTime = start
    }

    /// The process now, or nil when there is none (or it is a zombie: it holds nothing).
    static func of(_ pid: Int32) -> ProcessStat? {
        guard pid > 0, let bytes = readSmallFile("/proc/\(pid)/stat", maxBytes: 4096), let stat = ProcessStat(bytes),
              stat.state != UInt8(ascii: "Z"), stat.state != UInt8(ascii: "X")
        else { return nil }
        return stat
    }

    /// Every live process's pid, from `/proc`.
    static func allPids() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let pid = Int32(name), pid > 0 { pids.append(pid) }
        }
        return pids
    }
}

extension FixedWidthInteger {
    init?(decimal bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        var value: Self = 0
        for byte in bytes {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Self(byte - 0x30))
            guard !o1 && !o2 else { return nil }
            value = sum
        }
        self = value
    }
}

/// `run/<pid>.json`: what a running mcpd has started, rewritten as its backends change. A
/// later mcpd on the same state directory finds the record of one that was killed (its pid
/// gone, or taken by another process) and stops the backends it left (`sweep`); `mcpd list`
/// shows the states a running one sees.
struct RunRecord {
    struct Entry {
        var name: String
        var statelessTwin: Bool
        var state: String
        var pid: Int32?
        var startTime: UInt64?
        var restarts: Int
        var lastExit: String?
        var lastError: String?
        var tools: Int
    }
    var pid: Int32
    var startTime: UInt64
    var config: String
    var updatedAt: Int
    var backends: [Entry]

    var json: JSONValue {
        var object = JSONObject()
        object["pid"] = .int(Int(pid))
        object["startTime"] = .number(String(startTime))
        object["config"] = .string(config)
        object["updatedAt"] = .int(updatedAt)
        object["backends"] = .array(backends.map { entry in
            var item = JSONObject()
            item["name"] = .string(entry.name)
            if entry.statelessTwin { item["statelessTwin"] = true }
            item["state"] = .string(entry.state)
            if let pid = entry.pid { item["pid"] = .int(Int(pid)) }
            if let start = entry.startTime { item["startTime"] = .number(String(start)) }
            item["restarts"] = .int(entry.restarts)
            if let exit = entry.lastExit { item["lastExit"] = .string(exit) }
            if let error = entry.lastError { item["lastError"] = .string(error) }
            item["tools"] = .int(entry.tools)
            return .object(item)
        })
        return .object(object)
    }

    init(pid: Int32, startTime: UInt64, config: String, updatedAt: Int, backends: [Entry]) {
        self.pid = pid
        self.startTime = startTime
        self.config = config
        self.updatedAt = updatedAt
        self.backends = backends
    }

    init?(json value: JSONValue) {
        guard case .number(let pid)? = value["pid"], let pid = Int32(pid),
              case .number(let start)? = value["startTime"], let startTime = UInt64(start)
        else { return nil }
        self.pid = pid
        self.startTime = startTime
        self.config = value["config"]?.stringValue ?? ""
        if case .number(let updated)? = value["updatedAt"] { updatedAt = Int(updated) ?? 0 } else { updatedAt = 0 }
        backends = (value["backends"]?.arrayValue ?? []).compactMap { item in
            guard let name = item["name"]?.stringValue else { return nil }
            func number<T: FixedWidthInteger>(_ key: String) -> T? {
                if case .number(let text)? = item[key] { return T(text) }
                return nil
            }
            return Entry(name: name, statelessTwin: item["statelessTwin"] == .bool(true), state: item["state"]?.stringValue ?? "?",
                         pid: number("pid"), startTime: number("startTime"), restarts: number("restarts") ?? 0,
                         lastExit: item["lastExit"]?.stringValue, lastError: item["lastError"]?.stringValue, tools: number("tools") ?? 0)
        }
    }

    /// True while the mcpd that wrote the record runs.
    var isLive: Bool { ProcessStat.of(pid)?.startTime == startTime }

    /// The records in `directory/run`, each with its file.
    static func all(in directory: String) -> [(file: String, record: RunRecord)] {
        let runDir = "\(directory)/run"
        guard let dir = opendir(runDir) else { return [] }
        defer { closedir(dir) }
        var found: [(String, RunRecord)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasSuffix(".json"), let bytes = readSmallFile("\(runDir)/\(name)", maxBytes: 16 << 20),
                  let value = try? bytes.withUnsafeBytes({ raw throws(ScanError) in try JSONParser.parse(raw) }),
                  let record = RunRecord(json: value)
            else { continue }
            found.append(("\(runDir)/\(name)", record))
        }
        return found
    }

    /// Stops what mcpd processes that are gone left running: for each record whose mcpd is
    /// not running, every process group it recorded whose leader is the recorded process (same
    /// start time) or, the leader gone, whose members are still in the leader's group and
    /// session. Waits up to `waitMs` for them to go, then removes the record. At start-up,
    /// before any backend of this mcpd starts. Returns what it did, for the log.
    static func sweep(directory: String, ownPid: Int32, waitMs: Int = 2000) -> [String] {
        var report: [String] = []
        var killed: [Int32] = []
        // The groups and sessions of every process, read once, when a leader is gone.
        var table: [(group: Int32, session: Int32)]?
        for (file, record) in all(in: directory) where record.pid != ownPid && !record.isLive {
            var groups: [Int32] = []
            for entry in record.backends {
                guard let pid = entry.pid, let start = entry.startTime else { continue }
                if let stat = ProcessStat.of(pid) {
                    // The pid is taken: by the backend itself only if it started when it did.
                    if stat.startTime == start && stat.group == pid { groups.append(pid) }
                    continue
                }
                // The leader is gone (killed with mcpd): a group id is not reused while the
                // group has members, so members still in its group and session are its own.
                let processes = table ?? ProcessStat.allPids().compactMap { ProcessStat.of($0).map { ($0.group, $0.session) } }
                table = processes
                if processes.contains(where: { $0.group == pid && $0.session == pid }) { groups.append(pid) }
            }
            for group in groups {
                kill(-group, SIGKILL)
                killed.append(group)
            }
            if !groups.isEmpty {
                report.append("mcpd pid \(record.pid) (\(record.config)) is gone but left backends running: killed process group\(groups.count == 1 ? "" : "s") \(groups.map(String.init).joined(separator: ", "))")
            }
            unlink(file)
        }
        // Gone means no member left outside a zombie: wait for the kernel to finish them.
        var waited = 0
        while waited < waitMs && !killed.isEmpty {
            let groups = Set(ProcessStat.allPids().compactMap { ProcessStat.of($0)?.group })
            if !killed.contains(where: groups.contains) { break }
            usleep(10_000)
            waited += 10
        }
        return report
    }
}
