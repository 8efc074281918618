import Reactor

/// Python plugins (mcp-unify's `plugins: [{module: my_tools.calculator}]`): the modules'
/// decorated functions become the tools of one server, `plugins`, served by a small Python host
/// that mcpd hands to the interpreter as `python3 -c HOST MODULE...`. The host gives the modules
/// `from mcpd import tool` and mcp-unify's `from mcp_gateway import tool` (installing nothing
/// named `mcp_gateway`), imports them (from the config file's folder and `PYTHONPATH`), and
/// serves their functions with the official SDK over stdio: input schemas from type hints, sync
/// and async alike. The server is started lazily like any other; mcpd itself runs no Python.
enum PluginHost {
    /// The server the plugins' tools belong to.
    static let serverName = "plugins"

    static let source = #"""
import asyncio, importlib, inspect, sys, types

_registry = []

def tool(fn=None, *, name=None, description=None, title=None):
    """Registers a function as a tool: @tool, @tool(), @tool(name=..., description=...)."""
    def register(function):
        _registry.append((name or function.__name__, description, title, function))
        return function
    if callable(fn):
        return register(fn)
    return register

for _name in ("mcpd", "mcp_gateway"):
    _module = types.ModuleType(_name)
    _module.tool = tool
    _module.__path__ = []
    sys.modules[_name] = _module
for _name in ("mcp_gateway.plugins", "mcp_gateway.plugin", "mcp_gateway.tools"):
    _module = types.ModuleType(_name)
    _module.tool = tool
    sys.modules[_name] = _module

try:
    from mcp.server.mcpserver import MCPServer as _Server
except ImportError:
    from mcp.server.fastmcp import FastMCP as _Server

for _module_name in sys.argv[1:]:
    try:
        importlib.import_module(_module_name)
    except Exception as error:
        print(f"mcpd plugins: cannot import {_module_name}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(2)

_server = _Server("mcpd-plugins")
for _tool_name, _description, _title, _function in _registry:
    _server.add_tool(_function, name=_tool_name, title=_title, description=_description or inspect.getdoc(_function) or "")
if not _registry:
    print("mcpd plugins: the modules define no @tool function", file=sys.stderr)
_server.run("stdio")
"""#
}

extension ConfigLoader {
    /// `plugins: [{module: NAME} | NAME, ...]`: one server, `plugins`.
    mutating func loadPlugins(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .sequence(let items) = node.value else { throw error(node, "plugins must be a list of {module: dotted.name}") }
        for (index, item) in items.enumerated() {
            let what = "plugins[\(index)]"
            var module: String?
            var enabled = true
            if item.scalar != nil {
                module = try string(item, what)
            } else if case .mapping(let fields) = item.value {
                for (field, value) in fields {
                    switch field.scalar! {
                    case "module": module = try string(value, "\(what).module")
                    case "enabled":
                        enabled = try bool(value, "\(what).enabled")
                    default:
                        throw error(field, "unknown key \"\(field.scalar!)\" in \(what)\(didYouMean(field.scalar!, ["module", "enabled"])) (expected module)")
                    }
                }
            } else {
                throw error(item, "\(what) must be {module: dotted.name}")
            }
            guard enabled, let module else { continue }
            if pluginLine == 0 { pluginLine = item.line }
            guard !module.isEmpty, module.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }), !module.hasPrefix("."), !module.hasSuffix(".") else {
                throw error(item, "\(what): \"\(module.prefix(80))\" is not a Python module name (dotted.name)")
            }
            pluginModules.append(module)
        }
    }

    /// The server that runs the plugins, once the file is read (the interpreter may come from
    /// `gateway.plugins_python`, anywhere in the file).
    mutating func addPluginServer(_ environment: [String: String]) {
        guard !pluginModules.isEmpty else { return }
        if config.servers.contains(where: { $0.name == PluginHost.serverName }) {
            record(ConfigError(file: path, message: "a server is named \"\(PluginHost.serverName)\", the name of the server of plugins:; rename it"))
            return
        }
        var server = ServerConfig(name: PluginHost.serverName)
        server.command = config.gateway.pluginsPython ?? "python3"
        server.args = ["-c", PluginHost.source] + pluginModules
        server.description = "Python plugins: \(pluginModules.joined(separator: ", "))"
        server.line = pluginsPythonLine ?? pluginLine
        server.commandLine = server.line
        let folder = resolvePath(".", isProgram: false)
        server.cwd = folder
        let inherited = environment["PYTHONPATH"].map { ":" + $0 } ?? ""
        server.env = [("PYTHONPATH", folder + inherited)]
        if let python = config.gateway.pluginsPython { server.command = resolvePath(python, isProgram: true) }
        config.servers.append(server)
    }
}
