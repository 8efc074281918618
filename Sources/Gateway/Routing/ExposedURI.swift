/// How resource URIs and URI templates are exposed: `mcpd://<server>/<the backend's own URI>`.
///
///     backend "docs" lists   file:///srv/a.txt        docs://pages/{id}
///     clients see            mcpd://docs/file:///srv/a.txt   mcpd://docs/docs://pages/{id}
///
/// The prefix is fixed text, so a template keeps its RFC 6570 variables (a client expands
/// `mcpd://docs/docs://pages/{id}` to `mcpd://docs/docs://pages/7`), and mapping back is
/// exact: strip the prefix, and what is left is the backend's URI byte for byte. Server names
/// are letters, digits, `_` and `-`, all allowed in a URI's host, and the first `/` after the
/// prefix ends the server name. Two backends listing the same URI stay apart.
///
/// A URI without the prefix (a `resource_link` a tool returned, copied as is) is routed to the
/// backend that lists exactly that URI, when exactly one does.
enum ExposedURI {
    static let prefix = "mcpd://"

    static func expose(server: String, uri: String) -> String {
        prefix + server + "/" + uri
    }

    /// The server name and the backend's URI in an exposed URI, or nil when `uri` is not one.
    static func split(_ uri: String) -> (server: String, original: String)? {
        guard uri.hasPrefix(prefix) else { return nil }
        let rest = uri.utf8.dropFirst(prefix.utf8.count)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let server = String(decoding: rest[rest.startIndex..<slash], as: UTF8.self)
        let original = String(decoding: rest[rest.index(after: slash)...], as: UTF8.self)
        guard !server.isEmpty, !original.isEmpty else { return nil }
        return (server, original)
    }
}
