import Reactor

/// A tool of mcpd's own that calls other tools in steps (`pipelines:`).
public struct PipelineConfig: Sendable {
    /// One call: `{id, tool: EXPOSED_NAME, arguments: {...}}` (arguments templated).
    public struct Step: Sendable {
        public var id: String
        public var tool: String
        public var arguments: JSONValue = .object(JSONObject())
    }

    public var name: String
    public var description = ""
    public var inputSchema: JSONValue = .object(JSONObject([("type", "object")]))
    /// One deadline for the whole pipeline (nil: the gateway's request timeout).
    public var timeoutMs: UInt64?
    /// Stages in order; a stage of several steps runs them at once (`parallel:`).
    public var stages: [[Step]] = []
    /// The result as a template; nil: every step's content, in order.
    public var result: JSONValue?

    public init(name: String) { self.name = name }

    var stepCount: Int { stages.reduce(0) { $0 + $1.count } }

    var definition: JSONObject {
        JSONObject([("name", .string(name)), ("description", .string(description)), ("inputSchema", inputSchema)])
    }
}

extension ConfigLoader {
    /// `pipelines: {NAME: {description, input_schema, timeout, steps: [...], result}}`.
    mutating func loadPipelines(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else { throw error(node, "pipelines must be a mapping from tool name to {description, steps, ...}") }
        for (key, value) in members {
            do throws(ConfigError) { try loadPipeline(key, value) } catch { record(error) }
        }
    }

    private mutating func loadPipeline(_ key: YAMLNode, _ node: YAMLNode) throws(ConfigError) {
        let name = key.scalar!
        let what = "pipelines.\(name)"
        guard Router.isValidName(name) else {
            throw error(key, "pipeline name \"\(name.prefix(80))\" must be 1-64 letters, digits, _ and - (it is exposed as it is)")
        }
        guard case .mapping(let fields) = node.value else { throw error(node, "\(what) must be a mapping with steps") }
        var pipeline = PipelineConfig(name: name)
        var ids: Set<String> = []
        for (field, value) in fields {
            let key = field.scalar!
            switch key {
            case "description": pipeline.description = try string(value, "\(what).description")
            case "input_schema", "inputSchema":
                let schema = try jsonValue(value, "\(what).\(key)")
                guard schema.objectValue?["type"]?.stringValue == "object" else {
                    throw error(value, "\(what).\(key) must be a JSON Schema of type object (type: object, properties: {...})")
                }
                pipeline.inputSchema = schema
            case "timeout": pipeline.timeoutMs = try positiveDuration(value, "\(what).timeout")
            case "result": pipeline.result = try jsonValue(value, "\(what).result")
            case "steps":
                guard case .sequence(let items) = value.value, !items.isEmpty else { throw error(value, "\(what).steps must be a non-empty list") }
                for (index, item) in items.enumerated() {
                    let place = "\(what).steps[\(index)]"
                    if let parallel = item.mappingValue("parallel") {
                        guard case .sequence(let inner) = parallel.value, !inner.isEmpty else { throw error(parallel, "\(place).parallel must be a non-empty list of steps") }
                        var stage: [PipelineConfig.Step] = []
                        for (position, step) in inner.enumerated() { stage.append(try pipelineStep(step, "\(place).parallel[\(position)]", known: ids)) }
                        for step in stage {
                            guard ids.insert(step.id).inserted else { throw error(item, "\(what): step id \"\(step.id)\" is used twice") }
                        }
                        pipeline.stages.append(stage)
                    } else {
                        let step = try pipelineStep(item, place, known: ids)
                        guard ids.insert(step.id).inserted else { throw error(item, "\(what): step id \"\(step.id)\" is used twice") }
                        pipeline.stages.append([step])
                    }
                }
            default:
                let expected = ["description", "input_schema", "timeout", "steps", "result"]
                throw error(field, "unknown key \"\(key)\" in \(what)\(didYouMean(key, expected)) (expected \(expected.joined(separator: ", ")))")
            }
        }
        guard !pipeline.stages.isEmpty else { throw error(key, "\(what) needs steps") }
        if let result = pipeline.result {
            for reference in PipelineTemplate.stepReferences(in: result) where !ids.contains(reference) {
                throw error(key, "\(what).result refers to step \"\(reference)\", which the pipeline does not have")
            }
        }
        if config.pipelines.contains(where: { $0.name == name }) || config.commandTools.contains(where: { $0.name == name }) {
            throw error(key, "tool \"\(name)\" is defined twice (pipelines and command_tools share one namespace)")
        }
        config.pipelines.append(pipeline)
    }

    /// A step; its templates may refer only to steps of earlier stages (`known`).
    private mutating func pipelineStep(_ node: YAMLNode, _ what: String, known: Set<String>) throws(ConfigError) -> PipelineConfig.Step {
        guard case .mapping(let fields) = node.value else { throw error(node, "\(what) must be {id, tool, arguments} or {parallel: [...]}") }
        var id: String?
        var tool: String?
        var arguments: JSONValue = .object(JSONObject())
        for (field, value) in fields {
            switch field.scalar! {
            case "id": id = try string(value, "\(what).id")
            case "tool": tool = try string(value, "\(what).tool")
            case "arguments":
                arguments = try jsonValue(value, "\(what).arguments")
                guard arguments.objectValue != nil else { throw error(value, "\(what).arguments must be a mapping") }
            default:
                throw error(field, "unknown key \"\(field.scalar!)\" in \(what)\(didYouMean(field.scalar!, ["id", "tool", "arguments"])) (expected id, tool, arguments, or parallel)")
            }
        }
        guard let tool, !tool.isEmpty else { throw error(node, "\(what) needs tool (an exposed tool name)") }
        let stepID = id ?? "step\(known.count + 1)"
        guard !stepID.isEmpty, !stepID.contains("."), !stepID.contains(" ") else { throw error(node, "\(what).id \"\(stepID)\" must be a name without dots or spaces") }
        for reference in PipelineTemplate.stepReferences(in: arguments) where !known.contains(reference) {
            throw error(node, "\(what) refers to step \"\(reference)\", which does not run before it (steps may use the results of earlier steps only)")
        }
        return PipelineConfig.Step(id: stepID, tool: tool, arguments: arguments)
    }
}
