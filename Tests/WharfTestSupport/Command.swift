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
        let process = Process(program, arguments, environment: environment)
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
        // A thread of its own: Dispatch's global queue grows slowly when many such reads
        // block at once (twenty concurrent curls waited seconds for a thread).
        Thread.detachNewThread {
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

extension Command {
    /// `run` on a thread of its own, so a test that awaits it leaves Swift's cooperative
    /// threads free for an in-process server to answer.
    @discardableResult
    public static func runAsync(
        _ program: String, _ arguments: [String], environment: [String: String] = [:], input: Data? = nil
    ) async throws -> CommandResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try run(program, arguments, environment: environment, input: input) })
            }
        }
    }
}

/// A program that runs beside a test: a server, or a client the test talks to through
/// its standard input. Its output is collected as it comes.
public final class BackgroundProcess: @unchecked Sendable {
    private let process: Process
    private let input = Pipe()
    private let lock = NSLock()
    private var output = Data()
    private var errors = Data()

    public init(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process = Process(program, arguments, environment: environment)
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = input
        process.standardOutput = stdout
        process.standardError = stderr
        stdout.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.output.append(data) }
        }
        stderr.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.errors.append(data) }
        }
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var stdout: String { lock.withLock { String(decoding: output, as: UTF8.self) } }
    public var stderr: String { lock.withLock { String(decoding: errors, as: UTF8.self) } }

    /// Sends text to the program's standard input.
    public func send(_ text: String) {
        input.fileHandleForWriting.write(Data(text.utf8))
    }

    public func closeInput() {
        try? input.fileHandleForWriting.close()
    }

    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits until `condition` holds for the output so far, and returns that output.
    @discardableResult
    public func waitForOutput(
        timeout: Duration = .seconds(30), _ condition: (String) -> Bool
    ) async throws -> String {
        try await Wait.until(timeout: timeout, "output of \(process.executableURL?.lastPathComponent ?? "?"): \(stdout) \(stderr)") {
            condition(stdout)
        }
        return stdout
    }

    /// Waits for the program to exit and returns its status.
    public func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        try await Wait.until(timeout: timeout, "exit of \(process.executableURL?.lastPathComponent ?? "?")") { !process.isRunning }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Waiting for a condition with a deadline, checking it every few milliseconds.
public enum Wait {
    public struct TimedOut: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// The value of `body`, or `TimedOut` if it takes longer than `timeout` (`body` is
    /// then cancelled).
    public static func within<T: Sendable>(
        _ timeout: Duration = .seconds(30), _ what: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let value = try await group.next()! else { throw TimedOut(description: "timed out waiting for \(what)") }
            return value
        }
    }

    public static func until(
        timeout: Duration = .seconds(30), _ what: @autoclosure () -> String = "a condition", _ condition: () throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while try !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut(description: "timed out waiting for \(what())") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

extension Process {
    /// A process for `program` (looked up on PATH unless it contains a slash) with the
    /// test's environment plus `environment`.
    convenience init(_ program: String, _ arguments: [String], environment: [String: String]) {
        self.init()
        if program.contains("/") {
            executableURL = URL(fileURLWithPath: program)
            self.arguments = arguments
        } else {
            executableURL = URL(fileURLWithPath: "/usr/bin/env")
            self.arguments = [program] + arguments
        }
        self.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
}
