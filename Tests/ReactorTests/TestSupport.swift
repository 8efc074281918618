import CUV
import Reactor
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a fresh loop, runs the loop until `done` is true or `timeout` ms pass, then
/// asserts every handle was closed and `uv_loop_close` succeeded (the leak check).
func withLoop(timeout: UInt64 = 10_000, file: StaticString = #filePath, line: UInt = #line,
              _ body: (EventLoop, _ done: @escaping () -> Void) throws -> Void) rethrows
{
    let loop = try! EventLoop()
    var finished = false
    let watchdog = LoopTimer(loop: loop, unreferenced: true)
    var timedOut = false
    watchdog.start(timeout: timeout) {
        timedOut = true
        loop.stop()
    }
    try body(loop) { finished = true }
    while !finished && !timedOut {
        if !loop.runOnce() && !finished { break }
    }
    XCTAssertFalse(timedOut, "test timed out after \(timeout) ms", file: file, line: line)
    XCTAssertTrue(finished, "the loop ran out of work before the test finished", file: file, line: line)
    watchdog.close()
    XCTAssertEqual(loop.openHandleCount, 0, "handles left open", file: file, line: line)
    XCTAssertNoThrow(try loop.close(), "uv_loop_close failed: a handle leaked", file: file, line: line)
}

/// A connected pair of Unix stream sockets, as two IOStreams.
func socketPair(_ loop: EventLoop) -> (IOStream, IOStream) {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    return (try! IOStream.open(loop: loop, fd: fds[0]), try! IOStream.open(loop: loop, fd: fds[1]))
}
