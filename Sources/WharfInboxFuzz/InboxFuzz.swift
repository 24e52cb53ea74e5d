import Foundation
@_spi(Fuzzing) import WharfListener

/// libFuzzer's entry point: one input, as bytes a client sent to the inbox.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzInbox(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    InboxRequestFuzzing.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if !WHARF_FUZZING
/// Without libFuzzer (a plain build): runs each file or directory of files given through
/// the same entry point, to replay a corpus or a crash the fuzzer saved.
@main
struct ReplayInboxInputs {
    static func main() throws {
        var count = 0
        for argument in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("WharfInboxFuzz: \(argument) does not exist\n".utf8))
                exit(2)
            }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: argument).sorted().map { "\(argument)/\($0)" }
                : [argument]
            for file in files {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
                _ = bytes.withUnsafeBytes { InboxRequestFuzzing.run($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }
}
#endif
