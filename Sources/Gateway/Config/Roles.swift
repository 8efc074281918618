import Reactor

/// What a role may see and call: globs (`*`, `?`, `[...]`, as `fnmatch(3)` without special
/// slashes) over exposed names, `<server><separator><name>` for tools and prompts and
/// `mcpd://<server>/<uri>` for resources and templates. `allow` nil: everything; `deny` wins.
public struct RoleFilter: Sendable, Equatable {
    public var allow: [String]?
    public var deny: [String] = []

    public init(allow: [String]?, deny: [String] = []) {
        self.allow = allow
        self.deny = deny
    }

    /// True when the role sees every item.
    public var allowsEverything: Bool { allow == nil && deny.isEmpty }

    /// True when one of `names` (an item's names: exposed, and prefixed with its server) is
    /// allowed and none denied.
    public func admits(_ names: String...) -> Bool {
        if let allow, !names.contains(where: { name in allow.contains { globMatches($0, name) } }) { return false }
        return !names.contains { name in deny.contains { globMatches($0, name) } }
    }
}

extension ConfigLoader {
    /// `roles:` maps a role name to a list of globs (allowed), `null` (everything; mcp-unify's
    /// form) or `{allow: [...], deny: [...]}`.
    mutating func loadRoles(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else {
            throw error(node, "roles must be a mapping from role name to its globs (a list, null for everything, or {allow, deny})")
        }
        for (key, value) in members {
            let name = key.scalar!
            let what = "roles.\(name)"
            do throws(ConfigError) {
                guard !name.isEmpty else { throw error(key, "a role needs a name") }
                if value.isNull {
                    config.roles[name] = RoleFilter(allow: nil)
                } else if case .sequence = value.value {
                    config.roles[name] = RoleFilter(allow: try globs(value, what))
                } else if case .mapping(let fields) = value.value {
                    var filter = RoleFilter(allow: nil)
                    for (field, list) in fields {
                        switch field.scalar! {
                        case "allow": filter.allow = list.isNull ? nil : try globs(list, "\(what).allow")
                        case "deny": filter.deny = list.isNull ? [] : try globs(list, "\(what).deny")
                        default:
                            throw error(field, "unknown key \"\(field.scalar!)\" in \(what)\(didYouMean(field.scalar!, ["allow", "deny"])) (expected allow, deny)")
                        }
                    }
                    config.roles[name] = filter
                } else {
                    throw error(value, "\(what) must be a list of globs, null (everything) or {allow, deny}, found \(value.kindName)")
                }
            } catch {
                record(error)
            }
        }
    }

    private mutating func globs(_ node: YAMLNode, _ what: String) throws(ConfigError) -> [String] {
        guard case .sequence(let items) = node.value else { throw error(node, "\(what) must be a list of globs, found \(node.kindName)") }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            let glob = try string(item, "\(what)[\(index)]")
            guard !glob.isEmpty else { throw error(item, "\(what)[\(index)] is empty") }
            result.append(glob)
        }
        return result
    }

    /// Every role a token or `gateway.default_role` names must be defined.
    mutating func checkRoleReferences() {
        let defined = config.roles.keys.sorted()
        for (role, node, what) in roleReferences where config.roles[role] == nil {
            let known = defined.isEmpty ? "no role is defined: add a roles: section" : "defined: \(defined.joined(separator: ", "))"
            record(error(node, "\(what) names role \"\(role)\", which roles: does not define\(didYouMean(role, defined)) (\(known))"))
        }
    }
}
