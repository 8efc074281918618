// Splice, as the gateway uses it: for a request, the id and `params._meta.progressToken` become
// mcpd's decimal id and `params.name` the backend's own name literal (BackendTraffic.forward);
// for a response the id becomes the client's raw id (ClientSession); for a notification
// `params.progressToken` becomes the client's raw token and `params.requestId` a decimal
// (relayNotification, serverRequestCancelled). The decimal, raw value and name are picked by a
// hash of the input. Checks:
// - what `Splice.write` puts on the stream is the input with exactly those ranges replaced, and
//   a newline; the slow path `edited` gives the same bytes;
// - the output scans again as a message of the same kind, each replaced member's range holds
//   the replacement, and the oracle's tree of the output is the input's with those members
//   replaced: every other member unchanged.
// The stream is an IOStream on an unlinked temporary file (written synchronously at the loop
// turn's flush), read back after each input.
@testable import Gateway
import FuzzCheck
import JSONOracle
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One loop and one file stream for the whole run.
final class Sink {
    let loop: EventLoop
    let stream: IOStream
    let fd: Int32

    init() {
        loop = try! EventLoop()
        var template = Array("/tmp/mcpd-splice-fuzz-XXXXXX".utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(fd >= 0, "mkstemp failed")
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        stream = try! IOStream.open(loop: loop, fd: fd)
    }

    /// What `body` writes to the stream, once the loop has flushed it.
    func capture(_ body: (IOStream) -> Void) -> [UInt8] {
        _ = ftruncate(fd, 0)
        _ = lseek(fd, 0, SEEK_SET)
        body(stream)
        loop.runOnce()
        let size = Int(lseek(fd, 0, SEEK_END))
        var bytes = [UInt8](repeating: 0, count: size)
        let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, size, 0) }
        require(read == size, "short read of the captured output: \(read) of \(size)")
        return bytes
    }
}

nonisolated(unsafe) let sink = Sink()
nonisolated(unsafe) let scanner = JSONScanner()

/// Client ids and tokens as clients send them: strings with escapes, numbers no Int holds, one
/// longer than RawValue's inline 32 bytes.
let rawValues = [#""abc""#, "9223372036854775808", "1e400", "-0", #""a client id with \"escapes\", é and 😀, past 32 bytes""#, "0.5"]
/// Backends' own tool names, as the literals Route keeps: one long enough for the slice path.
nonisolated(unsafe) let nameLiterals = ["echo", "tool \"quoted\" \\ é 😀\n", String(repeating: "long_name-", count: 300)].map { jsonStringLiteral($0) }

enum Replacement {
    case decimal(Int)
    case raw(RawValue)
    case bytes(ByteBuffer)

    var bytes: [UInt8] {
        switch self {
        case .decimal(let value): return Array(String(value).utf8)
        case .raw(let value): return value.withBytes { Array($0) }
        case .bytes(let buffer): return Array(buffer.readablePointer)
        }
    }
}

/// `tree` with the member at `path` replaced by `value` (the first of that name at each level).
func replacing(_ tree: JSONValue, _ path: ArraySlice<String>, with value: JSONValue) -> JSONValue {
    guard let key = path.first, case .object(var object) = tree, let member = object[key] else { return tree }
    object[key] = path.count == 1 ? value : replacing(member, path.dropFirst(), with: value)
    return .object(object)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    guard let scan = try? scanner.scan(input), scan.kind != .batch else { return 0 }
    let hash = fnv1a(input)
    // mcpd's ids are small and positive; any Int must splice, negative ones and Int.min too.
    let decimal = hash & 0x100 == 0 ? Int(hash & 0xFFFF) : Int(truncatingIfNeeded: hash) >> Int(hash % 64)
    let raw = RawValue(string: rawValues[Int((hash >> 8) % UInt64(rawValues.count))])
    let name = nameLiterals[Int((hash >> 16) % UInt64(nameLiterals.count))]

    // The edits, as the gateway makes them, with the path of the member each replaces.
    var edits: [(range: Range<Int>, with: Replacement, path: [String], slot: KeyPath<MessageScan, Range<Int>?>)] = []
    switch scan.kind {
    case .request:
        edits.append((scan.id!, .decimal(decimal), ["id"], \.id))
        if let range = scan.paramsName { edits.append((range, .bytes(name), ["params", "name"], \.paramsName)) }
        if let range = scan.metaProgressToken { edits.append((range, .decimal(decimal), ["params", "_meta", "progressToken"], \.metaProgressToken)) }
    case .response:
        edits.append((scan.id!, .raw(raw), ["id"], \.id))
    case .notification:
        if let range = scan.paramsProgressToken { edits.append((range, .raw(raw), ["params", "progressToken"], \.paramsProgressToken)) }
        if let range = scan.paramsRequestID { edits.append((range, .decimal(decimal), ["params", "requestId"], \.paramsRequestID)) }
    case .batch:
        return 0
    }
    guard !edits.isEmpty else { return 0 }

    // The expected bytes, built independently: the input with the ranges replaced.
    var expected: [UInt8] = []
    var position = 0
    for edit in edits.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
        expected += input[position..<edit.range.lowerBound]
        expected += edit.with.bytes
        position = edit.range.upperBound
    }
    expected += input[position...]

    let frame = ByteBuffer(bytes: input)
    var splice = Splice()
    for edit in edits {
        switch edit.with {
        case .decimal(let value): splice.replace(edit.range, decimal: value)
        case .raw(let value): splice.replace(edit.range, raw: value)
        case .bytes(let buffer): splice.replace(edit.range, bytes: buffer)
        }
    }
    let written = withExtendedLifetime(name) { sink.capture { splice.write(frame, to: $0) } }
    require(written == expected + [0x0A], "Splice wrote \(describe(written)), expected \(describe(expected)) and a newline", input: input)
    let slow = edited(frame, edits.map { (range: $0.range, bytes: ByteBuffer(bytes: $0.with.bytes)) })
    require(Array(slow.readablePointer) == expected, "edited gave \(describe(slow.readablePointer)), expected \(describe(expected))", input: input)

    // The output read again: same kind, the replacements where they were put, the rest as it was.
    let rescan: MessageScan
    do {
        rescan = try expected.withUnsafeBytes { bytes throws(ScanError) in try scanner.scan(bytes) }
    } catch {
        require(false, "the spliced message \(describe(expected)) does not scan: \(error)", input: input)
        return 0
    }
    require(rescan.kind == scan.kind, "the spliced message is a \(rescan.kind), not a \(scan.kind)", input: input)
    for edit in edits {
        let range = rescan[keyPath: edit.slot]
        require(range.map { Array(expected[$0]) } == edit.with.bytes,
                "\(edit.path.joined(separator: ".")) of the spliced message is not the replacement", input: input)
    }
    guard var tree = try? ReferenceJSONParser.parse(input),
          let output = expected.withUnsafeBytes({ try? ReferenceJSONParser.parse($0) }) else {
        require(false, "the oracle does not parse the input or the output", input: input)
        return 0
    }
    for edit in edits {
        let value = edit.with.bytes.withUnsafeBytes { try? ReferenceJSONParser.parse($0) }
        tree = replacing(tree, edit.path[...], with: value!)
    }
    require(output == tree, "the spliced tree \(output) is not the input's with the members replaced: \(tree)", input: input)
    return 0
}
