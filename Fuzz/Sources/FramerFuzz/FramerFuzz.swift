// LineFramer: the input is fed in chunks whose sizes come from the input's own bytes, through
// the read loop every caller of the framer uses (StdioTransport, StderrLog): `.tooLong` drops
// what is buffered and discards up to the next newline. Whatever the split, the frames and
// oversized-line reports must be those of splitting the whole input on "\n":
// - each complete line of at most `maxLineLength` bytes (a trailing "\r" counted, then dropped)
//   is one frame;
// - each longer complete line is reported once (`.skippedLongLine` or `.tooLong`) and none of
//   its bytes reaches a frame;
// - an unterminated last line is held (buffered, not framed); reported once when it exceeds
//   the limit.
//
// Input layout: byte 0 picks the limit (below 0x80: that many bytes; otherwise 1 MiB, no limit
// in practice), byte 1 the chunking, the rest is the stream.
import FuzzCheck
import Reactor

enum Event: Equatable {
    case frame([UInt8])
    case longLine
}

/// The events of the whole stream, split on "\n" at once; and the unterminated tail.
func expectedEvents(_ stream: UnsafeRawBufferPointer, maxLineLength: Int) -> (events: [Event], tail: [UInt8]) {
    var events: [Event] = []
    var start = 0
    for index in stream.indices where stream[index] == 0x0A {
        var line = Array(stream[start..<index])
        if line.count > maxLineLength {
            events.append(.longLine)
        } else {
            if line.last == 0x0D { line.removeLast() }
            events.append(.frame(line))
        }
        start = index + 1
    }
    let tail = Array(stream[start...])
    if tail.count > maxLineLength { events.append(.longLine) }
    return (events, tail)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    guard size >= 2 else { return 0 }
    let maxLineLength = data[0] < 0x80 ? Int(data[0]) : 1 << 20
    let chunking = data[1]
    let stream = UnsafeRawBufferPointer(rebasing: input[2...])

    var framer = LineFramer(maxLineLength: maxLineLength)
    // A small first capacity, so that appends grow (and move) the storage under the framer.
    var buffer = ByteBuffer(capacity: Int(chunking & 0x0F))
    var events: [Event] = []
    var discarding = false
    var offset = 0
    // Chunk sizes: 1 ... 1 + (chunking >> 2), each picked by the stream byte where the chunk starts.
    let spread = Int(chunking >> 2) + 1
    while offset < stream.count {
        let length = min(1 + Int(stream[offset] ^ chunking) % spread, stream.count - offset)
        buffer.append(UnsafeRawBufferPointer(rebasing: stream[offset..<(offset + length)]))
        offset += length
        reading: while true {
            switch framer.next(&buffer) {
            case .needMore:
                break reading
            case .line(let line):
                if discarding {
                    discarding = false
                } else {
                    events.append(.frame(Array(line.readablePointer)))
                }
            case .skippedLongLine(let length):
                require(length > maxLineLength, "skipped a line of \(length) bytes under the limit \(maxLineLength)", input: input)
                if !discarding { events.append(.longLine) }
                discarding = false
            case .tooLong:
                require(buffer.readableBytes > maxLineLength, "tooLong with \(buffer.readableBytes) bytes buffered, limit \(maxLineLength)", input: input)
                if !discarding { events.append(.longLine) }
                discarding = true
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                framer.reset()
                break reading
            }
        }
    }
    let (expected, tail) = expectedEvents(stream, maxLineLength: maxLineLength)
    require(events == expected, "events differ: got \(events.map(describeEvent)), expected \(expected.map(describeEvent)) (limit \(maxLineLength), chunking \(chunking))", input: input)
    if tail.count > maxLineLength {
        require(discarding, "an oversized unterminated tail is being discarded", input: input)
    } else {
        require(!discarding && Array(buffer.readablePointer) == tail,
                "the unterminated tail is held: buffered \(describe(buffer.readablePointer)), expected \(describe(tail))", input: input)
    }
    return 0
}

func describeEvent(_ event: Event) -> String {
    switch event {
    case .frame(let bytes): return describe(bytes)
    case .longLine: return "<long line>"
    }
}
