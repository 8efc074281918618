import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Reloading the configuration (SIGHUP, or `mcpd reload`), as nginx does: the file is read off
/// the loop thread and parsed; a bad file is reported with file:line:col and the running
/// configuration stays. A good one starts the servers it adds, stops those it removes,
/// restarts those whose settings changed, and leaves every other backend, its process and its
/// requests in flight alone; clients get `list_changed` where the merged lists changed.
extension Gateway {
    public func reload() {
        loop.assertInLoop()
        guard !isShuttingDown else { return }
        if isReloading {
            reloadAgain = true
            return
        }
        isReloading = true
        notifier?.reloading()
        let path = config.path
        AsyncFile.read(loop: loop, path: path, maxBytes: Config.maxFileSize) { [unowned self] result in
            guard !isShuttingDown else { return }
            let next: Config
            do throws(ConfigError) {
                switch result {
                case .failure(let error):
                    throw ConfigError(file: path, message: "cannot read the file: \(error)")
                case .success(let bytes):
                    next = try Config.parse(bytes: bytes, path: path, environment: variables)
                    if !next.envFilesToRead.isEmpty {
                        // The envFiles it names, read off the loop too, then parsed with them.
                        return readEnvFiles(next.envFilesToRead, [:]) { [unowned self] files in
                            guard !isShuttingDown else { return }
                            do throws(ConfigError) {
                                reloadParsed(try Config.parse(bytes: bytes, path: path, environment: variables, envFiles: files))
                            } catch {
                                reloadFailed(error)
                            }
                        }
                    }
                }
            } catch {
                reloadFailed(error)
                return
            }
            reloadParsed(next)
        }
    }

    private func reloadFailed(_ error: ConfigError) {
        for (index, one) in error.all.enumerated() {
            log.error(index == 0 ? "reload failed, the running configuration stays: \(one)" : "\(one)")
        }
        finishReload()
    }

    /// Reads `paths` one after another off the loop thread.
    private func readEnvFiles(_ paths: [String], _ read: [String: EnvFileContent], then done: @escaping ([String: EnvFileContent]) -> Void) {
        guard let path = paths.first else { return done(read) }
        AsyncFile.read(loop: loop, path: path, maxBytes: EnvFileContent.maxSize) { [unowned self] result in
            var read = read
            switch result {
            case .success(let bytes): read[path] = .bytes(bytes)
            case .failure(let error): read[path] = .failed("\(error)")
            }
            readEnvFiles(Array(paths.dropFirst()), read, then: done)
        }
    }

    private func reloadParsed(_ next: Config) {
        // What needs a new process: servers added, and those whose settings changed.
        let fresh = next.servers.filter { server in
            server.enabled && backendsByName[server.name].map { !$0.config.hasSameSettings(as: server) } ?? true
        }
        guard let stateDirectory else { return apply(next, entries: [:]) }
        stateDirectory.loadEntries(fresh) { [unowned self] entries in
            guard !isShuttingDown else { return }
            apply(next, entries: entries)
        }
    }

    private func apply(_ next: Config, entries: [String: CatalogEntry]) {
        let previous = config
        // Servers registered at run time stay, unless the file now has one of that name.
        var next = next
        var replaced: [String] = []
        for server in previous.servers where server.registered {
            if next.servers.contains(where: { $0.name == server.name }) {
                log.warning("registered server \"\(server.name)\" is now in \(next.path) too: the config's is used, and the registration is dropped")
                replaced.append(server.name)
                continue
            }
            next.servers.append(server)
            next.addSecrets(server.env.map(\.value))
        }
        config = next
        log.secrets = Array(Set(log.secrets + next.secrets))
        for warning in next.warnings { log.warning(warning) }
        if next.gateway.maxMessageSize != previous.gateway.maxMessageSize {
            log.warning("gateway.max_message_size changed: it applies to backends as they start and to clients that connect from now on")
        }
        if next.gateway.maxBackendQueue != previous.gateway.maxBackendQueue {
            log.warning("gateway.max_backend_queue changed: it applies to backends as they start")
        }
        var kept: [Backend] = []
        var added: [String] = []
        var restarted: [String] = []
        var starting: [Backend] = []
        var updated: [Backend] = []
        for server in next.servers where server.enabled {
            let existing = backendsByName[server.name]
            if let existing, existing.config.hasSameSettings(as: server) {
                // Same process; what is not a launch setting (its tool filter) applies now.
                existing.config = server
                existing.statelessTwin?.config = server
                existing.applyLiveSettings()
                existing.statelessTwin?.applyLiveSettings()
                existing.timeoutMs = server.timeoutMs ?? next.gateway.requestTimeoutMs
                existing.statelessTwin?.timeoutMs = existing.timeoutMs
                kept.append(existing)
                updated.append(existing)
                continue
            }
            let backend = Backend(config: server, gateway: self)
            let entry = entries[server.name]
            if let entry {
                backend.loadCatalog(entry)
            } else if let existing, existing.isListed {
                // Restarted with new settings: it stays listed with what it listed, and calls
                // wait for the new process, until that lists for itself.
                backend.inheritLists(of: existing)
            }
            if entry == nil || !server.lazy { starting.append(backend) }
            if let existing {
                retire(existing, because: "its settings changed")
                restarted.append(server.name)
            } else {
                added.append(server.name)
            }
            updated.append(backend)
        }
        var removed: [String] = []
        for backend in backends where !updated.contains(where: { $0 === backend }) && !restarted.contains(backend.name) {
            retire(backend, because: "it was removed from the configuration")
            removed.append(backend.name)
        }
        backends = updated
        backendsByName = Dictionary(updated.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for backend in starting { backend.start() }
        catalogMayHaveChanged(ListKind.allCases)
        if !replaced.isEmpty { persistRegistered() }
        // Approvals (`mcpd approve`) are in the pins file.
        reloadPins()
        writeRunRecord()
        var summary: [String] = []
        if !added.isEmpty { summary.append("added \(added.joined(separator: ", "))") }
        if !removed.isEmpty { summary.append("removed \(removed.joined(separator: ", "))") }
        if !restarted.isEmpty { summary.append("restarted \(restarted.joined(separator: ", ")) (settings changed)") }
        summary.append("\(kept.count) unchanged")
        log.info("reloaded \(next.path): \(summary.joined(separator: "; "))")
        finishReload()
    }

    /// Stops a backend a reload removed or replaced, once the requests in flight to it are
    /// answered (at most `drain_timeout`); it stays known until its process is gone. New
    /// requests go to its replacement, or fail when the server was removed.
    func retire(_ backend: Backend, because reason: String) {
        backend.isRetired = true
        backend.statelessTwin?.isRetired = true
        backend.abandonStartQueue(reason)
        backend.statelessTwin?.abandonStartQueue(reason)
        retiring.append(backend)
        let stop = { [unowned self] in
            backend.stopAll { [unowned self] in
                retiring.removeAll { $0 === backend }
                backend.closeHandles()
                backend.statelessTwin?.closeHandles()
            }
        }
        let busy = { backend.pending.count + (backend.statelessTwin?.pending.count ?? 0) > 0 }
        guard busy() else { return stop() }
        let deadline = loop.now + config.gateway.drainTimeoutMs
        let timer = LoopTimer(loop: loop)
        timer.start(timeout: 50, repeat: 50) { [unowned self] in
            guard !busy() || loop.now >= deadline || isShuttingDown else { return }
            timer.close()
            if !isShuttingDown { stop() }
        }
    }

    private func finishReload() {
        isReloading = false
        notifier?.send("READY=1\nSTATUS=\(statusLine)")
        if reloadAgain {
            reloadAgain = false
            reload()
        }
    }
}
