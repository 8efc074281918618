// swift-tools-version:6.0
import PackageDescription

// The hot path is single-threaded, loop-confined code: every Swift object of Reactor and Gateway
// is created and touched on the loop thread only (libuv's thread pool runs C work, and its
// callbacks run on the loop). Release builds therefore drop two run-time costs that exist for
// other programs: dynamic exclusivity checks (a quarter of the instructions per forwarded call,
// callgrind) and atomic reference counting (-assume-single-threaded: retains and releases become
// plain increments; depth-16 calls/s went from 0.82 to 0.88-0.97 of the C relay). Debug builds
// and the unit tests keep both.
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked", "-Xfrontend", "-assume-single-threaded"], .when(configuration: .release))]

let package = Package(
    name: "mcpd",
    products: [
        .executable(name: "mcpd", targets: ["mcpd"]),
        // For the fuzz targets (Fuzz/ is a package of its own: its executables are built with
        // -sanitize=fuzzer and take libFuzzer's main) and the scanner benchmark (Benchmarks/ScanBench),
        // which depend on this one by path.
        .library(name: "MCPDFuzzing", targets: ["Reactor", "Gateway", "JSONOracle"]),
    ],
    targets: [
        .systemLibrary(name: "CUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        // Debian's libhttp-parser ships no pkg-config file: the module map links it by name.
        .systemLibrary(name: "CHTTP", providers: [.apt(["libhttp-parser-dev"])]),
        .target(name: "CProcess"),
        .target(name: "CBuildInfo"),
        // The JSON scanner's string skip in SIMD blocks (SSSE3, AVX2 or AVX-512BW, chosen at run time).
        .target(name: "CJSONScan"),
        .target(name: "Reactor", dependencies: ["CUV", "CProcess", "CHTTP"], swiftSettings: hotPathSettings),
        .target(name: "Gateway", dependencies: ["Reactor", "CYAML", "CJSONScan"], swiftSettings: hotPathSettings),
        .executableTarget(name: "mcpd", dependencies: ["Gateway", "CBuildInfo"]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CUV"]),
        // The independent JSON parser and JSON-RPC rules the scanner is checked against, shared by
        // the unit tests and the fuzz targets (test code: nothing in mcpd depends on it).
        .target(name: "JSONOracle", dependencies: ["Gateway", "Reactor"], path: "Tests/JSONOracle"),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "Reactor", "JSONOracle", "CJSONScan"]),
    ],
    swiftLanguageModes: [.v6]
)
