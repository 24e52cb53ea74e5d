import Foundation

/// A program run to completion: its exit status and what it printed.
public struct CommandResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public var succeeded: Bool { status == 0 }
}

/// Runs real peers (`openssl`, `keytool`, `curl`, the `wharf` binary) from tests.
public enum Command {
    /// Runs `program` (looked up on PATH unless it contains a slash) with `arguments`.
    @discardableResult
    public static func run(
        _ program: String, _ arguments: [String], environment: [String: String] = [:], input: Data? = nil
    ) throws -> CommandResult {
        let process = Process()
        if program.contains("/") {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [program] + arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdout = Pipe()
        let stderr = Pipe()
        let stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        // Read both pipes to the end before waiting, so a chatty program never blocks on a full pipe.
        let errorData = DataBox()
        let errorRead = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errorData.data = stderr.fileHandleForReading.readDataToEndOfFile()
            errorRead.signal()
        }
        let outputData = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        errorRead.wait()
        return CommandResult(
            status: process.terminationStatus,
            stdout: String(decoding: outputData, as: UTF8.self),
            stderr: String(decoding: errorData.data, as: UTF8.self)
        )
    }

    /// Whether `program` is on PATH.
    public static func exists(_ program: String) -> Bool {
        (try? run("sh", ["-c", "command -v \(program)"]).succeeded) ?? false
    }
}

/// A directory under the system's temporary directory, unique to one test.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "wharf") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        try text.write(toFile: file(name), atomically: true, encoding: .utf8)
        return file(name)
    }
}

/// Bytes handed from the reading queue to the caller, which waits on a semaphore first.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}
