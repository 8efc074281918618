import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// The state directory (`gateway.state_dir`; default `$XDG_STATE_HOME/mcpd`, else
/// `~/.local/state/mcpd`):
///
///     catalog/<server>.json   what each server said and listed when it was last ready
///     run/<mcpd pid>.json     a running mcpd: its backends' process groups, start times and
///                             states (for the sweep after a crash, and for `mcpd list`)
///
/// Files are written whole, to a temporary name then renamed, off the loop thread
/// (`AsyncFile`). They are read when mcpd starts, before its loop serves anyone. Without a
/// usable directory mcpd works as before: every backend starts at launch, nothing is kept.
final class StateDirectory {
    let path: String
    let loop: EventLoop
    let log: Logger
    /// The largest catalog entry mcpd reads or writes.
    static let maxEntryBytes = 64 << 20

    /// Files being written: what to do with each once its write is done (write newer
    /// content, or remove it). One write per file at a time; the last request wins.
    private enum Next {
        case nothing
        case write([UInt8])
        case remove(() -> Void)
    }
    private var inFlight: [String: Next] = [:]

    init(path: String, loop: EventLoop, log: Logger) {
        self.path = path
        self.loop = loop
        self.log = log
    }

    /// The configured directory, `~` expanded, or the XDG default; nil when there is no home.
    static func resolve(_ configured: String?, environment: [String: String]) -> String? {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
        if let configured {
            if configured == "~" { return home }
            if configured.hasPrefix("~/") { return home.map { $0 + configured.dropFirst() } }
            return configured
        }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return "\(state)/mcpd" }
        return home.map { "\($0)/.local/state/mcpd" }
    }

    /// Creates the directory and its subdirectories (mode 0700). At start-up, before the loop
    /// serves. Returns why it cannot be used, or nil.
    func prepare() -> String? {
        var built = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            built += "/\(component)"
            if mkdir(built, 0o700) != 0 && errno != EEXIST { return "cannot create \(built): \(String(cString: strerror(errno)))" }
        }
        for sub in ["catalog", "run"] {
            let dir = "\(path)/\(sub)"
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { return "cannot create \(dir): \(String(cString: strerror(errno)))" }
        }
        if access(path, W_OK) != 0 { return "\(path) is not writable" }
        return nil
    }

    // MARK: Catalog

    func catalogPath(_ server: String) -> String { "\(path)/catalog/\(server).json" }

    /// The server's entry if it has one for these launch settings. At start-up only.
    func loadEntry(_ server: ServerConfig) -> CatalogEntry? {
        guard let bytes = readSmallFile(catalogPath(server.name), maxBytes: StateDirectory.maxEntryBytes) else { return nil }
        return decodeEntry(bytes, server)
    }

    /// The entries of `servers` that match their launch settings, read off the loop thread
    /// (a reload).
    func loadEntries(_ servers: [ServerConfig], _ done: @escaping ([String: CatalogEntry]) -> Void) {
        var found: [String: CatalogEntry] = [:]
        var remaining = servers.count
        if remaining == 0 { return done(found) }
        for server in servers {
            AsyncFile.read(loop: loop, path: catalogPath(server.name), maxBytes: StateDirectory.maxEntryBytes) { [self] result in
                if case .success(let bytes) = result, let entry = decodeEntry(bytes, server) { found[server.name] = entry }
                remaining -= 1
                if remaining == 0 { done(found) }
            }
        }
    }

    private func decodeEntry(_ bytes: [UInt8], _ server: ServerConfig) -> CatalogEntry? {
        let file = catalogPath(server.name)
        let entry: CatalogEntry?
        do {
            entry = CatalogEntry(json: try bytes.withUnsafeBytes { raw throws(ScanError) in try JSONParser.parse(raw) })
        } catch {
            log.warning("catalog entry \(file) is not valid JSON (\(error)); \(server.name) will be started to list its tools again")
            return nil
        }
        guard let entry else {
            log.warning("catalog entry \(file) is not in this version's format; \(server.name) will be started to list its tools again")
            return nil
        }
        guard entry.key == CatalogEntry.key(of: server) else {
            log.info("server \"\(server.name)\": its launch settings changed since its catalog entry was written; starting it to list its tools again")
            return nil
        }
        return entry
    }

    /// Writes the server's entry (off the loop thread, atomically).
    func save(_ entry: CatalogEntry, server: String) {
        write(entry.json.serialized.withUnsafeReadableBytes { Array($0) }, to: catalogPath(server))
    }

    // MARK: Writing

    /// Writes `bytes` to `file` atomically; a write asked for while one is in flight replaces
    /// what the next write writes.
    func write(_ bytes: [UInt8], to file: String) {
        if inFlight[file] != nil {
            inFlight[file] = .write(bytes)
            return
        }
        inFlight[file] = .nothing
        AsyncFile.writeAtomically(loop: loop, path: file, data: bytes) { [self] error in
            if let error { log.warning("could not write \(file): \(error)") }
            switch inFlight.removeValue(forKey: file) ?? .nothing {
            case .nothing: break
            case .write(let next): write(next, to: file)
            case .remove(let done): remove(file, done)
            }
        }
    }

    /// Removes `file` (after the write in flight to it, if any).
    func remove(_ file: String, _ done: @escaping () -> Void = {}) {
        if inFlight[file] != nil {
            inFlight[file] = .remove(done)
            return
        }
        AsyncFile.remove(loop: loop, path: file) { [self] error in
            if let error { log.warning("could not remove \(file): \(error)") }
            done()
        }
    }
}

/// Why `readFile` returned no bytes.
enum FileReadFailure: Error {
    /// `errno` of the open or read.
    case failed(Int32)
    /// Over its `maxBytes`.
    case tooLarge
}

/// Reads a whole file of at most `maxBytes` synchronously: before the loop serves (start-up,
/// the config) and in the one-shot commands.
func readFile(_ path: String, maxBytes: Int) -> Result<[UInt8], FileReadFailure> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .failure(.failed(errno)) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return .failure(.failed(errno)) }
        if n == 0 { return .success(bytes) }
        bytes.append(contentsOf: chunk[0..<n])
        if bytes.count > maxBytes { return .failure(.tooLarge) }
    }
}

/// `readFile`, nil when the file is missing, unreadable or larger.
func readSmallFile(_ path: String, maxBytes: Int) -> [UInt8]? {
    try? readFile(path, maxBytes: maxBytes).get()
}

/// `path` made absolute against the current directory (for records other processes read).
func absolutePath(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
    let found = buffer.withUnsafeMutableBufferPointer { raw in
        raw.withMemoryRebound(to: CChar.self) { getcwd($0.baseAddress, $0.count) != nil }
    }
    guard found else { return path }
    let cwd = String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
    return path.hasPrefix("./") ? "\(cwd)/\(path.dropFirst(2))" : "\(cwd)/\(path)"
}
