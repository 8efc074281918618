import CUV

/// A libuv error: the negative code a libuv call returned, printable as `ENOENT: no such file or directory`.
public struct UVError: Error, Equatable, CustomStringConvertible {
    /// The negative libuv error code (`UV_ENOENT`, `UV_EPIPE`, ...).
    public let code: Int32

    /// Wraps a negative libuv result code.
    public init(_ code: Int32) {
        precondition(code < 0, "UVError from a non-negative result \(code)")
        self.code = code
    }

    /// The short name, such as `ECONNRESET`.
    public var name: String { String(cString: uv_err_name(code)) }

    /// The human message, such as `connection reset by peer`.
    public var message: String { String(cString: uv_strerror(code)) }

    public var description: String { "\(name): \(message)" }

    /// The error for a failed `errno`-style call.
    public static func fromErrno(_ value: Int32) -> UVError { UVError(-value) }

    public static let eof = UVError(UV_EOF.rawValue)
    public static let pipe = UVError(UV_EPIPE.rawValue)
    public static let noent = UVError(UV_ENOENT.rawValue)
    public static let again = UVError(UV_EAGAIN.rawValue)
    public static let canceled = UVError(UV_ECANCELED.rawValue)
    public static let msgsize = UVError(UV_EMSGSIZE.rawValue)
    public static let nobufs = UVError(UV_ENOBUFS.rawValue)
}

/// Throws a `UVError` when a libuv call returned a negative code; returns the result otherwise.
@inline(__always) @discardableResult
func uvCheck(_ result: Int32) throws(UVError) -> Int32 {
    if result < 0 { throw UVError(result) }
    return result
}
