// swift-tools-version:6.0
import PackageDescription

// The hot path is single-threaded, loop-confined code whose exclusivity is checked statically;
// dynamic enforcement cost a quarter of the instructions per forwarded call (callgrind), so
// release builds turn it off. Debug builds and tests keep it.
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "mcpd",
    products: [
        .executable(name: "mcpd", targets: ["mcpd"]),
    ],
    targets: [
        .systemLibrary(name: "CUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .target(name: "Reactor", dependencies: ["CUV"], swiftSettings: hotPathSettings),
        .target(name: "Gateway", dependencies: ["Reactor", "CYAML"], swiftSettings: hotPathSettings),
        .executableTarget(name: "mcpd", dependencies: ["Gateway"]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "CUV"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "Reactor"]),
    ],
    swiftLanguageModes: [.v6]
)
