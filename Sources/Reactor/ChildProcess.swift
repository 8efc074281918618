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
/// The stop sequence follows the MCP stdio transport: close stdin, wait `closeGrace`; SIGTERM to
/// the group, wait `termGrace`; SIGKILL to the group. When the leader exits, whatever is left in
/// its group is killed, so no grandchild outlives its backend. The pid is signalled only before
/// libuv reported the exit (a reaped pid may be reused).
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
    /// Called once when the child exits (from libuv's SIGCHLD handling, on the loop).
    public var onExit: ((ExitStatus) -> Void)?

    private let handle: UnsafeMutablePointer<uv_process_t>
    private var handleOpen = true
    private var stopTimer: LoopTimer?

    private init(loop: EventLoop, handle: UnsafeMutablePointer<uv_process_t>, stdin: IOStream, stdout: IOStream, stderr: IOStream) {
        self.loop = loop
        self.handle = handle
        self.pid = handle.pointee.pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }

    deinit { assert(!handleOpen, "ChildProcess deallocated with its handle open") }

    /// Spawns a child. Throws (after closing everything it opened) when `uv_spawn` fails, e.g.
    /// `ENOENT` for a program not on `PATH`.
    public static func spawn(loop: EventLoop, options: SpawnOptions, outputReadCapacity: Int = 16 << 10) throws(UVError) -> ChildProcess {
        loop.assertInLoop()
        // Plain pipes, as a shell or the SDKs' stdio clients give a server: libuv's own
        // UV_CREATE_PIPE makes socketpairs, whose every write costs an skb allocation in the
        // kernel. Both ends are created close-on-exec and blocking; libuv makes ours non-blocking
        // (uv_pipe_open) and dup2s the child's onto 0, 1 and 2.
        var pipes: [(parent: Int32, child: Int32)] = []
        for index in 0..<3 {
            var fds: (Int32, Int32) = (-1, -1)
            let rc = withUnsafeMutableBytes(of: &fds) { uv_pipe($0.baseAddress!.assumingMemoryBound(to: uv_file.self), 0, 0) }
            if rc < 0 {
                for pair in pipes { Glibc.close(pair.parent); Glibc.close(pair.child) }
                throw UVError(rc)
            }
            // stdin: the child reads fds.0; stdout and stderr: the child writes fds.1.
            pipes.append(index == 0 ? (parent: fds.1, child: fds.0) : (parent: fds.0, child: fds.1))
        }
        let handle = zeroedAllocation(uv_process_t.self)

        let argv = [options.executable] + options.arguments
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?]? = options.environment.map { $0.map { strdup($0) } + [nil] }
        let cFile = strdup(options.executable)
        let cCwd = options.workingDirectory.map { strdup($0) }
        defer {
            for pointer in cArgs { free(pointer) }
            if let env = cEnv { for pointer in env { free(pointer) } }
            free(cFile)
            if let cCwd { free(cCwd) }
        }

        var stdio = [uv_stdio_container_t](repeating: uv_stdio_container_t(), count: 3)
        for index in 0..<3 {
            stdio[index].flags = UV_INHERIT_FD
            stdio[index].data.fd = pipes[index].child
        }

        let rc: Int32 = cArgs.withUnsafeMutableBufferPointer { args in
            stdio.withUnsafeMutableBufferPointer { stdio in
                var uvOptions = uv_process_options_t()
                uvOptions.file = UnsafePointer(cFile)
                uvOptions.args = args.baseAddress
                uvOptions.cwd = cCwd.map { UnsafePointer($0) } ?? nil
                uvOptions.flags = UInt32(UV_PROCESS_DETACHED.rawValue)
                uvOptions.stdio_count = 3
                uvOptions.stdio = stdio.baseAddress
                uvOptions.exit_cb = { handle, status, signal in
                    let child = Unmanaged<ChildProcess>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
                    child.didExit(status: status, signal: signal)
                }
                if cEnv != nil {
                    return cEnv!.withUnsafeMutableBufferPointer { env in
                        uvOptions.env = env.baseAddress
                        return uv_spawn(loop.raw, handle, &uvOptions)
                    }
                }
                return uv_spawn(loop.raw, handle, &uvOptions)
            }
        }
        // The child has its copies (or never will): the parent's handles on the child's ends go.
        for pair in pipes { Glibc.close(pair.child) }
        if rc < 0 {
            // The handle must be closed even though spawn failed.
            uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) { handle in
                UnsafeMutableRawPointer(handle!).deallocate()
            }
            for pair in pipes { Glibc.close(pair.parent) }
            throw UVError(rc)
        }
        let stdin = IOStream.pipe(loop: loop, fd: pipes[0].parent, readCapacity: 0)
        let stdout = IOStream.pipe(loop: loop, fd: pipes[1].parent, readCapacity: outputReadCapacity)
        let stderr = IOStream.pipe(loop: loop, fd: pipes[2].parent, readCapacity: 1024)
        let child = ChildProcess(loop: loop, handle: handle, stdin: stdin, stdout: stdout, stderr: stderr)
        handle.pointee.data = Unmanaged.passRetained(child).toOpaque()
        return child
    }

    private func didExit(status: Int64, signal: Int32) {
        let exit: ExitStatus = signal != 0 ? .signaled(signal) : .exited(status)
        exitStatus = exit
        // Sweep the group: a grandchild left behind by a crashed or stopped leader is an orphan.
        kill(-pid, SIGKILL)
        stopTimer?.close()
        stopTimer = nil
        let callback = onExit
        onExit = nil
        closeHandle()
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
            // The exit callback closes the handle.
        }
    }

    private func closeHandle() {
        guard handleOpen else { return }
        handleOpen = false
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) { handle in
            Unmanaged<ChildProcess>.fromOpaque(handle!.pointee.data).release()
            UnsafeMutableRawPointer(handle!).deallocate()
        }
    }
}
