// Config.parse on any text (YAML through libyaml and the tree builder, the JSON form, `${VAR}`
// expansion, one-string commands split like a shell, durations and sizes): it returns a config
// or throws a ConfigError naming the file, and never crashes or hangs. The text is the input as
// UTF-8, as `Config.load` hands it over once the file is read.
import FuzzCheck
import Gateway

let environment = ["HOME": "/home/u", "TOKEN": "s3cret-token", "EMPTY": "", "XDG_CONFIG_HOME": "/home/u/.config"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let text = String(decoding: input, as: UTF8.self)
    do {
        let config = try Config.parse(text, path: "fuzz.yaml", environment: environment)
        require(config.servers.count <= Config.maxServers, "\(config.servers.count) servers accepted", input: input)
    } catch {
        require(error.file == "fuzz.yaml", "an error that names \(error.file): \(error)", input: input)
        _ = error.description
    }
    return 0
}
