import Foundation
import Testing

/// `wharf serve` as a process of the test's, on a free loopback port.
public struct ServeProcess: Sendable {
    public let process: BackgroundProcess
    public let port: Int
    /// The admin listener's port, unless `admin` was `off`.
    public let adminPort: Int?

    /// Starts it on `home` and waits until it prints `Listening on` (and `Admin listening
    /// on`, unless `admin` is `off`).
    public static func start(
        home: String, _ extra: [String] = [], admin: String = "off", environment: [String: String] = [:]
    ) async throws -> ServeProcess {
        let process = try BackgroundProcess(
            WharfHomeFixture.binary, ["serve", "--home", home, "--listen", "127.0.0.1:0", "--admin-listen", admin] + extra,
            environment: environment
        )
        let output = try await process.waitForOutput {
            $0.contains("Listening on") && (admin == "off" || $0.contains("Admin listening on"))
        }
        func port(after prefix: String) -> Int? {
            output.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.split(separator: ":").last ?? "") }
        }
        let adminPort = admin == "off" ? nil : port(after: "Admin listening on")
        if admin != "off" { try #require(adminPort != nil, "no admin port in: \(output)") }
        return ServeProcess(process: process, port: try #require(port(after: "Listening on")), adminPort: adminPort)
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
