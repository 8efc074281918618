#if canImport(Glibc)
import Glibc
#endif

/// Ranked search over a view's tools (meta mode's `gateway_search_tools`): Okapi BM25 (k1 1.2,
/// b 0.75) over each tool's words: its name split into words (`create_issue`, `createIssue`,
/// `create-issue` all give "create" and "issue"), counted three times; its server's name; its
/// description; and its parameters' names (twice) and descriptions. Words are lowercased, a few
/// English suffixes are stripped (`issues`, `listing`, `created`: "issue", "list", "creat"), and
/// common words dropped, the same way for tools and queries.
struct ToolSearch {
    struct Document {
        let index: Int
        var terms: [String: Int] = [:]
        var length = 0
    }

    private var documents: [Document] = []
    /// In how many documents each term occurs.
    private var frequency: [String: Int] = [:]
    private var averageLength = 1.0

    /// `tools`: each tool's server, name and definition (`description`, `inputSchema`).
    init(_ tools: [(server: String, name: String, definition: JSONObject)]) {
        for (index, tool) in tools.enumerated() {
            var document = Document(index: index)
            func add(_ text: String, weight: Int) {
                for term in ToolSearch.terms(of: text) {
                    document.terms[term, default: 0] += weight
                    document.length += weight
                }
            }
            add(tool.name, weight: 3)
            add(tool.server, weight: 1)
            add(tool.definition["title"]?.stringValue ?? "", weight: 2)
            add(tool.definition["description"]?.stringValue ?? "", weight: 1)
            if let properties = tool.definition["inputSchema"]?["properties"]?.objectValue {
                for (name, schema) in properties.members {
                    add(name, weight: 2)
                    add(schema["description"]?.stringValue ?? "", weight: 1)
                    // The values a parameter takes say what the tool does (`event: APPROVE`).
                    for value in schema["enum"]?.arrayValue ?? [] { add(value.stringValue ?? "", weight: 1) }
                }
            }
            for term in document.terms.keys { frequency[term, default: 0] += 1 }
            documents.append(document)
        }
        let total = documents.reduce(0) { $0 + $1.length }
        averageLength = documents.isEmpty ? 1 : max(1, Double(total) / Double(documents.count))
    }

    /// The indexes of the best `limit` tools for `query`, with their scores, best first (ties by
    /// index); tools that match no word of the query are left out.
    func search(_ query: String, limit: Int) -> [(index: Int, score: Double)] {
        // The query's words and the words tools use for the same things.
        let asked = ToolSearch.terms(of: query)
        let wanted = Array(Set(asked + asked.flatMap { ToolSearch.synonyms[$0] ?? [] }))
        guard !wanted.isEmpty, limit > 0 else { return [] }
        let count = Double(documents.count)
        let k1 = 1.2, b = 0.75
        var scored: [(index: Int, score: Double)] = []
        for document in documents {
            var score = 0.0
            for term in wanted {
                guard let tf = document.terms[term] else { continue }
                let df = Double(frequency[term] ?? 0)
                let idf = log(1 + (count - df + 0.5) / (df + 0.5))
                let f = Double(tf)
                score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * Double(document.length) / averageLength))
            }
            if score > 0 { scored.append((document.index, score)) }
        }
        scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
        return Array(scored.prefix(limit))
    }

    /// The search terms of `text`: words split at non-letters and at lower-to-upper case
    /// changes, lowercased, stemmed, without common words.
    static func terms(of text: String) -> [String] {
        var words: [String] = []
        var current: [Character] = []
        var previousLower = false
        func flush() {
            if !current.isEmpty { words.append(String(current).lowercased()) }
            current.removeAll()
        }
        for character in text {
            if character.isLetter || character.isNumber {
                if character.isUppercase && previousLower { flush() }
                current.append(character)
                previousLower = character.isLowercase || character.isNumber
            } else {
                flush()
                previousLower = false
            }
        }
        flush()
        return words.compactMap { word in
            guard !stopWords.contains(word) else { return nil }
            return stem(word)
        }
    }

    /// A light suffix stripper, enough that plurals and verb forms meet: `issues`, `issue` ->
    /// "issu"; `created`, `creates`, `creating` -> "creat"; `queries` -> "query".
    static func stem(_ word: String) -> String {
        var w = Substring(word)
        guard w.count > 3 else { return word }
        if w.hasSuffix("ies") && w.count > 4 {
            w = w.dropLast(3) + "y"
        } else if w.hasSuffix("sses") || w.hasSuffix("xes") || w.hasSuffix("ches") || w.hasSuffix("shes") || w.hasSuffix("zes") {
            w = w.dropLast(2)
        } else if w.hasSuffix("s") && !w.hasSuffix("ss") && !w.hasSuffix("us") && !w.hasSuffix("is") {
            w = w.dropLast()
        }
        if w.count > 5 && w.hasSuffix("ing") {
            w = w.dropLast(3)
        } else if w.count > 4 && w.hasSuffix("ed") {
            w = w.dropLast(2)
        }
        if w.count > 4 && w.hasSuffix("e") { w = w.dropLast() }
        return String(w)
    }

    /// Words people ask with, and the words tools are described with (stemmed both).
    static let synonyms: [String: [String]] = {
        let groups: [(String, [String])] = [
            ("folder", ["directory"]), ("dir", ["directory"]), ("history", ["log", "commit"]), ("make", ["create"]),
            ("new", ["create"]), ("add", ["create"]), ("open", ["create", "read"]), ("remove", ["delete"]), ("erase", ["delete"]),
            ("find", ["search"]), ("look", ["search", "get"]), ("lookup", ["search", "get"]), ("show", ["get", "list"]),
            ("approve", ["review"]), ("far", ["distance"]), ("car", ["driving"]), ("drive", ["driving"]), ("route", ["direction"]),
            ("picture", ["screenshot", "image"]), ("photo", ["image"]), ("web", ["browser", "url", "fetch"]), ("website", ["url", "fetch"]),
            ("page", ["url"]), ("download", ["fetch"]), ("sql", ["query"]), ("database", ["query", "sql"]), ("table", ["sql"]),
            ("message", ["post"]), ("send", ["post"]), ("chat", ["message", "channel"]), ("rename", ["move"]), ("copy", ["write"]),
            ("save", ["write"]), ("store", ["write", "create"]), ("edit", ["update"]), ("change", ["update", "edit"]),
            ("modify", ["update", "edit"]), ("ticket", ["issue"]), ("bug", ["issue"]), ("pr", ["pull"]), ("repo", ["repository"]),
            ("clock", ["time"]), ("timezone", ["time"]), ("remember", ["memory", "create"]), ("note", ["observation"]),
        ]
        var table: [String: [String]] = [:]
        for (word, meanings) in groups { table[stem(word), default: []] += meanings.map(stem) }
        return table
    }()

    static let stopWords: Set<String> = [
        "a", "an", "the", "to", "of", "in", "on", "for", "and", "or", "with", "by", "from", "is", "are", "be", "this", "that",
        "it", "its", "as", "at", "me", "my", "i", "you", "your", "please", "can", "could", "would", "should", "will", "what",
        "which", "how", "all", "any", "some", "into", "about", "do", "does", "if", "not", "no", "use", "using", "tool", "given",
    ]
}
