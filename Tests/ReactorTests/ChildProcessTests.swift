import Reactor
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ChildProcessTests: XCTestCase {
    func testEchoThroughCat() {
        withLoop { loop, done in
            let child = try! ChildProcess.spawn(loop: loop, options: SpawnOptions(executable: "cat"))
            var output = ""
            child.stdout.onRead = { buffer in
                output += buffer.string
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
            child.stdout.startReading()
            child.onExit = { status in
                XCTAssertEqual(status, .exited(0))
                XCTAssertEqual(output, "ping\n")
                child.close()
                done()
            }
            child.stdin.write(string: "ping\n")
            child.stdin.closeAfterFlush()
        }
    }

    /// A child may exit, and be reaped, before its owner sets `onExit` (the reaper looks for
    /// it inside `spawn`): the exit is still reported, once, on a later turn of the loop.
    func testExitBeforeOnExitIsSetIsStillReported() {
        withLoop { loop, done in
            let child = try! ChildProcess.spawn(loop: loop, options: SpawnOptions(executable: "/bin/sh", arguments: ["-c", "exit 3"]))
            let poll = LoopTimer(loop: loop)
            poll.start(timeout: 5, repeat: 5) {
                guard !child.isRunning else { return }
                poll.close()
                var calls = 0
                child.onExit = { status in
                    calls += 1
                    XCTAssertEqual(status, .exited(3))
                    loop.execute {
                        XCTAssertEqual(calls, 1)
                        child.close()
                        done()
                    }
                }
                XCTAssertEqual(calls, 0, "not from inside the assignment")
            }
        }
    }

    func testEnvironmentWorkingDirectoryAndExitStatus() {
        withLoop { loop, done in
            let options = SpawnOptions(executable: "/bin/sh", arguments: ["-c", "printf '%s %s' \"$GREETING\" \"$(pwd)\"; exit 7"],
                                       environment: ["GREETING=hi", "PATH=/usr/bin:/bin"], workingDirectory: "/tmp")
            let child = try! ChildProcess.spawn(loop: loop, options: options)
            var output = ""
            child.stdout.onRead = { buffer in
                output += buffer.string
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
            child.stdout.startReading()
            child.onExit = { status in
                XCTAssertEqual(status, .exited(7))
                XCTAssertEqual(status.shellCode, 7)
                XCTAssertEqual(output, "hi /tmp")
                child.close()
                done()
            }
        }
    }

    func testMissingProgramFailsAtOnceAndLeaksNothing() {
        withLoop { loop, done in
            do {
                _ = try ChildProcess.spawn(loop: loop, options: SpawnOptions(executable: "no-such-program-mcpd"))
                XCTFail("spawning a missing program succeeded")
            } catch {
                XCTAssertEqual((error as? UVError)?.name, "ENOENT")
            }
            done()
        }
    }

    func testOwnProcessGroup() {
        withLoop { loop, done in
            let child = try! ChildProcess.spawn(loop: loop, options: SpawnOptions(executable: "sleep", arguments: ["30"]))
            XCTAssertEqual(getpgid(child.pid), child.pid, "a backend leads its own process group")
            child.onExit = { status in
                XCTAssertEqual(status, .signaled(SIGTERM))
                child.close()
                done()
            }
            XCTAssertTrue(child.signalGroup(SIGTERM))
        }
    }

    /// A child that ignores stdin EOF and SIGTERM is killed by the last step of the sequence,
    /// and so is its grandchild (same process group).
    func testStopSequenceKillsStubbornGroup() {
        let pidFile = "/tmp/mcpd-grandchild-\(getpid())"
        unlink(pidFile)
        defer { unlink(pidFile) }
        var grandchild: Int32 = 0
        withLoop { loop, done in
            let script = "trap '' TERM; sleep 60 & echo $! > \(pidFile); while true; do sleep 1; done"
            let child = try! ChildProcess.spawn(loop: loop, options: SpawnOptions(executable: "/bin/sh", arguments: ["-c", script]))
            let started = loop.now
            let poll = LoopTimer(loop: loop)
            poll.start(timeout: 50, repeat: 50) {
                guard let file = fopen(pidFile, "r") else { return }
                var value: Int32 = 0
                fscanf_int(file, &value)
                fclose(file)
                guard value > 0 else { return }
                grandchild = value
                poll.close()
                child.stop(closeGrace: 100, termGrace: 200)
            }
            child.onExit = { status in
                XCTAssertEqual(status, .signaled(SIGKILL))
                XCTAssertGreaterThanOrEqual(loop.now - started, 300)
                child.close()
                done()
            }
        }
        XCTAssertGreaterThan(grandchild, 0)
        // The grandchild was in the group: it is gone (or a zombie awaiting its reaper).
        var alive = kill(grandchild, 0) == 0
        for _ in 0..<100 where alive {
            usleep(20_000)
            alive = kill(grandchild, 0) == 0 && !isZombie(grandchild)
        }
        XCTAssertFalse(alive, "grandchild \(grandchild) survived the stop sequence")
    }
}

private func fscanf_int(_ file: UnsafeMutablePointer<FILE>, _ value: inout Int32) {
    var line = [CChar](repeating: 0, count: 32)
    if fgets(&line, 32, file) != nil { value = Int32(atoi(line)) }
}

private func isZombie(_ pid: Int32) -> Bool {
    guard let file = fopen("/proc/\(pid)/stat", "r") else { return true }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 512)
    guard fgets(&line, 512, file) != nil else { return true }
    let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let close = text.lastIndex(of: ")") else { return false }
    return text[text.index(close, offsetBy: 2)] == "Z"
}
