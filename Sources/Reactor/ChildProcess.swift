import CProcess
import CUV
#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    /// Exited with a status code.
    case exited(Int64)
    /// Killed by a signal.
    case signaled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): return "status \(code)"
        case .signaled(let signal): return "signal \(signal) (\(signalName(signal)))"
        }
    }

    /// The shell convention: the status code, or 128 + the signal.
    public var shellCode: Int32 {
        switch self {
        case .exited(let code): return Int32(truncatingIfNeeded: code)
        case .signaled(let signal): return 128 + signal
        }
    }
}

func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGTERM: return "SIGTERM"
    case SIGKILL: return "SIGKILL"
    case SIGINT: return "SIGINT"
    case SIGHUP: return "SIGHUP"
    case SIGSEGV: return "SIGSEGV"
    case SIGABRT: return "SIGABRT"
    case SIGPIPE: return "SIGPIPE"
    default: return "SIG\(signal)"
    }
}

/// What to run.
public struct SpawnOptions: Sendable {
    /// The program; found on the child's `PATH` when it has no slash.
    public var executable: String
    /// Arguments after the program name.
    public var arguments: [String]
    /// The child's whole environment as `KEY=value`; nil inherits mcpd's.
    public var environment: [String]?
    /// The working directory; nil inherits mcpd's.
    public var workingDirectory: String?

    public init(executable: String, arguments: [String] = [], environment: [String]? = nil, workingDirectory: String? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }
}

/// A child process with pipes on stdin, stdout and stderr, in its own process group (its own
/// session, so a terminal's ^C reaches mcpd, not the backends, and the whole group can be
/// signalled: `npx -> sh -> node` stops as one).
///
/// Children are started with `posix_spawn` (glibc uses `CLONE_VFORK`: no page tables are copied,
/// so a start costs the same in a 12 MB mcpd as in a 1 MB one, about half what libuv 1.44's
/// fork-based `uv_spawn` costs; see Benchmarks/README.md) and reaped by the loop's `ChildReaper`
/// on SIGCHLD.
///
/// The stop sequence follows the MCP stdio transport: close stdin, wait `closeGrace`; SIGTERM to
/// the group, wait `termGrace`; SIGKILL to the group. When the leader exits, whatever is left in
/// its group is killed, so no grandchild outlives its backend. The pid is signalled only before
/// it was reaped (a reaped pid may be reused).
public final class ChildProcess {
    /// The loop the process belongs to.
    public let loop: EventLoop
    /// The child's pid (also its process group id).
    public let pid: Int32
    /// Writes to the child's stdin.
    public let stdin: IOStream
    /// Reads from the child's stdout.
    public let stdout: IOStream
    /// Reads from the child's stderr.
    public let stderr: IOStream
    /// Set once the child exited.
    public private(set) var exitStatus: ExitStatus?
    /// Called once when the child exits (on the loop, after SIGCHLD). A child can exit before
    /// its owner sets this (the reaper may collect it inside `spawn`): set then, it is called
    /// at the loop's next turn, never from inside the assignment.
    public var onExit: ((ExitStatus) -> Void)? {
        didSet {
            guard let exitStatus, let callback = onExit else { return }
            onExit = nil
            loop.execute { callback(exitStatus) }
        }
    }

    private var stopTimer: LoopTimer?

    private init(loop: EventLoop, pid: Int32, stdin: IOStream, stdout: IOStream, stderr: IOStream) {
        self.loop = loop
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Spawns a child. Throws (after closing everything it opened) when the program cannot be
    /// started, e.g. `ENOENT` for a program not on the child's `PATH`.
    public static func spawn(loop: EventLoop, options: SpawnOptions, outputReadCapacity: Int = 16 << 10) throws(UVError) -> ChildProcess {
        loop.assertInLoop()
        let environment = options.environment ?? ProcessSetup.environment().map { "\($0.name)=\($0.value)" }
        let path = environment.last(where: { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) } ?? "/bin:/usr/bin"
        guard let program = resolveExecutable(options.executable, path: path, cwd: options.workingDirectory) else {
            throw UVError(UV_ENOENT.rawValue)
        }
        // Plain pipes, as a shell or the SDKs' stdio clients give a server (libuv's own
        // UV_CREATE_PIPE makes socketpairs, whose every write costs an skb allocation in the
        // kernel). Created close-on-exec and blocking; ours are made non-blocking by
        // uv_pipe_open, the child's are dup2'ed onto 0, 1 and 2 (which clears close-on-exec).
        var pipes: [(parent: Int32, child: Int32)] = []
        func closeAll(parents: Bool) {
            for pair in pipes {
                Glibc.close(pair.child)
                if parents { Glibc.close(pair.parent) }
            }
        }
        for index in 0..<3 {
            var fds: (Int32, Int32) = (-1, -1)
            let rc = withUnsafeMutableBytes(of: &fds) { uv_pipe($0.baseAddress!.assumingMemoryBound(to: uv_file.self), 0, 0) }
            if rc < 0 {
                closeAll(parents: true)
                throw UVError(rc)
            }
            // stdin: the child reads fds.0; stdout and stderr: the child writes fds.1.
            var pair = index == 0 ? (parent: fds.1, child: fds.0) : (parent: fds.0, child: fds.1)
            // With mcpd's own 0, 1 or 2 closed, a child end could land there: dup2 onto itself
            // would keep close-on-exec, so move it up.
            if pair.child < 3 {
                let moved = fcntl(pair.child, F_DUPFD_CLOEXEC, 3)
                Glibc.close(pair.child)
                pair.child = moved
            }
            pipes.append(pair)
        }

        // The reaper watches SIGCHLD before the child exists, so no exit goes unseen.
        let reaper = ChildReaper.of(loop)
        let argv = [options.executable] + options.arguments
        let fds = [pipes[0].child, pipes[1].child, pipes[2].child]
        let rc = withCStrings(argv) { argv in
            withCStrings(environment) { envp in
                fds.withUnsafeBufferPointer { fds in
                    if let cwd = options.workingDirectory {
                        return mcpd_spawn(program, argv, envp, cwd, fds.baseAddress, getpid())
                    }
                    return mcpd_spawn(program, argv, envp, nil, fds.baseAddress, getpid())
                }
            }
        }
        let pid = rc
        closeAll(parents: rc < 0)
        if rc < 0 {
            reaper.closeIfIdle()
            throw UVError(rc)
        }
        let stdin = IOStream.pipe(loop: loop, fd: pipes[0].parent, readCapacity: 0)
        let stdout = IOStream.pipe(loop: loop, fd: pipes[1].parent, readCapacity: outputReadCapacity)
        let stderr = IOStream.pipe(loop: loop, fd: pipes[2].parent, readCapacity: 1024)
        let child = ChildProcess(loop: loop, pid: pid, stdin: stdin, stdout: stdout, stderr: stderr)
        reaper.watch(child)
        return child
    }

    /// The path to exec, found like `execvp` does on `path` (`spawn` passes the child's `PATH`,
    /// from its configured environment, not mcpd's); nil when there is no such executable file.
    public static func resolveExecutable(_ executable: String, path: String, cwd: String?) -> String? {
        func isExecutableFile(_ path: String) -> Bool {
            let full = path.hasPrefix("/") || cwd == nil ? path : "\(cwd!)/\(path)"
            var info = stat()
            return stat(full, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(full, X_OK) == 0
        }
        if executable.isEmpty { return nil }
        if executable.contains("/") { return isExecutableFile(executable) ? executable : nil }
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = directory.isEmpty ? executable : "\(directory)/\(executable)"
            if isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    fileprivate func didExit(_ exit: ExitStatus) {
        exitStatus = exit
        // Sweep the group: a grandchild left behind by a crashed or stopped leader is an orphan.
        kill(-pid, SIGKILL)
        stopTimer?.close()
        stopTimer = nil
        let callback = onExit
        onExit = nil
        callback?(exit)
    }

    /// True until the child exited.
    public var isRunning: Bool { exitStatus == nil }

    /// Sends `signal` to the child's whole process group, if the child has not exited.
    @discardableResult
    public func signalGroup(_ signal: Int32) -> Bool {
        loop.assertInLoop()
        guard exitStatus == nil else { return false }
        return kill(-pid, signal) == 0
    }

    /// The stop sequence: close stdin; after `closeGrace` ms SIGTERM to the group; after
    /// `termGrace` more ms SIGKILL to the group. `onExit` fires when the child is gone.
    public func stop(closeGrace: UInt64 = 2000, termGrace: UInt64 = 2000) {
        loop.assertInLoop()
        // Flush first: what was queued (a cancellation, say) is the child's last input.
        stdin.closeAfterFlush()
        guard exitStatus == nil, stopTimer == nil else { return }
        let timer = LoopTimer(loop: loop)
        stopTimer = timer
        timer.start(timeout: closeGrace) { [unowned self] in
            signalGroup(SIGTERM)
            timer.start(timeout: termGrace) { [unowned self] in
                signalGroup(SIGKILL)
            }
        }
    }

    /// Closes the pipes and, once the child exited, the process handle. A child still running is
    /// killed first: a handle is never abandoned with a live process behind it.
    public func close() {
        loop.assertInLoop()
        stdin.close()
        stdout.close()
        stderr.close()
        if exitStatus == nil {
            signalGroup(SIGKILL)
            // The reaper reports the exit and lets go of the child.
        }
    }

}

/// glibc's `POSIX_SPAWN_SETSID` (a GNU extension the Glibc module does not export).

/// Calls `body` with a NULL-terminated C array of copies of `strings`.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}

/// Reaps a loop's children: one SIGCHLD watcher (referenced, so the loop runs while a child
/// lives) that exists only while there are children, and `waitpid(pid, WNOHANG)` for each on
/// every SIGCHLD, so it never takes the exit status of a process it did not start. As PID 1 or
/// a subreaper (`ProcessSetup.configure`) it also reaps orphans re-parented to it
/// (`waitpid(-1)`), handing any child of its own it meets to that child.
final class ChildReaper {
    private unowned let loop: EventLoop
    private var watcher: SignalWatcher?
    private var children: [Int32: ChildProcess] = [:]

    private init(loop: EventLoop) { self.loop = loop }

    /// The loop's reaper, watching SIGCHLD.
    static func of(_ loop: EventLoop) -> ChildReaper {
        let reaper = loop.childReaper ?? ChildReaper(loop: loop)
        loop.childReaper = reaper
        if reaper.watcher == nil {
            reaper.watcher = try? SignalWatcher(loop: loop, signal: SIGCHLD, unreferenced: false) { [unowned reaper] _ in
                reaper.reap()
            }
        }
        return reaper
    }

    func watch(_ child: ChildProcess) {
        children[child.pid] = child
        // A child that exited before the watcher saw its signal is found by the next sweep; one
        // that exited before it was registered here is found now.
        reap()
    }

    private func reap() {
        var status: Int32 = 0
        for (pid, child) in children where waitpid(pid, &status, WNOHANG) == pid {
            finish(child, status)
        }
        if mcpd_reaps_orphans() != 0 {
            while true {
                let pid = waitpid(-1, &status, WNOHANG)
                guard pid > 0 else { break }
                if let child = children[pid] { finish(child, status) }
            }
        }
        closeIfIdle()
    }

    private func finish(_ child: ChildProcess, _ status: Int32) {
        children[child.pid] = nil
        // WIFSIGNALED / WTERMSIG / WEXITSTATUS, which Swift does not import (they are macros).
        let signal = status & 0x7F
        let exit: ExitStatus = signal != 0 && signal != 0x7F ? .signaled(signal) : .exited(Int64((status >> 8) & 0xFF))
        child.didExit(exit)
    }

    /// Closes the watcher when no child is left, so the loop can end.
    func closeIfIdle() {
        guard children.isEmpty, let watcher else { return }
        watcher.close()
        self.watcher = nil
        loop.childReaper = nil
    }
}
