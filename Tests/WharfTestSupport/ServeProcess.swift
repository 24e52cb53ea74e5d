import Foundation
import Testing

/// `wharf serve` as a process of the test's, on a free loopback port.
public struct ServeProcess: Sendable {
    public let process: BackgroundProcess
    public let port: Int

    /// Starts it on `home` and waits until it prints `Listening on`.
    public static func start(
        home: String, _ extra: [String] = [], admin: String = "off", environment: [String: String] = [:]
    ) async throws -> ServeProcess {
        let process = try BackgroundProcess(
            WharfHomeFixture.binary, ["serve", "--home", home, "--listen", "127.0.0.1:0", "--admin-listen", admin] + extra,
            environment: environment
        )
        let output = try await process.waitForOutput { $0.contains("Listening on") }
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("Listening on") })
        return ServeProcess(process: process, port: try #require(Int(line.split(separator: ":").last ?? "")))
    }

    /// SIGTERM, and the wait for it to exit.
    public func stop() async throws {
        process.signal(SIGTERM)
        _ = try await process.waitForExit()
    }

    /// SIGKILL, as a crash or a lost machine ends it, and the wait for it to be gone.
    public func kill() async throws {
        process.signal(SIGKILL)
        _ = try await process.waitForExit()
    }
}
