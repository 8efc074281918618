import Reactor

/// What a class of client sessions sees: the merged lists, the routes from the names in them,
/// and the capabilities announced, built from the backends in its scope.
///
/// The gateway's own view (`Gateway.view`) covers every backend, under prefixed names and
/// `mcpd://<server>/` URIs. A server's view (`/mcp/<server>` over HTTP) covers that server
/// alone, under its own names and URIs, as if the client spoke to it directly; its requests
/// still share the server's process with every other session.
///
/// A resource subscription is keyed by the prefixed URI in every view (`subscriptionKey`), so
/// that sessions of different views share one subscription at the backend.
final class CatalogView {
    /// The one server this view shows, by name; nil: every server, prefixed.
    let server: String?
    /// The role whose filter applies (`roles:`), if any.
    let role: String?
    /// The filter of `role` as last applied.
    private(set) var filter: RoleFilter?
    private(set) var lists: [CatalogList] = ListKind.allCases.map { CatalogList(kind: $0) }
    /// Exposed tool name -> route.
    private(set) var router: Router
    /// Exposed prompt name -> route.
    private(set) var promptRouter: Router
    /// A backend's own resource URI -> the one backend that lists it (URIs listed by several
    /// backends are left out): for clients that read a URI a tool returned, unprefixed.
    private var resourceOwners: [String: Backend] = [:]
    /// The tools listed, for `mcpd list` and `/health`.
    private(set) var exposedTools: [(name: String, backend: String, description: String)] = []
    /// Every tool the view routes, with its server, its own name and its definition as listed
    /// (exposed name): what meta mode lists, searches and invokes.
    private(set) var tools: [(server: String, original: String, definition: JSONObject)] = []
    /// The command tools this view lists and routes, by name.
    private(set) var commandTools: [String: CommandToolConfig] = [:]
    /// The pipelines this view lists and routes, by name.
    private(set) var pipelines: [String: PipelineConfig] = [:]
    /// True when the view has command tools or pipelines (a call's name is then looked up).
    var hasOwnTools: Bool { !commandTools.isEmpty || !pipelines.isEmpty }
    /// `gateway.mode` as last applied: `direct`, `meta` or `hybrid`.
    private(set) var mode = "direct"
    /// True in meta and hybrid modes (a call's name may be a meta tool's).
    private(set) var isMeta = false
    /// `gateway.registration` as last applied (a call's name may be a registration tool's).
    private(set) var registration = false
    /// The search index of `tools`, made at the first search after they change.
    private var searchIndex: ToolSearch?
    /// The backends in scope, in configuration order.
    private(set) var backends: [Backend] = []

    init(server: String?, role: String? = nil, config: GatewaySettings) {
        self.server = server
        self.role = role
        router = Router(separator: config.separator, nameBudget: config.nameBudget, prefixed: server == nil)
        promptRouter = Router(separator: config.separator, nameBudget: config.nameBudget, prefixed: server == nil)
    }

    var isPrefixed: Bool { server == nil }

    /// The gateway's key for a view.
    static func key(server: String?, role: String?) -> String { "\(server ?? "")\u{0}\(role ?? "")" }

    /// True when the server called `name` is in this view: its notifications reach the view's
    /// sessions.
    func shows(_ name: String) -> Bool { server == nil || server == name }

    /// The URI a client of this view sees for `uri` of `server`.
    func exposedURI(server: String, uri: String) -> String {
        isPrefixed ? ExposedURI.expose(server: server, uri: uri) : uri
    }

    /// Rebuilds the routes and lists of `kinds` from the backends in scope that are listed
    /// (`all`: the gateway's, in configuration order). Returns the kinds whose list changed.
    func rebuild(_ kinds: [ListKind], from all: [Backend], config: GatewaySettings, filter: RoleFilter? = nil,
                 commands: [CommandToolConfig] = [], pipelines: [PipelineConfig] = [], admin: Bool = false) -> [ListKind] {
        backends = server.map { name in all.filter { $0.name == name } } ?? all
        self.filter = filter
        let separator = config.separator
        var changed: [ListKind] = []
        for kind in kinds {
            var items: [ByteBuffer] = []
            let names = Router(separator: config.separator, nameBudget: config.nameBudget, prefixed: isPrefixed)
            var exposed: [(name: String, backend: String, description: String)] = []
            var owners: [String: Backend] = [:]
            var shared: Set<String> = []
            var definitions: [(server: String, original: String, definition: JSONObject)] = []
            // A backend whose circuit is open keeps its last lists: its calls fail with the
            // reason, not as unknown names, and it may come back.
            for backend in backends where backend.isListed {
                for item in backend.lists[kind.rawValue] {
                    guard let original = item[kind.identity]?.stringValue else { continue }
                    if kind == .tools && (!backend.config.tools.admits(original) || backend.withholds(original, config)) { continue }
                    var renamed = item
                    switch kind {
                    case .tools, .prompts:
                        if !isPrefixed && names.route(original) != nil { continue }  // listed twice
                        // A role's globs match the name with its server's prefix (as exposed
                        // at /mcp, also in a server's view).
                        if let filter, !filter.admits(backend.name + separator + original) { continue }
                        let name = names.add(original, of: backend)
                        renamed[kind.identity] = .string(name)
                        if kind == .tools {
                            exposed.append((name, backend.name, item["description"]?.stringValue ?? ""))
                            definitions.append((backend.name, original, renamed))
                        }
                    case .resources, .templates:
                        if let filter, !filter.admits(ExposedURI.expose(server: backend.name, uri: original)) { continue }
                        renamed[kind.identity] = .string(exposedURI(server: backend.name, uri: original))
                        if kind == .resources {
                            if owners[original] != nil { shared.insert(original) } else { owners[original] = backend }
                        }
                    }
                    items.append(JSONValue.object(renamed).serialized)
                }
            }
            switch kind {
            case .tools:
                // mcpd's own command tools, under their own names, after the servers' (not in a
                // server's view).
                commandTools = [:]
                self.pipelines = [:]
                if server == nil {
                    for tool in commands where filter?.admits(tool.name) ?? true {
                        commandTools[tool.name] = tool
                        items.append(JSONValue.object(tool.definition).serialized)
                        exposed.append((tool.name, "mcpd", tool.description))
                        definitions.append(("mcpd", tool.name, tool.definition))
                    }
                    for pipeline in pipelines where filter?.admits(pipeline.name) ?? true {
                        self.pipelines[pipeline.name] = pipeline
                        items.append(JSONValue.object(pipeline.definition).serialized)
                        exposed.append((pipeline.name, "mcpd", pipeline.description))
                        definitions.append(("mcpd", pipeline.name, pipeline.definition))
                    }
                }
                // An admin role's registration tools (`gateway.registration`).
                if admin && server == nil { items += AdminTool.definitions }
                router = names
                exposedTools = exposed
                tools = definitions
                searchIndex = nil
                mode = config.mode
                isMeta = mode != "direct"
                registration = config.registration
                if mode != "direct" {
                    // Meta mode lists the gateway's tools instead; hybrid adds the pinned ones.
                    // A pinned tool named like one of the gateway's is reached by gateway_invoke.
                    let pinned = mode == "hybrid" ? zip(exposed, items).filter { tool, _ in
                        config.pinnedTools.contains { globMatches($0, tool.name) } && !MetaTool.allCases.contains { $0.name == tool.name }
                    }.map(\.1) : []
                    items = MetaTool.definitions + pinned
                }
            case .prompts:
                promptRouter = names
            case .resources:
                for uri in shared { owners[uri] = nil }
                resourceOwners = owners
            case .templates:
                break
            }
            if lists[kind.rawValue].replace(with: items) { changed.append(kind) }
        }
        return changed
    }

    /// A page of the list of `kind` (see `CatalogList.page`).
    func page(_ kind: ListKind, cursor: String?, pageSize: Int, forOlderClient older: Bool) -> Result<ByteBuffer, ListError> {
        lists[kind.rawValue].page(cursor: cursor, pageSize: pageSize, forOlderClient: older)
    }

    /// The route for a resource URI a client sent, or nil. In the gateway's view:
    /// `mcpd://<server>/<uri>`, or a URI exactly one backend lists. In a server's view: any
    /// URI, to that server.
    func resourceRoute(_ uri: String, backendsByName: [String: Backend]) -> Route? {
        if let server {
            return backendsByName[server].map { Route(backend: $0, originalName: uri) }
        }
        if let (server, original) = ExposedURI.split(uri), let backend = backendsByName[server] {
            return Route(backend: backend, originalName: original)
        }
        if let backend = resourceOwners[uri] { return Route(backend: backend, originalName: uri) }
        return nil
    }

    /// The tools that best match `query` (meta mode's search), best first.
    func search(_ query: String, limit: Int) -> [(tool: (server: String, original: String, definition: JSONObject), score: Double)] {
        if searchIndex == nil { searchIndex = ToolSearch(tools.map { ($0.server, $0.original, $0.definition) }) }
        return searchIndex!.search(query, limit: limit).map { (tools[$0.index], $0.score) }
    }

    /// True when the view's role may read `route` (a resource): its globs match the URI as
    /// exposed at `/mcp`.
    func admits(resource route: Route) -> Bool {
        filter.map { $0.admits(ExposedURI.expose(server: route.backend.name, uri: route.originalName)) } ?? true
    }

    /// Why a name this view does not list is refused, when the reason is the role: the view of
    /// the same scope without a role lists it.
    func roleRefusal(_ noun: String, _ name: String) -> String? {
        guard let role else { return nil }
        let shown = name.count > 200 ? String(name.prefix(200)) + "..." : name
        return "\(noun.prefix(1).uppercased() + noun.dropFirst()) \"\(shown)\" is not available to role \"\(role)\" (roles.\(role) in the config)"
    }

    /// The capabilities announced to a client of this view: tools always (mcpd's own list),
    /// and the rest when some backend in scope offers them (`resources.subscribe` when some
    /// backend supports subscriptions).
    var capabilities: JSONValue {
        var result = JSONObject()
        result["tools"] = ["listChanged": true]
        let live = backends.filter { $0.state != .failed }
        if live.contains(where: { $0.declares("prompts") }) { result["prompts"] = ["listChanged": true] }
        if live.contains(where: { $0.declares("resources") }) {
            var resources: JSONObject = JSONObject([("listChanged", true)])
            if supportsSubscriptions { resources["subscribe"] = true }
            result["resources"] = .object(resources)
        }
        if live.contains(where: { $0.declares("completions") }) { result["completions"] = .object(JSONObject()) }
        if live.contains(where: { $0.declares("logging") }) { result["logging"] = .object(JSONObject()) }
        // Tasks (2025-11-25, experimental): what any backend offers of them.
        var tasks = JSONObject()
        if live.contains(where: { $0.capabilities["tasks"]?["list"].map { $0 != .null } ?? false }) { tasks["list"] = .object(JSONObject()) }
        if live.contains(where: { $0.capabilities["tasks"]?["cancel"].map { $0 != .null } ?? false }) { tasks["cancel"] = .object(JSONObject()) }
        if live.contains(where: \.offersTasks) { tasks["requests"] = ["tools": ["call": .object(JSONObject())]] }
        if !tasks.isEmpty { result["tasks"] = .object(tasks) }
        return .object(result)
    }

    /// True when some backend in scope that has not failed supports `resources/subscribe`.
    var supportsSubscriptions: Bool {
        backends.contains { $0.state != .failed && $0.capabilities["resources"]?["subscribe"] == .bool(true) }
    }

    /// True when some backend in scope that has not failed declared `capability`.
    func anyBackendDeclares(_ capability: String) -> Bool {
        backends.contains { $0.state != .failed && $0.declares(capability) }
    }

    /// Backends in scope that declared `capability` and are serving.
    func readyBackends(declaring capability: String) -> [Backend] {
        backends.filter { $0.state == .ready && $0.declares(capability) }
    }
}
