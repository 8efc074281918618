/// How task ids (experimental tasks, 2025-11-25) are exposed: `<server><separator><the
/// backend's task id>`, so that two servers' `task-1` stay apart and a client's `tasks/get`
/// leads back to its server. Server names cannot contain the separator, so the first one ends
/// the name.
enum ExposedTaskID {
    static func expose(server: String, separator: String, id: String) -> String {
        server + separator + id
    }

    /// The server name and the backend's task id, or nil when `id` is not an exposed one.
    static func split(_ id: String, separator: String) -> (server: String, original: String)? {
        let bytes = Array(id.utf8)
        let sep = Array(separator.utf8)
        guard !sep.isEmpty, bytes.count > sep.count + 1 else { return nil }
        for start in 1..<(bytes.count - sep.count) where bytes[start..<(start + sep.count)].elementsEqual(sep) {
            return (String(decoding: bytes[..<start], as: UTF8.self), String(decoding: bytes[(start + sep.count)...], as: UTF8.self))
        }
        return nil
    }
}

/// Where a backend's answer carries the task id to expose.
enum TaskIDPlace: UInt8 {
    /// `tools/call` with `params.task`: `result.task.taskId` (CreateTaskResult).
    case createdTask
    /// `tasks/get`, `tasks/cancel`: `result.taskId` (the task's fields are the result's).
    case task
    /// `tasks/result`: `result._meta["io.modelcontextprotocol/related-task"].taskId`.
    case relatedTask
}
