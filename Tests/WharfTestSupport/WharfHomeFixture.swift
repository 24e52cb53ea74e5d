import Crypto
import Foundation
import GRDB
import Testing

/// A temporary Wharf home driven through the real `wharf` binary.
public struct WharfHomeFixture: Sendable {
    public let directory: TemporaryDirectory
    public var home: String { directory.file("home") }

    /// The `wharf` executable built beside this test bundle.
    public static let binary: String = {
        let bundleDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        return bundleDirectory.appendingPathComponent("wharf").path
    }()

    public init() throws {
        directory = try TemporaryDirectory("wharf-cli")
    }

    /// Runs `wharf ARGUMENTS --home HOME`.
    @discardableResult
    public func wharf(_ arguments: String..., environment: [String: String] = [:]) throws -> CommandResult {
        try wharf(arguments, environment: environment)
    }

    @discardableResult
    public func wharf(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        try Command.run(Self.binary, arguments + ["--home", home], environment: environment)
    }

    /// Runs `wharf` and fails the test unless it succeeds.
    @discardableResult
    public func succeed(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> CommandResult {
        let result = try wharf(arguments)
        #expect(result.succeeded, "wharf \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        return result
    }

    /// Runs `wharf ARGUMENTS --home HOME` off Swift's cooperative threads, so an
    /// in-process gateway keeps answering meanwhile.
    @discardableResult
    public func wharf(_ arguments: String..., environment: [String: String] = [:]) async throws -> CommandResult {
        try await Command.runAsync(Self.binary, arguments + ["--home", home], environment: environment)
    }

    /// Runs `wharf` off the cooperative threads and fails the test unless it succeeds.
    @discardableResult
    public func succeed(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) async throws -> CommandResult {
        try await succeed(arguments, sourceLocation: sourceLocation)
    }

    @discardableResult
    public func succeed(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> CommandResult {
        let result = try await Command.runAsync(Self.binary, arguments + ["--home", home])
        #expect(result.succeeded, "wharf \(arguments.joined(separator: " ")): \(result.stderr)", sourceLocation: sourceLocation)
        return result
    }

    /// Every file under the home (with a digest of its contents) and every registry row.
    ///
    /// The database's own files are left out of the file list: SQLite may rewrite them (WAL
    /// checkpoints) without changing a row, so the registry is compared by its rows.
    public func snapshot(excludingTables excluded: Set<String> = []) throws -> [String] {
        var entries: [String] = []
        if let enumerator = FileManager.default.enumerator(atPath: home) {
            for case let relative as String in enumerator where !relative.hasPrefix("wharf.sqlite") {
                let path = "\(home)/\(relative)"
                let attributes = try FileManager.default.attributesOfItem(atPath: path)
                let mode = String(attributes[.posixPermissions] as? Int ?? 0, radix: 8)
                if attributes[.type] as? FileAttributeType == .typeDirectory {
                    entries.append("dir \(relative) \(mode)")
                } else {
                    let digest = SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path)))
                    entries.append("file \(relative) \(mode) \(digest.map { String(format: "%02x", $0) }.joined())")
                }
            }
        }
        let database = "\(home)/wharf.sqlite"
        if FileManager.default.fileExists(atPath: database) {
            var configuration = Configuration()
            configuration.readonly = true
            // A running gateway's writes and checkpoints can hold the WAL index for a moment;
            // a read-only connection then gets SQLITE_BUSY at once unless it waits.
            configuration.busyMode = .timeout(10)
            let queue = try DatabaseQueue(path: database, configuration: configuration)
            try queue.read { db in
                for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                where !excluded.contains(table) {
                    for row in try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\" ORDER BY 1") {
                        entries.append("row \(table) \(row.description)")
                    }
                }
            }
        }
        return entries.sorted()
    }

    /// Decodes `partner show NAME --json`.
    public func partnerJSON(_ name: String) throws -> [String: Any] {
        let result = try succeed("partner", "show", name, "--json")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }
}
