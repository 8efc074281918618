import Reactor
#if canImport(Glibc)
import Glibc
#endif

extension ServerConfig {
    /// Why this server's program or working directory cannot be started, or nil: what
    /// `mcpd check` reports, and a failed start explains. `path` is the PATH backends get.
    public func launchProblem(path: String) -> String? {
        guard let command else { return nil }
        if let cwd {
            var info = stat()
            if stat(cwd, &info) != 0 { return "cwd \"\(cwd)\" does not exist" }
            if (info.st_mode & S_IFMT) != S_IFDIR { return "cwd \"\(cwd)\" is not a directory" }
        }
        if ChildProcess.resolveExecutable(command, path: path, cwd: cwd) != nil { return nil }
        if command.hasPrefix("~") { return "command \"\(command)\": ~ is expanded only as ~/ with HOME set; write the full path" }
        let words = command.split(separator: " ", omittingEmptySubsequences: true)
        if words.count > 1, ChildProcess.resolveExecutable(String(words[0]), path: path, cwd: cwd) != nil {
            let rest = words.dropFirst().map { "\"\($0)\"" }.joined(separator: ", ")
            return "command \"\(command)\" has spaces: the program goes in command and the rest in args (command: \(words[0]), args: [\(rest)])"
        }
        let full = command.hasPrefix("/") || cwd == nil || !command.contains("/") ? command : "\(cwd!)/\(command)"
        var info = stat()
        if command.contains("/") {
            guard stat(full, &info) == 0 else { return "command \"\(command)\" does not exist" }
            if (info.st_mode & S_IFMT) == S_IFDIR { return "command \"\(command)\" is a directory" }
            return "command \"\(command)\" is not executable (chmod +x it, or run it through its interpreter: command: python3, args: [\"\(command)\"])"
        }
        for directory in path.split(separator: ":") where stat("\(directory)/\(command)", &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG {
            return "command \"\(command)\" at \(directory)/\(command) is not executable (chmod +x it)"
        }
        return "command \"\(command)\" is not found on PATH (\(path)); install it or give its full path"
    }
}
