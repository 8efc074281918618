// scanbench: how fast JSONScanner reads messages that carry a large string of each payload kind.
//
//   scanbench [--seconds S | --iterations N] LITERAL_FILE...
//
// Each file holds a JSON string literal, quotes included (`loadgen --payload B --kind K
// --print-payload`). For each, scanbench builds the two messages mcpd scans per call, the
// tools/call request carrying the literal as an argument and the answer carrying it as text
// content, and scans them in turn. It prints one JSON line per file: the bytes scanned per second
// by JSONScanner, and by memchr looking for a newline over the same bytes (what a relay that
// only frames lines does per byte), in the same run. With --iterations N it scans N times and
// prints nothing: for callgrind, whose instruction counts of N and 0 iterations give the
// instructions per byte.
import Gateway
import Reactor
#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    let line = Array("scanbench: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

var seconds = 0.5
var iterations: Int? = nil
var files: [String] = []
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--seconds":
        guard let value = arguments.popFirst().flatMap(Double.init) else { fail("--seconds needs a number") }
        seconds = value
    case "--iterations":
        guard let value = arguments.popFirst().flatMap(Int.init) else { fail("--iterations needs a number") }
        iterations = value
    default:
        if argument.hasPrefix("-") { fail("usage: scanbench [--seconds S | --iterations N] LITERAL_FILE...") }
        files.append(argument)
    }
}

func readFile(_ path: String) -> [UInt8] {
    guard let file = fopen(path, "rb") else { fail("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    while let last = bytes.last, last == 0x0A || last == 0x0D { bytes.removeLast() }
    return bytes
}

let scanner = JSONScanner()
// Called through a variable: memchr is a pure function, whose repeated calls on the same bytes
// the optimiser could otherwise fold into one.
nonisolated(unsafe) var findByte: (UnsafeRawPointer, Int32, Int) -> UnsafeMutableRawPointer? = { memchr($0, $1, $2) }
for path in files {
    let literal = readFile(path)
    let request = Array(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"#.utf8) + literal + Array("}}}".utf8)
    let answer = Array(#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"#.utf8) + literal + Array("}]}}".utf8)
    let frames = [request, answer]
    let bytesPerRound = request.count + answer.count
    // Both must scan: a payload the scanner refuses measures nothing.
    for frame in frames {
        do {
            _ = try frame.withUnsafeBytes { raw in try scanner.scan(raw) }
        } catch {
            fail("\(path): the scanner refuses the message: \(error)")
        }
    }
    var sink = 0
    func scanRound() {
        for frame in frames {
            frame.withUnsafeBytes { raw in
                if let scan = try? scanner.scan(raw) { sink &+= scan.id?.lowerBound ?? 0 }
            }
        }
    }
    func memchrRound() {
        for frame in frames {
            frame.withUnsafeBytes { raw in
                if findByte(raw.baseAddress!, 0x0A, raw.count) != nil { sink &+= 1 }
            }
        }
    }
    if let iterations {
        for _ in 0..<iterations { scanRound() }
        if sink == -1 { print(sink) }
        continue
    }
    // Interleaved: a slice of scans, a slice of memchr, until each has had `seconds`.
    var scanTime = 0.0, scanRounds = 0, memchrTime = 0.0, memchrRounds = 0
    let slice = max(1, 20_000_000 / bytesPerRound)
    while scanTime < seconds || memchrTime < seconds {
        var start = now()
        for _ in 0..<slice { scanRound() }
        scanTime += now() - start
        scanRounds += slice
        start = now()
        for _ in 0..<slice { memchrRound() }
        memchrTime += now() - start
        memchrRounds += slice
    }
    let scanRate = Double(scanRounds * bytesPerRound) / scanTime
    let memchrRate = Double(memchrRounds * bytesPerRound) / memchrTime
    print(#"{"file":"\#(path)","bytes":\#(bytesPerRound),"scan_bytes_per_s":\#(Int(scanRate)),"memchr_bytes_per_s":\#(Int(memchrRate)),"sink":\#(sink & 1)}"#)
}
